import test from 'ava';
import { execFileSync } from 'node:child_process';
import { loadConfig, type ConfigOutcome, type ResolvedConfig } from '../../../src/config/load.js';
import { DEFAULT_AGENT_IMAGE } from '../../../src/shared/names.js';
import { configMap, gitCache, type Json } from '../../support/krm.js';

const URL_HTTPS = 'https://git.example.com/org/app.git';

function ok(outcome: ConfigOutcome): ResolvedConfig {
  if (!outcome.ok) throw new Error(`expected a valid config, got ${JSON.stringify(outcome.results)}`);
  return outcome.config;
}

/** The field paths of the error results, and their messages. */
function errors(functionConfig: unknown): { paths: string[]; messages: string } {
  const outcome = loadConfig(functionConfig);
  if (outcome.ok) return { paths: [], messages: '' };
  for (const result of outcome.results) if (result.severity !== 'error') throw new Error('config problems must be errors');
  return { paths: outcome.results.map((result) => result.field?.path ?? ''), messages: outcome.results.map((result) => result.message).join('\n') };
}

function withSpec(extra: Json): Json {
  return gitCache({ repos: [{ url: URL_HTTPS }], ...extra });
}

/** `printf '%s\n' URL | sha1sum | cut -c1-20`, computed by the real tools. */
function shellKey(url: string): string {
  return execFileSync('sh', ['-c', `printf '%s\\n' "$1" | sha1sum | cut -c1-20`, 'sh', url], { encoding: 'utf8' }).trim();
}

test('a minimal GitCache gets every default of the contract', (t) => {
  const config = ok(loadConfig(gitCache({ repos: [{ url: URL_HTTPS }] })));
  t.is(config.spec.mode, 'sidecar');
  t.is(config.spec.mountPath, '/git-cache');
  t.deepEqual(config.spec.volume, { type: 'emptyDir', claimName: 'git-cache' });
  t.is(config.spec.refreshInterval, '60s');
  t.is(config.spec.metricsPort, 9901);
  t.deepEqual(config.spec.workloadKinds, []);
  t.deepEqual(config.selector, { matchLabels: { 'git-cache.enabled': 'true' } });
  t.is(config.image, DEFAULT_AGENT_IMAGE);
  t.notRegex(config.image, /:latest$/);
  t.is(config.source, 'GitCache/git-cache');
  t.deepEqual(config.repos, [{ name: 'app', url: URL_HTTPS, key: shellKey(URL_HTTPS), sshSecretName: undefined, httpsSecretName: undefined }]);
});

test('every URL form is accepted, named after its last path segment, and keyed like sha1sum does', (t) => {
  const urls = [
    'https://git.example.com/org/App-Web.git',
    'http://git.example.com:8080/org/tools',
    'ssh://git@git.example.com:2222/org/infra.git',
    'git@github.com:org/Some.Repo.git',
    'git://git.example.com/mirror/linux.git',
  ];
  const config = ok(loadConfig(gitCache({ repos: urls.map((url) => ({ url })) })));
  t.deepEqual(
    config.repos.map((repo) => repo.name),
    ['app-web', 'tools', 'infra', 'some-repo', 'linux'],
  );
  for (const repo of config.repos) t.is(repo.key, shellKey(repo.url), repo.url);
});

