/**
 * What injection adds to a pod spec, as plain data: the cache container(s), volumes, and the read-only mount
 * and env vars every other container gets. Pure: config and repos in, Kubernetes objects out.
 */
import type { ResolvedConfig, ResolvedRepo } from '../config/load.js';
import type { GitCacheSpec } from '../config/schema.js';
import { AGENT_BINARY, agentArgs, type AgentCommand } from '../shared/agent-cli.js';
import { mirrorPath, tierMirrorUrl } from '../shared/repo-url.js';
import { appGitEnv } from './transparent.js';
import {
  AGENT_GID,
  AGENT_UID,
  CACHE_CONTAINER_NAME,
  CREDENTIALS_ROOT,
  DEFAULT_NODE_NAME,
  DEFAULT_NODE_PATH,
  DEFAULT_WAIT_TIMEOUT,
  ENV_CACHE_DIR,
  ENV_REF,
  HTTPS_PASSWORD_FILE,
  HTTPS_USERNAME_FILE,
  INIT_CONTAINER_NAME,
  GIT_DAEMON_PORT_NAME,
  METRICS_PORT_NAME,
  DEFAULT_REFRESH_PORT,
  REFRESH_PORT_NAME,
  serviceHost,
  SSH_KEY_FILE,
  SSH_KNOWN_HOSTS_FILE,
  TMP_MOUNT_PATH,
  TMP_VOLUME_NAME,
  VOLUME_NAME,
  httpsCredentialDir,
  refEnvName,
  sshCredentialDir,
  gitDaemonBaseUrl,
} from '../shared/names.js';

export interface EnvVar {
  name: string;
  value: string;
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}

/** A Kubernetes Container as injection writes it (only the fields it sets). */
export interface CacheContainer {
  name: string;
  image: string;
  imagePullPolicy?: string;
  command: string[];
  args: string[];
  restartPolicy?: 'Always';
  env: EnvVar[];
  ports?: { name: string; containerPort: number; protocol: 'TCP' }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Record<string, unknown>;
  volumeMounts: VolumeMount[];
}

interface Probe {
  httpGet: { path: string; port: string };
  periodSeconds: number;
  failureThreshold: number;
  timeoutSeconds: number;
}

export interface Volume {
  name: string;
  emptyDir?: { sizeLimit?: string };
  hostPath?: { path: string; type: 'Directory' | 'DirectoryOrCreate' };
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
  secret?: { secretName: string; defaultMode: number; items: { key: string; path: string }[] };
}

export interface Additions {
  /** Inserted at the front of initContainers, in this order. */
  initContainers: CacheContainer[];
  /** Appended to containers (legacy-sidecar only). */
  containers: CacheContainer[];
  volumes: Volume[];
  /** The read-only mount every other container gets (none for network readers of node mode). */
  appMount: VolumeMount | undefined;
  /** The env vars every other container gets (a container's own definition of a name wins). */
  appEnv: EnvVar[];
  /** appEnv plus the transparent git configuration: what app containers get unless transparent mode is off. */
  appEnvTransparent: EnvVar[];
}

export const DEFAULT_RESOURCES = { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '1Gi' } } as const;

/** Owner read-only; the kubelet adds group read for fsGroup so the non-root agent can read them. */
const SECRET_FILE_MODE = 0o400;

/** Long enough for the first clone of a large repo before the kubelet gives up on the sidecar. */
const STARTUP_PROBE_SECONDS = 3600;

export function sshVolumeName(repo: ResolvedRepo): string {
  return `${VOLUME_NAME}-ssh-${repo.name}`;
}

export function httpsVolumeName(repo: ResolvedRepo): string {
  return `${VOLUME_NAME}-https-${repo.name}`;
}

/**
 * How a selected pod gets its mirrors:
 * - sidecar, init, legacy-sidecar: its own writing agent (on an emptyDir, or a shared claim without a keeper);
 * - keeper: it waits for the keeper's mirrors on the shared claim, read-only;
 * - node: it waits for its node agent's mirrors on the hostPath, read-only;
 * - node-network: in a namespace without hostPath, it reads the node agent's mirrors over the network.
 */
export type InjectionMode = GitCacheSpec['mode'] | 'keeper' | 'node' | 'node-network';

export function injectionMode(config: ResolvedConfig, namespace: string | undefined): InjectionMode {
  if (config.node) return namespace !== undefined && config.node.networkNamespaces.includes(namespace) ? 'node-network' : 'node';
  if (config.spec.keeper?.enabled) return 'keeper';
  return config.spec.mode;
}

