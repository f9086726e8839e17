/**
 * `<cache>/bin/git-clone-cached` as app containers run it: under dash and under busybox (a busybox-only PATH,
 * git aside), as a UID that owns neither the mirror nor has a passwd entry, with the cache mounted read-only
 * (a bind mount remounted ro in a private mount namespace: EROFS is the kernel's answer). The upstream is a real
 * `git daemon`; a real `git-cache serve` answers the helper's refresh requests.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mirrorPath } from '../../../src/shared/repo-url.js';
import { busyboxPath, runAsCacheReader } from '../../support/cache-reader.js';
import { freePort, git, gitDaemonFixture, makeUpstream, runAgent, type AgentRun, type UpstreamRepo } from '../../support/git-fixtures.js';
import { startAgent, waitForReady, type AgentProcess } from '../../support/servers/agent.js';
import { testWithTools } from '../../support/tools.js';

const test = testWithTools(['git', 'flock', 'dash', 'busybox', 'sha1sum', 'curl', 'unshare', 'setpriv']);
const upstreams = gitDaemonFixture(test, 'clone-helper');
const READER_UID = 4343;

interface Setup {
  readonly url: string;
  readonly upstream: UpstreamRepo;
  readonly cache: string;
  readonly mirror: string;
  readonly home: string;
}

async function setup(name: string): Promise<Setup> {
  const upstream = makeUpstream(join(upstreams.root, 'up'), name);
  const url = upstreams.daemon.url(`${name}.git`);
  const cache = join(upstreams.root, `cache-${name}`);
  const sync = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  if (sync.code !== 0) throw new Error(sync.stderr);
  const home = join(upstreams.root, `home-${name}`);
  mkdirSync(home, { recursive: true });
  chownSync(home, READER_UID, READER_UID);
  chmodSync(upstreams.root, 0o755);
  return { url, upstream, cache, mirror: mirrorPath(cache, url), home };
}

function asReader(s: Setup, shell: 'dash' | 'busybox', script: string, env: Record<string, string>): Promise<AgentRun> {
  return runAsCacheReader({ cache: s.cache, home: s.home, uid: READER_UID }, shell, script, { GIT_CONFIG_NOSYSTEM: '1', ...env });
}

/** Inspects a reader's clone as root (which git would otherwise refuse: another user's repository). */
function gitAsRoot(args: string[]): string {
  return git(['-c', 'safe.directory=*', ...args]).trim();
}

for (const shell of ['dash', 'busybox'] as const) {
  test(`${shell}: the helper clones from the read-only mirror as another UID: origin = URL, HEAD, refs and log as a direct clone's, fsck clean`, async (t) => {
    const s = await setup(`plain-${shell}`);
    const target = join(s.home, 'clone');
    const path = shell === 'busybox' ? busyboxPath(upstreams.root) : (process.env.PATH ?? '');
    const run = await asReader(s, shell, `"$GIT_CACHE_DIR/bin/git-clone-cached" "$URL" "$TARGET"`, { URL: s.url, TARGET: target, PATH: path });
    t.is(run.code, 0, run.stderr);
    t.regex(run.stderr, /git-clone-cached: cloned .* from .* without contacting upstream; objects borrowed from the mirror/);
    t.is(readFileSync(join(target, '.git', 'objects', 'info', 'alternates'), 'utf8').trim(), join(s.mirror, 'objects'));
    const direct = join(upstreams.root, `direct-${shell}`);
    gitAsRoot(['clone', '-q', s.url, direct]);
    const same = (args: string[]) => t.is(gitAsRoot(['-C', target, ...args]), gitAsRoot(['-C', direct, ...args]), args.join(' '));
    same(['rev-parse', 'HEAD']);
    same(['symbolic-ref', 'HEAD']);
    same(['log', '--format=%H %s']);
    same(['for-each-ref', '--format=%(refname) %(objectname)']);
    same(['remote', '-v']);
    same(['config', 'branch.main.remote']);
    t.is(gitAsRoot(['-C', target, 'config', 'remote.origin.url']), s.url);
    t.is(gitAsRoot(['-C', target, 'fsck', '--strict', '--no-progress']), '');
    t.is(upstreams.daemon.uploadPacks(`/plain-${shell}.git`), 2, 'the agent sync and the direct clone; the helper none');
  });
}

