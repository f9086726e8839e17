/**
 * Mirrors: `<dir>/<key>.git`, full bare mirrors that readers may borrow objects from at any moment.
 *
 * - Clone: `git clone --mirror` into `<dir>/.staging/<key>.<random>` (same volume), configure, verify, then
 *   rename(2) to `<key>.git`: a reader sees no mirror or a complete one, never a half-made one.
 * - Update: `git fetch --prune --atomic origin` (refspec `+refs/*:refs/*` from the mirror's config). Objects
 *   arrive before refs move, and --atomic moves all refs in one transaction, so a killed fetch leaves the
 *   previous, valid state.
 * - HEAD follows upstream's default branch (head.ts): checked after a fetch when it dangles, else hourly.
 * - With a tier (`--upstream-cache`, tier.ts) both take objects and refs from another git-cache first, without
 *   credentials, and fall back to the git host; `origin` stays the repo's URL either way.
 * - Everything that writes runs under the repo's flock (lock.ts). Coalescing: after waiting for the lock, an
 *   agent skips its fetch when a fetch that started after it began waiting has completed (the marker file
 *   records when the last successful fetch started).
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CLAIMS_DIR_NAME, LOCK_DIR_NAME, STAGING_DIR_NAME } from '../../shared/names.js';
import { canonicalRepoUrl, mirrorPathForKey } from '../../shared/repo-url.js';
import { writeFileAtomic } from '../atomic-file.js';
import type { Repo } from '../cli.js';
import { credentialEnv, type CredentialSettings } from '../git/credentials.js';
import { classifyLeftover, layoutProblem, stagingKey, type MirrorProblem } from './git-files.js';
import { GitError, failureReason, runGit, type GitResult } from '../git/run.js';
import { acquireLock, type HeldLock } from './lock.js';
import { headCheckDue, parseSymrefHead } from './head.js';
import { DEFAULT_STALL_MS, probeTier, probeTierForClone, stallWatchdog, type TierSettings } from './tier.js';
import { isProgressLine, progressThrottle, type Logger } from '../log.js';
import type { Runtime } from '../git/runtime.js';

/** Written into each mirror after every successful clone or fetch (git ignores unknown files in a git dir). */
export const MARKER_FILE = 'git-cache.json';

export interface Marker {
  /** Wall clock (ms) when the last successful fetch or clone started. */
  readonly fetchStartedAt: number;
  readonly fetchCompletedAt: number;
  readonly url: string;
  /** Wall clock (ms) when HEAD was last set from upstream's (head.ts); absent in markers of older agents. */
  readonly headCheckedAt?: number;
}

/**
 * Borrower safety. Clones made with `--reference` keep only a pointer (objects/info/alternates) to the
 * mirror's objects; if the mirror ever deleted an object that a ref stopped pointing to, such clones would
 * break. So nothing may delete objects: no auto gc, no prune, and preciousObjects makes git itself refuse
 * `git gc`/`repack -d`/`prune` (it needs repository format version 1). `fetch.prune` deletes refs only.
 */
export const MIRROR_CONFIG: ReadonlyArray<readonly [string, string]> = [
  ['core.repositoryformatversion', '1'],
  ['extensions.preciousobjects', 'true'],
  ['gc.auto', '0'],
  ['gc.autodetach', 'false'],
  ['gc.pruneexpire', 'never'],
  ['gc.worktreepruneexpire', 'never'],
  ['maintenance.auto', 'false'],
  ['receive.autogc', 'false'],
  ['fetch.prune', 'true'],
  // Each fetch keeps its pack instead of exploding it into loose objects that nothing would ever pack.
  ['fetch.unpacklimit', '1'],
  ['transfer.unpacklimit', '1'],
  ['core.logallrefupdates', 'false'],
  // Readers fetch commits by id (actions/checkout: +SHA:refs/remotes/origin/BRANCH); protocol v2 allows it
  // anyway, protocol v0 (git daemon, old clients) only with this.
  ['uploadpack.allowreachablesha1inwant', 'true'],
];