test('an explicit image, name and secrets are kept', (t) => {
  const config = ok(
    loadConfig(
      gitCache({
        repos: [
          { url: 'git@github.com:org/a.git', name: 'alpha', sshSecretName: 'ssh-creds' },
          { url: 'https://github.com/org/b.git', httpsSecretName: 'https-creds' },
        ],
        image: 'registry.example/git-cache@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      }),
    ),
  );
  t.deepEqual(
    config.repos.map((repo) => [repo.name, repo.sshSecretName, repo.httpsSecretName]),
    [
      ['alpha', 'ssh-creds', undefined],
      ['b', undefined, 'https-creds'],
    ],
  );
  t.regex(config.image, /@sha256:/);
});

test('a partial resources list is accepted (requests cpu alone)', (t) => {
  const config = ok(loadConfig(withSpec({ resources: { requests: { cpu: '100m' } } })));
  t.deepEqual(config.spec.resources, { requests: { cpu: '100m' } });
});

test('no functionConfig, or one that is not a mapping, is an error', (t) => {
  t.regex(errors(undefined).messages, /no functionConfig/);
  t.regex(errors(null).messages, /no functionConfig/);
  t.regex(errors('text').messages, /mapping/);
  t.regex(errors([1]).messages, /mapping/);
});

test('a functionConfig of another kind or version is an error on kind', (t) => {
  t.deepEqual(errors({ apiVersion: 'git-cache.dev/v1', kind: 'GitCache', spec: {} }).paths, ['kind']);
  t.deepEqual(errors({ apiVersion: 'apps/v1', kind: 'Deployment' }).paths, ['kind']);
  t.deepEqual(errors({ apiVersion: 'v2', kind: 'ConfigMap', data: {} }).paths, ['kind']);
});

const FIELD_CASES: readonly [string, Json, string][] = [
  ['spec.repos missing', { repos: undefined }, 'spec.repos'],
  ['spec.repos empty', { repos: [] }, 'spec.repos'],
  ['an empty url', { repos: [{ url: '' }] }, 'spec.repos[0].url'],
  ['a url that is not a string', { repos: [{ url: 42 }] }, 'spec.repos[0].url'],
  ['a bad name', { repos: [{ url: URL_HTTPS, name: 'Bad_Name' }] }, 'spec.repos[0].name'],
  ['a bad sshSecretName', { repos: [{ url: URL_HTTPS, sshSecretName: 'Not A Secret' }] }, 'spec.repos[0].sshSecretName'],
  ['a bad httpsSecretName', { repos: [{ url: URL_HTTPS, httpsSecretName: '-x' }] }, 'spec.repos[0].httpsSecretName'],
  ['ssh and https secrets together', { repos: [{ url: URL_HTTPS, sshSecretName: 'a', httpsSecretName: 'b' }] }, 'spec.repos[0]'],
  ['an unknown repo field', { repos: [{ url: URL_HTTPS, branch: 'main' }] }, 'spec.repos[0]'],
  ['a second repo with a bad url', { repos: [{ url: URL_HTTPS }, { url: 'file:///srv/repo.git' }] }, 'spec.repos[1].url'],
  ['a bad matchLabels key', { selector: { matchLabels: { 'bad key!': 'x' } } }, 'spec.selector.matchLabels.bad key!'],
  ['a bad matchLabels value', { selector: { matchLabels: { app: 'not valid!' } } }, 'spec.selector.matchLabels.app'],
  ['a bad matchExpressions operator', { selector: { matchExpressions: [{ key: 'app', operator: 'Matches' }] } }, 'spec.selector.matchExpressions[0].operator'],
  ['a bad matchExpressions key', { selector: { matchExpressions: [{ key: '', operator: 'Exists' }] } }, 'spec.selector.matchExpressions[0].key'],
  ['an unknown selector field', { selector: { matchFields: {} } }, 'spec.selector'],
  ['a bad mode', { mode: 'daemon' }, 'spec.mode'],
  ['an image on :latest', { image: 'ghcr.io/git-cache/git-cache:latest' }, 'spec.image'],
  ['an image that is no reference', { image: 'UPPER case' }, 'spec.image'],
  ['a bad imagePullPolicy', { imagePullPolicy: 'Sometimes' }, 'spec.imagePullPolicy'],
  ['a relative mountPath', { mountPath: 'git-cache' }, 'spec.mountPath'],
  ['mountPath /', { mountPath: '/' }, 'spec.mountPath'],
  ['mountPath /tmp', { mountPath: '/tmp' }, 'spec.mountPath'],
  ['a mountPath with ..', { mountPath: '/cache/../etc' }, 'spec.mountPath'],
  ['a bad volume type', { volume: { type: 'hostPath' } }, 'spec.volume.type'],
  ['a bad volume size', { volume: { size: 'five gigs' } }, 'spec.volume.size'],
  ['a bad claimName', { volume: { type: 'pvc', claimName: 'Claim_1' } }, 'spec.volume.claimName'],
  ['an unknown volume field', { volume: { hostPath: '/x' } }, 'spec.volume'],
  ['a bad refreshInterval', { refreshInterval: '1 minute' }, 'spec.refreshInterval'],
  ['a privileged metricsPort', { metricsPort: 80 }, 'spec.metricsPort'],
  ['a metricsPort that is a string', { metricsPort: '9901' }, 'spec.metricsPort'],
  ['a metricsPort out of range', { metricsPort: 70000 }, 'spec.metricsPort'],
  ['a bad resource quantity', { resources: { requests: { cpu: 'lots' } } }, 'spec.resources.requests.cpu'],
  ['an unknown resource name', { resources: { limits: { gpu: '1' } } }, 'spec.resources.limits'],
  ['a bad workload kind', { workloadKinds: [{ kind: 'rollout', podTemplatePath: 'spec/template' }] }, 'spec.workloadKinds[0].kind'],
  ['a bad podTemplatePath', { workloadKinds: [{ kind: 'Rollout', podTemplatePath: '/spec/template' }] }, 'spec.workloadKinds[0].podTemplatePath'],
  ['an unknown spec field', { repo: URL_HTTPS }, 'spec'],
];

for (const [description, extra, path] of FIELD_CASES) {
  test(`${description} is an error result with field.path ${path}`, (t) => {
    const { paths, messages } = errors(withSpec(extra));
    t.true(paths.includes(path), `paths ${JSON.stringify(paths)}; ${messages}`);
    t.true(messages.split('\n').every((message) => message.includes(path)), messages);
  });
}

test('several problems give one error result each', (t) => {
  const { paths } = errors(withSpec({ mode: 'x', mountPath: 'y', metricsPort: 1 }));
  t.deepEqual(paths.sort(), ['spec.metricsPort', 'spec.mode', 'spec.mountPath']);
});

const HOSTILE_URLS: readonly [string, RegExp][] = [
  ['ext::sh -c touch% /tmp/pwned', /not allowed|whitespace/],
  ['ext::ssh', /remote helper/],
  ['fd::17', /remote helper/],
  ['file:///srv/git/repo.git', /file:\/\/|not allowed/],
  ['/srv/git/repo.git', /local paths/],
  ['../repo', /local paths/],
  ['-oProxyCommand=touch%20/tmp/x', /start with "-"/],
  ['--upload-pack=touch', /start with "-"/],
  ['ssh://-oProxyCommand=x/repo', /invalid host/],
  ['ssh://-user@host/repo', /user name/],
  ['-user@host:repo', /start with "-"/],
  ['git@host:-repo', /not starting with "-"/],
  ['https://host/repo\n.git', /whitespace or control/],
  ['https://host/repo/../../etc', /\.\./],
];

for (const [url, reason] of HOSTILE_URLS) {
  test(`the hostile URL ${JSON.stringify(url)} is a config error on spec.repos[0].url`, (t) => {
    const { paths, messages } = errors(gitCache({ repos: [{ url }] }));
    t.deepEqual(paths, ['spec.repos[0].url']);
    t.regex(messages, reason);
  });
}

for (const [form, url] of [
  ['user:password@', 'https://user:secret@github.com/org/repo.git'],
  ['token@', 'https://ghp_token@github.com/org/repo.git'],
  ['http user:password@', 'http://u:p@host/r.git'],
]) {
  test(`a URL with credentials (${form}) is an error pointing to httpsSecretName, without echoing the secret`, (t) => {
    const { paths, messages } = errors(gitCache({ repos: [{ url }] }));
    t.deepEqual(paths, ['spec.repos[0].url']);
    t.regex(messages, /httpsSecretName/);
    t.false(messages.includes('secret@') || messages.includes('ghp_token') || messages.includes('u:p'));
  });
}

test('two repos with the same (default) name are an error on the second name', (t) => {
  const { paths, messages } = errors(gitCache({ repos: [{ url: 'https://a.example/org/app.git' }, { url: 'git@b.example:other/app.git' }] }));
  t.deepEqual(paths, ['spec.repos[1].name']);
  t.regex(messages, /already used by repos\[0\]/);
  ok(loadConfig(gitCache({ repos: [{ url: 'https://a.example/org/app.git' }, { url: 'git@b.example:other/app.git', name: 'app-b' }] })));
});

test('a ConfigMap functionConfig maps every key onto the GitCache fields', (t) => {
  const config = ok(
    loadConfig(
      configMap({
        repoUrl: 'git@github.com:org/service.git',
        repoName: 'svc',
        sshSecretName: 'ssh-key',
        image: 'registry.example/git-cache:v9',
        mode: 'legacy-sidecar',
        mountPath: '/cache',
        volumeType: 'pvc',
        volumeSize: '20Gi',
        claimName: 'shared-cache',
        refreshInterval: '5m',
        metricsPort: '9100',
      }),
    ),
  );
  t.deepEqual(config.repos, [{ name: 'svc', url: 'git@github.com:org/service.git', key: shellKey('git@github.com:org/service.git'), sshSecretName: 'ssh-key', httpsSecretName: undefined }]);
  t.is(config.image, 'registry.example/git-cache:v9');
  t.is(config.spec.mode, 'legacy-sidecar');
  t.is(config.spec.mountPath, '/cache');
  t.deepEqual(config.spec.volume, { type: 'pvc', size: '20Gi', claimName: 'shared-cache' });
  t.is(config.spec.refreshInterval, '5m');
  t.is(config.spec.metricsPort, 9100);
  t.is(config.source, 'ConfigMap/fn-config');
});

test('a ConfigMap with only repoUrl gets the defaults; empty values count as unset', (t) => {
  const config = ok(loadConfig(configMap({ repoUrl: URL_HTTPS, image: '', mode: '' })));
  t.is(config.spec.mode, 'sidecar');
  t.is(config.image, DEFAULT_AGENT_IMAGE);
  t.deepEqual(config.spec.volume, { type: 'emptyDir', claimName: 'git-cache' });
});

const CONFIG_MAP_CASES: readonly [string, Record<string, string>, string][] = [
  ['no repoUrl', {}, 'data.repoUrl'],
  ['a hostile repoUrl', { repoUrl: 'ext::sh -c id' }, 'data.repoUrl'],
  ['a repoUrl with credentials', { repoUrl: 'https://u:p@host/r.git' }, 'data.repoUrl'],
  ['a bad image', { repoUrl: URL_HTTPS, image: 'x:latest' }, 'data.image'],
  ['a bad mode', { repoUrl: URL_HTTPS, mode: 'sidecars' }, 'data.mode'],
  ['a bad mountPath', { repoUrl: URL_HTTPS, mountPath: 'rel' }, 'data.mountPath'],
  ['a bad volumeType', { repoUrl: URL_HTTPS, volumeType: 'hostPath' }, 'data.volumeType'],
  ['a bad volumeSize', { repoUrl: URL_HTTPS, volumeSize: 'big' }, 'data.volumeSize'],
  ['a bad claimName', { repoUrl: URL_HTTPS, volumeType: 'pvc', claimName: 'A B' }, 'data.claimName'],
  ['a bad refreshInterval', { repoUrl: URL_HTTPS, refreshInterval: 'often' }, 'data.refreshInterval'],
  ['a bad metricsPort', { repoUrl: URL_HTTPS, metricsPort: 'ninety' }, 'data.metricsPort'],
  ['a low metricsPort', { repoUrl: URL_HTTPS, metricsPort: '80' }, 'data.metricsPort'],
  ['a bad repoName', { repoUrl: URL_HTTPS, repoName: 'UP' }, 'data.repoName'],
  ['both secrets', { repoUrl: URL_HTTPS, sshSecretName: 'a', httpsSecretName: 'b' }, 'spec.repos[0]'],
  ['an unknown key', { repoUrl: URL_HTTPS, repoURL: 'x' }, 'data.repoURL'],
];

for (const [description, data, path] of CONFIG_MAP_CASES) {
  test(`a ConfigMap with ${description} is an error result with field.path ${path}`, (t) => {
    const { paths, messages } = errors(configMap(data));
    t.deepEqual(paths, [path], messages);
  });
}

test('an unknown ConfigMap key is reported with the list of known keys', (t) => {
  const { messages } = errors(configMap({ repoUrl: URL_HTTPS, branch: 'main' }));
  t.regex(messages, /unknown ConfigMap key\(s\) branch/);
  for (const key of ['repoUrl', 'image', 'mode', 'mountPath', 'volumeType', 'volumeSize', 'claimName']) t.true(messages.includes(key), key);
});
