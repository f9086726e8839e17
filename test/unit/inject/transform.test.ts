import test from 'ava';
import { execFileSync } from 'node:child_process';
import type { KrmResult } from '../../../src/krm/results.js';
import { CACHE_CONTAINER_SECURITY_CONTEXT } from '../../../src/inject/additions.js';
import { DEFAULT_AGENT_IMAGE } from '../../../src/shared/names.js';
import { kubernetesSchemaErrors, podTemplateSchemaErrors } from '../../support/k8s-schema.js';
import { SELECTED, at, containersOf, deployment, gitCache, inject, podSpecOf, resourceList, runFunction, readOutput, toYaml, type Json } from '../../support/krm.js';
import { readAsYaml11 } from '../../support/yaml-readers.js';

const APP_URL = 'git@github.com:org/app-repo.git';
const LIB_URL = 'https://git.example.com/platform/lib.git';

function shellKey(url: string): string {
  return execFileSync('sh', ['-c', `printf '%s\\n' "$1" | sha1sum | cut -c1-20`, 'sh', url], { encoding: 'utf8' }).trim();
}

const twoRepos = (extra: Json = {}): Json => gitCache({ repos: [{ url: APP_URL, sshSecretName: 'app-ssh' }, { url: LIB_URL, httpsSecretName: 'lib-https' }], ...extra });

const webPodSpec = (): Json => ({
  initContainers: [{ name: 'migrate', image: 'registry.example/migrate:1' }],
  containers: [
    { name: 'app', image: 'registry.example/app:1', env: [{ name: 'EXISTING', value: 'x' }] },
    { name: 'helper', image: 'registry.example/helper:1', volumeMounts: [{ name: 'data', mountPath: '/data' }] },
  ],
  volumes: [{ name: 'data', emptyDir: {} }],
});

function single(items: Json[]): Json {
  if (items.length !== 1 || !items[0]) throw new Error(`expected one item, got ${items.length}`);
  return items[0];
}

function byName(list: Json[], name: string): Json {
  const found = list.find((entry) => entry.name === name);
  if (!found) throw new Error(`no ${name} in ${JSON.stringify(list.map((entry) => entry.name))}`);
  return found;
}

function status(podTemplateOrPod: Json): Json {
  return JSON.parse(String(at(podTemplateOrPod, 'metadata', 'annotations', 'git-cache.dev/status'))) as Json;
}

/** The GIT_CACHE_DIR / GIT_CACHE_REF* part of a container's env (the rest is the endpoint and transparent mode's). */
function cacheRefEnv(env: Json[]): Json[] {
  return env.filter((variable) => /^GIT_CACHE_(DIR|REF)/.test(String(variable.name)));
}

function errorsOf(results: readonly KrmResult[]): KrmResult[] {
  return results.filter((result) => result.severity === 'error');
}

test('sidecar mode: git-cache is the first init container, restartPolicy Always, startupProbe on /readyz, serving', (t) => {
  const out = inject([deployment('web', { labels: SELECTED, podSpec: webPodSpec() })], twoRepos());
  t.is(out.outcome.exitCode, 0);
  const spec = podSpecOf(single(out.items));
  const init = containersOf(spec, 'initContainers');
  t.deepEqual(
    init.map((container) => container.name),
    ['git-cache', 'migrate'],
  );
  const cache = init[0] as Json;
  t.is(cache.restartPolicy, 'Always');
  t.is(cache.image, DEFAULT_AGENT_IMAGE);
  t.deepEqual(at(cache, 'startupProbe', 'httpGet'), { path: '/readyz', port: 'gc-metrics' });
  t.deepEqual(cache.command, ['git-cache']);
  t.is((cache.args as string[])[0], 'serve');
  t.deepEqual(
    containersOf(spec, 'containers').map((container) => container.name),
    ['app', 'helper'],
  );
  t.deepEqual(kubernetesSchemaErrors(single(out.items)), []);
});

test('init mode: git-cache is the first init container, a one-shot sync without restartPolicy or probes', (t) => {
  const out = inject([deployment('web', { labels: SELECTED, podSpec: webPodSpec() })], twoRepos({ mode: 'init' }));
  const spec = podSpecOf(single(out.items));
  const cache = containersOf(spec, 'initContainers')[0] as Json;
  t.is(cache.name, 'git-cache');
  t.is((cache.args as string[])[0], 'sync');
  t.false('restartPolicy' in cache);
  t.false('startupProbe' in cache || 'readinessProbe' in cache || 'livenessProbe' in cache);
  t.deepEqual(
    containersOf(spec, 'containers').map((container) => container.name),
    ['app', 'helper'],
  );
  t.deepEqual(kubernetesSchemaErrors(single(out.items)), []);
});

