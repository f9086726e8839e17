/**
 * The agent's command line: `git-cache sync|serve|wait|maintain [flags]`. Pure parsing: argv and env in, options or a
 * one-line usage error out. Flag names shared with the KRM function come from src/shared/agent-cli.ts.
 */
import { AGENT_BINARY, AGENT_COMMANDS, FLAG, parseDurationMs, parseRepoArg, type AgentCommand } from '../shared/agent-cli.js';
import { parseQuantityBytes } from '../shared/quantity.js';
import {
  CREDENTIALS_ROOT,
  DEFAULT_METRICS_PORT,
  DEFAULT_ORPHAN_GRACE,
  DEFAULT_REFRESH_INTERVAL,
  DEFAULT_WAIT_TIMEOUT,
  ENV_CACHE_DIR,
  ENV_REPO_URL,
  VERSION,
} from '../shared/names.js';
import { REPO_NAME_MAX_LENGTH, REPO_NAME_PATTERN, parseRepoUrl, repoKey, tierBaseProblem } from '../shared/repo-url.js';
import { LOG_LEVELS, type LogLevel } from './log.js';
import { DEFAULT_REFRESH_LIMITS, type RefreshLimits } from './serving/refresh.js';

/** Flags only the agent reads (the function never renders them). */
export const AGENT_FLAG = {
  metricsAddress: '--metrics-address',
  gitDaemonAddress: '--git-daemon-address',
  insecureIgnoreHostKey: '--insecure-ignore-host-key',
  logLevel: '--log-level',
  parallel: '--parallel',
  refreshAddress: '--refresh-address',
  refreshMinInterval: '--refresh-min-interval',
  upstreamCacheWait: '--upstream-cache-wait',
  orphanGrace: '--orphan-grace',
  maintenanceBudget: '--maintenance-budget',
  noMaintenance: '--no-maintenance',
  noCommitGraph: '--no-commit-graph',
} as const;

/** How long a first clone waits for a reachable tier that does not have the repo yet (it may be cloning it). */
const DEFAULT_UPSTREAM_CACHE_WAIT = '5m';

/** How long one maintenance run of one mirror may take before it is stopped (safe at any moment). */
export const DEFAULT_MAINTENANCE_BUDGET = '10m';

export interface Repo {
  readonly name: string;
  readonly url: string;
  readonly key: string;
}

export interface AgentOptions {
  readonly command: AgentCommand;
  readonly repos: readonly Repo[];
  readonly cacheDir: string;
  readonly intervalMs: number;
  readonly metricsPort: number;
  readonly metricsAddress: string;
  readonly credentialsDir: string;
  readonly timeoutMs: number;
  readonly gitDaemonPort: number | undefined;
  readonly gitDaemonAddress: string;
  readonly insecureIgnoreHostKey: boolean;
  readonly logLevel: LogLevel;
  readonly parallel: number;
  /** serve: `--volume-size` in bytes; undefined = the filesystem's size */
  readonly volumeSizeBytes: number | undefined;
  /** serve: the refresh-only port for other pods (token required), or undefined */
  readonly refreshPort: number | undefined;
  readonly refreshAddress: string;
  readonly refreshLimits: RefreshLimits;
  /** sync, serve: the tier's base URL (`<base>/<key>.git`), tried before the git host */
  readonly upstreamCache: string | undefined;
  /** wait: the base URL (`<base>/<key>.git`) of the git-cache whose mirrors to wait for, instead of cacheDir */
  readonly cacheUrl: string | undefined;
  /** How long a first clone waits for a reachable tier to have the repo before going to the git host. */
  readonly upstreamCacheWaitMs: number;
  /** serve: delete mirrors nobody has claimed for this long; undefined = never */
  readonly orphanGraceMs: number | undefined;
  /** sync, serve: maintain due mirrors after refreshes (`--no-maintenance` turns it off) */
  readonly maintenance: boolean;
  readonly maintenanceBudgetMs: number;
  /** sync, serve, maintain: keep a commit-graph in each mirror (`--no-commit-graph`: none, an existing one removed) */
  readonly commitGraph: boolean;
}