test('--rev picks a branch (checked out, tracking), a tag (detached) or a commit id; --dissociate copies the objects', async (t) => {
  const s = await setup('revs');
  const first = gitAsRoot(['--git-dir', s.upstream.path, 'rev-list', '--max-parents=0', 'main']);
  const run = await asReader(
    s,
    'dash',
    `set -e
     h="$GIT_CACHE_DIR/bin/git-clone-cached"
     "$h" --rev feature "$URL" "$HOME/branch"
     "$h" --rev v1 "$URL" "$HOME/tag" -- --quiet
     "$h" --rev=${first} --dissociate "$URL" "$HOME/commit"`,
    { URL: s.url },
  );
  t.is(run.code, 0, run.stderr);
  t.is(gitAsRoot(['-C', join(s.home, 'branch'), 'symbolic-ref', 'HEAD']), 'refs/heads/feature');
  t.is(gitAsRoot(['-C', join(s.home, 'branch'), 'config', 'branch.feature.merge']), 'refs/heads/feature');
  t.is(gitAsRoot(['-C', join(s.home, 'tag'), 'rev-parse', 'HEAD']), gitAsRoot(['--git-dir', s.upstream.path, 'rev-parse', 'v1^{commit}']));
  t.throws(() => gitAsRoot(['-C', join(s.home, 'tag'), 'symbolic-ref', '-q', 'HEAD']), undefined, 'a tag is checked out detached, as git clone -b TAG does');
  t.is(gitAsRoot(['-C', join(s.home, 'commit'), 'rev-parse', 'HEAD']), first);
  t.false(existsSync(join(s.home, 'commit', '.git', 'objects', 'info', 'alternates')), '--dissociate: no alternates');
  t.is(gitAsRoot(['-C', join(s.home, 'commit'), 'fsck', '--no-progress']), '');
  t.regex(run.stderr, /objects copied from the mirror; HEAD at commit /);
});

test('a commit pushed after the last refresh: the helper asks the agent (curl, or busybox wget) and clones it; the job holds no credential', async (t) => {
  const s = await setup('fresh');
  const port = await freePort();
  const agent: AgentProcess = startAgent(['serve', '--repo', `fresh=${s.url}`, '--cache-dir', s.cache, '--interval', '1h', '--metrics-port', String(port), '--refresh-min-interval', '100ms']);
  try {
    await waitForReady(port, agent);
    const env = { URL: s.url, GIT_CACHE_ENDPOINT: `http://127.0.0.1:${port}`, GIT_CACHE_REF_FRESH: s.mirror };
    const newer = s.upstream.commit('after the last refresh');
    const withCurl = await asReader(s, 'dash', `"$GIT_CACHE_DIR/bin/git-clone-cached" --rev ${newer} "$URL" "$HOME/curl"`, env);
    t.is(withCurl.code, 0, withCurl.stderr);
    t.regex(withCurl.stderr, new RegExp(`not in the mirror: ${newer}; the agent at http://127.0.0.1:${port} fetched fresh now`));
    t.is(gitAsRoot(['-C', join(s.home, 'curl'), 'rev-parse', 'HEAD']), newer);

    const newest = s.upstream.commit('and another one');
    const withWget = await asReader(s, 'busybox', `"$GIT_CACHE_DIR/bin/git-clone-cached" --rev ${newest} "$URL" "$HOME/wget"`, { ...env, PATH: busyboxPath(upstreams.root) });
    t.is(withWget.code, 0, withWget.stderr);
    t.regex(withWget.stderr, /fetched fresh now/);
    t.is(gitAsRoot(['-C', join(s.home, 'wget'), 'rev-parse', 'HEAD']), newest);

    // A branch moved upstream: --refresh gets it as of now even though the mirror has an older one.
    const moved = s.upstream.commit('main moves');
    const refreshed = await asReader(s, 'dash', `"$GIT_CACHE_DIR/bin/git-clone-cached" --refresh --rev main "$URL" "$HOME/refreshed"`, env);
    t.is(refreshed.code, 0, refreshed.stderr);
    t.is(gitAsRoot(['-C', join(s.home, 'refreshed'), 'rev-parse', 'HEAD']), moved);
    t.true(JSON.stringify(agent.stderr()).includes('refresh_answered'));
  } finally {
    await agent.stop();
  }
});