test('legacy-sidecar mode: git-cache-init first in initContainers (sync) plus git-cache in containers (serve)', (t) => {
  const out = inject([deployment('web', { labels: SELECTED, podSpec: webPodSpec() })], twoRepos({ mode: 'legacy-sidecar' }));
  const spec = podSpecOf(single(out.items));
  const init = containersOf(spec, 'initContainers');
  t.deepEqual(
    init.map((container) => container.name),
    ['git-cache-init', 'migrate'],
  );
  t.is(((init[0] as Json).args as string[])[0], 'sync');
  t.false('restartPolicy' in (init[0] as Json));
  const containers = containersOf(spec, 'containers');
  t.deepEqual(
    containers.map((container) => container.name),
    ['app', 'helper', 'git-cache'],
  );
  const cache = byName(containers, 'git-cache');
  t.is((cache.args as string[])[0], 'serve');
  t.false('restartPolicy' in cache);
  t.deepEqual(at(cache, 'readinessProbe', 'httpGet', 'path'), '/readyz');
  t.deepEqual(kubernetesSchemaErrors(single(out.items)), []);
});

for (const mode of ['sidecar', 'init', 'legacy-sidecar'] as const) {
  test(`${mode}: every other container and init container gets the read-only mount and the env vars; cache containers mount the volume read-write`, (t) => {
    const out = inject([deployment('web', { labels: SELECTED, podSpec: webPodSpec() })], twoRepos({ mode }));
    const spec = podSpecOf(single(out.items));
    const all = [...containersOf(spec, 'initContainers'), ...containersOf(spec, 'containers')];
    const ours = all.filter((container) => String(container.name).startsWith('git-cache'));
    const others = all.filter((container) => !String(container.name).startsWith('git-cache'));
    t.deepEqual(
      others.map((container) => container.name),
      ['migrate', 'app', 'helper'],
    );
    const appKey = shellKey(APP_URL);
    const libKey = shellKey(LIB_URL);
    for (const container of others) {
      t.deepEqual(
        (container.volumeMounts as Json[]).filter((mount) => mount.name === 'git-cache'),
        [{ name: 'git-cache', mountPath: '/git-cache', readOnly: true }],
      );
      t.false((container.volumeMounts as Json[]).some((mount) => String(mount.name).includes('ssh') || String(mount.name).includes('https')));
      const env = Object.fromEntries((container.env as Json[]).map((variable) => [variable.name, variable.value]));
      t.like(env, {
        GIT_CACHE_DIR: '/git-cache',
        GIT_CACHE_REF: `/git-cache/${appKey}.git`,
        GIT_CACHE_REF_APP_REPO: `/git-cache/${appKey}.git`,
        GIT_CACHE_REF_LIB: `/git-cache/${libKey}.git`,
      });
    }
    t.deepEqual(at(byName(others, 'app'), 'env', 0), { name: 'EXISTING', value: 'x' }, 'the user env var stays first');
    t.deepEqual(at(byName(others, 'helper'), 'volumeMounts', 0), { name: 'data', mountPath: '/data' });
    for (const container of ours) {
      t.deepEqual(at(container, 'volumeMounts', 0), { name: 'git-cache', mountPath: '/git-cache' });
      t.deepEqual(container.securityContext, CACHE_CONTAINER_SECURITY_CONTEXT);
      t.like(container.securityContext as Json, {
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      t.truthy(at(container, 'resources', 'requests', 'memory'));
      t.truthy(at(container, 'resources', 'limits', 'memory'));
      t.true((container.args as string[]).includes(APP_URL));
      t.true((container.args as string[]).includes(LIB_URL));
    }
    t.is(at(spec, 'securityContext', 'fsGroup'), 65532);
  });
}

test('only the cache containers mount the credential Secrets: ssh with mode 0400 and known_hosts, https by file', (t) => {
  const out = inject([deployment('web', { labels: SELECTED, podSpec: webPodSpec() })], twoRepos({ mode: 'legacy-sidecar' }));
  const spec = podSpecOf(single(out.items));
  const volumes = spec.volumes as Json[];
  const ssh = byName(volumes, 'git-cache-ssh-app-repo');
  t.deepEqual(ssh.secret, {
    secretName: 'app-ssh',
    defaultMode: 0o400,
    items: [
      { key: 'ssh-privatekey', path: 'ssh-privatekey' },
      { key: 'known_hosts', path: 'known_hosts' },
    ],
  });
  const https = byName(volumes, 'git-cache-https-lib');
  t.is(at(https, 'secret', 'secretName'), 'lib-https');
  t.is(at(https, 'secret', 'defaultMode'), 0o400);
  t.deepEqual(
    (at(https, 'secret', 'items') as Json[]).map((item) => item.key),
    ['username', 'password'],
  );
  const all = [...containersOf(spec, 'initContainers'), ...containersOf(spec, 'containers')];
  for (const container of all) {
    const credentialMounts = ((container.volumeMounts as Json[] | undefined) ?? []).filter((mount) => /-(ssh|https)-/.test(String(mount.name)));
    if (String(container.name).startsWith('git-cache')) {
      t.deepEqual(
        credentialMounts.map((mount) => [mount.mountPath, mount.readOnly]),
        [
          ['/etc/git-cache/credentials/app-repo/ssh', true],
          ['/etc/git-cache/credentials/lib/https', true],
        ],
      );
      t.true((container.args as string[]).includes('--credentials-dir'));
    } else t.deepEqual(credentialMounts, [], String(container.name));
  }
  t.true(out.outcome.stdout.includes('defaultMode: 256 # 0400'));
});

test('no credential ever appears in args, env or annotations: Secrets are only mounted into the cache containers', (t) => {
  const out = inject([deployment('web', { labels: SELECTED, podSpec: webPodSpec() })], twoRepos({ mode: 'legacy-sidecar' }));
  const spec = podSpecOf(single(out.items));
  for (const container of [...containersOf(spec, 'initContainers'), ...containersOf(spec, 'containers')]) {
    t.false(JSON.stringify(container.env ?? []).includes('secretKeyRef'), 'no Secret in env');
    t.false('envFrom' in container);
    for (const arg of (container.args as string[] | undefined) ?? []) t.notRegex(arg, /app-ssh|lib-https|:\/\/[^/]*@/);
  }
  const annotations = JSON.stringify(at(single(out.items), 'spec', 'template', 'metadata', 'annotations'));
  t.false(annotations.includes('app-ssh') || annotations.includes('lib-https'));
});

test('volume: emptyDir without size, emptyDir with sizeLimit, or the PVC claimName', (t) => {
  const volumeOf = (volume: Json | undefined) => {
    const out = inject([deployment('web', { labels: SELECTED })], gitCache({ repos: [{ url: LIB_URL }], ...(volume ? { volume } : {}) }));
    t.deepEqual(kubernetesSchemaErrors(single(out.items)), []);
    return byName(podSpecOf(single(out.items)).volumes as Json[], 'git-cache');
  };
  t.deepEqual(volumeOf(undefined), { name: 'git-cache', emptyDir: {} });
  t.deepEqual(volumeOf({ size: '5Gi' }), { name: 'git-cache', emptyDir: { sizeLimit: '5Gi' } });
  t.deepEqual(volumeOf({ type: 'pvc', claimName: 'shared-git' }), { name: 'git-cache', persistentVolumeClaim: { claimName: 'shared-git' } });
});

test('the serving cache container gets --volume-size when spec.volume.size is set; one-shot syncs never do', (t) => {
  const argsByContainer = (extra: Json): Record<string, string[]> => {
    const out = inject([deployment('web', { labels: SELECTED })], gitCache({ repos: [{ url: LIB_URL }], ...extra }));
    const spec = podSpecOf(single(out.items));
    const cacheContainers = [...containersOf(spec, 'initContainers'), ...containersOf(spec, 'containers')].filter((c) => String(c.name).startsWith('git-cache'));
    return Object.fromEntries(cacheContainers.map((c) => [String(c.name), c.args as string[]]));
  };
  const sizeArg = (args: string[] | undefined): string | undefined => {
    const at = (args ?? []).indexOf('--volume-size');
    return at < 0 ? undefined : args?.[at + 1];
  };
  const sidecar = argsByContainer({ volume: { size: '5Gi' } });
  t.is(sizeArg(sidecar['git-cache']), '5Gi');
  t.is(sizeArg(argsByContainer({})['git-cache']), undefined, 'no size: the agent measures its filesystem');
  const legacy = argsByContainer({ mode: 'legacy-sidecar', volume: { size: '500Mi' } });
  t.is(sizeArg(legacy['git-cache']), '500Mi');
  t.is(sizeArg(legacy['git-cache-init']), undefined);
  t.is(sizeArg(argsByContainer({ mode: 'init', volume: { size: '5Gi' } })['git-cache']), undefined);
});

test('a custom mountPath is used for the volume, the mounts and every env value', (t) => {
  const out = inject([deployment('web', { labels: SELECTED })], gitCache({ repos: [{ url: LIB_URL }], mountPath: '/var/cache/git' }));
  const app = containersOf(podSpecOf(single(out.items)), 'containers')[0] as Json;
  t.deepEqual(cacheRefEnv(app.env as Json[]), [
    { name: 'GIT_CACHE_DIR', value: '/var/cache/git' },
    { name: 'GIT_CACHE_REF', value: `/var/cache/git/${shellKey(LIB_URL)}.git` },
    { name: 'GIT_CACHE_REF_LIB', value: `/var/cache/git/${shellKey(LIB_URL)}.git` },
  ]);
  const paths = (app.env as Json[]).map((variable) => String(variable.value)).filter((value) => value.startsWith('/'));
  t.true(paths.length > 3);
  for (const path of paths) t.true(path === '/var/cache/git' || path.startsWith('/var/cache/git/'), path);
  t.deepEqual(app.volumeMounts, [{ name: 'git-cache', mountPath: '/var/cache/git', readOnly: true }]);
});

test('GIT_CACHE_REF is the first repo and GIT_CACHE_REF_<NAME> upper-cases the name with - as _', (t) => {
  const out = inject([deployment('web', { labels: SELECTED })], gitCache({ repos: [{ url: 'https://h.example/o/my-lib.git' }, { url: APP_URL, name: 'front-end-2' }] }));
  const env = cacheRefEnv(containersOf(podSpecOf(single(out.items)), 'containers')[0]?.env as Json[]);
  t.deepEqual(
    env.map((variable) => variable.name),
    ['GIT_CACHE_DIR', 'GIT_CACHE_REF', 'GIT_CACHE_REF_MY_LIB', 'GIT_CACHE_REF_FRONT_END_2'],
  );
  t.is(env[1]?.value, `/git-cache/${shellKey('https://h.example/o/my-lib.git')}.git`);
});

test("a user's own env var with an injected name is kept and not duplicated, also on re-run", (t) => {
  const podSpec = { containers: [{ name: 'app', image: 'a:1', env: [{ name: 'GIT_CACHE_DIR', value: '/mine' }] }] };
  const out = inject([deployment('web', { labels: SELECTED, podSpec })], gitCache({ repos: [{ url: LIB_URL }], transparent: false }));
  const env = containersOf(podSpecOf(single(out.items)), 'containers')[0]?.env as Json[];
  t.deepEqual(
    env.filter((variable) => variable.name === 'GIT_CACHE_DIR'),
    [{ name: 'GIT_CACHE_DIR', value: '/mine' }],
  );
  t.is(env.length, 4);
  const again = readOutput(runFunction(out.outcome.stdout).stdout);
  t.deepEqual(again.items, out.items);
  const other = readOutput(runFunction(out.outcome.stdout.replace('repos:\n    - url: https://git.example.com/platform/lib.git', `repos:\n    - url: ${APP_URL}`)).stdout);
  const env2 = containersOf(podSpecOf(single(other.items)), 'containers')[0]?.env as Json[];
  t.deepEqual(
    env2.map((variable) => [variable.name, variable.name === 'GIT_CACHE_DIR' ? variable.value : '']),
    [
      ['GIT_CACHE_DIR', '/mine'],
      ['GIT_CACHE_REF', ''],
      ['GIT_CACHE_REF_APP_REPO', ''],
      ['GIT_CACHE_ENDPOINT', ''],
    ],
  );
});

test('the status annotation records exactly what was injected', (t) => {
  const out = inject([deployment('web', { labels: SELECTED, podSpec: webPodSpec() })], twoRepos());
  t.deepEqual(status(at(single(out.items), 'spec', 'template') as Json), {
    version: '0.1.0',
    mode: 'sidecar',
    repos: ['app-repo', 'lib'],
    initContainers: ['git-cache'],
    containers: [],
    volumes: ['git-cache', 'git-cache-tmp', 'git-cache-ssh-app-repo', 'git-cache-https-lib'],
    env: [
      'GIT_CACHE_DIR',
      'GIT_CACHE_REF',
      'GIT_CACHE_REF_APP_REPO',
      'GIT_CACHE_REF_LIB',
      'GIT_CACHE_ENDPOINT',
      'GIT_CONFIG_COUNT',
      ...Array.from({ length: 18 }, (_, n) => [`GIT_CONFIG_KEY_${n}`, `GIT_CONFIG_VALUE_${n}`]).flat(),
      'GIT_CONFIG_SYSTEM',
    ],
    fsGroup: 65532,
  });
});

test('an info result per injected workload names what was added', (t) => {
  const out = inject([deployment('a', { labels: SELECTED }), deployment('b', { labels: SELECTED }), deployment('c')], twoRepos());
  const infos = out.results.filter((result) => result.severity === 'info');
  t.deepEqual(
    infos.map((result) => result.resourceRef?.name),
    ['a', 'b'],
  );
  for (const info of infos) {
    t.regex(info.message, /git-cache/);
    t.regex(info.message, /app-repo, lib/);
    t.is(info.field?.path, 'spec.template');
  }
});

test('a workload is selected by its pod template labels too', (t) => {
  const out = inject([deployment('web', { podLabels: { app: 'web', ...SELECTED } })], twoRepos());
  t.truthy(at(single(out.items), 'spec', 'template', 'metadata', 'annotations', 'git-cache.dev/status'));
});

test('a custom selector with matchExpressions picks its workloads', (t) => {
  const config = twoRepos({ selector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['infra'] }] } });
  const out = inject([deployment('a', { labels: { team: 'infra' } }), deployment('b', { labels: { team: 'web' } }), deployment('c', { labels: SELECTED })], config);
  t.deepEqual(
    out.items.map((item) => Boolean(at(item, 'spec', 'template', 'metadata', 'annotations', 'git-cache.dev/status'))),
    [true, false, false],
  );
});