/** The volume of a writing agent: its pod's emptyDir, the shared claim, or the keeper's claim of node mode. */
function writerCacheVolume(config: ResolvedConfig): Volume {
  const { volume } = config.spec;
  if (volume.type === 'pvc' || (volume.type === 'node' && config.spec.keeper?.enabled)) return { name: VOLUME_NAME, persistentVolumeClaim: { claimName: volume.claimName } };
  return { name: VOLUME_NAME, emptyDir: volume.size ? { sizeLimit: volume.size } : {} };
}

/** The node directory of node mode. */
function nodePath(config: ResolvedConfig): string {
  return config.spec.volume.path ?? DEFAULT_NODE_PATH;
}

const TMP_VOLUME: Volume = { name: TMP_VOLUME_NAME, emptyDir: {} };

function secretVolume(name: string, secretName: string, keys: readonly string[]): Volume {
  return { name, secret: { secretName, defaultMode: SECRET_FILE_MODE, items: keys.map((key) => ({ key, path: key })) } };
}

function credentialVolumes(repos: readonly ResolvedRepo[]): Volume[] {
  return repos.flatMap((repo): Volume[] => [
    ...(repo.sshSecretName ? [secretVolume(sshVolumeName(repo), repo.sshSecretName, [SSH_KEY_FILE, SSH_KNOWN_HOSTS_FILE])] : []),
    ...(repo.httpsSecretName ? [secretVolume(httpsVolumeName(repo), repo.httpsSecretName, [HTTPS_USERNAME_FILE, HTTPS_PASSWORD_FILE])] : []),
  ]);
}

function credentialMounts(repos: readonly ResolvedRepo[]): VolumeMount[] {
  return repos.flatMap((repo): VolumeMount[] => [
    ...(repo.sshSecretName ? [{ name: sshVolumeName(repo), mountPath: sshCredentialDir(repo.name), readOnly: true }] : []),
    ...(repo.httpsSecretName ? [{ name: httpsVolumeName(repo), mountPath: httpsCredentialDir(repo.name), readOnly: true }] : []),
  ]);
}

function probe(path: string, periodSeconds: number, failureThreshold: number): Probe {
  return { httpGet: { path, port: METRICS_PORT_NAME }, periodSeconds, failureThreshold, timeoutSeconds: 5 };
}

/** The hardened security context of every container this function adds. */
export const CACHE_CONTAINER_SECURITY_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: AGENT_UID,
  runAsGroup: AGENT_GID,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
} as const;

/** How the agent runs in a container injection adds. */
interface AgentRole {
  readonly name: string;
  readonly command: AgentCommand;
  /** serve: a long-running agent with metrics, probes and refreshes. */
  readonly longRunning: boolean;
  /** wait (keeper mode): sees the shared cache read-only and holds no credentials. */
  readonly readOnly?: boolean;
  readonly gitDaemonPort?: number;
  /** wait: how long to wait for complete mirrors. */
  readonly waitTimeout?: string;
  /** wait over the network: the mirrors' server (`<base>/<key>.git`); the container mounts no cache volume. */
  readonly cacheUrl?: string;
  /** writers: the tier to fetch from before the git host (`--upstream-cache`). */
  readonly upstreamCache?: string | undefined;
  /** serve: also answer refresh requests of other pods (with the volume's token) on this port. */
  readonly refreshPort?: number;
}

export function cacheContainer(config: ResolvedConfig, repos: readonly ResolvedRepo[], role: AgentRole): CacheContainer {
  const { spec } = config;
  const credentialRepos = role.readOnly ? [] : repos;
  const container: CacheContainer = {
    name: role.name,
    image: config.image,
    ...(spec.imagePullPolicy ? { imagePullPolicy: spec.imagePullPolicy } : {}),
    command: [AGENT_BINARY],
    args: agentArgs({
      command: role.command,
      cacheDir: spec.mountPath,
      repos,
      ...(role.longRunning ? { interval: spec.refreshInterval, metricsPort: spec.metricsPort } : {}),
      ...(role.longRunning && spec.volume.size !== undefined ? { volumeSize: spec.volume.size } : {}),
      ...(role.gitDaemonPort !== undefined ? { gitDaemonPort: role.gitDaemonPort } : {}),
      ...(role.command === 'wait' ? { timeout: role.waitTimeout } : {}),
      ...(role.cacheUrl !== undefined ? { cacheUrl: role.cacheUrl } : {}),
      ...(role.upstreamCache !== undefined ? { upstreamCache: role.upstreamCache } : {}),
      ...(role.refreshPort !== undefined ? { refreshPort: role.refreshPort } : {}),
      ...(credentialRepos.some((repo) => repo.sshSecretName || repo.httpsSecretName) ? { credentialsDir: CREDENTIALS_ROOT } : {}),
    }),
    env: [{ name: 'HOME', value: TMP_MOUNT_PATH }],
    resources: spec.resources ?? structuredClone(DEFAULT_RESOURCES),
    securityContext: structuredClone(CACHE_CONTAINER_SECURITY_CONTEXT),
    volumeMounts: [
      ...(role.cacheUrl === undefined ? [{ name: VOLUME_NAME, mountPath: spec.mountPath, ...(role.readOnly ? { readOnly: true } : {}) }] : []),
      { name: TMP_VOLUME_NAME, mountPath: TMP_MOUNT_PATH },
      ...credentialMounts(credentialRepos),
    ],
  };
  if (role.longRunning) {
    container.ports = [
      { name: METRICS_PORT_NAME, containerPort: spec.metricsPort, protocol: 'TCP' },
      ...(role.gitDaemonPort !== undefined ? [{ name: GIT_DAEMON_PORT_NAME, containerPort: role.gitDaemonPort, protocol: 'TCP' as const }] : []),
      ...(role.refreshPort !== undefined ? [{ name: REFRESH_PORT_NAME, containerPort: role.refreshPort, protocol: 'TCP' as const }] : []),
    ];
    container.readinessProbe = probe('/readyz', 10, 3);
    container.livenessProbe = probe('/healthz', 20, 3);
  }
  return container;
}

