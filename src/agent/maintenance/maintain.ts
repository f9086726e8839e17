/**
 * Borrower-safe mirror maintenance: keeps a mirror at a bounded number of packs with a current commit-graph
 * and a reachability bitmap, and never deletes an object. Clones made with `--reference` read the mirror's
 * objects through objects/info/alternates, so every object the mirror ever had must stay readable, including
 * objects no ref reaches any more (deleted branches, force-pushed-away commits). The steps, in this order:
 *
 * 1. Under the repo's flock (every git inherits it), remove what killed runs left: temporary files and git
 *    locks (mirror.ts removeLeftovers), the `.keep` of a killed fetch, and pack halves git cannot read (an .idx
 *    without its .pack or a .pack without its .idx; see plan.ts).
 * 2. Roll up: `git pack-objects --stdin-packs` writes every object of the packs below the geometric split
 *    (plan.ts) into one new pack, reachable or not, except objects a pack that stays already has. Written with
 *    `core.fsync` (the pack and its .idx reach the disk before git renames them into place), then the pack
 *    directory is fsynced so the renames are durable too.
 * 3. Prove it: every object id listed by the .idx of each pack about to go is listed by the new pack's .idx or
 *    by the .idx of a pack that stays, and the new .idx is intact (its checksum) and belongs to its .pack (the
 *    pack checksum it records). Any doubt stops the run with nothing deleted.
 * 4. `git multi-pack-index write --stdin-packs --bitmap` over the packs that stay: one lookup table and a
 *    reachability bitmap for serving. It never names a pack that is about to go (if it cannot be written, an
 *    old one is removed: it is only an index), so readers that load it never look for a deleted pack.
 * 5. Delete the rolled-up packs: .idx first (new readers stop seeing the pack), then .pack and the rest. A
 *    reader that already opened a pack keeps reading it (an unlinked file stays readable while open); one that
 *    listed it but had not opened it yet finds it gone, rescans the pack directory and finds the object in the
 *    new pack. A pack with a `.keep` is never deleted.
 * 6. `git commit-graph write --reachable --split`: only an accelerator. A reader that looks up a commit the
 *    graph lacks (one only a borrower still reaches) parses the commit object instead. (git before 2.55 fails
 *    the checkout of `clone --reference --dissociate` when the reference has one: docs/agent.md, and
 *    `--no-commit-graph` for sites whose tools dissociate and cannot add `-c core.commitGraph=false`.)
 *
 * git's own `repack -d`, `gc` and `prune` stay refused (`extensions.preciousObjects`): an operator's habitual
 * `git gc` on the volume still cannot delete anything. A kill at any moment leaves a valid mirror: before step 5
 * only files were added; during it, each object is in the new, durable pack.
 */
import { spawn } from 'node:child_process';
import { open, readFile, readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Repo } from '../cli.js';
import { GitError, failureReason, runGit } from '../git/run.js';
import { LockAbortedError, acquireLock, type HeldLock } from '../mirror/lock.js';
import { ensureLayout, exists, lockPath, mirrorDir, mirrorProblem, removeLeftovers, type MirrorContext } from '../mirror/mirror.js';
import { readPackIndex, readPackTrailer, type ObjectFormat, type PackIndex } from './pack-index.js';
import { dueReason, isFetchKeep, planRollup, readPackDir, type DueReason, type PackDir, type PackInfo } from './plan.js';

export const MAINTENANCE_RESULTS = ['success', 'error', 'timeout', 'skipped'] as const;
export type MaintenanceResult = (typeof MAINTENANCE_RESULTS)[number];

export type MaintenanceTrigger = DueReason | 'requested';

export interface MaintenanceOptions {
  /** A run is stopped (safe at any moment) when it takes longer than this. */
  readonly budgetMs: number;
  /** Wait for the repo lock (within the budget) rather than skip the run when another agent holds it. */
  readonly waitForLock: boolean;
  readonly trigger: MaintenanceTrigger;
  /** false (`--no-commit-graph`): write none and remove one that exists. */
  readonly commitGraph: boolean;
}

