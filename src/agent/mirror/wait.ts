/**
 * `git-cache wait`: for read-only consumers of a shared cache. Polls until every mirror is present and
 * complete; never writes, never contacts an upstream.
 * - In a directory (`--cache-dir`: the keeper's claim, the node's hostPath): each mirror is checked on disk.
 * - At a server (`--cache-url`: the node Service for pods without the node directory): each mirror must answer
 *   a bounded `git ls-remote` with its HEAD, which also proves the pod can reach it (a NetworkPolicy that has
 *   not admitted the pod yet refuses it; a node agent still cloning leaves the Service without an endpoint).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentOptions, Repo } from '../cli.js';
import type { Runtime } from '../git/runtime.js';
import type { Logger } from '../log.js';
import { mirrorDir, mirrorProblem } from './mirror.js';
import { probeTier } from './tier.js';

export class WaitTimeoutError extends Error {}

/** Why `repo` cannot be read yet, or undefined when it can. */
type MirrorCheck = (repo: Repo, signal: AbortSignal) => Promise<string | undefined>;

async function pollUntilPresent(options: AgentOptions, logger: Logger, signal: AbortSignal, pollMs: number, check: MirrorCheck): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let lastReport = 0;
  for (;;) {
    const missing: string[] = [];
    for (const repo of options.repos) {
      const problem = await check(repo, signal);
      if (problem) missing.push(`${repo.name} (${problem})`);
    }
    if (missing.length === 0) {
      logger.info('mirrors_present', { repos: options.repos.map((r) => r.name) });
      return;
    }
    if (signal.aborted) throw new WaitTimeoutError('stopped while waiting for mirrors');
    if (Date.now() >= deadline) {
      throw new WaitTimeoutError(`timed out after ${options.timeoutMs / 1000}s waiting for mirrors: ${missing.join(', ')}`);
    }
    if (Date.now() - lastReport >= 10_000) {
      lastReport = Date.now();
      logger.info('waiting_for_mirrors', { missing });
    }
    // timers/promises removes its abort listener when the timer fires; one added per poll would pile up.
    await sleep(Math.min(pollMs, Math.max(0, deadline - Date.now())), undefined, { signal }).catch(() => undefined);
    if (signal.aborted) throw new WaitTimeoutError('stopped while waiting for mirrors');
  }
}

export async function waitForMirrors(options: AgentOptions, logger: Logger, signal: AbortSignal, pollMs = 1000): Promise<void> {
  await pollUntilPresent(options, logger, signal, pollMs, async (repo) => {
    const mirror = mirrorDir(options.cacheDir, repo);
    const problem = await mirrorProblem(mirror);
    return problem ? `${mirror}: ${problem === 'not-a-directory' ? 'missing' : problem}` : undefined;
  });
}

/** `wait --cache-url BASE`: until BASE/<key>.git answers for every repo (git with the base environment only). */
export async function waitForServedMirrors(options: AgentOptions, runtime: Runtime, logger: Logger, signal: AbortSignal, pollMs = 1000): Promise<void> {
  const base = options.cacheUrl;
  if (base === undefined) throw new Error('waitForServedMirrors needs --cache-url');
  await pollUntilPresent(options, logger, signal, pollMs, async (repo, stop) => {
    const state = await probeTier({ base, waitMs: 0 }, repo, runtime, stop);
    return state.state === 'ready' ? undefined : `${state.url}: ${state.reason}`;
  });
}