/** The volumes of a writing agent (sidecar, keeper): its cache, scratch space and the credential Secrets. */
export function writerVolumes(config: ResolvedConfig, repos: readonly ResolvedRepo[]): Volume[] {
  return [writerCacheVolume(config), TMP_VOLUME, ...credentialVolumes(repos)];
}

/** The node agent's volumes: the node directory (created by the kubelet when missing), scratch, credentials. */
export function nodeAgentVolumes(config: ResolvedConfig): Volume[] {
  return [{ name: VOLUME_NAME, hostPath: { path: nodePath(config), type: 'DirectoryOrCreate' } }, TMP_VOLUME, ...credentialVolumes(config.repos)];
}

/**
 * What a reader of a shared cache waits with: `git-cache wait`, read-only, no credentials; on the mounted cache,
 * or at `cacheUrl` for a pod that reads over the network.
 */
function waitContainer(config: ResolvedConfig, repos: readonly ResolvedRepo[], waitTimeout: string, cacheUrl?: string): CacheContainer {
  return cacheContainer(config, repos, { name: CACHE_CONTAINER_NAME, command: 'wait', longRunning: false, readOnly: true, waitTimeout, ...(cacheUrl !== undefined ? { cacheUrl } : {}) });
}

/** Everything injection adds for `repos` (the workload's subset of the config's repos, in its order). */
export function buildAdditions(config: ResolvedConfig, repos: readonly ResolvedRepo[], mode: InjectionMode): Additions {
  const { mountPath, volume } = config.spec;
  const initContainers: CacheContainer[] = [];
  const containers: CacheContainer[] = [];
  let volumes: Volume[];
  const upstreamCache = config.spec.upstreamCache;
  if (mode === 'node-network') {
    // No cache volume (hostPath is not allowed here): the pod reads its node agent's mirrors over the network,
    // from the node Service's git daemon (internalTrafficPolicy Local: its own node's copy). It first waits
    // until its node serves every mirror to it (a new node's agent may still be cloning; the NetworkPolicy
    // may not admit a new pod for a moment). No GIT_CACHE_ENDPOINT: the refresh port wants the token on the
    // volume; they see what the node agent fetched at its last refresh.
    initContainers.push(waitContainer(config, repos, config.node?.waitTimeout ?? DEFAULT_WAIT_TIMEOUT, nodeServiceBaseUrl(config)));
    const networkEnv = (transparent: boolean): EnvVar[] =>
      appGitEnv({
        repos: repos.map((repo) => ({ url: repo.url, mirror: { url: nodeMirrorUrl(config, repo) } })),
        endpoint: refreshEndpoint(config, mode),
        transparent,
        cacheDir: undefined,
      });
    return { initContainers, containers, volumes: [TMP_VOLUME], appMount: undefined, appEnv: networkEnv(false), appEnvTransparent: networkEnv(true) };
  } else if (mode === 'node') {
    // Node mode: the node agent (DaemonSet) is the only writer; the pod waits for complete mirrors on its node
    // and reads the node directory read-only. `Directory`: never create it (that would be root-owned and empty).
    initContainers.push(waitContainer(config, repos, config.node?.waitTimeout ?? DEFAULT_WAIT_TIMEOUT));
    volumes = [{ name: VOLUME_NAME, hostPath: { path: nodePath(config), type: 'Directory' } }, TMP_VOLUME];
  } else if (mode === 'keeper') {
    // Keeper mode: the keeper Deployment is the only writer; pods only wait for complete mirrors, read-only.
    initContainers.push(waitContainer(config, repos, config.spec.keeper?.waitTimeout ?? DEFAULT_WAIT_TIMEOUT));
    volumes = [{ name: VOLUME_NAME, persistentVolumeClaim: { claimName: volume.claimName, readOnly: true } }, TMP_VOLUME];
  } else if (mode === 'sidecar') {
    // A native sidecar (Kubernetes 1.29+): an init container with restartPolicy Always keeps running, and the
    // kubelet starts the next container only once its startupProbe passes, i.e. once every mirror is complete.
    const sidecar = cacheContainer(config, repos, { name: CACHE_CONTAINER_NAME, command: 'serve', longRunning: true, upstreamCache });
    sidecar.restartPolicy = 'Always';
    sidecar.startupProbe = probe('/readyz', 2, STARTUP_PROBE_SECONDS / 2);
    initContainers.push(reorderForReadability(sidecar));
    volumes = writerVolumes(config, repos);
  } else if (mode === 'init') {
    initContainers.push(cacheContainer(config, repos, { name: CACHE_CONTAINER_NAME, command: 'sync', longRunning: false, upstreamCache }));
    volumes = writerVolumes(config, repos);
  } else {
    initContainers.push(cacheContainer(config, repos, { name: INIT_CONTAINER_NAME, command: 'sync', longRunning: false, upstreamCache }));
    containers.push(cacheContainer(config, repos, { name: CACHE_CONTAINER_NAME, command: 'serve', longRunning: true, upstreamCache }));
    volumes = writerVolumes(config, repos);
  }
  const firstRepo = repos[0];
  const appEnv = [
    { name: ENV_CACHE_DIR, value: mountPath },
    ...(firstRepo ? [{ name: ENV_REF, value: mirrorPath(mountPath, firstRepo.url) }] : []),
    ...repos.map((repo) => ({ name: refEnvName(repo.name), value: mirrorPath(mountPath, repo.url) })),
  ];
  const gitEnv = (transparent: boolean): EnvVar[] =>
    appGitEnv({
      repos: repos.map((repo) => ({ url: repo.url, mirror: { path: mirrorPath(mountPath, repo.url) } })),
      endpoint: refreshEndpoint(config, mode),
      transparent,
      cacheDir: mountPath,
    });
  return {
    initContainers,
    containers,
    volumes,
    appMount: { name: VOLUME_NAME, mountPath, readOnly: true },
    appEnv: [...appEnv, ...gitEnv(false)],
    appEnvTransparent: [...appEnv, ...gitEnv(true)],
  };
}