const BUILTIN_KINDS: readonly Json[] = [
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', labels: SELECTED }, spec: { containers: [{ name: 'c', image: 'i:1' }] } },
  { apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'rc', labels: SELECTED }, spec: { template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i:1' }] } } } },
  { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'ss', labels: SELECTED }, spec: { serviceName: 's', selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i:1' }] } } } },
  { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'ds', labels: SELECTED }, spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i:1' }] } } } },
  { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'rs', labels: SELECTED }, spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i:1' }] } } } },
  { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'job', labels: SELECTED }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i:1' }] } } } },
  {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: 'cron', labels: SELECTED },
    spec: { schedule: '*/5 * * * *', jobTemplate: { spec: { template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'c', image: 'i:1' }] } } } } },
  },
];

for (const item of BUILTIN_KINDS) {
  for (const mode of ['sidecar', 'init', 'legacy-sidecar']) {
    test(`${String(item.kind)} is injected in ${mode} mode at its pod template and validates against the Kubernetes schema`, (t) => {
      const out = inject([item], twoRepos({ mode }));
      t.is(out.outcome.exitCode, 0);
      const output = single(out.items);
      const spec = podSpecOf(output);
      t.is(containersOf(spec, 'initContainers')[0]?.name, mode === 'legacy-sidecar' ? 'git-cache-init' : 'git-cache');
      t.deepEqual(at(containersOf(spec, 'containers')[0], 'volumeMounts', 0), { name: 'git-cache', mountPath: '/git-cache', readOnly: true });
      const template = item.kind === 'Pod' ? output : item.kind === 'CronJob' ? (at(output, 'spec', 'jobTemplate', 'spec', 'template') as Json) : (at(output, 'spec', 'template') as Json);
      t.is(status(template).mode, mode);
      t.deepEqual(kubernetesSchemaErrors(output), []);
    });
  }
}

