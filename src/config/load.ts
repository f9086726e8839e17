/**
 * Turns whatever functionConfig the caller handed over (a GitCache, or a ConfigMap from
 * `kpt fn eval -- key=value`) into a validated, fully defaulted config, or into error results with field paths.
 */
import { z } from 'zod';
import type { KrmResult } from '../krm/results.js';
import { CONFIG_API_VERSION, CONFIG_KIND, DEFAULT_AGENT_IMAGE, DEFAULT_SELECTOR } from '../shared/names.js';
import { defaultRepoName, repoKey } from '../shared/repo-url.js';
import { gitCacheSchema, nodeSchema, type GitCacheSpec, type LabelSelector, type NodeSpec } from './schema.js';

const DEFAULT_CONFIG_NAME = 'git-cache';

export interface ResolvedRepo {
  readonly name: string;
  readonly url: string;
  readonly key: string;
  readonly sshSecretName: string | undefined;
  readonly httpsSecretName: string | undefined;
}

export interface ResolvedConfig {
  readonly spec: GitCacheSpec;
  readonly repos: readonly ResolvedRepo[];
  readonly selector: LabelSelector;
  readonly image: string;
  /** Where the config came from, for messages: `GitCache/name` or `ConfigMap/name`. */
  readonly source: string;
  /** The config's metadata.name (default `git-cache`), which names and marks what it generates. */
  readonly name: string;
  /** The config's metadata.namespace: generated resources go there (else they stay namespace-less). */
  readonly namespace: string | undefined;
  /** Node mode (volume.type node): its settings with defaults; undefined in the other modes. */
  readonly node: NodeSpec | undefined;
}

export type ConfigOutcome = { ok: true; config: ResolvedConfig } | { ok: false; results: KrmResult[] };

/** ConfigMap keys (`kpt fn eval -- repoUrl=... mode=init`) and the GitCache field each one sets. */
export const CONFIG_MAP_KEYS = {
  repoUrl: 'spec.repos[0].url',
  repoName: 'spec.repos[0].name',
  sshSecretName: 'spec.repos[0].sshSecretName',
  httpsSecretName: 'spec.repos[0].httpsSecretName',
  image: 'spec.image',
  mode: 'spec.mode',
  mountPath: 'spec.mountPath',
  volumeType: 'spec.volume.type',
  volumeSize: 'spec.volume.size',
  claimName: 'spec.volume.claimName',
  volumePath: 'spec.volume.path',
  refreshInterval: 'spec.refreshInterval',
  metricsPort: 'spec.metricsPort',
  transparent: 'spec.transparent',
} as const;
type ConfigMapKey = keyof typeof CONFIG_MAP_KEYS;

function configError(message: string, path?: string): ConfigOutcome {
  return { ok: false, results: [{ severity: 'error', message, ...(path ? { field: { path } } : {}) }] };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `spec.repos[0].url` from zod's ['spec', 'repos', 0, 'url']. */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), '');
}

/** Maps a ConfigMap's flat data onto a GitCache, remembering which key each field came from. */
function gitCacheFromConfigMap(data: Record<string, unknown>): { gitCache: unknown; keyOfField: Map<string, string> } | ConfigOutcome {
  const unknownKeys = Object.keys(data).filter((key) => !Object.hasOwn(CONFIG_MAP_KEYS, key));
  if (unknownKeys.length > 0) {
    return configError(`unknown ConfigMap key(s) ${unknownKeys.join(', ')}; known keys: ${Object.keys(CONFIG_MAP_KEYS).join(', ')}`, `data.${unknownKeys[0]}`);
  }
  if (typeof data.repoUrl !== 'string' || data.repoUrl === '') return configError('ConfigMap functionConfig needs data.repoUrl', 'data.repoUrl');
  const text = (key: ConfigMapKey) => (typeof data[key] === 'string' && data[key] !== '' ? (data[key] as string) : undefined);
  const repo = { url: data.repoUrl, name: text('repoName'), sshSecretName: text('sshSecretName'), httpsSecretName: text('httpsSecretName') };
  const port = text('metricsPort');
  const transparent = text('transparent');
  const spec = {
    repos: [repo],
    image: text('image'),
    mode: text('mode'),
    mountPath: text('mountPath'),
    volume: { type: text('volumeType'), size: text('volumeSize'), claimName: text('claimName'), path: text('volumePath') },
    refreshInterval: text('refreshInterval'),
    metricsPort: port === undefined ? undefined : /^\d+$/.test(port) ? Number(port) : port,
    transparent: transparent === 'true' ? true : transparent === 'false' ? false : transparent,
  };
  const keyOfField = new Map(Object.entries(CONFIG_MAP_KEYS).map(([key, field]) => [field, `data.${key}`]));
  return { gitCache: { apiVersion: CONFIG_API_VERSION, kind: CONFIG_KIND, spec: JSON.parse(JSON.stringify(spec)) }, keyOfField };
}

