import test from 'ava';
import { classifyLeftover, layoutProblem, stagingKey } from '../../../../src/agent/mirror/git-files.js';

test('lock files left by killed git runs are recognised', (t) => {
  for (const path of ['shallow.lock', 'packed-refs.lock', 'index.lock', 'config.lock', 'HEAD.lock', 'gc.pid', 'refs/heads/main.lock', 'refs/tags/v1.lock', 'refs/remotes/origin/x/y.lock']) {
    t.is(classifyLeftover(path), 'lock', path);
  }
  // maintenance: a killed multi-pack-index write, bitmap or split commit-graph layer
  for (const path of ['objects/pack/multi-pack-index.lock', 'objects/info/commit-graphs/commit-graph-chain.lock']) t.is(classifyLeftover(path), 'lock', path);
  for (const path of ['objects/pack/tmp_pack_AbC123', 'objects/pack/tmp_idx_x', 'objects/ab/tmp_obj_123', 'objects/incoming-xyz', 'objects/pack/tmp_bitmap_a1', 'objects/info/commit-graphs/tmp_graph_Zx9']) {
    t.is(classifyLeftover(path), 'temporary-object', path);
  }
});

test('repository content is never classified as a leftover', (t) => {
  for (const path of ['HEAD', 'config', 'packed-refs', 'refs/heads/main', 'refs/heads/lock', 'refs/heads/feature.locked', 'objects/pack/pack-1.pack', 'objects/pack/pack-1.idx', 'objects/ab/cdef', 'git-cache.json', 'objects/info/alternates', 'hooks/pre-commit.sample', 'shallow', 'objects/pack/multi-pack-index', 'objects/info/commit-graphs/graph-ab12.graph', 'objects/info/commit-graphs/commit-graph-chain']) {
    t.is(classifyLeftover(path), undefined, path);
  }
});

test('staging entries map to the key whose lock guards them', (t) => {
  t.is(stagingKey('0123456789abcdef0123.a1b2c3'), '0123456789abcdef0123');
  t.is(stagingKey('0123456789abcdef0123.broken-ff'), '0123456789abcdef0123');
  t.is(stagingKey('unrelated'), undefined);
  t.is(stagingKey('0123456789ABCDEF0123.x'), undefined);
});

test('a mirror layout is judged in order: directory, HEAD, objects, config, shallow', (t) => {
  const good = { isDirectory: true, hasHead: true, hasObjects: true, hasConfig: true, isShallow: false };
  t.is(layoutProblem(good), undefined);
  t.is(layoutProblem({ ...good, isDirectory: false }), 'not-a-directory');
  t.is(layoutProblem({ ...good, hasHead: false }), 'missing-head');
  t.is(layoutProblem({ ...good, hasObjects: false }), 'missing-objects');
  t.is(layoutProblem({ ...good, isShallow: true }), 'shallow');
});
