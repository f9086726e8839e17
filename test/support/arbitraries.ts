/**
 * fast-check generators for the function's property tests: Kubernetes workloads of every built-in kind (valid
 * against the Kubernetes schema, with random labels, annotations, containers, env, mounts and volumes) printed
 * as YAML with comments and YAML 1.1 look-alike strings, and valid GitCache configs.
 */
import fc from 'fast-check';
import { TRICKY_STRINGS } from './yaml-readers.js';
import { GIT_CACHE_API_VERSION, toYaml, type Json } from './krm.js';

export const BUILTIN_KINDS = ['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'ReplicationController', 'Job', 'CronJob'] as const;
export type BuiltinKind = (typeof BUILTIN_KINDS)[number];

const API_VERSION: Record<BuiltinKind, string> = {
  Pod: 'v1',
  ReplicationController: 'v1',
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  DaemonSet: 'apps/v1',
  ReplicaSet: 'apps/v1',
  Job: 'batch/v1',
  CronJob: 'batch/v1',
};

const LABEL_KEYS = ['app', 'tier', 'team', 'git-cache.enabled', 'example.com/owner'];
export const LABEL_VALUES = ['web', 'api', 'infra', 'true', 'false', 'on', 'yes', 'y', '0755', 'null'];
const ANNOTATION_KEYS = [
  'description',
  'config.kubernetes.io/index',
  'internal.config.kubernetes.io/path',
  'config.k8s.io/id',
  'kustomize.config.k8s.io/id',
  'example.com/flag',
];
const SAFE_TEXT = fc.stringMatching(/^[a-z][a-z0-9 ._/-]{0,12}$/);
const TEXT = fc.oneof(fc.constantFrom(...TRICKY_STRINGS), SAFE_TEXT);
const ENV_NAMES = ['HOME', 'MODE', 'LEVEL', 'GIT_CACHE_DIR', 'GIT_CACHE_REF', 'FEATURE_ON'];
const CONTAINER_NAMES = ['app', 'sidecar', 'proxy', 'worker', 'metrics'];
const INIT_NAMES = ['migrate', 'setup', 'wait-db'];
const VOLUME_NAMES = ['data', 'config', 'scratch', 'certs'];

const labels = fc.dictionary(fc.constantFrom(...LABEL_KEYS), fc.constantFrom(...LABEL_VALUES), { maxKeys: 3 });
const annotations = fc.dictionary(fc.constantFrom(...ANNOTATION_KEYS), TEXT, { maxKeys: 3 });

interface ContainerPlan {
  env: { name: string; value: string }[];
  mounts: string[];
  image: string;
  /** Write `env: []` / `volumeMounts: []` when there are none, as some generators of manifests do. */
  emptyLists: boolean;
}

const containerPlan = fc.record({
  env: fc.uniqueArray(fc.record({ name: fc.constantFrom(...ENV_NAMES), value: TEXT }), { selector: (variable) => variable.name, maxLength: 3 }),
  mounts: fc.uniqueArray(fc.constantFrom(...VOLUME_NAMES), { maxLength: 2 }),
  image: fc.constantFrom('registry.example/app:1.0', 'nginx:1.27', 'busybox@sha256:' + 'a'.repeat(64)),
  emptyLists: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
});

function container(name: string, plan: ContainerPlan, volumes: readonly string[]): Json {
  const mounts = plan.mounts.filter((mount) => volumes.includes(mount));
  return {
    name,
    image: plan.image,
    ...(plan.env.length > 0 || plan.emptyLists ? { env: plan.env } : {}),
    ...(mounts.length > 0 || plan.emptyLists ? { volumeMounts: mounts.map((mount) => ({ name: mount, mountPath: `/mnt/${mount}` })) } : {}),
  };
}

const podSpec = fc
  .record({
    containers: fc.uniqueArray(fc.constantFrom(...CONTAINER_NAMES), { minLength: 1, maxLength: 3 }),
    initContainers: fc.uniqueArray(fc.constantFrom(...INIT_NAMES), { maxLength: 2 }),
    volumes: fc.uniqueArray(fc.constantFrom(...VOLUME_NAMES), { maxLength: 3 }),
    plans: fc.array(containerPlan, { minLength: 5, maxLength: 5 }),
    fsGroup: fc.option(fc.constantFrom(1000, 2000), { nil: undefined }),
    emptySecurityContext: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
  })
  .map(({ containers, initContainers, volumes, plans, fsGroup, emptySecurityContext }) => {
    const plan = (index: number) => plans[index % plans.length] as ContainerPlan;
    return {
      ...(initContainers.length > 0 ? { initContainers: initContainers.map((name, index) => container(name, plan(index + 3), volumes)) } : {}),
      containers: containers.map((name, index) => container(name, plan(index), volumes)),
      ...(volumes.length > 0 ? { volumes: volumes.map((name) => (name === 'config' ? { name, configMap: { name: 'settings', defaultMode: 420 } } : { name, emptyDir: {} })) } : {}),
      ...(fsGroup !== undefined ? { securityContext: { fsGroup } } : emptySecurityContext ? { securityContext: {} } : {}),
    } as Json;
  });

export const workload: fc.Arbitrary<Json> = fc
  .record({
    kind: fc.constantFrom(...BUILTIN_KINDS),
    name: fc.stringMatching(/^[a-z][a-z0-9-]{0,8}[a-z0-9]$/),
    labels,
    annotations,
    podLabels: labels,
    podAnnotations: annotations,
    optOut: fc.constantFrom(undefined, undefined, undefined, undefined, 'workload', 'template'),
    localConfig: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    emptyPodAnnotations: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
    spec: podSpec,
  })
  .map((base) => {
    const { kind, name, spec, localConfig } = base;
    const workloadAnnotations: Record<string, string> = { ...base.annotations };
    const podAnnotations: Record<string, string> = { ...base.podAnnotations };
    if (base.optOut === 'workload') workloadAnnotations['git-cache.dev/inject'] = 'false';
    if (base.optOut === 'template') podAnnotations['git-cache.dev/inject'] = 'false';
    if (localConfig) workloadAnnotations['config.kubernetes.io/local-config'] = 'true';
    const metadata: Json = { name, ...(Object.keys(base.labels).length > 0 ? { labels: base.labels } : {}), ...(Object.keys(workloadAnnotations).length > 0 ? { annotations: workloadAnnotations } : {}) };
    const podLabels = { ...base.podLabels, 'pod-name': name };
    const template: Json = {
      metadata: { labels: podLabels, ...(Object.keys(podAnnotations).length > 0 || base.emptyPodAnnotations ? { annotations: podAnnotations } : {}) },
      spec: kind === 'Job' || kind === 'CronJob' ? { restartPolicy: 'Never', ...spec } : spec,
    };
    const apiVersion = API_VERSION[kind];
    switch (kind) {
      case 'Pod':
        return {
          apiVersion,
          kind,
          metadata: { ...metadata, labels: { ...base.labels, ...base.podLabels }, annotations: { ...workloadAnnotations, ...podAnnotations } },
          spec,
        };
      case 'ReplicationController':
        return { apiVersion, kind, metadata, spec: { replicas: 1, selector: { 'pod-name': name }, template } };
      case 'Job':
        return { apiVersion, kind, metadata, spec: { backoffLimit: 2, template } };
      case 'CronJob':
        return { apiVersion, kind, metadata, spec: { schedule: '*/10 * * * *', jobTemplate: { spec: { template } } } };
      case 'StatefulSet':
        return { apiVersion, kind, metadata, spec: { serviceName: name, selector: { matchLabels: { 'pod-name': name } }, template } };
      default:
        return { apiVersion, kind, metadata, spec: { selector: { matchLabels: { 'pod-name': name } }, template } };
    }
  });

/** Non-workloads that may carry the selector label too. */
export const nonWorkload: fc.Arbitrary<Json> = fc.record({ name: fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/), labels, value: TEXT }).map(({ name, labels: itemLabels, value }) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, ...(Object.keys(itemLabels).length > 0 ? { labels: itemLabels } : {}) },
  data: { value, mode: 'on' },
}));

