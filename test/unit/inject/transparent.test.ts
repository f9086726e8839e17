// Transparent mode: the builder (src/inject/transparent.ts) and how the transformer applies it. The rewrite is
// checked with the real git here: `git ls-remote --get-url` and `git remote get-url [--push]` print what git
// makes of a URL after insteadOf/pushInsteadOf, without contacting anything.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KrmResult } from '../../../src/krm/results.js';
import { appGitEnv, gitConfigEnv, transparentGitConfig, urlFamilies, type TransparentRepo } from '../../../src/inject/transparent.js';
import { SELECTED, at, containersOf, deployment, gitCache, inject, podSpecOf, type Json } from '../../support/krm.js';

const SCP = 'git@github.com:org/app.git';
const HTTPS = 'https://git.example.com/platform/lib';
const MIRROR = '/git-cache/0123456789abcdef0123.git';

/** Runs git with exactly `env`'s git configuration (no system or global config of this machine). */
function gitWith(env: Record<string, string>, args: string[], cwd?: string): string {
  return execFileSync('git', args, {
    encoding: 'utf8',
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', ...env },
  }).trim();
}

function envRecord(repos: TransparentRepo[]): Record<string, string> {
  return Object.fromEntries(gitConfigEnv(transparentGitConfig(repos, '/git-cache')).map((variable) => [variable.name, variable.value]));
}

test('every spelling of an scp-like URL: with and without .git, trailing slash, and the ssh:// form', (t) => {
  const families = urlFamilies(SCP);
  t.deepEqual(
    families.map((family) => family.base),
    ['git@github.com:org/app', 'ssh://git@github.com/org/app'],
  );
  t.deepEqual(families[0]?.spellings, ['git@github.com:org/app.git', 'git@github.com:org/app', 'git@github.com:org/app/', 'git@github.com:org/app.git/']);
});

test('ssh:// URLs get the scp-like form only on the default port; https keeps its port; the URL as written comes first', (t) => {
  t.deepEqual(
    urlFamilies('ssh://git@h.example:2222/srv/app.git').map((family) => family.base),
    ['ssh://git@h.example:2222/srv/app'],
  );
  t.deepEqual(
    urlFamilies('ssh://git@h.example/srv/app.git').map((family) => family.base),
    ['ssh://git@h.example/srv/app', 'git@h.example:srv/app'],
  );
  t.deepEqual(urlFamilies('https://h.example:8443/a/b.git/')[0]?.spellings[0], 'https://h.example:8443/a/b.git/');
  t.is(urlFamilies('https://h.example:8443/a/b.git/')[0]?.base, 'https://h.example:8443/a/b');
});

test('real git rewrites every spelling of a configured repo to its mirror and leaves other URLs alone', (t) => {
  const env = envRecord([
    { url: SCP, mirror: { path: MIRROR } },
    { url: HTTPS, mirror: { url: 'git://git-cache-node.ci.svc/abcdef.git' } },
  ]);
  for (const spelling of ['git@github.com:org/app.git', 'git@github.com:org/app', 'git@github.com:org/app/', 'git@github.com:org/app.git/', 'ssh://git@github.com/org/app.git', 'ssh://git@github.com/org/app']) {
    t.is(gitWith(env, ['ls-remote', '--get-url', spelling]), MIRROR, spelling);
  }
  for (const spelling of ['https://git.example.com/platform/lib', 'https://git.example.com/platform/lib.git', 'https://git.example.com/platform/lib/']) {
    t.is(gitWith(env, ['ls-remote', '--get-url', spelling]), 'git://git-cache-node.ci.svc/abcdef.git', spelling);
  }
  for (const other of ['git@github.com:org/other.git', 'https://git.example.com/platform/li.git', 'git@gitlab.com:org/app.git', 'http://git.example.com/platform/lib']) {
    t.is(gitWith(env, ['ls-remote', '--get-url', other]), other, `${other} is not configured`);
  }
  // The documented limit: insteadOf matches prefixes, so a URL that extends a configured one written without
  // .git is rewritten too (and then fails to clone instead of reaching its upstream).
  t.is(gitWith(env, ['ls-remote', '--get-url', 'git@github.com:org/app-config.git']), `${MIRROR}-config.git`);
});

