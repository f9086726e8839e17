/**
 * `git-cache sync` and `wait` against a real `git daemon` on 127.0.0.1.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoKey } from '../../../src/shared/repo-url.js';
import { testWithTools } from '../../support/tools.js';
import { REPO_ROOT } from '../../support/tools.js';
import { assertMirrorSound, git, makeUpstream, refsOf, runAgent, runProcess, gitDaemonFixture } from '../../support/git-fixtures.js';

const test = testWithTools(['git', 'flock', 'dash', 'sha1sum']);

const upstreams = gitDaemonFixture(test, 'agent-sync');

function fresh(name: string): { url: string; upstream: ReturnType<typeof makeUpstream>; cache: string; mirror: string } {
  const upstream = makeUpstream(join(upstreams.root, 'up'), name);
  const url = upstreams.daemon.url(`${name}.git`);
  const cache = join(upstreams.root, `cache-${name}`);
  return { url, upstream, cache, mirror: join(cache, `${repoKey(url)}.git`) };
}

const headOf = (gitDir: string): string => git(['--git-dir', gitDir, 'symbolic-ref', 'HEAD']).trim();

test('the mirror HEAD follows upstream switching its default branch: at once when the old one is deleted, within the hour otherwise', async (t) => {
  const { url, upstream, cache, mirror } = fresh('head');
  t.is((await runAgent(['sync', '--repo', url, '--cache-dir', cache])).code, 0);
  t.is(headOf(mirror), 'refs/heads/main');

  // Renamed without deleting main: the next sync within the hour asks upstream nothing more.
  upstream.createBranch('trunk');
  git(['--git-dir', upstream.path, 'symbolic-ref', 'HEAD', 'refs/heads/trunk']);
  const soon = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  t.is(soon.code, 0, soon.stderr);
  t.is(headOf(mirror), 'refs/heads/main');
  t.false(soon.events.some((e) => e.event === 'head_changed'));

  // An hour later (the marker says when HEAD was last checked), the sync follows it.
  const markerPath = join(mirror, 'git-cache.json');
  writeFileSync(markerPath, JSON.stringify({ ...JSON.parse(readFileSync(markerPath, 'utf8')), headCheckedAt: Date.now() - 3_600_000 }));
  const later = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  t.is(later.code, 0, later.stderr);
  t.is(headOf(mirror), 'refs/heads/trunk');
  t.true(later.events.some((e) => e.event === 'head_changed' && e.from === 'refs/heads/main' && e.to === 'refs/heads/trunk'));

  // Switched and the old default deleted: the pruned HEAD dangles, so the same sync asks and follows.
  upstream.createBranch('next', 'trunk');
  git(['--git-dir', upstream.path, 'symbolic-ref', 'HEAD', 'refs/heads/next']);
  upstream.deleteBranch('trunk');
  const pruned = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  t.is(pruned.code, 0, pruned.stderr);
  t.is(headOf(mirror), 'refs/heads/next');
  const work = join(upstreams.root, 'head-clone');
  git(['clone', '-q', '--shared', mirror, work]);
  t.is(git(['-C', work, 'symbolic-ref', 'HEAD']).trim(), 'refs/heads/next', 'a clone of the mirror checks out the new default branch');
});

test('sync creates a full, non-shallow bare mirror with every ref, borrower-safe config and the clone helper', async (t) => {
  const { url, upstream, cache, mirror } = fresh('full');
  const run = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  t.is(run.code, 0, run.stderr);
  t.deepEqual(refsOf(mirror), upstream.refs());
  t.false(existsSync(join(mirror, 'shallow')));
  t.is(git(['--git-dir', mirror, 'rev-parse', '--is-bare-repository']).trim(), 'true');
  const config = (key: string): string => git(['--git-dir', mirror, 'config', '--get', key]).trim();
  t.is(config('extensions.preciousObjects'), 'true');
  t.is(config('core.repositoryformatversion'), '1');
  t.is(config('gc.auto'), '0');
  t.is(config('gc.pruneExpire'), 'never');
  t.is(config('remote.origin.mirror'), 'true');
  // preciousObjects makes git itself refuse to delete objects borrowers may need: even an unreachable
  // object survives `git gc --prune=now`, and `git prune` refuses to run.
  const orphan = execFileSync('git', ['--git-dir', mirror, 'hash-object', '-w', '--stdin'], { input: 'not referenced\n', encoding: 'utf8' }).trim();
  git(['--git-dir', mirror, 'gc', '--prune=now', '--quiet']);
  t.is(git(['--git-dir', mirror, 'cat-file', '-t', orphan]).trim(), 'blob');
  t.throws(() => git(['--git-dir', mirror, 'prune']));
  t.deepEqual(readdirSync(join(cache, '.staging')), []);
  const helper = join(cache, 'bin', 'git-clone-cached');
  t.is(statSync(helper).mode & 0o777, 0o755);
  t.true(run.events.some((e) => e.event === 'clone_done' && e.repo === 'full'));
});

test('re-sync fetches new commits and prunes deleted branches; an unchanged repo keeps its refs', async (t) => {
  const { url, upstream, cache, mirror } = fresh('resync');
  t.is((await runAgent(['sync', '--repo', url, '--cache-dir', cache])).code, 0);
  const head = upstream.commit('second wave');
  upstream.createBranch('topic');
  upstream.deleteBranch('feature');
  const run = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  t.is(run.code, 0, run.stderr);
  t.true(run.events.some((e) => e.event === 'fetch_done'));
  const refs = refsOf(mirror);
  t.deepEqual(refs, upstream.refs());
  t.true(refs.includes(`refs/heads/main ${head}`));
  t.false(refs.some((r) => r.startsWith('refs/heads/feature ')));
  t.true(assertMirrorSound(mirror).ok);
});

test('git clone --reference-if-able borrows from the mirror (alternates) and --dissociate makes it independent', async (t) => {
  const { url, cache, mirror } = fresh('borrow');
  t.is((await runAgent(['sync', '--repo', url, '--cache-dir', cache])).code, 0);
  const work = join(upstreams.root, 'borrow-clone');
  git(['clone', '-q', '--reference-if-able', mirror, '--', url, work]);
  const alternates = readFileSync(join(work, '.git', 'objects', 'info', 'alternates'), 'utf8');
  t.true(alternates.includes(mirror));
  git(['-C', work, 'fsck', '--no-progress']);
  const independent = join(upstreams.root, 'borrow-dissociated');
  // As docs/agent.md says: git before 2.55 fails the checkout of --dissociate when the mirror has a commit-graph.
  git(['-c', 'core.commitGraph=false', 'clone', '-q', '--reference-if-able', mirror, '--dissociate', '--', url, independent]);
  t.false(existsSync(join(independent, '.git', 'objects', 'info', 'alternates')));
});

test('hostile URLs are refused with exit 2 and a one-line reason before git or the cache dir are touched', async (t) => {
  const marker = join(upstreams.root, 'pwned');
  const cache = join(upstreams.root, 'cache-hostile');
  const hostile = [`ext::sh -c touch% ${marker}`, `ext::sh`, 'file:///etc', '/etc', `-oProxyCommand=touch ${marker}`, `ssh://-oProxyCommand=touch%20${marker}/y`, `--upload-pack=touch ${marker}`];
  for (const url of hostile) {
    const run = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
    t.is(run.code, 2, url);
    const lines = run.stderr.trim().split('\n');
    t.is(lines.length, 1, run.stderr);
    t.regex(lines[0] ?? '', /^git-cache: /);
    t.false(run.stderr.includes('    at '), 'no stack trace');
  }
  const viaEnv = await runAgent(['sync'], { REPO_URL: `https://ok.example/a.git ext::sh`, GIT_CACHE_DIR: cache });
  t.is(viaEnv.code, 2);
  t.false(existsSync(marker));
  t.false(existsSync(cache));
});

test('an unreachable upstream fails sync with exit 1 and a one-line JSON reason, leaving no mirror and no staging', async (t) => {
  const cache = join(upstreams.root, 'cache-down');
  const url = `git://127.0.0.1:${upstreams.daemon.port}/does-not-exist.git`;
  const run = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  t.is(run.code, 1);
  const last = run.events[run.events.length - 1];
  t.is(last?.level, 'error');
  t.regex(String(last?.message), /does-not-exist: clone: fatal: /);
  t.false(existsSync(join(cache, `${repoKey(url)}.git`)));
  t.deepEqual(readdirSync(join(cache, '.staging')), []);
});

test('recovery at start removes stale git locks and staging leftovers, and re-clones a corrupted mirror', async (t) => {
  const { url, upstream, cache, mirror } = fresh('recover');
  t.is((await runAgent(['sync', '--repo', url, '--cache-dir', cache])).code, 0);
  const key = repoKey(url);
  // What killed runs leave behind.
  for (const file of ['shallow.lock', 'packed-refs.lock', 'config.lock', 'gc.pid', 'refs/heads/main.lock', 'objects/pack/tmp_pack_deadbeef']) {
    writeFileSync(join(mirror, file), '');
  }
  mkdirSync(join(cache, '.staging', `${key}.abandoned`), { recursive: true });
  writeFileSync(join(cache, '.staging', `${key}.abandoned`, 'junk'), 'x');
  const run = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  t.is(run.code, 0, run.stderr);
  const removed = run.events.find((e) => e.event === 'stale_git_files_removed');
  t.truthy(removed);
  t.true((removed?.files as string[]).includes('packed-refs.lock'));
  t.true(run.events.some((e) => e.event === 'staging_removed'));
  for (const file of ['shallow.lock', 'packed-refs.lock', 'config.lock', 'gc.pid', 'refs/heads/main.lock']) t.false(existsSync(join(mirror, file)), file);
  t.deepEqual(readdirSync(join(cache, '.staging')), []);

  // Corrupt it: delete every pack, so refs point at missing objects.
  const packDir = join(mirror, 'objects', 'pack');
  for (const file of readdirSync(packDir)) rmSync(join(packDir, file));
  const again = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  t.is(again.code, 0, again.stderr);
  t.true(again.events.some((e) => e.event === 'mirror_quarantined' && String(e.reason).includes('fsck')));
  t.true(again.events.some((e) => e.event === 'clone_done'));
  t.true(assertMirrorSound(mirror).ok);
  t.deepEqual(refsOf(mirror), upstream.refs());
});

test('a shallow mirror is never kept: it is moved aside and re-cloned in full', async (t) => {
  const { url, upstream, cache, mirror } = fresh('shallow');
  mkdirSync(cache, { recursive: true });
  git(['clone', '-q', '--mirror', '--depth', '1', '--', url, mirror]);
  writeFileSync(join(mirror, 'git-cache.json'), JSON.stringify({ fetchStartedAt: 0, fetchCompletedAt: 0, url }));
  t.true(existsSync(join(mirror, 'shallow')));
  const run = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  t.is(run.code, 0, run.stderr);
  t.true(run.events.some((e) => e.event === 'mirror_quarantined' && e.reason === 'shallow'));
  t.false(existsSync(join(mirror, 'shallow')));
  t.deepEqual(refsOf(mirror), upstream.refs());
});

test('wait returns once every mirror is present, and times out with a clear message otherwise', async (t) => {
  const { url, cache } = fresh('wait');
  const missing = await runAgent(['wait', '--repo', url, '--cache-dir', cache, '--timeout', '1s']);
  t.is(missing.code, 1);
  t.regex(String(missing.events[missing.events.length - 1]?.message), /timed out after 1s waiting for mirrors: wait \(/);
  const waiting = runAgent(['wait', '--repo', url, '--cache-dir', cache, '--timeout', '60s']);
  t.is((await runAgent(['sync', '--repo', url, '--cache-dir', cache])).code, 0);
  const done = await waiting;
  t.is(done.code, 0, done.stderr);
  t.true(done.events.some((e) => e.event === 'mirrors_present'));
});

test('the image entrypoint runs the bundled agent as a plain process with the image environment', async (t) => {
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build.mjs')], { cwd: REPO_ROOT });
  const { url, upstream, cache, mirror } = fresh('entrypoint');
  const entrypoint = join(REPO_ROOT, 'docker', 'agent-entrypoint.sh');
  const help = await runProcess(entrypoint, ['--help'], { HOME: '/tmp' });
  t.is(help.code, 0);
  t.regex(help.stdout, /git-cache sync/);
  const res = await runProcess(entrypoint, ['sync'], { HOME: '/tmp', GIT_CACHE_DIR: cache, REPO_URL: url, NODE_ENV: 'production' });
  t.is(res.code, 0, res.stderr);
  t.deepEqual(refsOf(mirror), upstream.refs());
});

test('one agent mirrors several repos (flags and REPO_URL), each under its own key', async (t) => {
  const a = makeUpstream(join(upstreams.root, 'up'), 'multi-a');
  const b = makeUpstream(join(upstreams.root, 'up'), 'multi-b');
  const c = makeUpstream(join(upstreams.root, 'up'), 'multi-c');
  const cache = join(upstreams.root, 'cache-multi');
  const urls = ['multi-a', 'multi-b', 'multi-c'].map((n) => upstreams.daemon.url(`${n}.git`));
  const viaFlags = await runAgent(['sync', '--repo', urls[0] ?? '', '--repo', `other=${urls[1] ?? ''}`, '--cache-dir', cache]);
  t.is(viaFlags.code, 0, viaFlags.stderr);
  const viaEnv = await runAgent(['sync', '--parallel', '3'], { REPO_URL: urls.join(', '), GIT_CACHE_DIR: cache });
  t.is(viaEnv.code, 0, viaEnv.stderr);
  [a, b, c].forEach((upstream, i) => t.deepEqual(refsOf(join(cache, `${repoKey(urls[i] ?? '')}.git`)), upstream.refs()));
});
