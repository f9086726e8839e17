/**
 * Mirror maintenance with the real agent, real git and a `git daemon` upstream: a mirror with 400 refreshes'
 * worth of packs and a clone that borrows objects upstream has since deleted, then one `git-cache sync`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoKey } from '../../../src/shared/repo-url.js';
import { MAX_PACKS } from '../../../src/agent/maintenance/plan.js';
import { testWithTools } from '../../support/tools.js';
import { GIT_TEST_ENV, freePort, git, gitDaemonFixture, holdLock, makeUpstream, parseEvents, runAgent } from '../../support/git-fixtures.js';
import { httpGet, startAgent, waitForReady } from '../../support/servers/agent.js';
import { waitFor } from '../../support/servers/process.js';
import { createLogger } from '../../../src/agent/log.js';
import { prepareRuntime } from '../../../src/agent/git/runtime.js';
import { maintainMirror } from '../../../src/agent/maintenance/maintain.js';
import { allObjects, packNames, prepareCommits, refreshOneByOne } from '../../support/pack-history.js';

const test = testWithTools(['git', 'flock', 'nice']);

const upstreams = gitDaemonFixture(test, 'agent-maintenance');

function fresh(name: string, commits = 3): { url: string; upstream: ReturnType<typeof makeUpstream>; cache: string; mirror: string } {
  const upstream = makeUpstream(join(upstreams.root, 'up'), name, commits);
  const url = upstreams.daemon.url(`${name}.git`);
  const cache = join(upstreams.root, `cache-${name}`);
  return { url, upstream, cache, mirror: join(cache, `${repoKey(url)}.git`) };
}

function hasCommitGraph(mirror: string): boolean {
  return existsSync(join(mirror, 'objects', 'info', 'commit-graph')) || existsSync(join(mirror, 'objects', 'info', 'commit-graphs', 'commit-graph-chain'));
}

test('400 refreshes, a deleted branch and a force-push, then one sync: at most 50 packs, a commit-graph, fsck-clean mirror and borrower, deleted commits still readable', async (t) => {
  const { url, upstream, cache, mirror } = fresh('history');
  t.is((await runAgent(['sync', '--repo', url, '--cache-dir', cache])).code, 0);

  // A branch the borrower checks out, and a main commit upstream will force-push away.
  upstream.createBranch('doomed');
  const doomed = upstream.commit('only on doomed', 'doomed', 4096);
  const dropped = upstream.commit('dropped by a force-push', 'main', 2048);
  t.is((await runAgent(['sync', '--repo', url, '--cache-dir', cache])).code, 0);
  const borrower = join(upstreams.root, 'history-borrower');
  git(['clone', '-q', '--reference-if-able', mirror, '--', url, borrower]);
  git(['-C', borrower, 'checkout', '-q', 'doomed']);
  t.is(git(['-C', borrower, 'count-objects', '-v']).match(/^in-pack: (\d+)/m)?.[1], '0', 'the borrower holds no objects of its own');

  upstream.deleteBranch('doomed');
  git(['--git-dir', upstream.path, 'update-ref', 'refs/heads/main', `${dropped}~1`]);
  const commits = prepareCommits(upstream.path, join(upstreams.root, 'history-side.git'), 400, 'history');
  refreshOneByOne(join(upstreams.root, 'history-side.git'), upstream.path, mirror, commits);
  const packsBefore = packNames(mirror);
  t.true(packsBefore.length > 400, `${packsBefore.length} packs before`);
  t.false(git(['--git-dir', mirror, 'for-each-ref', '--format=%(refname)']).includes('doomed'), 'the mirror pruned the deleted branch');
  const objectsBefore = allObjects(mirror);

  const run = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  t.is(run.code, 0, run.stderr);
  const done = run.events.find((e) => e.event === 'maintenance_done');
  t.truthy(done, run.stderr);
  t.is(done?.trigger, 'packs');
  t.deepEqual(done?.steps, ['cleanup', 'rollup', 'multi-pack-index', 'bitmap', 'commit-graph']);

  const packsAfter = packNames(mirror);
  t.true(packsAfter.length <= MAX_PACKS, `${packsAfter.length} packs after`);
  t.true(packsBefore.filter((name) => packsAfter.includes(name)).length < packsBefore.length / 2, 'most old packs were rolled up and deleted');
  t.true(hasCommitGraph(mirror));
  t.true(readdirSync(join(mirror, 'objects', 'pack')).some((name) => /^multi-pack-index-[0-9a-f]+\.bitmap$/.test(name)), 'a reachability bitmap');
  const objectsAfter = allObjects(mirror);
  t.deepEqual(objectsBefore.filter((id) => !objectsAfter.includes(id)), [], 'no object the mirror had is gone, reachable or not');

  git(['--git-dir', mirror, 'fsck', '--no-progress', '--strict']);
  git(['-C', borrower, 'fsck', '--no-progress']);
  t.is(git(['-C', borrower, 'cat-file', '-t', doomed]).trim(), 'commit');
  t.is(git(['-C', borrower, 'cat-file', '-t', dropped]).trim(), 'commit');
  t.regex(git(['-C', borrower, 'log', '-p', '-1', doomed]), /only on doomed/);
  git(['-C', borrower, 'checkout', '-q', '--detach', dropped]);
  t.is(git(['-C', borrower, 'status', '--porcelain']), '', 'a checkout of the force-pushed-away commit is complete');
  // The borrower can keep working with the mirror: fetch the new history through it.
  git(['-C', borrower, 'fetch', '-q', 'origin']);
  t.is(git(['-C', borrower, 'rev-parse', 'origin/main']).trim(), commits.at(-1) ?? '');

  // git itself still refuses to delete objects in the mirror.
  t.is(git(['--git-dir', mirror, 'config', '--get', 'extensions.preciousObjects']).trim(), 'true');
  t.throws(() => git(['--git-dir', mirror, 'repack', '-a', '-d', '-q']), { message: /precious/ });

  // Nothing left to do: the next sync does not maintain again.
  const again = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  t.is(again.code, 0);
  t.false(again.events.some((e) => typeof e.event === 'string' && e.event.startsWith('maintenance_')));
});

test('a fresh clone gets a commit-graph and a bitmap from its first sync; --no-maintenance leaves it alone', async (t) => {
  const { url, cache, mirror } = fresh('first-sync', 5);
  const off = await runAgent(['sync', '--repo', url, '--cache-dir', cache, '--no-maintenance']);
  t.is(off.code, 0);
  t.false(hasCommitGraph(mirror));
  const run = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  t.is(run.code, 0, run.stderr);
  t.is(run.events.find((e) => e.event === 'maintenance_done')?.trigger, 'commit-graph');
  t.true(hasCommitGraph(mirror));
  const bitmap = spawnSync('git', ['--git-dir', mirror, 'rev-list', '--test-bitmap', 'HEAD'], { encoding: 'utf8', env: GIT_TEST_ENV });
  t.is(bitmap.status, 0, bitmap.stderr);
  t.regex(bitmap.stderr, /OK!/, 'the bitmap agrees with a traversal');
  git(['--git-dir', mirror, 'commit-graph', 'verify']);

  // git before 2.55 drops the reference's commit-graph in `clone --dissociate` while still using a commit it
  // read from it; the documented command clones without graphs, and --no-commit-graph removes the graph.
  const dissociate = (dir: string, ...config: string[]): ReturnType<typeof spawnSync> =>
    spawnSync('git', [...config, 'clone', '-q', '--reference-if-able', mirror, '--dissociate', '--', url, join(upstreams.root, dir)], { encoding: 'utf8', env: GIT_TEST_ENV });
  const plain = dissociate('first-sync-plain');
  t.true(plain.status === 0 || /unable to parse commit/.test(String(plain.stderr)), String(plain.stderr));
  t.log(`git clone --reference --dissociate with a commit-graph in the mirror: ${plain.status === 0 ? 'works with this git' : 'fails (git before 2.55)'}`);
  t.is(dissociate('first-sync-documented', '-c', 'core.commitGraph=false').status, 0);
  const removed = await runAgent(['maintain', '--repo', url, '--cache-dir', cache, '--no-commit-graph']);
  t.is(removed.code, 0, removed.stderr);
  t.true((removed.events.find((e) => e.event === 'maintenance_done')?.steps as string[]).includes('commit-graph-removed'));
  t.false(hasCommitGraph(mirror));
  t.is(dissociate('first-sync-no-graph').status, 0);
  const unchanged = await runAgent(['sync', '--repo', url, '--cache-dir', cache, '--no-commit-graph']);
  t.false(unchanged.events.some((e) => e.event === 'maintenance_started'), 'no graph is what --no-commit-graph wants: not due');
});

test('git-cache maintain without --repo maintains every mirror in the cache dir; what killed runs left is removed first', async (t) => {
  const a = fresh('maintain-a');
  const b = fresh('maintain-b');
  const cache = join(upstreams.root, 'cache-maintain-all');
  t.is((await runAgent(['sync', '--repo', a.url, '--repo', b.url, '--cache-dir', cache, '--no-maintenance'])).code, 0);
  const mirrorA = join(cache, `${repoKey(a.url)}.git`);
  const mirrorB = join(cache, `${repoKey(b.url)}.git`);
  const packDir = join(mirrorA, 'objects', 'pack');
  const [base] = packNames(mirrorA);
  // A killed fetch: its .keep (index-pack writes "fetch-pack <pid> on <host>"), a .pack without .idx, a
  // multi-pack-index lock and a half-written split commit-graph layer.
  writeFileSync(join(packDir, `${base}.keep`), 'fetch-pack 4242 on some-pod\n');
  const orphan = `pack-${'e'.repeat(40)}`;
  writeFileSync(join(packDir, `${orphan}.pack`), 'PACK half written');
  writeFileSync(join(packDir, 'multi-pack-index.lock'), '');
  // An operator's .keep is respected.
  const operatorKeep = join(mirrorB, 'objects', 'pack', `${packNames(mirrorB)[0]}.keep`);
  writeFileSync(operatorKeep, 'keep this pack\n');

  const run = await runAgent(['maintain', '--cache-dir', cache]);
  t.is(run.code, 0, run.stderr);
  const done = run.events.filter((e) => e.event === 'maintenance_done');
  t.deepEqual(done.map((e) => e.repo).sort(), [repoKey(a.url), repoKey(b.url)].sort());
  t.true(done.every((e) => e.trigger === 'requested'));
  const removed = run.events.filter((e) => e.event === 'stale_git_files_removed').flatMap((e) => e.files as string[]);
  t.true(removed.includes('objects/pack/multi-pack-index.lock'), JSON.stringify(removed));
  t.true(removed.includes(`objects/pack/${base}.keep`));
  t.true(removed.includes(`objects/pack/${orphan}.pack`));
  t.false(existsSync(join(packDir, `${orphan}.pack`)));
  t.true(existsSync(operatorKeep));
  t.true(hasCommitGraph(mirrorA) && hasCommitGraph(mirrorB));
  git(['--git-dir', mirrorA, 'fsck', '--no-progress']);
});

test('maintain waits for a busy lock only within its budget, and a run stopped by its budget leaves a valid mirror', async (t) => {
  const { url, upstream, cache, mirror } = fresh('budget');
  t.is((await runAgent(['sync', '--repo', url, '--cache-dir', cache, '--no-maintenance'])).code, 0);
  const held = await holdLock(join(cache, '.locks', `${repoKey(url)}.lock`));
  const busy = await runAgent(['maintain', '--repo', url, '--cache-dir', cache, '--maintenance-budget', '1500ms']);
  await held.release();
  t.is(busy.code, 1);
  t.regex(busy.stderr, /lock stayed busy for the whole budget/);
  t.is(busy.events.find((e) => e.event === 'maintenance_failed')?.result, 'timeout');

  const side = join(upstreams.root, 'budget-side.git');
  refreshOneByOne(side, upstream.path, mirror, prepareCommits(upstream.path, side, 120, 'budget'));
  const objects = allObjects(mirror);
  const stopped = await runAgent(['maintain', '--repo', url, '--cache-dir', cache, '--maintenance-budget', '150ms']);
  t.is(stopped.code, 1, stopped.stderr);
  t.regex(stopped.stderr, /budget/);
  git(['--git-dir', mirror, 'fsck', '--no-progress']);
  t.deepEqual(objects.filter((id) => !allObjects(mirror).includes(id)), []);
  t.deepEqual(readdirSync(join(mirror, 'objects', 'pack')).filter((name) => name.startsWith('tmp_') || name.endsWith('.lock')), []);
  const finished = await runAgent(['maintain', '--repo', url, '--cache-dir', cache]);
  t.is(finished.code, 0, finished.stderr);
  t.true(packNames(mirror).length <= MAX_PACKS);
});

test('maintain refuses a cache dir without that mirror with exit 1, and creates nothing', async (t) => {
  const cache = join(upstreams.root, 'cache-empty');
  const run = await runAgent(['maintain', '--repo', upstreams.daemon.url('nothing.git'), '--cache-dir', cache]);
  t.is(run.code, 1);
  t.regex(run.stderr, /no mirror/);
  t.false(existsSync(cache));
});

test('serve maintains a due mirror after it is ready, and exports packs and maintenance metrics', async (t) => {
  t.timeout(420_000);
  const { url, upstream, cache, mirror } = fresh('serve');
  t.is((await runAgent(['sync', '--repo', `serve=${url}`, '--cache-dir', cache, '--no-maintenance'])).code, 0);
  const side = join(upstreams.root, 'serve-side.git');
  refreshOneByOne(side, upstream.path, mirror, prepareCommits(upstream.path, side, 60, 'serve'));
  t.true(packNames(mirror).length > MAX_PACKS);
  const port = await freePort();
  const agent = startAgent(['serve', '--repo', `serve=${url}`, '--cache-dir', cache, '--interval', '1h', '--metrics-port', String(port), '--metrics-address', '127.0.0.1']);
  t.teardown(() => agent.stop());
  // Generous: its first fetch over 60 packs took over a minute when cluster suites ran beside it.
  await waitForReady(port, agent, 240_000);
  const metrics = await waitFor(
    'a successful maintenance run in /metrics',
    async () => {
      const body = (await httpGet(port, '/metrics')).body;
      return /git_cache_maintenance_total\{repo="serve",result="success"\} 1\b/.test(body) ? body : undefined;
    },
    120_000,
    200,
  );
  const value = (name: string): number => Number(new RegExp(`^${name}\\{repo="serve"\\} (\\S+)$`, 'm').exec(metrics)?.[1]);
  t.true(value('git_cache_packs') <= MAX_PACKS, metrics);
  t.true(value('git_cache_last_maintenance_seconds') > 0);
  for (const result of ['error', 'timeout', 'skipped']) t.regex(metrics, new RegExp(`git_cache_maintenance_total\\{repo="serve",result="${result}"\\} 0`));
  const events = parseEvents(agent.stderr()).map((e) => e.event);
  t.true(events.indexOf('ready') < events.indexOf('maintenance_started'), 'readiness did not wait for maintenance');
  t.is(packNames(mirror).length, value('git_cache_packs'));
});

test('maintenance after a refresh is skipped, not waited for, while another agent holds the lock', async (t) => {
  const { url, cache } = fresh('skip');
  t.is((await runAgent(['sync', '--repo', url, '--cache-dir', cache, '--no-maintenance'])).code, 0);
  const logger = createLogger('error', () => undefined);
  const runtime = await prepareRuntime(logger);
  t.teardown(() => runtime.cleanup());
  const ctx = { cacheDir: cache, runtime, logger, credentials: { credentialsDir: '/nonexistent', insecureIgnoreHostKey: false }, recovered: new Set<string>() };
  const repo = { name: 'skip', url, key: repoKey(url) };
  const held = await holdLock(join(cache, '.locks', `${repoKey(url)}.lock`));
  const started = Date.now();
  const report = await maintainMirror(ctx, repo, { budgetMs: 60_000, waitForLock: false, trigger: 'commit-graph', commitGraph: true });
  await held.release();
  t.is(report.result, 'skipped');
  t.regex(report.reason ?? '', /another agent holds the repo lock/);
  t.true(Date.now() - started < 10_000);
  t.is((await maintainMirror(ctx, repo, { budgetMs: 60_000, waitForLock: false, trigger: 'commit-graph', commitGraph: true })).result, 'success');
});
