/**
 * `git-cache wait`: for read-only consumers of a shared cache. Polls until every mirror is present and
 * complete; never writes, never contacts an upstream.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentOptions } from '../cli.js';
import type { Logger } from '../log.js';
import { mirrorDir, mirrorProblem } from './mirror.js';

export class WaitTimeoutError extends Error {}

export async function waitForMirrors(options: AgentOptions, logger: Logger, signal: AbortSignal, pollMs = 1000): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let lastReport = 0;
  for (;;) {
    const missing: string[] = [];
    for (const repo of options.repos) {
      const mirror = mirrorDir(options.cacheDir, repo);
      const problem = await mirrorProblem(mirror);
      if (problem) missing.push(`${repo.name} (${mirror}: ${problem === 'not-a-directory' ? 'missing' : problem})`);
    }
    if (missing.length === 0) {
      logger.info('mirrors_present', { repos: options.repos.map((r) => r.name) });
      return;
    }
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