test('no curl or wget: the helper says so and waits for the periodic refresh; a commit that never comes fails after --wait', async (t) => {
  const s = await setup('nowget');
  const port = await freePort();
  // A long interval, and SIGHUP (what the next periodic refresh does) once the helper is waiting.
  const agent = startAgent(['serve', '--repo', `nowget=${s.url}`, '--cache-dir', s.cache, '--interval', '1h', '--metrics-port', String(port)]);
  try {
    await waitForReady(port, agent);
    const env = { URL: s.url, GIT_CACHE_ENDPOINT: `http://127.0.0.1:${port}`, GIT_CACHE_REF_NOWGET: s.mirror, PATH: busyboxPath(upstreams.root, false) };
    const newer = s.upstream.commit('newer');
    const running = asReader(s, 'busybox', `"$GIT_CACHE_DIR/bin/git-clone-cached" --rev ${newer} --wait 60s "$URL" "$HOME/periodic"`, env);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    agent.child.kill('SIGHUP');
    const run = await running;
    t.is(run.code, 0, run.stderr);
    t.regex(run.stderr, /no curl or wget to ask the agent for a refresh: waiting for its periodic one/);
    t.is(gitAsRoot(['-C', join(s.home, 'periodic'), 'rev-parse', 'HEAD']), newer);

    const started = Date.now();
    const never = await asReader(s, 'busybox', `"$GIT_CACHE_DIR/bin/git-clone-cached" --rev ${'0'.repeat(40)} --wait 3 "$URL" "$HOME/never"`, env);
    t.is(never.code, 1);
    t.regex(never.stderr, /not in the mirror after waiting 3s: 0{40}/);
    t.true(Date.now() - started < 20_000, 'bounded by --wait');
    t.false(existsSync(join(s.home, 'never')));
  } finally {
    await agent.stop();
  }
});

test('without an endpoint (init mode) a missing commit fails at once with the reason; bad options exit 2', async (t) => {
  const s = await setup('noendpoint');
  const run = await asReader(s, 'dash', `"$GIT_CACHE_DIR/bin/git-clone-cached" --rev ${'1'.repeat(40)} "$URL" "$HOME/x"`, { URL: s.url });
  t.is(run.code, 1);
  t.regex(run.stderr, /no agent to refresh it \(GIT_CACHE_ENDPOINT is not set/);
  for (const args of ['--bogus "$URL" "$HOME/y"', '--wait forever "$URL" "$HOME/y"', '-- -oProxyCommand=x "$HOME/y"', '--rev --upload-pack=x "$URL" "$HOME/y"']) {
    const bad = await asReader(s, 'dash', `"$GIT_CACHE_DIR/bin/git-clone-cached" ${args}`, { URL: s.url });
    t.is(bad.code, 2, `${args}: ${bad.stderr}`);
  }
});

test('the helper computes the same key as the agent (http(s) userinfo ignored) and falls back to a plain clone without a mirror', async (t) => {
  const s = await setup('keyed');
  const other = makeUpstream(join(upstreams.root, 'up'), 'keyed-other');
  t.truthy(other);
  const key = (url: string) => execFileSync('dash', ['-c', `. "$0"; gc_key "$1"`, join(s.cache, 'bin', 'git-cache-lib.sh'), url], { encoding: 'utf8' }).trim();
  for (const url of ['https://host.example/org/repo.git', 'https://user:t@k@host.example/org/repo.git', 'git@host.example:org/repo.git', s.url]) {
    t.is(`${join(s.cache, key(url))}.git`, mirrorPath(s.cache, url), url);
  }
  const plain = await asReader(s, 'dash', `"$GIT_CACHE_DIR/bin/git-clone-cached" "$OTHER" "$HOME/plain"`, { OTHER: upstreams.daemon.url('keyed-other.git') });
  t.is(plain.code, 0, plain.stderr);
  t.regex(plain.stderr, /no usable mirror for .*keyed-other\.git .*; plain clone from upstream/);
  t.false(existsSync(join(s.home, 'plain', '.git', 'objects', 'info', 'alternates')));
});