export type ParseResult =
  | { readonly kind: 'run'; readonly options: AgentOptions }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'version'; readonly text: string }
  | { readonly kind: 'usage'; readonly message: string };

const COMMON_HELP = `  ${FLAG.repo} [NAME=]URL        repository to mirror; repeat for several (env ${ENV_REPO_URL}: URLs separated
                              by spaces or commas). URL: https://, http://, ssh://, user@host:path, git://
  ${FLAG.cacheDir} DIR           where mirrors live: DIR/<key>.git (env ${ENV_CACHE_DIR})
  ${FLAG.credentialsDir} DIR     per-repo credentials: DIR/<name>/ssh/{ssh-privatekey,known_hosts},
                              DIR/<name>/https/{username,password} (default ${CREDENTIALS_ROOT})
  ${AGENT_FLAG.insecureIgnoreHostKey}  do not check ssh host keys (logs a warning at every start)
  ${AGENT_FLAG.parallel} N             repos synced at once (default 2)
  ${FLAG.upstreamCache} URL     take objects from another git-cache first (URL/<key>.git, e.g. a keeper's
                              git daemon git://git-cache-keeper.ci.svc), without credentials; on failure fall
                              back to the git host. origin stays the repo URL, refs are the tier's
  ${AGENT_FLAG.upstreamCacheWait} DURATION  a first clone waits this long for a reachable tier that does not
                              have the repo yet (default ${DEFAULT_UPSTREAM_CACHE_WAIT})
  ${AGENT_FLAG.logLevel} LEVEL         debug, info, warn or error (default info); logs are JSON lines on stderr
  -h, --help                  show this help`;

const COMMIT_GRAPH_HELP = `  ${AGENT_FLAG.noCommitGraph}       keep no commit-graph in the mirrors (removes one): for borrowers whose git
                              (before 2.55) fails 'git clone --reference --dissociate' with one`;
const MAINTENANCE_HELP = `  ${AGENT_FLAG.maintenanceBudget} DURATION  stop a mirror's maintenance run after this long (default ${DEFAULT_MAINTENANCE_BUDGET})
  ${AGENT_FLAG.noMaintenance}        never maintain mirrors after refreshes
${COMMIT_GRAPH_HELP}`;

