/**
 * Every name, path, label and annotation that the KRM function writes and the agent (or a user's pipeline)
 * reads. One source of truth: the function and the agent both import from here, and CONTRACT.md documents it.
 */
import { VERSION } from './version.js';

export { VERSION };

export const CONFIG_API_GROUP = 'git-cache.dev';
export const CONFIG_API_VERSION = `${CONFIG_API_GROUP}/v1alpha1`;
export const CONFIG_KIND = 'GitCache';

/** The agent image this release of the function injects by default: pinned, never `:latest`. */
export const DEFAULT_AGENT_IMAGE = `ghcr.io/git-cache/git-cache:v${VERSION}`;

export const VOLUME_NAME = 'git-cache';
/** Writable scratch space for the cache container, whose root filesystem is read-only. */
export const TMP_VOLUME_NAME = 'git-cache-tmp';
export const TMP_MOUNT_PATH = '/tmp';
export const CACHE_CONTAINER_NAME = 'git-cache';
export const INIT_CONTAINER_NAME = 'git-cache-init';

export const DEFAULT_MOUNT_PATH = '/git-cache';
export const DEFAULT_METRICS_PORT = 9901;
export const DEFAULT_REFRESH_INTERVAL = '60s';
export const METRICS_PORT_NAME = 'gc-metrics';

/** Non-root identity of the cache container (the image's USER as well). */
export const AGENT_UID = 65532;
export const AGENT_GID = 65532;

export const SELECTOR_LABEL = 'git-cache.enabled';
export const DEFAULT_SELECTOR = { matchLabels: { [SELECTOR_LABEL]: 'true' } } as const;

export const ANNOTATION_INJECT = `${CONFIG_API_GROUP}/inject`;
export const ANNOTATION_REPOS = `${CONFIG_API_GROUP}/repos`;
export const ANNOTATION_STATUS = `${CONFIG_API_GROUP}/status`;
/** `"false"` on a workload or its pod template: no transparent git configuration for its containers. */
export const ANNOTATION_TRANSPARENT = `${CONFIG_API_GROUP}/transparent`;
export const ANNOTATION_LOCAL_CONFIG = 'config.kubernetes.io/local-config';

/** Environment variables: the ones app containers get, and the ones the agent reads. */
export const ENV_CACHE_DIR = 'GIT_CACHE_DIR';
export const ENV_REF = 'GIT_CACHE_REF';
export const ENV_REF_PREFIX = 'GIT_CACHE_REF_';
export const ENV_REPO_URL = 'REPO_URL';
/** Base URL of an agent that refreshes a mirror on request (`POST <endpoint>/v1/refresh?repo=NAME`). */
export const ENV_ENDPOINT = 'GIT_CACHE_ENDPOINT';
/** git's environment configuration (git 2.31+): command-scope config entries, KEY/VALUE numbered from 0. */
export const ENV_GIT_CONFIG_COUNT = 'GIT_CONFIG_COUNT';
export const ENV_GIT_CONFIG_KEY_PREFIX = 'GIT_CONFIG_KEY_';
export const ENV_GIT_CONFIG_VALUE_PREFIX = 'GIT_CONFIG_VALUE_';
/**
 * git's system config file (git 2.32+). Transparent mode points it at a file the agent keeps on the cache volume
 * (it includes /etc/gitconfig): a local clone runs upload-pack without the command-scope config above, and
 * upload-pack only takes `safe.directory` (mirrors owned by the cache container's UID) from protected config.
 */
export const ENV_GIT_CONFIG_SYSTEM = 'GIT_CONFIG_SYSTEM';

/** Where the cache container finds each repo's credentials: `<root>/<repo name>/{ssh,https}/<file>`. */
export const CREDENTIALS_ROOT = '/etc/git-cache/credentials';
export const SSH_KEY_FILE = 'ssh-privatekey';
export const SSH_KNOWN_HOSTS_FILE = 'known_hosts';
export const HTTPS_USERNAME_FILE = 'username';
export const HTTPS_PASSWORD_FILE = 'password';

export function sshCredentialDir(repoName: string, root: string = CREDENTIALS_ROOT): string {
  return `${root}/${repoName}/ssh`;
}

export function httpsCredentialDir(repoName: string, root: string = CREDENTIALS_ROOT): string {
  return `${root}/${repoName}/https`;
}

/** `GIT_CACHE_REF_<NAME>`: the repo name upper-cased with `-` turned into `_`. */
export function refEnvName(repoName: string): string {
  return ENV_REF_PREFIX + repoName.toUpperCase().replace(/-/g, '_');
}

