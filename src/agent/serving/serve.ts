/**
 * `git-cache serve`: sync, then keep every mirror fresh. Each repo has its own schedule (interval with jitter,
 * exponential backoff after failures); a failing upstream leaves the last good mirror in place and readiness
 * as it was. Mirrors of repos no agent serves any more are deleted after --orphan-grace. SIGHUP refreshes now;
 * SIGTERM/SIGINT stop running git (no broken mirror: see ../mirror/mirror.ts) and exit 0.
 */
import { createServer, type Server } from 'node:http';
import { errorMessage, syncRepo, mirrorUsable } from '../mirror/sync.js';
import { defaultSchedule, nextDelay } from './backoff.js';
import type { AgentOptions, Repo } from '../cli.js';
import { startGitDaemon, type RunningDaemon } from './git-daemon.js';
import type { Logger } from '../log.js';
import type { AgentMetrics } from '../metrics.js';
import type { MirrorContext } from '../mirror/mirror.js';
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
  /** Maintains a due mirror after a refresh (after readiness, so it never delays the pod's start). */
  readonly maintenance: MaintenanceHook;
}

function startHttp(deps: ServeDeps, isReady: () => boolean): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ready = isReady();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'waiting for the first sync\n');
    } else if (path === '/metrics') {
      deps.metrics.registry
        .metrics()
        .then((body) => res.writeHead(200, { 'content-type': deps.metrics.registry.contentType }).end(body))
        .catch((error: unknown) => res.writeHead(500).end(String(error)));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz, /readyz\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.options.metricsPort, deps.options.metricsAddress, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** A sleep that SIGHUP (wake) or SIGTERM (abort) ends early. */
class Waker {
  private wakers = new Set<() => void>();
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
  wakeAll(): void {
    for (const wake of [...this.wakers]) wake();
  }
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
  let pendingHangup = new Set<string>();

  const onHup = (): void => {
    logger.info('sighup', { action: 'refreshing every repo now' });
    pendingHangup = new Set(options.repos.map((r) => r.key));
    waker.wakeAll();
  };
  process.on('SIGHUP', onHup);

  let server: Server | undefined;
  let daemon: RunningDaemon | undefined;
  try {
    if (options.metricsPort !== 0) {
      server = await startHttp(deps, () => ready);
      const address = server.address();
      logger.info('http_listening', { address: options.metricsAddress, port: typeof address === 'object' && address ? address.port : options.metricsPort });
    }
    if (options.gitDaemonPort !== undefined) {
      daemon = startGitDaemon(
        { cacheDir: options.cacheDir, repos: options.repos, address: options.gitDaemonAddress, port: options.gitDaemonPort, env: ctx.runtime.baseEnv },
        logger,
      );
    }

    const loop = async (repo: Repo): Promise<void> => {
      let failures = 0;
      while (!stop.signal.aborted) {
        pendingHangup.delete(repo.key);
        const outcome = await syncRepo(ctx, repo, metrics);
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
        await waker.sleep(delay, stop.signal);
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
        await waker.sleep(every, stop.signal);
      }
    };
    await Promise.all([...options.repos.map((repo) => loop(repo)), orphanLoop()]);
  } finally {
    process.off('SIGHUP', onHup);
    await daemon?.stop();
    if (server) {
      const s = server;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }
}