/**
 * An item as YAML text in kyaml's layout, with a comment after some lines (picked by `commentEvery`) and the
 * first map of labels in flow style sometimes, the way people write manifests.
 */
export function itemText(item: Json, commentEvery: number, flowLabels: boolean): string {
  let text = toYaml(item);
  if (flowLabels) {
    text = text.replace(/^( *)labels:\n((?:\1  .*\n)+)/m, (_all, indent: string, body: string) => {
      const pairs = body
        .trimEnd()
        .split('\n')
        .map((line) => line.trim());
      return pairs.every((pair) => !pair.startsWith('-') && !pair.endsWith(':')) ? `${indent}labels: {${pairs.join(', ')}}\n` : _all;
    });
  }
  if (commentEvery <= 0) return text;
  return text
    .split('\n')
    .map((line, index) => (line.trim() !== '' && index % commentEvery === commentEvery - 1 && !line.includes('#') ? `${line} # note ${index}` : line))
    .join('\n');
}

export const items = fc.array(
  fc.record({ item: fc.oneof({ weight: 5, arbitrary: workload }, { weight: 1, arbitrary: nonWorkload }), commentEvery: fc.integer({ min: 0, max: 7 }), flowLabels: fc.boolean() }),
  { minLength: 1, maxLength: 5 },
);