/** Path of the clone helper the agent installs into the cache volume. */
export const CLONE_HELPER_RELATIVE_PATH = 'bin/git-clone-cached';
/** The upload-pack wrapper transparent fetches of `origin` run (asks for a refresh when the fetch names a missing commit). */
export const UPLOAD_PACK_WRAPPER_RELATIVE_PATH = 'bin/git-upload-pack-cached';
/** Shell functions both scripts source. */
export const CLIENT_LIBRARY_RELATIVE_PATH = 'bin/git-cache-lib.sh';
/** Config file included (includeIf hasconfig:remote.*.url) when a repo's remote is a configured repo: sets origin's uploadpack. */
export const ORIGIN_GITCONFIG_RELATIVE_PATH = 'bin/origin.gitconfig';
/** The system git config of app containers in transparent mode (GIT_CONFIG_SYSTEM): /etc/gitconfig plus safe.directory per mirror. */
export const SYSTEM_GITCONFIG_RELATIVE_PATH = 'bin/system.gitconfig';
/**
 * A random secret the agent keeps on the cache volume: only containers that mount the volume can read it, and
 * the refresh port (keeper and node mode, reached through a Service) serves only requests that carry it.
 */
export const REFRESH_TOKEN_RELATIVE_PATH = '.refresh-token';
export const REFRESH_TOKEN_HEADER = 'x-git-cache-token';
/** `POST <endpoint>/v1/refresh?repo=NAME`. */
export const REFRESH_PATH = '/v1/refresh';
/** The agent's refresh-only port for other pods (keeper and node mode); in sidecar modes the metrics port serves loopback. */
export const DEFAULT_REFRESH_PORT = 9902;
export const REFRESH_PORT_NAME = 'gc-refresh';

/** Staging directories for mirrors being built live beside them on the same volume (atomic rename). */
export const STAGING_DIR_NAME = '.staging';
export const LOCK_DIR_NAME = '.locks';

/** The keeper: one Deployment that owns a shared ReadWriteMany PVC and is the only writer and credential holder. */
export const DEFAULT_KEEPER_NAME = 'git-cache-keeper';
export const DEFAULT_GIT_DAEMON_PORT = 9418;
export const GIT_DAEMON_PORT_NAME = 'git';
export const DEFAULT_WAIT_TIMEOUT = '10m';
export const DEFAULT_PVC_SIZE = '10Gi';
/** Node mode: one writer per node (a DaemonSet on a hostPath), read by the node's pods. */
export const DEFAULT_NODE_NAME = 'git-cache-node';
export const DEFAULT_NODE_PATH = '/var/lib/git-cache';
/** The node DaemonSet's init container that hands the hostPath directory to the agent's UID. */
export const VOLUME_OWNER_CONTAINER_NAME = 'git-cache-volume-owner';
/** Namespaces whose pods may scrape the metrics port through the generated NetworkPolicies, by default. */
export const DEFAULT_METRICS_NAMESPACES = ['monitoring'] as const;
/** The label the API server sets on every namespace (Kubernetes 1.21+), which NetworkPolicies select on. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** A Service's in-cluster host name, without the cluster domain (pods' DNS search path adds it). */
export function serviceHost(name: string, namespace: string): string {
  return `${name}.${namespace}.svc`;
}

/** Base URL of a git daemon serving mirrors as `<base>/<key>.git` (the keeper's or a node agent's). */
export function gitDaemonBaseUrl(host: string, port: number = DEFAULT_GIT_DAEMON_PORT): string {
  return port === DEFAULT_GIT_DAEMON_PORT ? `git://${host}` : `git://${host}:${port}`;
}

/**
 * Mirrors of repos an agent no longer serves are deleted once nobody has claimed them for this long: clones
 * that borrowed their objects (alternates) keep working for that long after a repo leaves the config.
 */
export const DEFAULT_ORPHAN_GRACE = '24h';
/** `<dir>/.claims/<key>`: touched by every agent that serves the repo, at every pass (orphan detection). */
export const CLAIMS_DIR_NAME = '.claims';

/** Marks resources the function generated (keeper, PVC, Service, monitors) with the config that generated them. */
export const ANNOTATION_GENERATED_BY = `${CONFIG_API_GROUP}/generated-by`;
export const MANAGED_BY = 'inject-git-cache';

/*
 * The names the function itself injects. A `git-cache.dev/status` annotation is only a claim (it can be stale,
 * copied or forged): stripping an earlier injection removes a container, volume or env var it lists only when
 * the name is one of these, never a name the user may have chosen for something of their own.
 */
const INJECTED_NAME_PREFIX = 'git-cache';
// GIT_CONFIG_SYSTEM: transparent mode's system config on the cache volume (src/inject/transparent.ts).
const INJECTED_ENV = /^(?:GIT_CACHE_[A-Z0-9_]*|GIT_CONFIG_COUNT|GIT_CONFIG_(?:KEY|VALUE)_\d+|GIT_CONFIG_SYSTEM)$/;

export function isInjectedContainerName(name: string): boolean {
  return name.startsWith(INJECTED_NAME_PREFIX);
}

export function isInjectedVolumeName(name: string): boolean {
  return name.startsWith(INJECTED_NAME_PREFIX);
}

export function isInjectedEnvName(name: string): boolean {
  return INJECTED_ENV.test(name);
}
