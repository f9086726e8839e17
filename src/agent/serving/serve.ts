/**
 * `git-cache serve`: sync, then keep every mirror fresh. Each repo has its own schedule (interval with jitter,
 * exponential backoff after failures); a failing upstream leaves the last good mirror in place and readiness
 * as it was. Mirrors of repos no agent serves any more are deleted after --orphan-grace. SIGHUP refreshes now;
 * POST /v1/refresh?repo=NAME refreshes one repo now and answers once done (refresh.ts); SIGTERM/SIGINT stop
 * running git (no broken mirror: see ../mirror/mirror.ts) and exit 0.
 */
import type { Server } from 'node:http';
import { errorMessage, syncRepo, mirrorUsable } from '../mirror/sync.js';
import { defaultSchedule, nextDelay } from './backoff.js';
import type { AgentOptions, Repo } from '../cli.js';
import { startGitDaemon, type RunningDaemon } from './git-daemon.js';
import type { Logger } from '../log.js';
import type { AgentMetrics } from '../metrics.js';
import type { MirrorContext } from '../mirror/mirror.js';
import { boundPort, closeServer, startMetricsHttp, startRefreshHttp, type HttpRoutes } from './http.js';
import { RefreshQueue } from './refresh.js';
import type { MaintenanceHook } from '../maintenance/hook.js';
import { claimRepos, deleteOrphans } from '../mirror/orphans.js';

/** How often a serving agent renews its claims and looks for orphans, at most. */
const CLAIM_EVERY_MS = 3_600_000;

export interface ServeDeps {
  readonly options: AgentOptions;
  readonly ctx: MirrorContext;
  readonly logger: Logger;
  readonly metrics: AgentMetrics;
  /** Aborted on SIGTERM: stops git and the loops. */
  readonly stop: AbortController;
  /** The volume's refresh token (undefined: only loopback clients may ask for a refresh). */
  readonly refreshToken: string | undefined;
  /** Maintains a due mirror after a refresh (after readiness, so it never delays the pod's start). */
  readonly maintenance: MaintenanceHook;
}

/** A sleep per repo that SIGHUP (all), a refresh request (one repo) or SIGTERM (abort) ends early. */
class Waker {
  private wakers = new Map<() => void, string>();
  sleep(ms: number, signal: AbortSignal, key: string): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.set(done, key);
      signal.addEventListener('abort', done, { once: true });
    });
  }
  wake(key: string): void {
    for (const [wake, sleeper] of [...this.wakers]) if (sleeper === key) wake();
  }
  wakeAll(): void {
    for (const wake of [...this.wakers.keys()]) wake();
  }
}