const ROLLOUT: Json = {
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'Rollout',
  metadata: { name: 'ro', labels: SELECTED },
  spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i:1' }] } } },
};
const KNATIVE: Json = {
  apiVersion: 'serving.knative.dev/v1',
  kind: 'Service',
  metadata: { name: 'kn', labels: SELECTED },
  spec: { template: { spec: { containers: [{ name: 'user-container', image: 'i:1' }] } } },
};

test('custom workload kinds (Argo Rollout, Knative Service) are injected at their configured pod template', (t) => {
  const config = twoRepos({
    workloadKinds: [
      { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', podTemplatePath: 'spec/template' },
      { apiVersion: 'serving.knative.dev/v1', kind: 'Service', podTemplatePath: 'spec/template' },
    ],
  });
  const out = inject([ROLLOUT, KNATIVE], config);
  t.is(out.outcome.exitCode, 0);
  for (const item of out.items) {
    const template = at(item, 'spec', 'template') as Json;
    t.is(at(template, 'spec', 'initContainers', 0, 'name'), 'git-cache');
    t.deepEqual(podTemplateSchemaErrors(template), []);
  }
});

test('without workloadKinds a selected Rollout or Knative Service is left alone with a warning', (t) => {
  const input = resourceList([ROLLOUT, KNATIVE], twoRepos());
  const outcome = runFunction(input);
  const out = readOutput(outcome.stdout);
  t.is(outcome.exitCode, 0);
  t.deepEqual(out.items, [ROLLOUT, KNATIVE]);
  t.deepEqual(
    out.results.map((result) => [result.severity, result.resourceRef?.kind]),
    [
      ['warning', 'Rollout'],
      ['warning', 'Service'],
    ],
  );
  t.regex(out.results[0]?.message ?? '', /not a workload.*workloadKinds/);
});

test('a selected non-workload (ConfigMap, Service) gets a warning and is unchanged', (t) => {
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm', labels: SELECTED }, data: { a: 'on' } };
  const out = inject([cm], twoRepos());
  t.deepEqual(out.items, [cm]);
  t.deepEqual(
    out.results.map((result) => result.severity),
    ['warning'],
  );
});

test('opt-out annotation on the workload or on its pod template leaves it unchanged', (t) => {
  const onWorkload = deployment('a', { labels: SELECTED, annotations: { 'git-cache.dev/inject': 'false' } });
  const onTemplate = deployment('b', { labels: SELECTED, podAnnotations: { 'git-cache.dev/inject': 'false' } });
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', labels: SELECTED, annotations: { 'git-cache.dev/inject': 'false' } }, spec: { containers: [{ name: 'c', image: 'i:1' }] } };
  const out = inject([onWorkload, onTemplate, pod], twoRepos());
  t.deepEqual(out.items, [onWorkload, onTemplate, pod]);
  t.deepEqual(out.results, []);
});

test('opting out of an injected workload removes the injection', (t) => {
  const first = inject([deployment('a', { labels: SELECTED })], twoRepos());
  const optedOut = first.outcome.stdout.replace('  metadata:\n    name: a\n', '  metadata:\n    name: a\n    annotations:\n      git-cache.dev/inject: "false"\n');
  t.not(optedOut, first.outcome.stdout);
  const second = readOutput(runFunction(optedOut).stdout);
  t.deepEqual(second.items, [deployment('a', { labels: SELECTED, annotations: { 'git-cache.dev/inject': 'false' } })]);
  t.regex(second.results[0]?.message ?? '', /removed.*opted out/);
});

test('the repos annotation picks a subset (in its order) on the workload or its pod template', (t) => {
  const onWorkload = deployment('a', { labels: SELECTED, annotations: { 'git-cache.dev/repos': 'lib' } });
  const onTemplate = deployment('b', { labels: SELECTED, podAnnotations: { 'git-cache.dev/repos': ' lib , app-repo ' } });
  const out = inject([onWorkload, onTemplate], twoRepos());
  const [a, b] = out.items as [Json, Json];
  t.deepEqual(status(at(a, 'spec', 'template') as Json).repos, ['lib']);
  t.deepEqual(
    cacheRefEnv(containersOf(podSpecOf(a), 'containers')[0]?.env as Json[]).map((variable) => variable.name),
    ['GIT_CACHE_DIR', 'GIT_CACHE_REF', 'GIT_CACHE_REF_LIB'],
  );
  t.false(JSON.stringify(a).includes('app-ssh'), 'the unused repo secret is not mounted');
  t.deepEqual(status(at(b, 'spec', 'template') as Json).repos, ['lib', 'app-repo']);
  t.is(at(containersOf(podSpecOf(b), 'containers')[0], 'env', 1, 'value'), `/git-cache/${shellKey(LIB_URL)}.git`);
});

test('unknown repo names in the repos annotation are an error with the field path, and nothing changes', (t) => {
  const bad = deployment('a', { labels: SELECTED, annotations: { 'git-cache.dev/repos': 'lib,nope' } });
  const good = deployment('b', { labels: SELECTED });
  const badTemplate = deployment('c', { labels: SELECTED, podAnnotations: { 'git-cache.dev/repos': ',' } });
  const out = inject([bad, good, badTemplate], twoRepos());
  t.is(out.outcome.exitCode, 1);
  t.deepEqual(out.items, [bad, good, badTemplate]);
  const errors = errorsOf(out.results);
  t.deepEqual(
    errors.map((result) => [result.resourceRef?.name, result.field?.path]),
    [
      ['a', 'metadata.annotations.git-cache.dev/repos'],
      ['c', 'spec.template.metadata.annotations.git-cache.dev/repos'],
    ],
  );
  t.regex(errors[0]?.message ?? '', /unknown repo\(s\) nope; known: app-repo, lib/);
  t.false(out.results.some((result) => result.severity === 'info'), 'no info about injections that did not happen');
});

test('local-config items are never changed, even when selected', (t) => {
  const local = deployment('a', { labels: SELECTED, annotations: { 'config.kubernetes.io/local-config': 'true' } });
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', labels: SELECTED, annotations: { 'config.kubernetes.io/local-config': 'true' } } };
  const out = inject([local, cm, twoRepos()], twoRepos());
  t.deepEqual(out.items, [local, cm, twoRepos()]);
  t.deepEqual(out.results, []);
});

test('a user container named git-cache is an error with a clear message, and nothing changes', (t) => {
  const clash = deployment('a', { labels: SELECTED, podSpec: { containers: [{ name: 'git-cache', image: 'mine:1' }] } });
  const other = deployment('b', { labels: SELECTED });
  const out = inject([clash, other], twoRepos());
  t.is(out.outcome.exitCode, 1);
  t.deepEqual(out.items, [clash, other]);
  const [error] = errorsOf(out.results);
  t.regex(error?.message ?? '', /already has a container named "git-cache".*rename yours/);
  t.is(error?.field?.path, 'spec.template.spec.containers');
  t.deepEqual(error?.resourceRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'a' });
});