const HELP: Record<AgentCommand | 'top', string> = {
  top: `${AGENT_BINARY} ${VERSION}: keeps full bare git mirrors fresh in a shared cache directory.

Usage:
  ${AGENT_BINARY} sync  --repo URL [--repo URL ...] --cache-dir DIR   make every mirror present and current, exit
  ${AGENT_BINARY} serve --repo URL ... --cache-dir DIR [--interval 60s] [--metrics-port ${DEFAULT_METRICS_PORT}]
                                                             sync, then refresh forever; /readyz /healthz /metrics
  ${AGENT_BINARY} wait  --repo URL ... --cache-dir DIR [--timeout ${DEFAULT_WAIT_TIMEOUT}]
                                                             block until every mirror is present (read-only use)
  ${AGENT_BINARY} maintain --cache-dir DIR [--repo URL ...]     compact mirrors now (every mirror in DIR without --repo)

Run '${AGENT_BINARY} COMMAND --help' for the flags of a command. Apps clone with
  git clone --reference-if-able "$GIT_CACHE_REF" URL   or   DIR/bin/git-clone-cached URL DIR
Exit codes: 0 success, 1 failure (one-line reason on stderr), 2 usage error.`,
  sync: `Usage: ${AGENT_BINARY} sync --repo [NAME=]URL [--repo ...] --cache-dir DIR [flags]

Clones each missing mirror (git clone --mirror into DIR/.staging, then an atomic rename to DIR/<key>.git) and
fetches the others (git fetch --prune), under a per-repo lock shared by every agent using DIR. Exits 0 when
every mirror is present and current, 1 with a one-line reason otherwise. Then maintains each mirror that is due
(more than 50 packs or no commit-graph), unless another agent holds its lock; see '${AGENT_BINARY} maintain --help'.

Flags:
${COMMON_HELP}
${MAINTENANCE_HELP}`,
  serve: `Usage: ${AGENT_BINARY} serve --repo [NAME=]URL [--repo ...] --cache-dir DIR [flags]

Syncs, then refreshes every interval (with jitter; exponential backoff after failures, keeping the last good
mirror). HTTP: /readyz (503 until every mirror is present, then 200), /healthz, /metrics (Prometheus), and
POST /v1/refresh?repo=NAME: fetch NAME now, answer 200 once done (404 unknown name, 429 too many waiting).
SIGHUP: refresh now. SIGTERM/SIGINT: stop running git, exit 0.

Flags:
${COMMON_HELP}
  ${FLAG.interval} DURATION      refresh interval, e.g. 30s, 5m, 1h (default ${DEFAULT_REFRESH_INTERVAL})
  ${FLAG.metricsPort} PORT        HTTP port for /metrics, /healthz, /readyz (default ${DEFAULT_METRICS_PORT}; 0 = off)
  ${AGENT_FLAG.metricsAddress} ADDR    address to bind it to (default 0.0.0.0)
  ${FLAG.gitDaemonPort} PORT    also serve the mirrors read-only over git:// (git daemon, upload-pack only,
                              exporting DIR only): git clone git://HOST:PORT/<key>.git
  ${AGENT_FLAG.gitDaemonAddress} ADDR address for the git daemon (default 0.0.0.0)
  ${FLAG.volumeSize} QUANTITY   the cache volume's size limit, e.g. 5Gi, 500Mi, 10G (an emptyDir sizeLimit), for
                              git_cache_volume_size_bytes (default: the size of DIR's filesystem)
  ${FLAG.refreshPort} PORT     also answer POST /v1/refresh?repo=NAME on this port, for other pods that present
                              the token in DIR/.refresh-token (the metrics port answers loopback clients too)
  ${AGENT_FLAG.refreshAddress} ADDR  address for the refresh port (default 0.0.0.0)
  ${AGENT_FLAG.refreshMinInterval} DURATION  a requested fetch of one repo starts at most this often (default 5s)
  ${AGENT_FLAG.orphanGrace} DURATION|never  delete mirrors in DIR of repos no agent serves any more once
                              unclaimed this long (default ${DEFAULT_ORPHAN_GRACE}; clones that borrowed
                              their objects break when they go)
${MAINTENANCE_HELP}`,
  wait: `Usage: ${AGENT_BINARY} wait --repo [NAME=]URL [--repo ...] --cache-dir DIR|--cache-url URL [--timeout DURATION]

For read-only consumers of a shared cache (e.g. a PVC another pod fills): blocks until every mirror is present
and valid, without contacting any upstream or writing anything. Exits 0 then, 1 with a message on timeout.

Flags:
${COMMON_HELP}
  ${FLAG.cacheUrl} URL           instead of DIR: wait until another git-cache serves every mirror at
                              URL/<key>.git (git://, http://, https://; e.g. the node Service of node mode),
                              probing each with a bounded git ls-remote, without credentials
  ${FLAG.timeout} DURATION       give up after this long (default ${DEFAULT_WAIT_TIMEOUT})`,
  maintain: `Usage: ${AGENT_BINARY} maintain --cache-dir DIR [--repo [NAME=]URL ...] [--maintenance-budget DURATION]

Compacts mirrors without deleting any object a clone made with --reference may borrow: rolls small packs up into
one (every object, reachable or not, is proven to be in a pack that stays before a pack is deleted), writes a
multi-pack-index with a reachability bitmap and a commit-graph. At low CPU and I/O priority, under each repo's
lock (waits for it within the budget). Without --repo (or ${ENV_REPO_URL}): every mirror in DIR. Never contacts
upstream. Exits 0 when every mirror was maintained, 1 with a one-line reason otherwise.

Flags:
${COMMON_HELP}
  ${AGENT_FLAG.maintenanceBudget} DURATION  stop a mirror's run after this long (default ${DEFAULT_MAINTENANCE_BUDGET})
${COMMIT_GRAPH_HELP}`,
};

