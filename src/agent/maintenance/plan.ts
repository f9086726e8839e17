/**
 * Pure decisions of mirror maintenance: what `objects/pack` holds, whether a mirror is due, and which packs
 * one run rolls up. Everything here works on file names and sizes; maintain.ts does the I/O.
 */

/** More packs than this (that maintenance may roll up) make a mirror due, as does a missing commit-graph. */
export const MAX_PACKS = 50;

/** Sorted by size, each pack that stays is at least this many times bigger than the next smaller one. */
export const GEOMETRIC_FACTOR = 2;

export interface PackDirEntry {
  readonly name: string;
  readonly bytes: number;
}

export interface PackInfo {
  /** `pack-<hash>`: add `.pack`, `.idx`, ... for the files. */
  readonly base: string;
  /** Size of the .pack file. */
  readonly bytes: number;
  /** `.keep`: never rolled up or deleted (an operator's or another tool's promise). */
  readonly keep: boolean;
  /** `.promisor` (partial clones) or `.mtimes` (cruft packs): not ours to rewrite, kept as they are. */
  readonly foreign: boolean;
}

export interface PackDir {
  /** Packs git can read: both the .pack and its .idx exist. */
  readonly packs: readonly PackInfo[];
  /**
   * Files of a `pack-<hash>` that lacks its .pack or its .idx. git reads neither half alone: an .idx whose .pack
   * is gone is skipped, and a .pack without .idx is invisible. They are what a killed fetch (git renames the
   * .pack before the .idx) or a killed maintenance (it deletes the .idx before the .pack) leaves.
   */
  readonly orphanFiles: readonly string[];
  readonly hasMultiPackIndex: boolean;
  readonly hasMultiPackBitmap: boolean;
}

const PACK_FILE = /^(pack-[0-9a-f]{40}(?:[0-9a-f]{24})?)\.(pack|idx|rev|bitmap|keep|promisor|mtimes)$/;

export function readPackDir(entries: readonly PackDirEntry[]): PackDir {
  const groups = new Map<string, Map<string, number>>();
  let hasMultiPackIndex = false;
  let hasMultiPackBitmap = false;
  for (const entry of entries) {
    if (entry.name === 'multi-pack-index') hasMultiPackIndex = true;
    if (/^multi-pack-index-[0-9a-f]+\.bitmap$/.test(entry.name)) hasMultiPackBitmap = true;
    const match = PACK_FILE.exec(entry.name);
    if (!match) continue;
    const [, base = '', extension = ''] = match;
    const group = groups.get(base) ?? new Map<string, number>();
    group.set(extension, entry.bytes);
    groups.set(base, group);
  }
  const packs: PackInfo[] = [];
  const orphanFiles: string[] = [];
  for (const [base, files] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    const packBytes = files.get('pack');
    if (packBytes === undefined || !files.has('idx')) {
      orphanFiles.push(...[...files.keys()].sort().map((extension) => `${base}.${extension}`));
      continue;
    }
    packs.push({ base, bytes: packBytes, keep: files.has('keep'), foreign: files.has('promisor') || files.has('mtimes') });
  }
  return { packs, orphanFiles, hasMultiPackIndex, hasMultiPackBitmap: hasMultiPackIndex && hasMultiPackBitmap };
}

export function rollable(pack: PackInfo): boolean {
  return !pack.keep && !pack.foreign;
}

export type DueReason = 'packs' | 'commit-graph' | 'orphan-files';

/**
 * Why a mirror needs maintenance after a refresh, or undefined when it does not. `wantCommitGraph` false
 * (`--no-commit-graph`) makes a present commit-graph the reason: maintenance removes it.
 */
export function dueReason(dir: PackDir, hasCommitGraph: boolean, wantCommitGraph = true): DueReason | undefined {
  if (dir.packs.filter(rollable).length > MAX_PACKS) return 'packs';
  if (hasCommitGraph !== wantCommitGraph) return 'commit-graph';
  if (dir.orphanFiles.length > 0) return 'orphan-files';
  return undefined;
}

export interface RollupPlan {
  /** Packs whose objects go into one new pack (then deleted); empty when nothing is worth rolling up. */
  readonly rollUp: readonly PackInfo[];
  /** Packs that stay as they are. */
  readonly keep: readonly PackInfo[];
}

/**
 * A geometric progression, as `git repack --geometric=2` splits it: sorted by size, every pack that stays is at
 * least `factor` times as big as the next smaller one, so at most log2(largest / smallest) + 1 packs stay and a
 * run mostly rewrites what arrived since the last one. The packs below the split are rolled up into one new
 * pack. Kept and foreign packs never take part.
 */
export function planRollup(packs: readonly PackInfo[], factor = GEOMETRIC_FACTOR): RollupPlan {
  const candidates = packs.filter(rollable).sort((a, b) => a.bytes - b.bytes || a.base.localeCompare(b.base));
  const fixed = packs.filter((pack) => !rollable(pack));
  // From the largest down: find the first neighbour pair that breaks the progression.
  let split = 0;
  for (let i = candidates.length - 1; i > 0; i--) {
    const ours = candidates[i]?.bytes ?? 0;
    const previous = candidates[i - 1]?.bytes ?? 0;
    if (ours < factor * previous) {
      split = i + 1;
      break;
    }
  }
  // The new pack is as big as everything below the split together: packs above it that it would not dwarf
  // by `factor` join the rollup too.
  let total = candidates.slice(0, split).reduce((sum, pack) => sum + pack.bytes, 0);
  while (split < candidates.length && (candidates[split]?.bytes ?? 0) < factor * total) {
    total += candidates[split]?.bytes ?? 0;
    split++;
  }
  if (split < 2) return { rollUp: [], keep: [...fixed, ...candidates] };
  return { rollUp: candidates.slice(0, split), keep: [...fixed, ...candidates.slice(split)] };
}

/** `.keep` files index-pack writes for a fetch in flight (`fetch-pack <pid> on <host>`); left behind when it was killed. */
export function isFetchKeep(content: string): boolean {
  return /^fetch-pack \d+ /.test(content);
}