test('a user init container named git-cache-init is an error in legacy-sidecar mode', (t) => {
  const clash = deployment('a', { labels: SELECTED, podSpec: { initContainers: [{ name: 'git-cache-init', image: 'x:1' }], containers: [{ name: 'c', image: 'i:1' }] } });
  const out = inject([clash], twoRepos({ mode: 'legacy-sidecar' }));
  t.is(out.outcome.exitCode, 1);
  t.is(errorsOf(out.results)[0]?.field?.path, 'spec.template.spec.initContainers');
});

test('a user volume named git-cache is an error, and nothing changes', (t) => {
  const clash = deployment('a', { labels: SELECTED, podSpec: { containers: [{ name: 'c', image: 'i:1' }], volumes: [{ name: 'git-cache', emptyDir: {} }] } });
  const out = inject([clash], twoRepos());
  t.is(out.outcome.exitCode, 1);
  t.deepEqual(out.items, [clash]);
  t.regex(errorsOf(out.results)[0]?.message ?? '', /volume named "git-cache" that git-cache did not add/);
  t.is(errorsOf(out.results)[0]?.field?.path, 'spec.template.spec.volumes');
});

test("a user's fsGroup is kept and not recorded as ours", (t) => {
  const podSpec = { securityContext: { fsGroup: 2000 }, containers: [{ name: 'c', image: 'i:1' }] };
  const out = inject([deployment('a', { labels: SELECTED, podSpec })], twoRepos());
  const template = at(single(out.items), 'spec', 'template') as Json;
  t.is(at(template, 'spec', 'securityContext', 'fsGroup'), 2000);
  t.false('fsGroup' in status(template));
});

