/**
 * The upstream cache tier (`--upstream-cache BASE`): another git-cache (a keeper's or a node agent's git
 * daemon) that serves each mirror at `BASE/<key>.git`. Agents take their objects and refs from it before the
 * git host, so the git host sees one fetch per refresh interval for the whole cluster (the tier's).
 *
 * - Reading the tier needs no credentials: its git runs with the base environment only. The git host keeps
 *   needing them, for the fallback.
 * - Before each use the tier is probed (`git ls-remote`, bounded): unreachable or failing means the git host is
 *   used at once; reachable without the repo means, for a first clone, waiting (bounded) while the tier clones
 *   it itself, so a cluster starting cold makes one clone at the git host, not one per node.
 * - A transfer from the tier that stops making progress is stopped (git has no client-side timeout for git://).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { tierMirrorUrl } from '../../shared/repo-url.js';
import type { Repo } from '../cli.js';
import { failureReason, runGit } from '../git/run.js';
import type { Runtime } from '../git/runtime.js';

export interface TierSettings {
  /** The tier's base URL: the mirror of a repo is `<base>/<key>.git`. */
  readonly base: string;
  /** How long a first clone waits for a reachable tier that lacks the repo. */
  readonly waitMs: number;
  /** Bound of one probe (connect + ref advertisement). */
  readonly probeTimeoutMs?: number;
  /** A transfer from the tier is stopped after this long without progress output. */
  readonly stallMs?: number;
  /** Pause between probes while waiting for the tier. */
  readonly pollMs?: number;
}

export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;
export const DEFAULT_STALL_MS = 60_000;
const DEFAULT_POLL_MS = 2_000;

export type TierState =
  | { readonly state: 'ready'; readonly url: string }
  /** Reachable, but it does not serve this repo (yet). */
  | { readonly state: 'missing'; readonly url: string; readonly reason: string }
  | { readonly state: 'down'; readonly url: string; readonly reason: string };

// What git says when it cannot talk to the tier at all. Anything else is the tier answering without the
// repository: git daemon hangs up on a path it does not serve (or says "not exported" with
// --informative-errors), smart HTTP answers 404.
const UNREACHABLE = /unable to connect|Could not resolve|Connection refused|Connection reset|timed out|Network is unreachable|No route to host|returned error: 5\d\d|SSL|certificate/i;

export function tierUrl(tier: TierSettings, repo: Repo): string {
  return tierMirrorUrl(tier.base, repo.key);
}

/** One bounded `git ls-remote` of the repo's mirror on the tier. */
export async function probeTier(tier: TierSettings, repo: Repo, runtime: Runtime, signal: AbortSignal | undefined): Promise<TierState> {
  const url = tierUrl(tier, repo);
  const timeout = AbortSignal.timeout(tier.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS);
  const result = await runGit({ args: ['ls-remote', '--', url, 'HEAD'], env: runtime.baseEnv, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
  if (result.code === 0 && result.stdout.trim() !== '') return { state: 'ready', url };
  if (result.aborted && !signal?.aborted) return { state: 'down', url, reason: `no answer within ${(tier.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS) / 1000} s` };
  const reason = result.code === 0 ? 'it serves no HEAD for this repository' : failureReason(result);
  return { state: UNREACHABLE.test(result.stderrTail.join('\n')) ? 'down' : 'missing', url, reason };
}

/**
 * The tier's state for a first clone: while it is reachable but lacks the repo, probe again until it has it or
 * `waitMs` has passed (it is probably cloning the repo right now).
 */
export async function probeTierForClone(tier: TierSettings, repo: Repo, runtime: Runtime, signal: AbortSignal | undefined, onWait: (reason: string) => void): Promise<TierState> {
  const deadline = Date.now() + tier.waitMs;
  let state = await probeTier(tier, repo, runtime, signal);
  let told = false;
  while (state.state === 'missing' && Date.now() < deadline && !signal?.aborted) {
    if (!told) onWait(state.reason);
    told = true;
    try {
      await sleep(Math.min(tier.pollMs ?? DEFAULT_POLL_MS, Math.max(0, deadline - Date.now())), undefined, { signal });
    } catch {
      break;
    }
    state = await probeTier(tier, repo, runtime, signal);
  }
  return state;
}

/**
 * An AbortSignal that fires when `stallMs` pass without `progress()` being called, or when `parent` fires.
 * `stalled()` tells the two apart.
 */
export function stallWatchdog(stallMs: number, parent: AbortSignal | undefined): { signal: AbortSignal; progress(): void; stalled(): boolean; dispose(): void } {
  const controller = new AbortController();
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      controller.abort();
    }, stallMs);
  };
  arm();
  return {
    signal: parent ? AbortSignal.any([parent, controller.signal]) : controller.signal,
    progress: arm,
    stalled: () => stalled,
    dispose: () => clearTimeout(timer),
  };
}