/** `git://<node Service>.<namespace>.svc`: the node agent that serves this pod's node over the network. */
function nodeServiceBaseUrl(config: ResolvedConfig): string {
  const service = config.node?.name ?? DEFAULT_NODE_NAME;
  return gitDaemonBaseUrl(config.namespace ? serviceHost(service, config.namespace) : service);
}

/** `git://<node Service>.<namespace>.svc/<key>.git`: a repo's mirror on the node agent that serves this pod. */
export function nodeMirrorUrl(config: ResolvedConfig, repo: ResolvedRepo): string {
  return tierMirrorUrl(nodeServiceBaseUrl(config), repo.key);
}

/**
 * GIT_CACHE_ENDPOINT: the agent that can refresh a mirror for this pod. Sidecar modes: the pod's own agent on
 * loopback (its metrics port answers refreshes from 127.0.0.1); keeper and node mode: their Service's refresh
 * port (the token on the volume admits the pods that mount it); none where no agent would serve the pod: init
 * mode (nothing runs after the init container) and node mode's network readers (they mount no volume, so they
 * have no token). Without a namespace
 * the Service's short name resolves in the pod's own namespace.
 */
export function refreshEndpoint(config: ResolvedConfig, mode: InjectionMode): string | undefined {
  if (mode === 'init' || mode === 'node-network') return undefined;
  const service = mode === 'keeper' ? config.spec.keeper?.name : mode === 'node' ? config.node?.name : undefined;
  if (service !== undefined) return `http://${config.namespace ? serviceHost(service, config.namespace) : service}:${DEFAULT_REFRESH_PORT}`;
  return `http://127.0.0.1:${config.spec.metricsPort}`;
}

/** Field order as people write containers (name, image, command, args, restartPolicy, ...), for readable output. */
function reorderForReadability(container: CacheContainer): CacheContainer {
  const { name, image, imagePullPolicy, command, args, restartPolicy, ...rest } = container;
  return { name, image, ...(imagePullPolicy ? { imagePullPolicy } : {}), command, args, ...(restartPolicy ? { restartPolicy } : {}), ...rest };
}

/** Names of everything injection may add, for conflict checks against the user's own pod spec. */
export function addedNames(additions: Additions): { containers: string[]; volumes: string[] } {
  return {
    containers: [...additions.initContainers, ...additions.containers].map((container) => container.name),
    volumes: additions.volumes.map((volume) => volume.name),
  };
}
