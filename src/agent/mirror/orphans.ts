/**
 * Mirrors of repos that no agent serves any more (removed from the config) are deleted after a grace period.
 *
 * Several agents may share one cache directory with different repo sets (two configs on one node directory,
 * sidecars of different workloads on one claim), so "not in my --repo list" does not make a mirror an orphan.
 * Every writing agent claims the repos it serves at every pass by touching `<dir>/.claims/<key>`; a mirror is
 * an orphan once nobody has claimed it for the grace period (without a claim file yet: since its last fetch).
 *
 * Why a grace period at all: clones made with `--reference` borrow the mirror's objects through
 * `objects/info/alternates`. Deleting the mirror breaks every such clone still in use (a Job started before
 * the config change, a long-lived checkout). The grace period (default 24h) lets them finish; clones that must
 * outlive it use `--dissociate`.
 *
 * Deletion happens under the repo's lock, taken without waiting (a busy lock means an agent is at work on it):
 * the mirror is first renamed into `.staging` (one atomic step, so no reader opens a half-deleted mirror), then
 * removed.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLAIMS_DIR_NAME, STAGING_DIR_NAME } from '../../shared/names.js';
import { mirrorKeyOfEntry } from '../../shared/repo-url.js';
import type { Logger } from '../log.js';
import { acquireLock } from './lock.js';
import { diskUsage, lockPath, readMarker } from './mirror.js';

function claimPath(cacheDir: string, key: string): string {
  return join(cacheDir, CLAIMS_DIR_NAME, key);
}

/** Marks `keys` as served by a live agent, now. */
export async function claimRepos(cacheDir: string, keys: readonly string[], now = new Date()): Promise<void> {
  await mkdir(join(cacheDir, CLAIMS_DIR_NAME), { recursive: true });
  for (const key of keys) {
    const path = claimPath(cacheDir, key);
    try {
      await utimes(path, now, now);
    } catch {
      await writeFile(path, '', { mode: 0o644 });
      await utimes(path, now, now);
    }
  }
}

async function mtimeMs(path: string): Promise<number | undefined> {
  try {
    return (await lstat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}

/** When a live agent last vouched for the mirror of `key`: its claim, else its last fetch, else its directory. */
async function lastClaimed(cacheDir: string, key: string): Promise<number> {
  const claim = await mtimeMs(claimPath(cacheDir, key));
  if (claim !== undefined) return claim;
  const mirror = join(cacheDir, `${key}.git`);
  return (await readMarker(mirror))?.fetchCompletedAt ?? (await mtimeMs(mirror)) ?? 0;
}

export interface OrphanScan {
  /** Mirrors deleted in this pass. */
  readonly deleted: readonly { key: string; bytes: number }[];
  /** Bytes on disk of orphans still within their grace period (or whose lock was busy). */
  readonly pendingBytes: number;
}

/**
 * One pass: every `<key>.git` directory in `cacheDir` that is not one of `ownKeys` and unclaimed for longer than
 * `graceMs` is deleted. Symlinks and anything not named like a mirror are never touched.
 */
export async function deleteOrphans(cacheDir: string, ownKeys: ReadonlySet<string>, graceMs: number, logger: Logger, now = Date.now()): Promise<OrphanScan> {
  let entries: string[];
  try {
    entries = await readdir(cacheDir);
  } catch {
    return { deleted: [], pendingBytes: 0 };
  }
  const deleted: { key: string; bytes: number }[] = [];
  let pendingBytes = 0;
  for (const entry of entries) {
    const key = mirrorKeyOfEntry(entry);
    if (!key || ownKeys.has(key)) continue;
    const mirror = join(cacheDir, entry);
    const info = await lstat(mirror).catch(() => undefined);
    if (!info?.isDirectory()) continue;
    const bytes = await diskUsage(mirror);
    const unclaimedMs = now - (await lastClaimed(cacheDir, key));
    if (unclaimedMs < graceMs) {
      pendingBytes += bytes;
      continue;
    }
    const lock = await acquireLock(lockPath(cacheDir, key), { wait: false });
    if (!lock) {
      pendingBytes += bytes;
      continue;
    }
    try {
      // Claimed meanwhile (an agent that serves it again started): keep it.
      if (now - (await lastClaimed(cacheDir, key)) < graceMs) {
        pendingBytes += bytes;
        continue;
      }
      const aside = join(cacheDir, STAGING_DIR_NAME, `${key}.orphan-${randomBytes(4).toString('hex')}`);
      await mkdir(join(cacheDir, STAGING_DIR_NAME), { recursive: true });
      await rename(mirror, aside);
      await rm(aside, { recursive: true, force: true });
      await rm(claimPath(cacheDir, key), { force: true });
      deleted.push({ key, bytes });
      logger.info('orphan_deleted', { key, bytes, unclaimedHours: Math.round(unclaimedMs / 360_000) / 10, reason: 'no agent serves this repository any more' });
    } finally {
      await lock.release();
    }
  }
  return { deleted, pendingBytes };
}