export function helpText(command?: AgentCommand): string {
  return HELP[command ?? 'top'];
}

const VALUE_FLAGS = new Set<string>([
  FLAG.repo,
  FLAG.cacheDir,
  FLAG.interval,
  FLAG.metricsPort,
  FLAG.credentialsDir,
  FLAG.timeout,
  FLAG.volumeSize,
  FLAG.refreshPort,
  AGENT_FLAG.refreshAddress,
  AGENT_FLAG.refreshMinInterval,
  AGENT_FLAG.metricsAddress,
  FLAG.gitDaemonPort,
  AGENT_FLAG.gitDaemonAddress,
  AGENT_FLAG.logLevel,
  AGENT_FLAG.parallel,
  FLAG.upstreamCache,
  AGENT_FLAG.upstreamCacheWait,
  AGENT_FLAG.orphanGrace,
  AGENT_FLAG.maintenanceBudget,
  FLAG.cacheUrl,
]);
const BOOLEAN_FLAGS = new Set<string>([AGENT_FLAG.insecureIgnoreHostKey, AGENT_FLAG.noMaintenance, AGENT_FLAG.noCommitGraph]);
const SERVE_ONLY = new Set<string>([
  FLAG.interval,
  FLAG.metricsPort,
  FLAG.volumeSize,
  AGENT_FLAG.metricsAddress,
  FLAG.gitDaemonPort,
  AGENT_FLAG.gitDaemonAddress,
  FLAG.refreshPort,
  AGENT_FLAG.refreshAddress,
  AGENT_FLAG.refreshMinInterval,
  AGENT_FLAG.orphanGrace,
]);
const WAIT_ONLY = new Set<string>([FLAG.timeout, FLAG.cacheUrl]);
const WRITERS_ONLY = new Set<string>([FLAG.upstreamCache, AGENT_FLAG.upstreamCacheWait]);
/** Flags that only some commands take (beyond the sets above). */
const ONLY_FOR = new Map<string, readonly AgentCommand[]>([
  [AGENT_FLAG.maintenanceBudget, ['sync', 'serve', 'maintain']],
  [AGENT_FLAG.noMaintenance, ['sync', 'serve']],
  [AGENT_FLAG.noCommitGraph, ['sync', 'serve', 'maintain']],
]);

class UsageError extends Error {}

function parsePort(flag: string, value: string, allowZero: boolean): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535 || (!allowZero && Number(value) === 0)) {
    throw new UsageError(`${flag}: "${value}" is not a port number`);
  }
  return Number(value);
}

function parseVolumeSize(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const bytes = parseQuantityBytes(value);
  if (bytes === undefined || bytes <= 0) throw new UsageError(`${FLAG.volumeSize}: "${value}" is not a size like 5Gi, 500Mi or 10G`);
  return bytes;
}

function parseDuration(flag: string, value: string): number {
  const ms = parseDurationMs(value);
  if (ms === undefined || ms <= 0) throw new UsageError(`${flag}: "${value}" is not a duration like 90s, 5m or 1h30m`);
  return ms;
}

/** `REPO_URL` may hold several entries separated by whitespace or commas. */
export function splitRepoEnv(value: string): string[] {
  return value.split(/[\s,]+/).filter((entry) => entry.length > 0);
}

/** Validates every `[NAME=]URL` before anything runs: a hostile URL never reaches git. */
export function resolveRepos(entries: readonly string[]): Repo[] {
  const repos: Repo[] = [];
  for (const entry of entries) {
    const { name, url } = parseRepoArg(entry);
    const parsed = parseRepoUrl(url);
    if (!parsed.ok) throw new UsageError(`${FLAG.repo} ${name}: ${parsed.problem.message}`);
    if (!REPO_NAME_PATTERN.test(name) || name.length > REPO_NAME_MAX_LENGTH) {
      throw new UsageError(`${FLAG.repo}: repo name "${name}" must be [a-z0-9-], at most ${REPO_NAME_MAX_LENGTH} characters`);
    }
    const key = repoKey(url);
    if (repos.some((r) => r.name === name)) throw new UsageError(`${FLAG.repo}: repo name "${name}" is given twice; use NAME=URL to tell them apart`);
    if (repos.some((r) => r.key === key)) throw new UsageError(`${FLAG.repo}: repo "${name}" is the same repository as "${repos.find((r) => r.key === key)?.name}"`);
    repos.push({ name, url, key });
  }
  return repos;
}

