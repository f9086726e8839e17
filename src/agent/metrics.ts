/**
 * Prometheus metrics. The contract's four (`git_cache_bytes`, `git_cache_last_fetch_seconds`,
 * `git_cache_last_success_timestamp_seconds`, `git_cache_fetch_total{result}`) plus a duration histogram, a
 * ref count, readiness, the agent-wide gauges the alert rules in monitoring/ compare with (refresh interval,
 * volume size and free space), maintenance (packs per mirror, last run's duration, runs by result) and the
 * default process metrics. The `repo` label is the repo's name only.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { MAINTENANCE_RESULTS, type MaintenanceReport } from './maintenance/maintain.js';

export const FETCH_RESULTS = ['success', 'error'] as const;
export type FetchResult = (typeof FETCH_RESULTS)[number];

export interface AgentMetrics {
  readonly registry: Registry;
  readonly bytes: Gauge<'repo'>;
  readonly lastFetchSeconds: Gauge<'repo'>;
  readonly lastSuccessTimestamp: Gauge<'repo'>;
  readonly fetchTotal: Counter<'repo' | 'result'>;
  readonly fetchDuration: Histogram<'repo' | 'result'>;
  readonly refs: Gauge<'repo'>;
  readonly coalesced: Counter<'repo'>;
  readonly upstreamCacheFallback: Counter<'repo'>;
  readonly orphanBytes: Gauge;
  readonly orphansDeleted: Counter;
  readonly packs: Gauge<'repo'>;
  readonly lastMaintenanceSeconds: Gauge<'repo'>;
  readonly maintenanceTotal: Counter<'repo' | 'result'>;
  readonly ready: Gauge;
  readonly refreshIntervalSeconds: Gauge;
  readonly volumeSizeBytes: Gauge;
  readonly volumeAvailableBytes: Gauge;
}

export interface VolumeStats {
  readonly sizeBytes: number;
  readonly availableBytes: number;
}

/** Where the agent-wide gauges come from. */
export interface AgentGaugeSources {
  readonly refreshIntervalSeconds: number;
  /** `--volume-size`: the limit the kubelet enforces (emptyDir sizeLimit), which the filesystem does not show. */
  readonly volumeSizeBytes: number | undefined;
  /** The cache dir's filesystem (statfs), read at each scrape. */
  readonly volumeStats: () => Promise<VolumeStats>;
}