const URL_FORMS = [
  (repo: string) => `https://git.example.com/org/${repo}.git`,
  (repo: string) => `http://git.internal:8080/${repo}`,
  (repo: string) => `ssh://git@git.example.com:2222/org/${repo}.git`,
  (repo: string) => `git@github.com:org/${repo}.git`,
  (repo: string) => `git://mirror.example.org/pub/${repo}.git`,
];
const REPO_BASENAMES = ['app', 'lib', 'tools', 'docs-site', 'Infra.Config', 'shared'];

const repo = fc.record({
  form: fc.integer({ min: 0, max: URL_FORMS.length - 1 }),
  base: fc.constantFrom(...REPO_BASENAMES),
  explicitName: fc.boolean(),
  secret: fc.constantFrom('none', 'none', 'ssh', 'https'),
});

const selector = fc.oneof(
  fc.constant(undefined),
  fc.record({ matchLabels: fc.dictionary(fc.constantFrom('app', 'tier', 'team'), fc.constantFrom(...LABEL_VALUES), { minKeys: 1, maxKeys: 1 }) }),
  fc.record({
    matchExpressions: fc.array(
      fc.oneof(
        fc.record({ key: fc.constantFrom(...LABEL_KEYS), operator: fc.constantFrom('In' as const, 'NotIn' as const), values: fc.uniqueArray(fc.constantFrom(...LABEL_VALUES), { minLength: 1, maxLength: 3 }) }),
        fc.record({ key: fc.constantFrom(...LABEL_KEYS), operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const) }),
      ),
      { minLength: 1, maxLength: 2 },
    ),
  }),
);

/** A valid GitCache: 1-3 repos of every URL form, every mode, volume type and a few selectors. */
export const gitCacheConfig: fc.Arbitrary<Json> = fc
  .record({
    repos: fc.uniqueArray(repo, { minLength: 1, maxLength: 3, selector: (entry) => entry.base }),
    mode: fc.constantFrom(undefined, 'sidecar', 'init', 'legacy-sidecar'),
    volume: fc.constantFrom(
      undefined,
      { size: '5Gi' },
      { type: 'emptyDir', size: '750Mi' },
      { type: 'pvc', claimName: 'git-cache' },
      { type: 'pvc', claimName: 'shared-mirrors', size: '20Gi' },
      { type: 'node' },
      { type: 'node', path: '/mnt/git-mirrors' },
    ),
    selector,
    image: fc.constantFrom(undefined, 'registry.example/git-cache:v1.2.3', 'on'),
    mountPath: fc.constantFrom(undefined, '/git-cache', '/var/cache/git'),
  })
  .map(({ repos, mode, volume, selector: chosenSelector, image, mountPath }) => ({
    apiVersion: GIT_CACHE_API_VERSION,
    kind: 'GitCache',
    // Node mode generates a DaemonSet and a Service that pods reach by name: it needs a namespace.
    metadata: { name: 'git-cache', ...(volume?.type === 'node' ? { namespace: 'git-cache' } : {}) },
    spec: {
      repos: repos.map((entry, index) => {
        const form = URL_FORMS[entry.form] as (name: string) => string;
        const sshCapable = entry.form === 2 || entry.form === 3;
        const httpsCapable = entry.form === 0 || entry.form === 1;
        return {
          url: form(entry.base),
          ...(entry.explicitName ? { name: `repo-${index}` } : {}),
          ...(entry.secret === 'ssh' && sshCapable ? { sshSecretName: `ssh-${index}` } : {}),
          ...(entry.secret === 'https' && httpsCapable ? { httpsSecretName: `https-${index}` } : {}),
        };
      }),
      ...(mode ? { mode } : {}),
      ...(volume ? { volume } : {}),
      ...(chosenSelector ? { selector: chosenSelector } : {}),
      ...(image ? { image } : {}),
      ...(mountPath ? { mountPath } : {}),
    },
  }));
