/**
 * Prometheus metrics. The contract's four (`git_cache_bytes`, `git_cache_last_fetch_seconds`,
 * `git_cache_last_success_timestamp_seconds`, `git_cache_fetch_total{result}`) plus a duration histogram, a
 * ref count, readiness and the default process metrics. The `repo` label is the repo's name only.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
  readonly ready: Gauge;
}

export function createMetrics(repoNames: readonly string[]): AgentMetrics {
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
    ready: new Gauge({ name: 'git_cache_ready', help: '1 when every mirror is present (the /readyz answer), else 0.', registers }),
  };
  for (const repo of repoNames) {
    for (const result of FETCH_RESULTS) metrics.fetchTotal.inc({ repo, result }, 0);
    metrics.coalesced.inc({ repo }, 0);
  }
  metrics.ready.set(0);
  return metrics;
}

export function recordFetch(metrics: AgentMetrics, repo: string, result: FetchResult, seconds: number): void {
  metrics.fetchTotal.inc({ repo, result });
  metrics.fetchDuration.observe({ repo, result }, seconds);
  metrics.lastFetchSeconds.set({ repo }, seconds);
  if (result === 'success') metrics.lastSuccessTimestamp.set({ repo }, Date.now() / 1000);
}
