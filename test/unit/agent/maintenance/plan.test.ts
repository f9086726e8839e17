import test from 'ava';
import fc from 'fast-check';
import { MAX_PACKS, dueReason, isFetchKeep, planRollup, readPackDir, type PackInfo } from '../../../../src/agent/maintenance/plan.js';

const hash = (n: number): string => n.toString(16).padStart(40, '0');
const pack = (n: number, bytes: number, extra: Partial<PackInfo> = {}): PackInfo => ({ base: `pack-${hash(n)}`, bytes, keep: false, foreign: false, ...extra });

test('the pack directory: readable packs need both .pack and .idx; lone halves and their extras are orphans', (t) => {
  const dir = readPackDir([
    { name: `pack-${hash(1)}.pack`, bytes: 100 },
    { name: `pack-${hash(1)}.idx`, bytes: 10 },
    { name: `pack-${hash(2)}.pack`, bytes: 200 },
    { name: `pack-${hash(2)}.idx`, bytes: 10 },
    { name: `pack-${hash(2)}.keep`, bytes: 0 },
    { name: `pack-${hash(3)}.pack`, bytes: 300 },
    { name: `pack-${hash(3)}.idx`, bytes: 10 },
    { name: `pack-${hash(3)}.promisor`, bytes: 0 },
    // killed fetch: .pack renamed into place, .idx not yet
    { name: `pack-${hash(4)}.pack`, bytes: 400 },
    { name: `pack-${hash(4)}.keep`, bytes: 20 },
    // killed maintenance: .idx and .pack deleted, .rev not yet
    { name: `pack-${hash(5)}.rev`, bytes: 4 },
    { name: `pack-${hash(6)}.idx`, bytes: 10 },
    { name: 'multi-pack-index', bytes: 100 },
    { name: 'tmp_pack_abc', bytes: 5 },
    { name: 'README', bytes: 5 },
  ]);
  t.deepEqual(
    dir.packs.map((p) => [p.base.slice(-1), p.bytes, p.keep, p.foreign]),
    [
      ['1', 100, false, false],
      ['2', 200, true, false],
      ['3', 300, false, true],
    ],
  );
  t.deepEqual(dir.orphanFiles, [`pack-${hash(4)}.keep`, `pack-${hash(4)}.pack`, `pack-${hash(5)}.rev`, `pack-${hash(6)}.idx`]);
  t.true(dir.hasMultiPackIndex);
  t.false(dir.hasMultiPackBitmap);
  t.true(readPackDir([{ name: 'multi-pack-index', bytes: 1 }, { name: `multi-pack-index-${hash(9)}.bitmap`, bytes: 1 }]).hasMultiPackBitmap);
});

test('sha256 pack names are recognised too', (t) => {
  const base = `pack-${'a'.repeat(64)}`;
  t.is(readPackDir([{ name: `${base}.pack`, bytes: 1 }, { name: `${base}.idx`, bytes: 1 }]).packs[0]?.base, base);
});

test('a mirror is due with more than 50 packs maintenance may roll up, without a commit-graph, or with orphan files', (t) => {
  const dirWith = (count: number, extra: Partial<PackInfo> = {}): ReturnType<typeof readPackDir> => ({
    packs: Array.from({ length: count }, (_, i) => pack(i, 10, extra)),
    orphanFiles: [],
    hasMultiPackIndex: false,
    hasMultiPackBitmap: false,
  });
  t.is(dueReason(dirWith(MAX_PACKS), true), undefined);
  t.is(dueReason(dirWith(MAX_PACKS + 1), true), 'packs');
  t.is(dueReason(dirWith(MAX_PACKS + 1, { keep: true }), true), undefined, 'kept packs cannot be reduced: they never make a mirror due');
  t.is(dueReason(dirWith(1), false), 'commit-graph');
  t.is(dueReason({ ...dirWith(1), orphanFiles: ['pack-x.pack'] }, true), 'orphan-files');
  t.is(dueReason(dirWith(1), true, false), 'commit-graph', '--no-commit-graph: a graph that exists is removed');
  t.is(dueReason(dirWith(1), false, false), undefined);
});

test('5,000 single-commit packs beside the clone pack roll up into one', (t) => {
  const packs = [pack(0, 50_000_000), ...Array.from({ length: 5000 }, (_, i) => pack(i + 1, 3000 + (i % 7) * 100))];
  const plan = planRollup(packs);
  // 5,000 x ~3.3 KB = ~16 MB: not half of the 50 MB clone pack, so the clone pack stays.
  t.is(plan.rollUp.length, 5000);
  t.deepEqual(plan.keep.map((p) => p.base), [pack(0, 0).base]);
  const bigger = planRollup([pack(0, 20_000_000), ...packs.slice(1)]);
  t.is(bigger.rollUp.length, 5001, 'the clone pack joins when the new pack would not be half its size');
});

test('packs already in a geometric progression are left alone; kept and foreign packs never roll up', (t) => {
  t.deepEqual(planRollup([pack(1, 1000), pack(2, 2000), pack(3, 4000), pack(4, 8000)]).rollUp, []);
  t.deepEqual(planRollup([pack(1, 100)]).rollUp, []);
  const plan = planRollup([pack(1, 10), pack(2, 10, { keep: true }), pack(3, 10, { foreign: true }), pack(4, 10), pack(5, 10_000)]);
  t.deepEqual(plan.rollUp.map((p) => p.base.slice(-1)).sort(), ['1', '4']);
  t.deepEqual(plan.keep.map((p) => p.base.slice(-1)).sort(), ['2', '3', '5']);
});

test('property: every pack is either rolled up or kept; what stays is a geometric progression of few packs', (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 2 ** 34 }), { minLength: 0, maxLength: 400 }), (sizes) => {
      const packs = sizes.map((bytes, i) => pack(i, bytes));
      const plan = planRollup(packs);
      const names = (list: readonly PackInfo[]): string[] => list.map((p) => p.base).sort();
      t.deepEqual(names([...plan.rollUp, ...plan.keep]), names(packs));
      t.true(plan.rollUp.length === 0 || plan.rollUp.length >= 2);
      const newPack = plan.rollUp.reduce((sum, p) => sum + p.bytes, 0);
      const after = [...plan.keep.map((p) => p.bytes), ...(newPack > 0 ? [newPack] : [])].sort((a, b) => a - b);
      // Every kept pack is at least twice the next smaller one, except possibly against the new pack and its
      // smaller neighbours (the new pack is at most the size of what it replaces, which may be tiny).
      const kept = plan.keep.map((p) => p.bytes).sort((a, b) => a - b);
      for (let i = 1; i < kept.length; i++) t.true((kept[i] ?? 0) >= 2 * (kept[i - 1] ?? 0));
      t.true(after.length <= Math.log2(2 ** 34) + 2);
    }),
    { numRuns: 300 },
  );
});

test('only the .keep index-pack writes for a fetch in flight counts as a dead fetch\'s keep', (t) => {
  t.true(isFetchKeep('fetch-pack 12345 on agent-pod-1\n'));
  t.false(isFetchKeep(''));
  t.false(isFetchKeep('kept by the operator\n'));
  t.false(isFetchKeep('receive-pack 1 on host\n'));
});