/** An abortable sleep that nothing else wakes. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export async function serve(deps: ServeDeps): Promise<void> {
  const { options, ctx, logger, metrics, stop } = deps;
  const schedule = defaultSchedule(options.intervalMs);
  const usable = new Map<string, boolean>(options.repos.map((repo) => [repo.key, false]));
  let ready = false;
  const updateReady = (): void => {
    if (!ready && [...usable.values()].every(Boolean)) {
      ready = true;
      metrics.ready.set(1);
      logger.info('ready', { repos: options.repos.map((r) => r.name) });
    }
  };
  const waker = new Waker();
  const refreshQueue = new RefreshQueue(options.refreshLimits, (key) => waker.wake(key));
  let pendingHangup = new Set<string>();

  const onHup = (): void => {
    logger.info('sighup', { action: 'refreshing every repo now' });
    pendingHangup = new Set(options.repos.map((r) => r.key));
    waker.wakeAll();
  };
  process.on('SIGHUP', onHup);

  const servers: Server[] = [];
  let daemon: RunningDaemon | undefined;
  try {
    const routes: HttpRoutes = {
      metrics,
      isReady: () => ready,
      refresh: { token: deps.refreshToken, repos: options.repos, queue: refreshQueue, logger, cacheDir: options.cacheDir },
    };
    if (options.metricsPort !== 0) {
      const server = await startMetricsHttp(routes, options.metricsPort, options.metricsAddress);
      servers.push(server);
      logger.info('http_listening', { address: options.metricsAddress, port: boundPort(server, options.metricsPort) });
    }
    if (options.refreshPort !== undefined) {
      const server = await startRefreshHttp(routes, options.refreshPort, options.refreshAddress);
      servers.push(server);
      logger.info('refresh_listening', { address: options.refreshAddress, port: boundPort(server, options.refreshPort), token: deps.refreshToken !== undefined });
    }
    if (options.gitDaemonPort !== undefined) {
      // A reader's fetch of a commit the mirror lacks asks for a refresh exactly as POST /v1/refresh does.
      const refresh = async (repo: Repo): Promise<string> => {
        const queued = refreshQueue.request(repo.key);
        if (queued === 'busy') return 'busy';
        const answer = await queued;
        return answer.kind === 'stopped' ? 'stopped' : answer.outcome.ok ? answer.outcome.result.action : 'failed';
      };
      daemon = await startGitDaemon(
        { cacheDir: options.cacheDir, repos: options.repos, address: options.gitDaemonAddress, port: options.gitDaemonPort, env: ctx.runtime.baseEnv, refresh },
        logger,
      );
    }

    const loop = async (repo: Repo): Promise<void> => {
      let failures = 0;
      let lastStart = 0;
      while (!stop.signal.aborted) {
        pendingHangup.delete(repo.key);
        // Refresh requests that arrived before this sync starts are answered by it.
        const requests = refreshQueue.take(repo.key);
        lastStart = Date.now();
        const outcome = await syncRepo(ctx, repo, metrics);
        // A sync cut short by SIGTERM is "the agent is stopping" (503), not a failed fetch (502).
        RefreshQueue.answer(requests, stop.signal.aborted ? { kind: 'stopped' } : { kind: 'done', outcome });
        if (stop.signal.aborted) break;
        failures = outcome.ok ? 0 : failures + 1;
        if (!usable.get(repo.key)) {
          // Ready once the mirror can be served: after a success, or a failed refresh of a mirror that an
          // earlier run left in place (the last good mirror).
          usable.set(repo.key, outcome.ok || (await mirrorUsable(options.cacheDir, repo)));
          updateReady();
        }
        if (outcome.ok && outcome.result.action !== 'coalesced') await deps.maintenance.afterRefresh(ctx, repo, metrics);
        const delay = nextDelay(schedule, failures);
        if (failures > 0) logger.info('retry_scheduled', { repo: repo.name, failures, seconds: Math.round(delay / 100) / 10 });
        if (pendingHangup.has(repo.key)) continue;
        // A refresh request (waiting, or arriving while the loop sleeps) runs the next sync now, but never
        // sooner than minIntervalMs after the last one started: a flood of requests is one fetch per interval.
        if (!refreshQueue.hasWaiters(repo.key)) await waker.sleep(delay, stop.signal, repo.key);
        if (refreshQueue.hasWaiters(repo.key)) await pause(Math.max(0, lastStart + options.refreshLimits.minIntervalMs - Date.now()), stop.signal);
      }
    };
    // This agent's claims stay fresher than any grace period, whatever the refresh interval; mirrors of repos
    // nobody serves any more go after the grace period (see ../mirror/orphans.ts).
    const own = options.repos.map((repo) => repo.key);
    const graceMs = options.orphanGraceMs;
    const orphanLoop = async (): Promise<void> => {
      const every = Math.min(CLAIM_EVERY_MS, Math.max(1000, (graceMs ?? Infinity) / 2));
      while (!stop.signal.aborted) {
        try {
          await claimRepos(options.cacheDir, own);
          if (graceMs !== undefined) {
            const scan = await deleteOrphans(options.cacheDir, new Set(own), graceMs, logger);
            metrics.orphanBytes.set(scan.pendingBytes);
            metrics.orphansDeleted.inc(scan.deleted.length);
          }
        } catch (error) {
          logger.warn('orphan_scan_failed', { reason: errorMessage(error) });
        }
        await waker.sleep(every, stop.signal, '.orphans');
      }
    };
    await Promise.all([...options.repos.map((repo) => loop(repo)), orphanLoop()]);
  } finally {
    process.off('SIGHUP', onHup);
    refreshQueue.stopAll();
    await daemon?.stop();
    for (const server of servers) await closeServer(server);
  }
}
