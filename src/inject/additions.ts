/**
 * What injection adds to a pod spec, as plain data: the cache container(s), volumes, and the read-only mount
 * and env vars every other container gets. Pure: config and repos in, Kubernetes objects out.
 */
import type { ResolvedConfig, ResolvedRepo } from '../config/load.js';
import { AGENT_BINARY, agentArgs, type AgentCommand } from '../shared/agent-cli.js';
import { mirrorPath } from '../shared/repo-url.js';
import { appGitEnv } from './transparent.js';
import {
  AGENT_GID,
  AGENT_UID,
  CACHE_CONTAINER_NAME,
  CREDENTIALS_ROOT,
  ENV_CACHE_DIR,
  ENV_REF,
  HTTPS_PASSWORD_FILE,
  HTTPS_USERNAME_FILE,
  INIT_CONTAINER_NAME,
  GIT_DAEMON_PORT_NAME,
  METRICS_PORT_NAME,
  DEFAULT_REFRESH_PORT,
  REFRESH_PORT_NAME,
  SSH_KEY_FILE,
  SSH_KNOWN_HOSTS_FILE,
  TMP_MOUNT_PATH,
  TMP_VOLUME_NAME,
  VOLUME_NAME,
  httpsCredentialDir,
  refEnvName,
  sshCredentialDir,
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
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
  secret?: { secretName: string; defaultMode: number; items: { key: string; path: string }[] };
}

export interface Additions {
  /** Inserted at the front of initContainers, in this order. */
  initContainers: CacheContainer[];
  /** Appended to containers (legacy-sidecar only). */
  containers: CacheContainer[];
  volumes: Volume[];
  /** The read-only mount every other container gets. */
  appMount: VolumeMount;
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

function cacheVolume(config: ResolvedConfig): Volume {
  const { volume } = config.spec;
  if (volume.type === 'pvc') return { name: VOLUME_NAME, persistentVolumeClaim: { claimName: volume.claimName } };
  return { name: VOLUME_NAME, emptyDir: volume.size ? { sizeLimit: volume.size } : {} };
}

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
      ...(role.refreshPort !== undefined ? { refreshPort: role.refreshPort } : {}),
      ...(role.command === 'wait' ? { timeout: spec.keeper?.waitTimeout } : {}),
      ...(credentialRepos.some((repo) => repo.sshSecretName || repo.httpsSecretName) ? { credentialsDir: CREDENTIALS_ROOT } : {}),
    }),
    env: [{ name: 'HOME', value: TMP_MOUNT_PATH }],
    resources: spec.resources ?? structuredClone(DEFAULT_RESOURCES),
    securityContext: structuredClone(CACHE_CONTAINER_SECURITY_CONTEXT),
    volumeMounts: [
      { name: VOLUME_NAME, mountPath: spec.mountPath, ...(role.readOnly ? { readOnly: true } : {}) },
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

export function cacheVolumes(config: ResolvedConfig, repos: readonly ResolvedRepo[]): Volume[] {
  return [cacheVolume(config), { name: TMP_VOLUME_NAME, emptyDir: {} }, ...credentialVolumes(repos)];
}

/** Everything injection adds for `repos` (the workload's subset of the config's repos, in its order). */
export function buildAdditions(config: ResolvedConfig, repos: readonly ResolvedRepo[]): Additions {
  const { mode, mountPath } = config.spec;
  const initContainers: CacheContainer[] = [];
  const containers: CacheContainer[] = [];
  if (config.spec.keeper?.enabled) {
    // Keeper mode: the keeper Deployment is the only writer; pods only wait for complete mirrors, read-only.
    initContainers.push(cacheContainer(config, repos, { name: CACHE_CONTAINER_NAME, command: 'wait', longRunning: false, readOnly: true }));
  } else if (mode === 'sidecar') {
    // A native sidecar (Kubernetes 1.29+): an init container with restartPolicy Always keeps running, and the
    // kubelet starts the next container only once its startupProbe passes, i.e. once every mirror is complete.
    const sidecar = cacheContainer(config, repos, { name: CACHE_CONTAINER_NAME, command: 'serve', longRunning: true });
    sidecar.restartPolicy = 'Always';
    sidecar.startupProbe = probe('/readyz', 2, STARTUP_PROBE_SECONDS / 2);
    initContainers.push(reorderForReadability(sidecar));
  } else if (mode === 'init') {
    initContainers.push(cacheContainer(config, repos, { name: CACHE_CONTAINER_NAME, command: 'sync', longRunning: false }));
  } else {
    initContainers.push(cacheContainer(config, repos, { name: INIT_CONTAINER_NAME, command: 'sync', longRunning: false }));
    containers.push(cacheContainer(config, repos, { name: CACHE_CONTAINER_NAME, command: 'serve', longRunning: true }));
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
      endpoint: refreshEndpoint(config),
      transparent,
      cacheDir: mountPath,
    });
  return {
    initContainers,
    containers,
    volumes: config.spec.keeper?.enabled
      ? [{ name: VOLUME_NAME, persistentVolumeClaim: { claimName: config.spec.volume.claimName, readOnly: true } }, { name: TMP_VOLUME_NAME, emptyDir: {} }]
      : cacheVolumes(config, repos),
    appMount: { name: VOLUME_NAME, mountPath, readOnly: true },
    appEnv: [...appEnv, ...gitEnv(false)],
    appEnvTransparent: [...appEnv, ...gitEnv(true)],
  };
}

/**
 * GIT_CACHE_ENDPOINT: the agent that can refresh a mirror for this pod. Sidecar modes: the pod's own agent on
 * loopback (its metrics port answers refreshes from 127.0.0.1 only); keeper: the keeper Service's refresh
 * port; init mode: none (nothing runs after the init container).
 */
export function refreshEndpoint(config: ResolvedConfig): string | undefined {
  const { spec } = config;
  if (spec.keeper?.enabled) {
    const host = config.namespace ? `${spec.keeper.name}.${config.namespace}.svc` : spec.keeper.name;
    return `http://${host}:${DEFAULT_REFRESH_PORT}`;
  }
  if (spec.mode === 'init') return undefined;
  return `http://127.0.0.1:${spec.metricsPort}`;
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