export interface MaintenanceReport {
  /** `stopped`: the agent is shutting down (not counted as a result). */
  readonly result: MaintenanceResult | 'stopped';
  readonly reason?: string;
  readonly seconds: number;
  readonly packsBefore?: number;
  readonly packsAfter?: number;
  /** Packs rolled up and deleted. */
  readonly packsDeleted: number;
  /** What ran, in order: cleanup, rollup, multi-pack-index, bitmap, commit-graph. */
  readonly steps: readonly string[];
}

const PACK_DIR = join('objects', 'pack');

/** Config for maintenance's git runs: durable writes, one thread, bitmaps with name-hash caches. */
const MAINTENANCE_CONFIG = [
  '-c', 'core.fsync=objects,derived-metadata',
  '-c', 'core.fsyncMethod=fsync',
  '-c', 'pack.threads=1',
  '-c', 'pack.writeBitmapHashCache=true',
];

let lowPriority: Promise<readonly string[]> | undefined;

/** `nice -n 19 ionice -c 3` when both work here (ionice can be refused in some containers), else what does. */
export function lowPriorityWrapper(): Promise<readonly string[]> {
  const works = (argv: readonly string[]): Promise<boolean> =>
    new Promise((resolve) => {
      const child = spawn(argv[0] ?? 'true', [...argv.slice(1), 'true'], { stdio: 'ignore' });
      child.once('error', () => resolve(false));
      child.once('close', (code) => resolve(code === 0));
    });
  lowPriority ??= (async () => {
    for (const candidate of [['nice', '-n', '19', 'ionice', '-c', '3'], ['nice', '-n', '19']]) {
      if (await works(candidate)) return candidate;
    }
    return [];
  })();
  return lowPriority;
}

export async function readMirrorPackDir(mirror: string): Promise<PackDir> {
  const dir = join(mirror, PACK_DIR);
  const names = await readdir(dir).catch(() => [] as string[]);
  const entries = [];
  for (const name of names) {
    try {
      entries.push({ name, bytes: (await stat(join(dir, name))).size });
    } catch {
      // removed meanwhile
    }
  }
  return readPackDir(entries);
}

export async function hasCommitGraph(mirror: string): Promise<boolean> {
  return (await exists(join(mirror, 'objects', 'info', 'commit-graph'))) || (await exists(join(mirror, 'objects', 'info', 'commit-graphs', 'commit-graph-chain')));
}

/** Packs git can read in the mirror (for the packs gauge). */
export async function countPacks(mirror: string): Promise<number> {
  return (await readMirrorPackDir(mirror)).packs.length;
}

/** Whether a mirror needs maintenance after a refresh: no git, a directory listing and a stat. */
export async function maintenanceDue(mirror: string, wantCommitGraph: boolean): Promise<DueReason | undefined> {
  return dueReason(await readMirrorPackDir(mirror), await hasCommitGraph(mirror), wantCommitGraph);
}

/** fsync(2) of a directory: makes the renames into it durable. */
async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

class Run {
  readonly steps: string[] = [];
  packsBefore: number | undefined;
  packsAfter: number | undefined;
  packsDeleted = 0;
  private readonly packDir: string;

  constructor(
    private readonly ctx: MirrorContext,
    private readonly repo: Repo,
    private readonly mirror: string,
    private readonly lock: HeldLock,
    private readonly signal: AbortSignal,
    private readonly wrapper: readonly string[],
  ) {
    this.packDir = join(mirror, PACK_DIR);
  }

  private async git(args: readonly string[], stdin?: string): Promise<string> {
    this.signal.throwIfAborted();
    const result = await runGit({
      args: [...MAINTENANCE_CONFIG, `--git-dir=${this.mirror}`, ...args],
      env: this.ctx.runtime.baseEnv,
      lockFd: this.lock.fd,
      signal: this.signal,
      stdin,
      wrapper: this.wrapper,
      onStderrLine: (line) => this.ctx.logger.debug('git_stderr', { repo: this.repo.name, op: `maintenance ${args[0] ?? ''}`, line }),
    });
    if (result.code !== 0) throw new GitError(`${args[0] ?? 'git'}: ${failureReason(result)}`, result);
    return result.stdout;
  }