export function createMetrics(repoNames: readonly string[], sources: AgentGaugeSources): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client exposes these gauges with a `_total` suffix, which `promtool check metrics` rejects (that
  // suffix is for counters); the exposition must lint clean, so they are dropped.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  const registers = [registry];
  const metrics: AgentMetrics = {
    registry,
    bytes: new Gauge({ name: 'git_cache_bytes', help: 'Size of the mirror on disk in bytes.', labelNames: ['repo'], registers }),
    lastFetchSeconds: new Gauge({ name: 'git_cache_last_fetch_seconds', help: 'Duration of the last fetch (or clone) in seconds.', labelNames: ['repo'], registers }),
    lastSuccessTimestamp: new Gauge({
      name: 'git_cache_last_success_timestamp_seconds',
      help: 'Unix time of the last successful fetch (or clone).',
      labelNames: ['repo'],
      registers,
    }),
    fetchTotal: new Counter({ name: 'git_cache_fetch_total', help: 'Fetches (and clones) by result.', labelNames: ['repo', 'result'], registers }),
    fetchDuration: new Histogram({
      name: 'git_cache_fetch_duration_seconds',
      help: 'Duration of fetches (and clones) in seconds, by result.',
      labelNames: ['repo', 'result'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers,
    }),
    refs: new Gauge({ name: 'git_cache_refs', help: 'Number of refs in the mirror.', labelNames: ['repo'], registers }),
    coalesced: new Counter({
      name: 'git_cache_fetch_coalesced_total',
      help: 'Syncs skipped because another agent sharing the cache dir fetched meanwhile.',
      labelNames: ['repo'],
      registers,
    }),
    upstreamCacheFallback: new Counter({
      name: 'git_cache_upstream_cache_fallback_total',
      help: 'Successful syncs that went to the git host because the upstream cache tier (--upstream-cache) was down or lacked the repo.',
      labelNames: ['repo'],
      registers,
    }),
    orphanBytes: new Gauge({
      name: 'git_cache_orphan_bytes',
      help: 'Bytes on disk of mirrors in the cache dir that no agent serves any more, not yet past their grace period (--orphan-grace).',
      registers,
    }),
    orphansDeleted: new Counter({ name: 'git_cache_orphans_deleted_total', help: 'Mirrors deleted because no agent served them for the grace period.', registers }),
    packs: new Gauge({ name: 'git_cache_packs', help: 'Pack files in the mirror (each with its .idx).', labelNames: ['repo'], registers }),
    lastMaintenanceSeconds: new Gauge({
      name: 'git_cache_last_maintenance_seconds',
      help: 'Duration of the last maintenance run (roll-up of packs, multi-pack-index, bitmap, commit-graph) in seconds.',
      labelNames: ['repo'],
      registers,
    }),
    maintenanceTotal: new Counter({
      name: 'git_cache_maintenance_total',
      help: 'Maintenance runs by result: success, error, timeout (stopped at the budget), skipped (another agent held the lock).',
      labelNames: ['repo', 'result'],
      registers,
    }),
    ready: new Gauge({ name: 'git_cache_ready', help: '1 when every mirror is present (the /readyz answer), else 0.', registers }),
    refreshIntervalSeconds: new Gauge({ name: 'git_cache_refresh_interval_seconds', help: 'The configured refresh interval (serve --interval) in seconds.', registers }),
    volumeSizeBytes: new Gauge({
      name: 'git_cache_volume_size_bytes',
      help: 'Size of the cache volume in bytes: --volume-size when given, else the size of the cache dir\'s filesystem.',
      registers,
      async collect() {
        if (sources.volumeSizeBytes !== undefined) return;
        const stats = await statsOrUndefined(sources);
        if (stats) this.set(stats.sizeBytes);
      },
    }),
    volumeAvailableBytes: new Gauge({
      name: 'git_cache_volume_available_bytes',
      help: 'Bytes available to unprivileged users on the cache dir\'s filesystem.',
      registers,
      async collect() {
        const stats = await statsOrUndefined(sources);
        if (stats) this.set(stats.availableBytes);
      },
    }),
  };
  metrics.refreshIntervalSeconds.set(sources.refreshIntervalSeconds);
  if (sources.volumeSizeBytes !== undefined) metrics.volumeSizeBytes.set(sources.volumeSizeBytes);
  for (const repo of repoNames) {
    for (const result of FETCH_RESULTS) metrics.fetchTotal.inc({ repo, result }, 0);
    metrics.coalesced.inc({ repo }, 0);
    metrics.upstreamCacheFallback.inc({ repo }, 0);
    for (const result of MAINTENANCE_RESULTS) metrics.maintenanceTotal.inc({ repo, result }, 0);
  }
  metrics.ready.set(0);
  metrics.orphanBytes.set(0);
  return metrics;
}

export function recordFetch(metrics: AgentMetrics, repo: string, result: FetchResult, seconds: number): void {
  metrics.fetchTotal.inc({ repo, result });
  metrics.fetchDuration.observe({ repo, result }, seconds);
  metrics.lastFetchSeconds.set({ repo }, seconds);
  if (result === 'success') metrics.lastSuccessTimestamp.set({ repo }, Date.now() / 1000);
}

export function recordMaintenance(metrics: AgentMetrics, repo: string, report: MaintenanceReport): void {
  if (report.result === 'stopped') return;
  metrics.maintenanceTotal.inc({ repo, result: report.result });
  if (report.result === 'skipped') return;
  metrics.lastMaintenanceSeconds.set({ repo }, report.seconds);
  if (report.packsAfter !== undefined) metrics.packs.set({ repo }, report.packsAfter);
}

/** A failed statfs (the volume gone mid-scrape) keeps the last value rather than failing the whole scrape. */
async function statsOrUndefined(sources: AgentGaugeSources): Promise<VolumeStats | undefined> {
  try {
    return await sources.volumeStats();
  } catch {
    return undefined;
  }
}