test('a status annotation that is not ours is an error, not a guess', (t) => {
  const forged = deployment('a', { labels: SELECTED, podAnnotations: { 'git-cache.dev/status': 'nonsense' } });
  const out = inject([forged], twoRepos());
  t.is(out.outcome.exitCode, 1);
  t.is(errorsOf(out.results)[0]?.field?.path, 'spec.template.metadata.annotations.git-cache.dev/status');
});

test('a selected workload without a pod spec, like one without a pod template, is left unchanged with a warning', (t) => {
  const noSpec = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'a', labels: SELECTED }, spec: { template: { metadata: { labels: { a: 'b' } } } } };
  const out = inject([noSpec], twoRepos());
  t.is(out.outcome.exitCode, 0);
  t.deepEqual(out.items, [noSpec]);
  t.is(out.results[0]?.severity, 'warning');
  t.is(out.results[0]?.field?.path, 'spec.template.spec');
  const noTemplate = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'b', labels: SELECTED }, spec: {} };
  const out2 = inject([noTemplate], twoRepos());
  t.is(out2.outcome.exitCode, 0);
  t.deepEqual(out2.items, [noTemplate]);
  t.is(out2.results[0]?.severity, 'warning');
});

test('re-running after a config change (add a repo, change mode, change image) updates in place without duplicates', (t) => {
  const original = resourceList([deployment('web', { labels: SELECTED, podSpec: webPodSpec() })], gitCache({ repos: [{ url: APP_URL, sshSecretName: 'app-ssh' }] }));
  const once = runFunction(original).stdout;
  const changes: Json[] = [
    twoRepos(),
    twoRepos({ mode: 'legacy-sidecar' }),
    twoRepos({ mode: 'init', image: 'registry.example/git-cache:v2.0.0' }),
    gitCache({ repos: [{ url: LIB_URL }], volume: { type: 'pvc', claimName: 'c' }, mountPath: '/cache' }),
  ];
  for (const config of changes) {
    const rerun = readOutput(runFunction(once.replace(/functionConfig:[\s\S]*$/, toYaml({ functionConfig: config }))).stdout);
    const direct = readOutput(runFunction(resourceList([deployment('web', { labels: SELECTED, podSpec: webPodSpec() })], config)).stdout);
    t.deepEqual(rerun.items, direct.items, JSON.stringify(config));
    const spec = podSpecOf(single(rerun.items));
    const names = [...containersOf(spec, 'initContainers'), ...containersOf(spec, 'containers')].map((container) => container.name);
    t.is(new Set(names).size, names.length);
    for (const container of containersOf(spec, 'containers')) {
      const envNames = ((container.env as Json[] | undefined) ?? []).map((variable) => variable.name);
      t.is(new Set(envNames).size, envNames.length);
    }
  }
});