export interface MirrorContext {
  readonly cacheDir: string;
  readonly runtime: Runtime;
  readonly logger: Logger;
  readonly credentials: CredentialSettings;
  readonly signal?: AbortSignal | undefined;
  /** Keys whose mirror this process has already checked at start (recovery runs once per repo). */
  readonly recovered: Set<string>;
  readonly progressIntervalMs?: number;
  /** The upstream cache tier, tried before the git host. */
  readonly tier?: TierSettings | undefined;
  /** How often HEAD is compared with upstream's when it does not dangle (head.ts; tests shorten it). */
  readonly headCheckIntervalMs?: number;
}

/** Where a clone or fetch took its objects from, and why not from the tier when there is one. */
interface Transfer {
  readonly fetchMs: number;
  readonly source: 'tier' | 'upstream';
  /** The tier's URL when the objects came from it. */
  readonly tierUrl?: string;
  /** Set when a tier is configured but the git host was used: the tier's problem. */
  readonly tierProblem?: string;
}

export type SyncResult =
  | ({ readonly action: 'cloned' | 'fetched' } & Transfer)
  /** Another agent's fetch, completed at `freshAt` (wall clock ms), made this one unnecessary. */
  | { readonly action: 'coalesced'; readonly fetchMs: 0; readonly freshAt: number };

export function mirrorDir(cacheDir: string, repo: Repo): string {
  return mirrorPathForKey(cacheDir, repo.key);
}

export async function ensureLayout(cacheDir: string): Promise<void> {
  await mkdir(join(cacheDir, STAGING_DIR_NAME), { recursive: true });
  await mkdir(join(cacheDir, CLAIMS_DIR_NAME), { recursive: true });
  await mkdir(join(cacheDir, LOCK_DIR_NAME), { recursive: true });
}

export function lockPath(cacheDir: string, key: string): string {
  return join(cacheDir, LOCK_DIR_NAME, `${key}.lock`);
}

/** Whether a path exists (a symlink counts, whatever it points to). */
export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

export async function readMarker(mirror: string): Promise<Marker | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(join(mirror, MARKER_FILE), 'utf8'));
    if (typeof value === 'object' && value !== null && typeof (value as Marker).fetchStartedAt === 'number') return value as Marker;
  } catch {
    // absent or torn: treated as "no fetch recorded"
  }
  return undefined;
}

async function writeMarker(mirror: string, marker: Marker): Promise<void> {
  await writeFileAtomic(join(mirror, MARKER_FILE), `${JSON.stringify(marker)}\n`, 0o644);
}

/** What readers need: a complete (marker present), non-shallow bare repository. No git process, no writes. */
export async function mirrorProblem(mirror: string): Promise<MirrorProblem | 'incomplete' | undefined> {
  let isDirectory = false;
  try {
    isDirectory = (await lstat(mirror)).isDirectory();
  } catch {
    return 'not-a-directory';
  }
  const problem = layoutProblem({
    isDirectory,
    hasHead: await exists(join(mirror, 'HEAD')),
    hasObjects: await exists(join(mirror, 'objects')),
    hasConfig: await exists(join(mirror, 'config')),
    isShallow: await exists(join(mirror, 'shallow')),
  });
  if (problem) return problem;
  return (await readMarker(mirror)) ? undefined : 'incomplete';
}

interface GitCall {
  readonly repo: Repo;
  readonly lock: HeldLock;
  readonly label: string;
  readonly withCredentials: boolean;
  readonly logProgress: boolean;
  /** Stop git when it has written nothing to stderr for this long (transfers from a tier). */
  readonly stallMs?: number;
}

async function git(ctx: MirrorContext, call: GitCall, args: readonly string[]): Promise<GitResult> {
  const env = { ...ctx.runtime.baseEnv, ...(call.withCredentials ? await credentialEnv(call.repo, ctx.credentials, ctx.runtime, ctx.logger) : {}) };
  const throttle = progressThrottle(ctx.progressIntervalMs ?? 5000);
  const watchdog = call.stallMs === undefined ? undefined : stallWatchdog(call.stallMs, ctx.signal);
  const result = await runGit({
    args,
    env,
    lockFd: call.lock.fd,
    signal: watchdog?.signal ?? ctx.signal,
    onStderrLine: (line) => {
      watchdog?.progress();
      if (isProgressLine(line)) {
        if (call.logProgress && throttle(line)) ctx.logger.info('git_progress', { repo: call.repo.name, op: call.label, progress: line.trim() });
      } else {
        ctx.logger.debug('git_stderr', { repo: call.repo.name, op: call.label, line });
      }
    },
  });
  watchdog?.dispose();
  if (watchdog?.stalled()) throw new GitError(`${call.label}: no progress for ${(call.stallMs ?? 0) / 1000} s`, { ...result, aborted: false });
  if (result.code !== 0) throw new GitError(`${call.label}: ${failureReason(result)}`, result);
  return result;
}

