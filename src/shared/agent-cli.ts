/**
 * The agent's command line, as the function renders it into the cache container and as the agent parses it.
 * Both sides use these builders and parsers, so the injected container always runs a command the agent accepts.
 */
import { REPO_NAME_PATTERN, defaultRepoName } from './repo-url.js';

export const AGENT_BINARY = 'git-cache';

export const AGENT_COMMANDS = ['sync', 'serve', 'wait', 'maintain'] as const;
export type AgentCommand = (typeof AGENT_COMMANDS)[number];

export const FLAG = {
  repo: '--repo',
  cacheDir: '--cache-dir',
  interval: '--interval',
  metricsPort: '--metrics-port',
  credentialsDir: '--credentials-dir',
  timeout: '--timeout',
  gitDaemonPort: '--git-daemon-port',
  volumeSize: '--volume-size',
  refreshPort: '--refresh-port',
  upstreamCache: '--upstream-cache',
  cacheUrl: '--cache-url',
} as const;

export interface RepoArg {
  readonly name: string;
  readonly url: string;
}

/**
 * `--repo` takes `URL` or `NAME=URL`. A valid URL never starts with `[a-z0-9-]+=` (user names with `=` are
 * refused by the URL check), so the two forms cannot be confused.
 */
export function formatRepoArg(repo: RepoArg): string {
  return repo.name === defaultRepoName(repo.url) ? repo.url : `${repo.name}=${repo.url}`;
}

export function parseRepoArg(value: string): RepoArg {
  const match = /^([a-z0-9-]+)=(.*)$/.exec(value);
  if (match && REPO_NAME_PATTERN.test(match[1] ?? '')) return { name: match[1] ?? '', url: match[2] ?? '' };
  return { name: defaultRepoName(value), url: value };
}

export interface AgentInvocation {
  readonly command: AgentCommand;
  readonly repos: readonly RepoArg[];
  readonly cacheDir: string;
  /** serve only */
  readonly interval?: string;
  /** serve only */
  readonly metricsPort?: number;
  readonly credentialsDir?: string;
  /** wait only */
  readonly timeout?: string;
  /** serve only: also export the mirrors read-only over git:// on this port */
  readonly gitDaemonPort?: number;
  /** serve only: the cache volume's size as a Kubernetes quantity (5Gi), exported as git_cache_volume_size_bytes */
  readonly volumeSize?: string;
  /** serve only: answer `POST /v1/refresh` from other pods (with the cache volume's token) on this port */
  readonly refreshPort?: number;
  /** sync and serve: take objects from this git-cache tier (`<base>/<key>.git`) before the git host */
  readonly upstreamCache?: string;
  /** wait only: wait for the mirrors a git-cache serves at `<base>/<key>.git` instead of those in cacheDir */
  readonly cacheUrl?: string;
}

/** The argv after the binary name: `serve --cache-dir /git-cache --interval 60s --metrics-port 9901 --repo ...`. */
export function agentArgs(invocation: AgentInvocation): string[] {
  const overNetwork = invocation.command === 'wait' && invocation.cacheUrl !== undefined;
  const args: string[] = [invocation.command, ...(overNetwork ? [FLAG.cacheUrl, invocation.cacheUrl ?? ''] : [FLAG.cacheDir, invocation.cacheDir])];
  if (invocation.command === 'serve') {
    if (invocation.interval !== undefined) args.push(FLAG.interval, invocation.interval);
    if (invocation.metricsPort !== undefined) args.push(FLAG.metricsPort, String(invocation.metricsPort));
    if (invocation.gitDaemonPort !== undefined) args.push(FLAG.gitDaemonPort, String(invocation.gitDaemonPort));
    if (invocation.volumeSize !== undefined) args.push(FLAG.volumeSize, invocation.volumeSize);
    if (invocation.refreshPort !== undefined) args.push(FLAG.refreshPort, String(invocation.refreshPort));
  }
  if (invocation.command !== 'wait' && invocation.upstreamCache !== undefined) args.push(FLAG.upstreamCache, invocation.upstreamCache);
  if (invocation.command === 'wait' && invocation.timeout !== undefined) args.push(FLAG.timeout, invocation.timeout);
  if (invocation.credentialsDir !== undefined) args.push(FLAG.credentialsDir, invocation.credentialsDir);
  for (const repo of invocation.repos) args.push(FLAG.repo, formatRepoArg(repo));
  return args;
}

/** Durations as Kubernetes and Prometheus users write them: `90s`, `5m`, `1h30m`, `250ms`. */
export const DURATION_PATTERN = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;

export function parseDurationMs(value: string): number | undefined {
  if (!DURATION_PATTERN.test(value)) return undefined;
  let total = 0;
  for (const [, amount = '0', unit] of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
    total += Number(amount) * factor;
  }
  return total;
}
