/**
 * When maintenance runs: after a refresh that fetched or cloned (`sync`, `serve`), if the mirror is due (more
 * than 50 packs, no commit-graph, or unreadable pack halves left by a killed run), without waiting for the
 * lock; and on request (`git-cache maintain`), waiting for it. A run that failed or ran out of budget is not
 * retried automatically for an hour, so a mirror too big for the budget does not burn CPU after every fetch.
 */
import { readdir } from 'node:fs/promises';
import { mirrorKeyOfEntry, mirrorPathForKey } from '../../shared/repo-url.js';
import type { Repo } from '../cli.js';
import type { Logger } from '../log.js';
import { recordMaintenance, type AgentMetrics } from '../metrics.js';
import { mirrorDir, readMarker, type MirrorContext } from '../mirror/mirror.js';
import { maintainMirror, maintenanceDue, type MaintenanceReport, type MaintenanceTrigger } from './maintain.js';

export const RETRY_AFTER_FAILURE_MS = 60 * 60 * 1000;

export interface MaintenanceSettings {
  /** false: `--no-maintenance` (sync and serve never maintain). */
  readonly enabled: boolean;
  readonly budgetMs: number;
  readonly commitGraph: boolean;
}

export interface MaintenanceHook {
  /** Runs maintenance when the mirror is due; undefined when it did not run. */
  afterRefresh(ctx: MirrorContext, repo: Repo, metrics?: AgentMetrics): Promise<MaintenanceReport | undefined>;
}

export function logMaintenance(logger: Logger, repo: Repo, trigger: MaintenanceTrigger, report: MaintenanceReport): void {
  const figures = {
    repo: repo.name,
    trigger,
    seconds: Math.round(report.seconds * 1000) / 1000,
    packsBefore: report.packsBefore,
    packsAfter: report.packsAfter,
    packsDeleted: report.packsDeleted,
    steps: report.steps,
  };
  if (report.result === 'success') logger.info('maintenance_done', figures);
  else if (report.result === 'skipped') logger.info('maintenance_skipped', { repo: repo.name, trigger, reason: report.reason });
  else if (report.result === 'stopped') logger.info('maintenance_stopped', { repo: repo.name, trigger });
  else logger.warn('maintenance_failed', { ...figures, result: report.result, reason: report.reason });
}

export function createMaintenanceHook(settings: MaintenanceSettings, now: () => number = Date.now): MaintenanceHook {
  const notBefore = new Map<string, number>();
  return {
    async afterRefresh(ctx, repo, metrics) {
      if (!settings.enabled || (notBefore.get(repo.key) ?? 0) > now()) return undefined;
      const trigger = await maintenanceDue(mirrorDir(ctx.cacheDir, repo), settings.commitGraph).catch(() => undefined);
      if (!trigger) return undefined;
      ctx.logger.info('maintenance_started', { repo: repo.name, trigger });
      const report = await maintainMirror(ctx, repo, { budgetMs: settings.budgetMs, waitForLock: false, trigger, commitGraph: settings.commitGraph });
      logMaintenance(ctx.logger, repo, trigger, report);
      if (metrics) recordMaintenance(metrics, repo.name, report);
      if (report.result === 'error' || report.result === 'timeout') notBefore.set(repo.key, now() + RETRY_AFTER_FAILURE_MS);
      return report;
    },
  };
}

/** Every complete-looking mirror in the cache dir (`<key>.git`), for `git-cache maintain` without `--repo`. */
export async function mirrorsInCacheDir(cacheDir: string): Promise<Repo[]> {
  const repos: Repo[] = [];
  for (const entry of (await readdir(cacheDir)).sort()) {
    const key = mirrorKeyOfEntry(entry);
    if (!key) continue;
    const marker = await readMarker(mirrorPathForKey(cacheDir, key));
    // The key names it in logs: the URL is not known to be free of anything sensitive.
    repos.push({ name: key, url: marker?.url ?? '', key });
  }
  return repos;
}