  private log(event: string, fields: Record<string, string | number | readonly string[]>): void {
    this.ctx.logger.info(event, { repo: this.repo.name, ...fields });
  }

  async execute(trigger: MaintenanceTrigger, commitGraph: boolean): Promise<void> {
    await removeLeftovers(this.ctx, this.repo, this.mirror, 'left by a killed git run');
    const before = await readMirrorPackDir(this.mirror);
    await this.removeDeadFetchKeeps(before.packs);
    await this.removeOrphanFiles(before.orphanFiles);
    this.steps.push('cleanup');
    const format = (await this.git(['rev-parse', '--show-object-format'])).trim() === 'sha256' ? 'sha256' : 'sha1';
    const dir = await readMirrorPackDir(this.mirror);
    this.packsBefore = dir.packs.length;
    const plan = planRollup(dir.packs);
    if (plan.rollUp.length > 0) {
      await this.rollUp(plan.rollUp, plan.keep, format);
    } else if (!dir.hasMultiPackBitmap || trigger === 'requested') {
      if (dir.packs.length > 0) await this.writeMultiPackIndex(dir.packs.map((pack) => pack.base), false);
    }
    if (commitGraph) {
      await this.git(['commit-graph', 'write', '--reachable', '--split', '--no-progress']);
      this.steps.push('commit-graph');
    } else if (await hasCommitGraph(this.mirror)) {
      // Only an accelerator: readers parse commit objects instead.
      await rm(join(this.mirror, 'objects', 'info', 'commit-graph'), { force: true });
      await rm(join(this.mirror, 'objects', 'info', 'commit-graphs'), { recursive: true, force: true });
      this.steps.push('commit-graph-removed');
    }
    this.packsAfter = (await readMirrorPackDir(this.mirror)).packs.length;
  }

  /** A `.keep` that index-pack wrote for a fetch that was killed before it could remove it would pin its pack forever. */
  private async removeDeadFetchKeeps(packs: readonly PackInfo[]): Promise<void> {
    for (const pack of packs.filter((p) => p.keep)) {
      const keep = join(this.packDir, `${pack.base}.keep`);
      const content = await readFile(keep, 'utf8').catch(() => '');
      // We hold the lock and every fetch runs under it: no fetch of this repo is in flight.
      if (!isFetchKeep(content)) continue;
      await unlink(keep);
      this.ctx.logger.warn('stale_git_files_removed', { repo: this.repo.name, files: [`${PACK_DIR}/${pack.base}.keep`], reason: 'left by a killed fetch' });
    }
  }

  private async removeOrphanFiles(orphanFiles: readonly string[]): Promise<void> {
    if (orphanFiles.length === 0) return;
    // Listed before reading: a .pack whose .idx is being renamed into place right now can only belong to a git
    // holding this lock, which is us, and we run none at this point.
    for (const file of orphanFiles) await rm(join(this.packDir, file), { force: true });
    this.ctx.logger.warn('stale_git_files_removed', {
      repo: this.repo.name,
      files: orphanFiles.map((file) => `${PACK_DIR}/${file}`),
      reason: 'pack files without their .idx or .pack (left by a killed fetch or maintenance); git reads neither',
    });
  }

