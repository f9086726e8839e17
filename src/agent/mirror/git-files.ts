/**
 * Which files in a bare mirror a killed git run may have left behind. Pure decisions, applied by mirror.ts
 * only while it holds the repo's lock, so the files of a live git are never touched.
 */

export type LeftoverKind = 'lock' | 'temporary-object';

/** Top-level lock files git creates (and removes) around its updates. */
const TOP_LEVEL_LOCKS = new Set(['shallow.lock', 'packed-refs.lock', 'index.lock', 'config.lock', 'HEAD.lock', 'FETCH_HEAD.lock', 'ORIG_HEAD.lock', 'gc.pid', 'gc.log.lock', 'commit-graph.lock']);

/**
 * `relativePath` is relative to the mirror (`refs/heads/main.lock`, `objects/pack/tmp_pack_abc`). Returns what
 * it is when it is a leftover, undefined for anything that belongs to the repository.
 */
export function classifyLeftover(relativePath: string): LeftoverKind | undefined {
  const path = relativePath.replace(/^\.\//, '');
  if (TOP_LEVEL_LOCKS.has(path)) return 'lock';
  if (/^refs\/.+\.lock$/.test(path)) return 'lock';
  if (/^logs\/.+\.lock$/.test(path)) return 'lock';
  if (/^objects\/info\/(?:commit-graphs\/)?[^/]+\.lock$/.test(path)) return 'lock';
  if (/^objects\/pack\/[^/]+\.(?:idx|pack|rev|bitmap|promisor|keep|mtimes)\.lock$/.test(path)) return 'lock';
  if (path === 'objects/pack/multi-pack-index.lock') return 'lock';
  // index-pack writes packs as objects/pack/tmp_pack_XXXX / tmp_idx_XXXX and renames them when complete;
  // loose objects go through objects/[0-9a-f]{2}/tmp_obj_XXXX; quarantine dirs are objects/incoming-XXXX.
  if (/^objects\/pack\/tmp_[a-z]+_[^/]+$/.test(path)) return 'temporary-object';
  // A split commit-graph layer is written as objects/info/commit-graphs/tmp_graph_XXXXXX, then renamed.
  if (/^objects\/info\/commit-graphs\/tmp_graph_[^/]+$/.test(path)) return 'temporary-object';
  if (/^objects\/(?:[0-9a-f]{2}\/)?tmp_obj_[^/]+$/.test(path)) return 'temporary-object';
  if (/^objects\/incoming-[^/]+$/.test(path)) return 'temporary-object';
  return undefined;
}

/** Staging entry names are `<key>.<suffix>`: the key tells which repo lock guards them. */
export function stagingKey(entryName: string): string | undefined {
  const match = /^([0-9a-f]{20})\./.exec(entryName);
  return match?.[1];
}

export type MirrorProblem = 'not-a-directory' | 'missing-head' | 'missing-objects' | 'missing-config' | 'shallow' | 'connectivity';

export interface MirrorLayout {
  readonly isDirectory: boolean;
  readonly hasHead: boolean;
  readonly hasObjects: boolean;
  readonly hasConfig: boolean;
  readonly isShallow: boolean;
}

/** The first reason a mirror cannot be served, judged from its layout (fsck comes after). */
export function layoutProblem(layout: MirrorLayout): MirrorProblem | undefined {
  if (!layout.isDirectory) return 'not-a-directory';
  if (!layout.hasHead) return 'missing-head';
  if (!layout.hasObjects) return 'missing-objects';
  if (!layout.hasConfig) return 'missing-config';
  if (layout.isShallow) return 'shallow';
  return undefined;
}
