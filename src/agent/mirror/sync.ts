/**
 * One sync pass over the configured repos (bounded parallelism), with metrics and log events per repo.
 */
import type { AgentOptions, Repo } from '../cli.js';
import { GitError } from '../git/run.js';
import { LockAbortedError } from './lock.js';
import { recordFetch, type AgentMetrics } from '../metrics.js';
import { countPacks } from '../maintenance/maintain.js';
import { countRefs, diskUsage, mirrorDir, mirrorProblem, syncMirror, type MirrorContext, type SyncResult } from './mirror.js';
import { claimRepos } from './orphans.js';

export type RepoOutcome = { readonly repo: Repo; readonly ok: true; readonly result: SyncResult } | { readonly repo: Repo; readonly ok: false; readonly reason: string };

export function errorMessage(error: unknown): string {
  if (error instanceof GitError || error instanceof LockAbortedError) return error.message;
  if (error instanceof Error) return error.message.split('\n')[0] ?? 'unknown error';
  return String(error);
}

async function observeMirror(ctx: MirrorContext, metrics: AgentMetrics, repo: Repo): Promise<void> {
  try {
    metrics.bytes.set({ repo: repo.name }, await diskUsage(mirrorDir(ctx.cacheDir, repo)));
    metrics.refs.set({ repo: repo.name }, await countRefs(ctx, repo));
    metrics.packs.set({ repo: repo.name }, await countPacks(mirrorDir(ctx.cacheDir, repo)));
  } catch {
    // the mirror vanished (moved aside by another agent): the next pass measures again
  }
}

export async function syncRepo(ctx: MirrorContext, repo: Repo, metrics: AgentMetrics | undefined): Promise<RepoOutcome> {
  const started = process.hrtime.bigint();
  const seconds = (): number => Number(process.hrtime.bigint() - started) / 1e9;
  try {
    // This agent serves the repo: its mirror is nobody's orphan (orphans.ts).
    await claimRepos(ctx.cacheDir, [repo.key]);
    const result = await syncMirror(ctx, repo);
    if (result.action === 'coalesced') {
      ctx.logger.info('fetch_coalesced', { repo: repo.name, reason: 'another agent fetched after this one started waiting' });
      metrics?.coalesced.inc({ repo: repo.name });
      // The mirror is as fresh as that other fetch: without this, agents that keep coalescing on a shared
      // volume would look stale to the staleness alert.
      metrics?.lastSuccessTimestamp.set({ repo: repo.name }, result.freshAt / 1000);
    } else {
      ctx.logger.info(result.action === 'cloned' ? 'clone_done' : 'fetch_done', {
        repo: repo.name,
        seconds: Math.round(result.fetchMs) / 1000,
        ...(ctx.tier ? { source: result.source === 'tier' ? 'upstream cache' : 'git host' } : {}),
      });
      if (metrics) recordFetch(metrics, repo.name, 'success', result.fetchMs / 1000);
      if (metrics && result.tierProblem !== undefined) metrics.upstreamCacheFallback.inc({ repo: repo.name });
    }
    if (metrics) await observeMirror(ctx, metrics, repo);
    return { repo, ok: true, result };
  } catch (error) {
    const reason = errorMessage(error);
    if (ctx.signal?.aborted) {
      ctx.logger.info('sync_stopped', { repo: repo.name });
      return { repo, ok: false, reason: 'stopped' };
    }
    ctx.logger.error('sync_failed', { repo: repo.name, reason });
    if (metrics) recordFetch(metrics, repo.name, 'error', seconds());
    return { repo, ok: false, reason };
  }
}

export async function syncAll(ctx: MirrorContext, options: Pick<AgentOptions, 'repos' | 'parallel'>, metrics?: AgentMetrics): Promise<RepoOutcome[]> {
  const outcomes: RepoOutcome[] = [];
  const queue = [...options.repos];
  const worker = async (): Promise<void> => {
    for (let repo = queue.shift(); repo; repo = queue.shift()) outcomes.push(await syncRepo(ctx, repo, metrics));
  };
  await Promise.all(Array.from({ length: Math.min(options.parallel, options.repos.length) }, worker));
  return options.repos.map((repo) => outcomes.find((o) => o.repo === repo) as RepoOutcome);
}

/** True when the repo's mirror can be served (present, complete, not shallow). */
export async function mirrorUsable(cacheDir: string, repo: Repo): Promise<boolean> {
  return (await mirrorProblem(mirrorDir(cacheDir, repo))) === undefined;
}