/** Runs `fromTier` with the tier when there is one and it is usable, else (or when it fails) `fromUpstream`. */
async function viaTier(
  ctx: MirrorContext,
  repo: Repo,
  probe: (tier: TierSettings) => ReturnType<typeof probeTier>,
  fromTier: (url: string) => Promise<void>,
  fromUpstream: () => Promise<void>,
  action: string,
): Promise<Omit<Transfer, 'fetchMs'>> {
  if (!ctx.tier) {
    await fromUpstream();
    return { source: 'upstream' };
  }
  const state = await probe(ctx.tier);
  let problem: string;
  if (state.state === 'ready') {
    try {
      await fromTier(state.url);
      return { source: 'tier', tierUrl: state.url };
    } catch (error) {
      if (ctx.signal?.aborted) throw error;
      problem = error instanceof Error ? error.message : String(error);
    }
  } else problem = `${state.state === 'missing' ? 'does not serve this repository' : 'unreachable'}: ${state.reason}`;
  ctx.logger.warn('upstream_cache_unavailable', { repo: repo.name, tier: state.url, reason: problem, action: `${action} from the git host` });
  await fromUpstream();
  return { source: 'upstream', tierProblem: problem };
}

async function configureMirror(ctx: MirrorContext, call: GitCall, gitDir: string): Promise<void> {
  const current = await git(ctx, call, [`--git-dir=${gitDir}`, 'config', '--local', '--list']);
  const have = new Map(current.stdout.split('\n').map((line) => [line.slice(0, line.indexOf('=')).toLowerCase(), line.slice(line.indexOf('=') + 1)]));
  for (const [key, value] of MIRROR_CONFIG) {
    if (have.get(key) !== value) await git(ctx, call, [`--git-dir=${gitDir}`, 'config', '--local', key, value]);
  }
}

/** Moves a bad mirror out of the way (into staging, removed below) so a fresh clone can take its path. */
async function quarantine(ctx: MirrorContext, repo: Repo, mirror: string, reason: string): Promise<void> {
  const aside = join(ctx.cacheDir, STAGING_DIR_NAME, `${repo.key}.broken-${randomBytes(4).toString('hex')}`);
  await rename(mirror, aside);
  ctx.logger.warn('mirror_quarantined', { repo: repo.name, reason, action: 'moved aside and re-cloning' });
  await rm(aside, { recursive: true, force: true });
}

async function removeStagingFor(ctx: MirrorContext, repo: Repo): Promise<void> {
  const stagingRoot = join(ctx.cacheDir, STAGING_DIR_NAME);
  for (const entry of await readdir(stagingRoot)) {
    if (stagingKey(entry) !== repo.key) continue;
    await rm(join(stagingRoot, entry), { recursive: true, force: true });
    ctx.logger.info('staging_removed', { repo: repo.name, entry, reason: 'left by an interrupted clone' });
  }
}

/**
 * Deletes what a dead git left in the mirror: lock files and temporary objects (objects/pack/tmp_pack_*,
 * tmp_idx_*, objects/tmp_obj_*, objects/incoming-*). Only while holding the repo's lock with no git of ours
 * running: every git that writes here runs under that lock, so none of these files can belong to a live one.
 */
export async function removeLeftovers(ctx: MirrorContext, repo: Repo, mirror: string, reason: string): Promise<void> {
  const entries = await readdir(mirror, { recursive: true });
  const removed: string[] = [];
  for (const entry of entries) {
    if (!classifyLeftover(entry)) continue;
    await rm(join(mirror, entry), { recursive: true, force: true });
    removed.push(entry);
  }
  if (removed.length > 0) ctx.logger.warn('stale_git_files_removed', { repo: repo.name, files: removed, reason });
}