  private async rollUp(rollUp: readonly PackInfo[], keep: readonly PackInfo[], format: ObjectFormat): Promise<void> {
    const started = Date.now();
    const input = [...rollUp.map((pack) => `${pack.base}.pack`), ...keep.map((pack) => `^${pack.base}.pack`)].join('\n');
    const output = (await this.git(['pack-objects', '--stdin-packs', '--delta-base-offset', '--non-empty', '-q', join(this.packDir, 'pack')], `${input}\n`)).trim();
    // Nothing printed: every object of those packs is in a pack that stays already (--non-empty wrote no pack).
    if (output !== '' && !/^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(output)) throw new Error(`pack-objects printed no pack name: "${output.slice(0, 80)}"`);
    const newBase = output === '' ? undefined : `pack-${output}`;
    await fsyncDirectory(this.packDir);
    // The same objects in the same order give the same pack name: that pack is the new one, never dropped.
    const drop = rollUp.filter((pack) => pack.base !== newBase);
    const stay = newBase === undefined ? keep : [{ base: newBase, bytes: 0, keep: false, foreign: false }, ...keep];
    await this.proveCovered(drop, stay, format);
    this.steps.push('rollup');
    await this.writeMultiPackIndex(stay.map((pack) => pack.base), true);
    for (const pack of drop) {
      if (await this.deletePack(pack)) this.packsDeleted++;
    }
    this.log('packs_rolled_up', { packs: drop.length, deleted: this.packsDeleted, into: newBase ?? 'none', seconds: (Date.now() - started) / 1000 });
  }

  /**
   * Throws unless every object of every pack in `drop` is listed by the index of a pack in `stay`, and each of
   * those indexes is intact and belongs to its .pack.
   */
  private async proveCovered(drop: readonly PackInfo[], stay: readonly PackInfo[], format: ObjectFormat): Promise<void> {
    // Indexes of packs that stay are read when first needed, in order (the new pack first: it has most objects).
    const loaded: PackIndex[] = [];
    const unread = [...stay];
    const readNext = async (): Promise<PackIndex | undefined> => {
      const pack = unread.shift();
      if (!pack) return undefined;
      const index = await readPackIndex(join(this.packDir, `${pack.base}.idx`), format);
      const trailer = await readPackTrailer(join(this.packDir, `${pack.base}.pack`), format);
      if (!trailer.equals(index.packChecksum)) throw new Error(`${pack.base}.idx does not describe ${pack.base}.pack (checksums differ); nothing deleted`);
      loaded.push(index);
      return index;
    };
    for (const pack of drop) {
      this.signal.throwIfAborted();
      const index = await readPackIndex(join(this.packDir, `${pack.base}.idx`), format);
      for (let i = 0; i < index.objectCount; i++) {
        const id = index.id(i);
        if (loaded.some((other) => other.has(id))) continue;
        let found = false;
        while (!found) {
          const next = await readNext();
          if (!next) break;
          found = next.has(id);
        }
        if (!found) throw new Error(`object ${id.toString('hex')} of ${pack.base} is in no pack that stays; nothing deleted`);
      }
    }
  }

  /**
   * A multi-pack-index (with a bitmap when `bitmap`) over exactly `bases`. If git cannot write one, an existing
   * one is removed rather than left naming packs that are about to be deleted.
   */
  private async writeMultiPackIndex(bases: readonly string[], removeOnFailure: boolean): Promise<void> {
    const input = `${bases.map((base) => `${base}.idx`).join('\n')}\n`;
    const largest = await this.largest(bases);
    const args = ['multi-pack-index', 'write', '--stdin-packs', '--no-progress', ...(largest ? [`--preferred-pack=${largest}.pack`] : [])];
    try {
      await this.git([...args, '--bitmap'], input);
      this.steps.push('multi-pack-index', 'bitmap');
      return;
    } catch (error) {
      if (!(error instanceof GitError) || error.result.aborted) throw error;
      // e.g. reachable loose objects (no pack closure): the index itself still helps.
      this.ctx.logger.warn('bitmap_not_written', { repo: this.repo.name, reason: error.message });
    }
    try {
      await this.git(args, input);
      this.steps.push('multi-pack-index');
    } catch (error) {
      if (!(error instanceof GitError) || error.result.aborted || !removeOnFailure) throw error;
      this.ctx.logger.warn('multi_pack_index_removed', { repo: this.repo.name, reason: error.message });
      for (const name of await readdir(this.packDir)) {
        if (/^multi-pack-index(?:-[0-9a-f]+\.(?:bitmap|rev))?$/.test(name)) await rm(join(this.packDir, name), { force: true });
      }
    }
  }