test('a workload that stops being selected gets the injection removed and comes back to its input', (t) => {
  const input = deployment('web', { labels: SELECTED, podSpec: webPodSpec() });
  const once = runFunction(resourceList([input], twoRepos())).stdout;
  const deselected = readOutput(runFunction(once.replace('git-cache.enabled: "true"', 'git-cache.enabled: "false"')).stdout);
  t.deepEqual(deselected.items, [deployment('web', { labels: { 'git-cache.enabled': 'false' }, podSpec: webPodSpec() })]);
  t.regex(deselected.results[0]?.message ?? '', /removed.*no longer selected/);
});

test('strings the function creates (image, size, secret names) stay strings for YAML 1.1 readers', (t) => {
  const out = inject(
    [deployment('web', { labels: SELECTED })],
    gitCache({ repos: [{ url: 'git@h.example:o/r.git', sshSecretName: 'on', name: '0755' }], image: '12:30', volume: { size: '0755' }, mountPath: '/yes' }),
  );
  t.is(out.outcome.exitCode, 0);
  const yaml11 = readAsYaml11(out.outcome.stdout) as Json;
  const spec = podSpecOf((yaml11.items as Json[])[0] as Json);
  t.is(at(spec, 'initContainers', 0, 'image'), '12:30');
  t.is(byName(spec.volumes as Json[], 'git-cache-ssh-0755').secret && at(byName(spec.volumes as Json[], 'git-cache-ssh-0755'), 'secret', 'secretName'), 'on');
  t.deepEqual(byName(spec.volumes as Json[], 'git-cache').emptyDir, { sizeLimit: '0755' });
  t.is(at(spec, 'containers', 0, 'env', 0, 'value'), '/yes');
  t.is(at(spec, 'initContainers', 0, 'args', 6), '9901');
});