/**
 * The path of a `__proto__` key anywhere in the config, if any. No field, label key or annotation key can be
 * one, and a schema library may drop it silently (a selector `{__proto__: x}` would then select everything).
 */
function prototypeKeyPath(value: unknown, path: readonly PropertyKey[] = [], seen = new Set<unknown>()): PropertyKey[] | undefined {
  if (typeof value !== 'object' || value === null || seen.has(value)) return undefined;
  seen.add(value);
  for (const [key, entry] of Object.entries(value)) {
    const entryPath = [...path, Array.isArray(value) ? Number(key) : key];
    if (key === '__proto__') return entryPath;
    const found = prototypeKeyPath(entry, entryPath, seen);
    if (found) return found;
  }
  return undefined;
}

export function loadConfig(functionConfig: unknown): ConfigOutcome {
  if (functionConfig === undefined || functionConfig === null) {
    return configError(`no functionConfig: pass a ${CONFIG_KIND} (${CONFIG_API_VERSION}) resource, or a ConfigMap with data.repoUrl`);
  }
  if (!isRecord(functionConfig)) return configError('functionConfig must be a Kubernetes resource (a mapping)');
  const prototypeKey = prototypeKeyPath(functionConfig);
  if (prototypeKey) return configError('"__proto__" is not a valid key here', fieldPath(prototypeKey));

  let candidate: unknown = functionConfig;
  let keyOfField = new Map<string, string>();
  const name = isRecord(functionConfig.metadata) ? String(functionConfig.metadata.name ?? '') : '';
  const source = name ? `${String(functionConfig.kind)}/${name}` : String(functionConfig.kind);
  if (functionConfig.kind === 'ConfigMap' && functionConfig.apiVersion === 'v1') {
    const mapped = gitCacheFromConfigMap(isRecord(functionConfig.data) ? functionConfig.data : {});
    if ('ok' in mapped) return mapped;
    candidate = mapped.gitCache;
    keyOfField = mapped.keyOfField;
  } else if (functionConfig.kind !== CONFIG_KIND || functionConfig.apiVersion !== CONFIG_API_VERSION) {
    return configError(
      `functionConfig must be ${CONFIG_API_VERSION} ${CONFIG_KIND} or v1 ConfigMap, got ${String(functionConfig.apiVersion)} ${String(functionConfig.kind)}`,
      'kind',
    );
  }

  const parsed = gitCacheSchema.safeParse(candidate);
  if (!parsed.success) return { ok: false, results: parsed.error.issues.map((issue) => issueToResult(issue, keyOfField, source)) };

  const spec = parsed.data.spec;
  const metadata = isRecord(functionConfig.metadata) ? functionConfig.metadata : {};
  const namespace = typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : undefined;
  if (spec.volume.type === 'node' && namespace === undefined) {
    // The node Service's DNS name (network readers, GIT_CACHE_ENDPOINT, the keeper tier) needs it, and so do the
    // credential Secrets the DaemonSet mounts.
    return configError(
      `invalid ${source}: metadata.namespace: node mode generates a DaemonSet and a Service that pods reach by name: set the namespace they go to (a namespace that allows hostPath, Pod Security "privileged")`,
      'metadata.namespace',
    );
  }
  const repos = spec.repos.map((repo) => ({
    name: repo.name ?? defaultRepoName(repo.url),
    url: repo.url,
    key: repoKey(repo.url),
    sshSecretName: repo.sshSecretName,
    httpsSecretName: repo.httpsSecretName,
  }));
  return {
    ok: true,
    config: {
      spec,
      repos,
      selector: spec.selector ?? DEFAULT_SELECTOR,
      image: spec.image || DEFAULT_AGENT_IMAGE,
      source,
      name: typeof metadata.name === 'string' && metadata.name !== '' ? metadata.name : DEFAULT_CONFIG_NAME,
      namespace,
      node: spec.volume.type === 'node' ? (spec.node ?? nodeSchema.parse({})) : undefined,
    },
  };
}

function issueToResult(issue: z.core.$ZodIssue, keyOfField: Map<string, string>, source: string): KrmResult {
  const path = fieldPath(issue.path);
  const reported = keyOfField.get(path) ?? path;
  return { severity: 'error', message: `invalid ${source}: ${reported || 'functionConfig'}: ${issue.message}`, field: { path: reported } };
}