  private async largest(bases: readonly string[]): Promise<string | undefined> {
    let best: { base: string; bytes: number } | undefined;
    for (const base of bases) {
      const bytes = (await stat(join(this.packDir, `${base}.pack`)).catch(() => undefined))?.size ?? -1;
      if (!best || bytes > best.bytes) best = { base, bytes };
    }
    return best?.base;
  }

  /** .idx first, so no new reader picks the pack up; then the data and the rest. Never a kept pack. */
  private async deletePack(pack: PackInfo): Promise<boolean> {
    if (await exists(join(this.packDir, `${pack.base}.keep`))) return false;
    for (const extension of ['idx', 'pack', 'rev', 'bitmap']) {
      this.signal.throwIfAborted();
      await rm(join(this.packDir, `${pack.base}.${extension}`), { force: true });
    }
    return true;
  }
}

function elapsedSeconds(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** One maintenance run of one mirror. Never throws: the report says what happened. */
export async function maintainMirror(ctx: MirrorContext, repo: Repo, options: MaintenanceOptions): Promise<MaintenanceReport> {
  const started = process.hrtime.bigint();
  const budget = AbortSignal.timeout(options.budgetMs);
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, budget]) : budget;
  const mirror = mirrorDir(ctx.cacheDir, repo);
  const report = (result: MaintenanceReport['result'], run: Run | undefined, reason?: string): MaintenanceReport => ({
    result,
    ...(reason === undefined ? {} : { reason }),
    seconds: elapsedSeconds(started),
    ...(run?.packsBefore === undefined ? {} : { packsBefore: run.packsBefore }),
    ...(run?.packsAfter === undefined ? {} : { packsAfter: run.packsAfter }),
    packsDeleted: run?.packsDeleted ?? 0,
    steps: run?.steps ?? [],
  });
  const interrupted = (run: Run | undefined): MaintenanceReport =>
    ctx.signal?.aborted ? report('stopped', run, 'stopped') : report('timeout', run, `stopped after the budget of ${options.budgetMs / 1000}s`);

  // Checked again under the lock; this first look keeps a mistyped cache dir from being created.
  if ((await mirrorProblem(mirror)) === 'not-a-directory') return report('error', undefined, 'no mirror');
  let lock: HeldLock | undefined;
  try {
    await ensureLayout(ctx.cacheDir);
    lock = await acquireLock(lockPath(ctx.cacheDir, repo.key), { wait: options.waitForLock, signal });
  } catch (error) {
    if (error instanceof LockAbortedError) return ctx.signal?.aborted ? report('stopped', undefined, 'stopped') : report('timeout', undefined, 'the repo lock stayed busy for the whole budget');
    return report('error', undefined, error instanceof Error ? error.message : String(error));
  }
  if (!lock) return report('skipped', undefined, 'another agent holds the repo lock');
  let run: Run | undefined;
  try {
    const problem = await mirrorProblem(mirror);
    if (problem) return report('error', undefined, problem === 'not-a-directory' ? 'no mirror' : `mirror not usable: ${problem}`);
    run = new Run(ctx, repo, mirror, lock, signal, await lowPriorityWrapper());
    await run.execute(options.trigger, options.commitGraph);
    return report('success', run);
  } catch (error) {
    // What a stopped or failed git left (tmp_pack_*, locks) goes now, while we still hold the lock.
    await removeLeftovers(ctx, repo, mirror, 'left by an interrupted maintenance').catch(() => undefined);
    if (signal.aborted) return interrupted(run);
    return report('error', run, error instanceof Error ? (error.message.split('\n')[0] ?? 'error') : String(error));
  } finally {
    await lock.release();
  }
}