/**
 * Start-of-life check of one repo, under its lock: leftovers of killed runs go, a broken mirror is moved
 * aside (and re-cloned by the caller).
 */
async function recover(ctx: MirrorContext, repo: Repo, lock: HeldLock): Promise<void> {
  const mirror = mirrorDir(ctx.cacheDir, repo);
  await removeStagingFor(ctx, repo);
  if (!(await exists(mirror))) return;
  const isDir = (await lstat(mirror)).isDirectory();
  if (isDir) await removeLeftovers(ctx, repo, mirror, 'left by a killed git run');
  const problem = await mirrorProblem(mirror);
  if (problem && problem !== 'incomplete') {
    await quarantine(ctx, repo, mirror, problem);
    return;
  }
  const call: GitCall = { repo, lock, label: 'fsck', withCredentials: false, logProgress: false };
  try {
    await git(ctx, call, [`--git-dir=${mirror}`, 'fsck', '--connectivity-only', '--no-progress', '--no-dangling']);
  } catch (error) {
    if (!(error instanceof GitError) || error.result.aborted) throw error;
    await quarantine(ctx, repo, mirror, `git fsck --connectivity-only failed: ${failureReason(error.result)}`);
    return;
  }
  ctx.logger.debug('mirror_checked', { repo: repo.name });
}

async function clone(ctx: MirrorContext, repo: Repo, lock: HeldLock): Promise<Transfer> {
  const started = Date.now();
  ctx.logger.info('clone_started', { repo: repo.name, key: repo.key });
  const transfer = await viaTier(
    ctx,
    repo,
    (tier) =>
      probeTierForClone(tier, repo, ctx.runtime, ctx.signal, (reason) =>
        ctx.logger.info('upstream_cache_waiting', { repo: repo.name, reason, seconds: Math.round(tier.waitMs / 1000) }),
      ),
    (url) => cloneFrom(ctx, repo, lock, started, { url, label: 'clone from upstream cache', withCredentials: false, stallMs: ctx.tier?.stallMs ?? DEFAULT_STALL_MS }),
    () => cloneFrom(ctx, repo, lock, started, { url: repo.url, label: 'clone', withCredentials: true }),
    'cloning',
  );
  return { ...transfer, fetchMs: Date.now() - started };
}