test('real git pushes to the URL as written while fetching from the mirror (git remote get-url)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'transparent-push-'));
  try {
    const env = envRecord([{ url: SCP, mirror: { path: MIRROR } }]);
    gitWith(env, ['init', '-q', dir]);
    for (const spelling of ['git@github.com:org/app.git', 'ssh://git@github.com/org/app', 'git@github.com:org/app/']) {
      gitWith(env, ['remote', 'add', 'origin', spelling], dir);
      t.is(gitWith(env, ['remote', 'get-url', 'origin'], dir), MIRROR);
      t.is(gitWith(env, ['remote', 'get-url', '--push', 'origin'], dir), spelling, `push URL of ${spelling}`);
      gitWith(env, ['remote', 'remove', 'origin'], dir);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a local mirror gets the origin include and the system config; a network mirror needs neither', (t) => {
  const local = appGitEnv({ repos: [{ url: SCP, mirror: { path: MIRROR } }], endpoint: 'http://127.0.0.1:9901', transparent: true, cacheDir: '/git-cache' });
  const names = local.map((variable) => variable.name);
  t.is(names[0], 'GIT_CACHE_ENDPOINT');
  t.is(local.at(-1)?.name, 'GIT_CONFIG_SYSTEM');
  t.is(local.at(-1)?.value, '/git-cache/bin/system.gitconfig');
  const values = local.map((variable) => variable.value);
  t.true(values.includes('includeIf.hasconfig:remote.*.url:git@github.com:org/app*.path'));
  t.is(local.find((variable) => variable.name === 'GIT_CONFIG_COUNT')?.value, String((names.length - 3) / 2));

  const network = appGitEnv({ repos: [{ url: SCP, mirror: { url: 'git://node/abc.git' } }], endpoint: undefined, transparent: true, cacheDir: undefined });
  t.false(network.some((variable) => variable.name === 'GIT_CONFIG_SYSTEM' || variable.name === 'GIT_CACHE_ENDPOINT'));
  t.false(network.some((variable) => variable.value.startsWith('includeIf')));
  t.deepEqual(appGitEnv({ repos: [{ url: SCP, mirror: { path: MIRROR } }], endpoint: 'http://e', transparent: false, cacheDir: '/git-cache' }), [
    { name: 'GIT_CACHE_ENDPOINT', value: 'http://e' },
  ]);
});

test('a glob character in a URL is matched literally by the includeIf pattern', (t) => {
  const entries = transparentGitConfig([{ url: 'https://h.example/a*b/c.git', mirror: { path: MIRROR } }], '/git-cache');
  t.true(entries.some(([key]) => key === 'includeIf.hasconfig:remote.*.url:https://h.example/a\\*b/c*.path'));
});

// --- the transformer

function appEnvOf(item: Json): Record<string, string> {
  const env = (containersOf(podSpecOf(item), 'containers')[0]?.env as Json[] | undefined) ?? [];
  return Object.fromEntries(env.map((variable) => [String(variable.name), String(variable.value)]));
}

function errorsOf(results: readonly KrmResult[]): KrmResult[] {
  return results.filter((result) => result.severity === 'error');
}

test('by default every app container gets the endpoint and the transparent config; GIT_CACHE_ENDPOINT follows the mode', (t) => {
  const sidecar = appEnvOf(inject([deployment('web', { labels: SELECTED })], gitCache({ repos: [{ url: SCP }], metricsPort: 9911 })).items[0] as Json);
  t.is(sidecar.GIT_CACHE_ENDPOINT, 'http://127.0.0.1:9911');
  t.truthy(sidecar.GIT_CONFIG_COUNT);
  t.is(sidecar.GIT_CONFIG_SYSTEM, '/git-cache/bin/system.gitconfig');
  const legacy = appEnvOf(inject([deployment('web', { labels: SELECTED })], gitCache({ repos: [{ url: SCP }], mode: 'legacy-sidecar' })).items[0] as Json);
  t.is(legacy.GIT_CACHE_ENDPOINT, 'http://127.0.0.1:9901');
  const init = appEnvOf(inject([deployment('web', { labels: SELECTED })], gitCache({ repos: [{ url: SCP }], mode: 'init' })).items[0] as Json);
  t.is(init.GIT_CACHE_ENDPOINT, undefined, 'init mode: no agent runs after the init container');
  t.truthy(init.GIT_CONFIG_COUNT, 'transparent mode still reads the mirror');
  const keeperConfig = { ...gitCache({ repos: [{ url: SCP }], volume: { type: 'pvc', claimName: 'shared' }, keeper: {} }), metadata: { name: 'git-cache', namespace: 'ci' } };
  const keeper = inject([deployment('web', { labels: SELECTED })], keeperConfig).items.find((item) => item.kind === 'Deployment' && at(item, 'metadata', 'name') === 'web') as Json;
  t.is(appEnvOf(keeper).GIT_CACHE_ENDPOINT, 'http://git-cache-keeper.ci.svc:9902');
});

test('spec.transparent: false and the annotation git-cache.dev/transparent turn it off (or on) per workload', (t) => {
  const optedOut = deployment('a', { labels: SELECTED, annotations: { 'git-cache.dev/transparent': 'false' } });
  const optedOutTemplate = deployment('b', { labels: SELECTED, podAnnotations: { 'git-cache.dev/transparent': 'false' } });
  const plain = deployment('c', { labels: SELECTED });
  const out = inject([optedOut, optedOutTemplate, plain], gitCache({ repos: [{ url: SCP }] }));
  const [a, b, c] = out.items.map(appEnvOf);
  t.is(a?.GIT_CONFIG_COUNT, undefined);
  t.is(b?.GIT_CONFIG_COUNT, undefined);
  t.is(a?.GIT_CACHE_ENDPOINT, 'http://127.0.0.1:9901', 'the helper still gets its endpoint');
  t.truthy(c?.GIT_CONFIG_COUNT);
  const off = inject([plain, deployment('d', { labels: SELECTED, annotations: { 'git-cache.dev/transparent': 'true' } })], gitCache({ repos: [{ url: SCP }], transparent: false }));
  t.is(appEnvOf(off.items[0] as Json).GIT_CONFIG_COUNT, undefined);
  t.truthy(appEnvOf(off.items[1] as Json).GIT_CONFIG_COUNT, 'the annotation opts one workload in');
  const configMap = inject([plain], { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { repoUrl: SCP, transparent: 'false' } });
  t.is(appEnvOf(configMap.items[0] as Json).GIT_CONFIG_COUNT, undefined, 'ConfigMap key transparent');
});

test('turning transparent mode off on a re-run removes exactly its env vars', (t) => {
  const first = inject([deployment('web', { labels: SELECTED })], gitCache({ repos: [{ url: SCP }] }));
  const again = inject(first.items, gitCache({ repos: [{ url: SCP }], transparent: false }));
  t.deepEqual(Object.keys(appEnvOf(again.items[0] as Json)), ['GIT_CACHE_DIR', 'GIT_CACHE_REF', 'GIT_CACHE_REF_APP', 'GIT_CACHE_ENDPOINT']);
  const fresh = inject([deployment('web', { labels: SELECTED })], gitCache({ repos: [{ url: SCP }], transparent: false }));
  t.deepEqual(again.items, fresh.items);
});

test('a container that sets GIT_CONFIG_COUNT (or KEY/VALUE, GIT_CONFIG_SYSTEM) itself is an error with the field path, nothing changes', (t) => {
  const podSpec = {
    containers: [
      { name: 'ok', image: 'a:1' },
      { name: 'tool', image: 'b:1', env: [{ name: 'GIT_CONFIG_COUNT', value: '1' }, { name: 'GIT_CONFIG_KEY_0', value: 'core.x' }] },
    ],
  };
  const workload = deployment('web', { labels: SELECTED, podSpec });
  const out = inject([workload], gitCache({ repos: [{ url: SCP }] }));
  t.is(out.outcome.exitCode, 1);
  t.deepEqual(out.items, [workload]);
  const [error, ...rest] = errorsOf(out.results);
  t.is(rest.length, 0);
  t.is(error?.field?.path, 'spec.template.spec.containers[1].env');
  t.regex(error?.message ?? '', /"tool" sets GIT_CONFIG_COUNT, GIT_CONFIG_KEY_0 itself.*git-cache\.dev\/transparent: "false"/);
  const system = inject([deployment('w', { labels: SELECTED, podSpec: { containers: [{ name: 'c', image: 'c:1', env: [{ name: 'GIT_CONFIG_SYSTEM', value: '/x' }] }] } })], gitCache({ repos: [{ url: SCP }] }));
  t.is(errorsOf(system.results)[0]?.field?.path, 'spec.template.spec.containers[0].env');
  const optedOut = inject([deployment('web', { labels: SELECTED, podSpec, annotations: { 'git-cache.dev/transparent': 'false' } })], gitCache({ repos: [{ url: SCP }] }));
  t.is(optedOut.outcome.exitCode, 0, 'opted out: the container keeps its own git config');
  t.is(appEnvOf(optedOut.items[0] as Json).GIT_CONFIG_COUNT, undefined);
});

test('GIT_CONFIG_NOSYSTEM in a container is a warning; a bad transparent annotation is an error', (t) => {
  const podSpec = { containers: [{ name: 'c', image: 'c:1', env: [{ name: 'GIT_CONFIG_NOSYSTEM', value: '1' }] }] };
  const out = inject([deployment('web', { labels: SELECTED, podSpec })], gitCache({ repos: [{ url: SCP }] }));
  t.is(out.outcome.exitCode, 0);
  t.true(out.results.some((result) => result.severity === 'warning' && /GIT_CONFIG_NOSYSTEM/.test(result.message)));
  const bad = inject([deployment('web', { labels: SELECTED, podAnnotations: { 'git-cache.dev/transparent': 'no' } })], gitCache({ repos: [{ url: SCP }] }));
  t.is(bad.outcome.exitCode, 1);
  t.is(errorsOf(bad.results)[0]?.field?.path, 'spec.template.metadata.annotations.git-cache.dev/transparent');
});