export function parseArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseResult {
  try {
    return parse(argv, env);
  } catch (error) {
    if (error instanceof UsageError) return { kind: 'usage', message: error.message };
    throw error;
  }
}

function parse(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseResult {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') return { kind: 'help', text: helpText() };
  if (first === '--version' || first === 'version') return { kind: 'version', text: `${AGENT_BINARY} ${VERSION}` };
  if (!(AGENT_COMMANDS as readonly string[]).includes(first)) {
    throw new UsageError(`unknown command "${first}"; expected one of ${AGENT_COMMANDS.join(', ')} (see --help)`);
  }
  const command = first as AgentCommand;

  const values = new Map<string, string[]>();
  const booleans = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? '';
    if (arg === '-h' || arg === '--help') return { kind: 'help', text: helpText(command) };
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const commands = ONLY_FOR.get(flag);
    if (commands && !commands.includes(command)) throw new UsageError(`${flag} applies to ${commands.join(', ')} only`);
    if (BOOLEAN_FLAGS.has(flag)) {
      if (eq > 0) throw new UsageError(`${flag} takes no value`);
      booleans.add(flag);
      continue;
    }
    if (!VALUE_FLAGS.has(flag)) {
      throw new UsageError(arg.startsWith('-') ? `unknown flag "${flag}" for ${command} (see ${command} --help)` : `unexpected argument "${arg}"; repos are given with ${FLAG.repo}`);
    }
    if (SERVE_ONLY.has(flag) && command !== 'serve') throw new UsageError(`${flag} applies to serve only`);
    if (WAIT_ONLY.has(flag) && command !== 'wait') throw new UsageError(`${flag} applies to wait only`);
    if (WRITERS_ONLY.has(flag) && (command === 'wait' || command === 'maintain')) throw new UsageError(`${flag} applies to sync and serve only (${command} never fetches)`);
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      value = rest[i + 1];
      i++;
    }
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    values.set(flag, [...(values.get(flag) ?? []), value]);
  }
  const single = (flag: string): string | undefined => {
    const list = values.get(flag);
    if (list && list.length > 1 && flag !== FLAG.repo) throw new UsageError(`${flag} is given more than once`);
    return list?.[0];
  };

  const repoEntries = values.get(FLAG.repo) ?? splitRepoEnv(env[ENV_REPO_URL] ?? '');
  // maintain without repos maintains every mirror in the cache dir.
  if (repoEntries.length === 0 && command !== 'maintain') throw new UsageError(`no repository: give ${FLAG.repo} URL or set ${ENV_REPO_URL}`);
  const repos = resolveRepos(repoEntries);

  const cacheUrl = single(FLAG.cacheUrl);
  if (cacheUrl !== undefined) {
    if (single(FLAG.cacheDir) !== undefined) throw new UsageError(`${FLAG.cacheDir} and ${FLAG.cacheUrl} exclude each other: wait for a directory or for a server`);
    const problem = tierBaseProblem(cacheUrl);
    if (problem) throw new UsageError(`${FLAG.cacheUrl}: ${problem}`);
  }
  // Waiting for a server reads no directory (the environment's GIT_CACHE_DIR is ignored then).
  const cacheDir = cacheUrl !== undefined ? '' : (single(FLAG.cacheDir) ?? env[ENV_CACHE_DIR] ?? '');
  if (!cacheDir && cacheUrl === undefined) throw new UsageError(`no cache directory: give ${FLAG.cacheDir} DIR or set ${ENV_CACHE_DIR}`);
  if (!cacheDir.startsWith('/') && !cacheDir.startsWith('.')) {
    // A relative name is fine, but one that looks like a flag or URL is a mistake worth stopping on.
    if (/^-|:\/\//.test(cacheDir)) throw new UsageError(`${FLAG.cacheDir}: "${cacheDir}" is not a directory path`);
  }

  const logLevel = single(AGENT_FLAG.logLevel) ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new UsageError(`${AGENT_FLAG.logLevel}: expected one of ${LOG_LEVELS.join(', ')}`);
  const parallelText = single(AGENT_FLAG.parallel) ?? '2';
  if (!/^[1-9]\d{0,2}$/.test(parallelText)) throw new UsageError(`${AGENT_FLAG.parallel}: expected a number from 1 to 999`);
  const daemonPortText = single(FLAG.gitDaemonPort);
  const refreshPortText = single(FLAG.refreshPort);
  const refreshMinInterval = single(AGENT_FLAG.refreshMinInterval);
  const upstreamCache = single(FLAG.upstreamCache);
  const tierProblem = upstreamCache === undefined ? undefined : tierBaseProblem(upstreamCache);
  if (tierProblem) throw new UsageError(`${FLAG.upstreamCache}: ${tierProblem}`);
  const orphanGrace = single(AGENT_FLAG.orphanGrace) ?? DEFAULT_ORPHAN_GRACE;

  return {
    kind: 'run',
    options: {
      command,
      repos,
      cacheDir: cacheDir.length > 1 ? cacheDir.replace(/\/+$/, '') : cacheDir,
      intervalMs: parseDuration(FLAG.interval, single(FLAG.interval) ?? DEFAULT_REFRESH_INTERVAL),
      metricsPort: parsePort(FLAG.metricsPort, single(FLAG.metricsPort) ?? String(DEFAULT_METRICS_PORT), true),
      metricsAddress: single(AGENT_FLAG.metricsAddress) ?? '0.0.0.0',
      credentialsDir: single(FLAG.credentialsDir) ?? CREDENTIALS_ROOT,
      timeoutMs: parseDuration(FLAG.timeout, single(FLAG.timeout) ?? DEFAULT_WAIT_TIMEOUT),
      gitDaemonPort: daemonPortText === undefined ? undefined : parsePort(FLAG.gitDaemonPort, daemonPortText, false),
      gitDaemonAddress: single(AGENT_FLAG.gitDaemonAddress) ?? '0.0.0.0',
      insecureIgnoreHostKey: booleans.has(AGENT_FLAG.insecureIgnoreHostKey),
      logLevel: logLevel as LogLevel,
      parallel: Number(parallelText),
      volumeSizeBytes: parseVolumeSize(single(FLAG.volumeSize)),
      refreshPort: refreshPortText === undefined ? undefined : parsePort(FLAG.refreshPort, refreshPortText, true),
      refreshAddress: single(AGENT_FLAG.refreshAddress) ?? '0.0.0.0',
      refreshLimits: {
        ...DEFAULT_REFRESH_LIMITS,
        ...(refreshMinInterval === undefined ? {} : { minIntervalMs: parseDuration(AGENT_FLAG.refreshMinInterval, refreshMinInterval) }),
      },
      upstreamCache: upstreamCache?.replace(/\/+$/, ''),
      cacheUrl: cacheUrl?.replace(/\/+$/, ''),
      upstreamCacheWaitMs: parseDuration(AGENT_FLAG.upstreamCacheWait, single(AGENT_FLAG.upstreamCacheWait) ?? DEFAULT_UPSTREAM_CACHE_WAIT),
      orphanGraceMs: orphanGrace === 'never' ? undefined : parseDuration(AGENT_FLAG.orphanGrace, orphanGrace),
      maintenance: !booleans.has(AGENT_FLAG.noMaintenance),
      maintenanceBudgetMs: parseDuration(AGENT_FLAG.maintenanceBudget, single(AGENT_FLAG.maintenanceBudget) ?? DEFAULT_MAINTENANCE_BUDGET),
      commitGraph: !booleans.has(AGENT_FLAG.noCommitGraph),
    },
  };
}