async function cloneFrom(
  ctx: MirrorContext,
  repo: Repo,
  lock: HeldLock,
  started: number,
  source: { url: string; label: string; withCredentials: boolean; stallMs?: number },
): Promise<void> {
  const mirror = mirrorDir(ctx.cacheDir, repo);
  const staging = join(ctx.cacheDir, STAGING_DIR_NAME, `${repo.key}.${randomBytes(6).toString('hex')}`);
  const call: GitCall = { repo, lock, label: source.label, withCredentials: source.withCredentials, logProgress: true, ...(source.stallMs ? { stallMs: source.stallMs } : {}) };
  try {
    await git(ctx, call, ['clone', '--mirror', '--progress', '--', source.url, staging]);
    const local: GitCall = { repo, lock, label: 'configure', withCredentials: false, logProgress: false };
    await configureMirror(ctx, local, staging);
    // Objects and refs may come from a tier; the mirror's origin is always the repo itself.
    if (source.url !== repo.url) await git(ctx, local, [`--git-dir=${staging}`, 'config', 'remote.origin.url', repo.url]);
    if (await exists(join(staging, 'shallow'))) throw new Error(`${source.label}: the source gave a shallow repository`);
    // clone --mirror set HEAD from the source's HEAD just now.
    await writeMarker(staging, { fetchStartedAt: started, fetchCompletedAt: Date.now(), url: canonicalRepoUrl(repo.url), headCheckedAt: started });
    // rename(2) fails on an existing non-empty directory, so a mirror is never replaced behind a reader.
    await rename(staging, mirror);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

/** `headCheckedAt`: when HEAD was last compared with upstream's, from the marker syncMirror has read. */
async function fetch(ctx: MirrorContext, repo: Repo, lock: HeldLock, headCheckedAt: number | undefined): Promise<Transfer> {
  const mirror = mirrorDir(ctx.cacheDir, repo);
  const local: GitCall = { repo, lock, label: 'configure', withCredentials: false, logProgress: false };
  await configureMirror(ctx, local, mirror);
  const remote = await git(ctx, local, [`--git-dir=${mirror}`, 'config', '--get', 'remote.origin.url']).catch(() => undefined);
  if (remote?.stdout.trim() !== repo.url) await git(ctx, local, [`--git-dir=${mirror}`, 'config', 'remote.origin.url', repo.url]);
  const started = Date.now();
  ctx.logger.debug('fetch_started', { repo: repo.name });
  const fetchArgs = [`--git-dir=${mirror}`, 'fetch', '--prune', '--atomic', '--no-write-fetch-head', '--progress'];
  const transfer = await viaTier(
    ctx,
    repo,
    (tier) => probeTier(tier, repo, ctx.runtime, ctx.signal),
    // The tier's refs are upstream's as of its last fetch: all of them, pruned like a fetch of origin.
    (url) =>
      fetchWithCleanup(ctx, repo, mirror, { ...local, label: 'fetch from upstream cache', logProgress: true, stallMs: ctx.tier?.stallMs ?? DEFAULT_STALL_MS }, [
        ...fetchArgs,
        '--',
        url,
        '+refs/*:refs/*',
      ]),
    () => fetchWithCleanup(ctx, repo, mirror, { ...local, label: 'fetch', withCredentials: true, logProgress: true }, [...fetchArgs, 'origin']),
    'fetching',
  );
  const headChecked = await followUpstreamHead(ctx, repo, lock, mirror, transfer.tierUrl, headCheckedAt);
  await writeMarker(mirror, { fetchStartedAt: started, fetchCompletedAt: Date.now(), url: canonicalRepoUrl(repo.url), ...(headChecked === undefined ? {} : { headCheckedAt: headChecked }) });
  return { ...transfer, fetchMs: Date.now() - started };
}

/**
 * Points the mirror's HEAD at the branch upstream's HEAD points to, when due (head.ts), asking the tier when the
 * fetch came from it. Returns when HEAD was last checked. Never fails the sync: the fetch itself succeeded.
 */
async function followUpstreamHead(
  ctx: MirrorContext,
  repo: Repo,
  lock: HeldLock,
  mirror: string,
  tierUrl: string | undefined,
  previous: number | undefined,
): Promise<number | undefined> {
  const local: GitCall = { repo, lock, label: 'head', withCredentials: false, logProgress: false };
  const output = async (call: GitCall, args: readonly string[]): Promise<string | undefined> =>
    (await git(ctx, call, [`--git-dir=${mirror}`, ...args]).catch(() => undefined))?.stdout.trim();
  // One git per refresh when nothing is due: HEAD resolves to a commit unless the branch it names is gone.
  const dangling = (await output(local, ['rev-parse', '-q', '--verify', 'HEAD^{commit}'])) === undefined;
  const now = Date.now();
  if (!headCheckDue(now, previous, dangling, ctx.headCheckIntervalMs)) return previous;
  const current = await output(local, ['symbolic-ref', '-q', 'HEAD']);
  const remote = tierUrl ?? 'origin';
  let listed: GitResult;
  try {
    listed = await git(ctx, { ...local, label: 'ls-remote HEAD', withCredentials: tierUrl === undefined }, [`--git-dir=${mirror}`, 'ls-remote', '--symref', '--', remote, 'HEAD']);
  } catch (error) {
    ctx.logger.warn('head_check_failed', { repo: repo.name, reason: error instanceof Error ? error.message : String(error), dangling });
    return previous;
  }
  const upstreamHead = parseSymrefHead(listed.stdout);
  if (upstreamHead !== undefined && upstreamHead !== current && (await output(local, ['rev-parse', '-q', '--verify', `${upstreamHead}^{commit}`])) !== undefined) {
    await git(ctx, local, [`--git-dir=${mirror}`, 'symbolic-ref', 'HEAD', upstreamHead]);
    ctx.logger.info('head_changed', { repo: repo.name, from: current ?? null, to: upstreamHead });
  }
  return now;
}

async function fetchWithCleanup(ctx: MirrorContext, repo: Repo, mirror: string, call: GitCall, args: readonly string[]): Promise<void> {
  try {
    await git(ctx, call, args);
  } catch (error) {
    // A fetch that dies of ENOSPC leaves objects/pack/tmp_pack_* as big as the free space was: left there, the
    // volume stays full and every later clone or fetch on it fails too. git has exited, runGit has SIGKILLed
    // what was left of its process group, and we still hold the lock, so no other writer is at work here.
    await removeLeftovers(ctx, repo, mirror, 'left by a failed fetch').catch((cleanupError: unknown) =>
      ctx.logger.warn('stale_git_files_not_removed', { repo: repo.name, reason: cleanupError instanceof Error ? cleanupError.message : String(cleanupError) }),
    );
    throw error;
  }
}

/** Makes one mirror present and current. Throws GitError (or another Error) with a one-line message. */
export async function syncMirror(ctx: MirrorContext, repo: Repo): Promise<SyncResult> {
  await ensureLayout(ctx.cacheDir);
  const waitStartedAt = Date.now();
  ctx.logger.debug('lock_waiting', { repo: repo.name });
  const lock = await acquireLock(lockPath(ctx.cacheDir, repo.key), { wait: true, signal: ctx.signal });
  if (!lock) throw new Error('could not take the repo lock');
  ctx.logger.debug('lock_acquired', { repo: repo.name, waitedMs: Date.now() - waitStartedAt });
  try {
    if (!ctx.recovered.has(repo.key)) {
      await recover(ctx, repo, lock);
      ctx.recovered.add(repo.key);
    }
    const mirror = mirrorDir(ctx.cacheDir, repo);
    const problem = await mirrorProblem(mirror);
    if (problem === 'not-a-directory') return { action: 'cloned', ...(await clone(ctx, repo, lock)) };
    if (problem && problem !== 'incomplete') {
      await quarantine(ctx, repo, mirror, problem);
      return { action: 'cloned', ...(await clone(ctx, repo, lock)) };
    }
    const marker = await readMarker(mirror);
    // Wall clocks of one node (or NTP-synced nodes sharing a volume); a skewed clock costs one extra fetch
    // or skips one, never correctness of the mirror.
    if (marker && marker.fetchStartedAt > waitStartedAt) return { action: 'coalesced', fetchMs: 0, freshAt: marker.fetchCompletedAt };
    return { action: 'fetched', ...(await fetch(ctx, repo, lock, marker?.headCheckedAt)) };
  } finally {
    await lock.release();
  }
}

/** Removes staging entries of other repos (not ours) whose lock nobody holds: their clone died. */
export async function removeOrphanStaging(ctx: MirrorContext, ownKeys: ReadonlySet<string>): Promise<void> {
  const stagingRoot = join(ctx.cacheDir, STAGING_DIR_NAME);
  let entries: string[];
  try {
    entries = await readdir(stagingRoot);
  } catch {
    return;
  }
  for (const entry of entries) {
    const key = stagingKey(entry);
    if (!key || ownKeys.has(key)) continue;
    const lock = await acquireLock(lockPath(ctx.cacheDir, key), { wait: false });
    if (!lock) continue;
    try {
      await rm(join(stagingRoot, entry), { recursive: true, force: true });
      ctx.logger.info('staging_removed', { entry, reason: 'left by an interrupted clone of another agent' });
    } finally {
      await lock.release();
    }
  }
}

/** Size on disk (allocated blocks) of a directory tree. */
export async function diskUsage(path: string): Promise<number> {
  let total = 0;
  const entries = await readdir(path, { recursive: true });
  for (const entry of ['.', ...entries]) {
    try {
      const info = await lstat(join(path, entry));
      total += info.blocks * 512;
    } catch {
      // vanished meanwhile
    }
  }
  return total;
}

export async function countRefs(ctx: MirrorContext, repo: Repo): Promise<number> {
  const mirror = mirrorDir(ctx.cacheDir, repo);
  const result = await runGit({ args: [`--git-dir=${mirror}`, 'for-each-ref', '--format=%(refname)'], env: ctx.runtime.baseEnv });
  if (result.code !== 0) return 0;
  return result.stdout.split('\n').filter((line) => line.length > 0).length;
}

