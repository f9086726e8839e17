/**
 * `git-cache serve`: readiness, metrics, upstream outages, SIGHUP, SIGTERM, and the optional git daemon.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoKey } from '../../../src/shared/repo-url.js';
import { findTool, testWithTools } from '../../support/tools.js';
import { agentCommand, assertMirrorSound, freePort, git, makeUpstream, parseEvents, refsOf, startGitDaemon, gitDaemonFixture, holdLock } from '../../support/git-fixtures.js';

const test = testWithTools(['git', 'flock']);

const upstreams = gitDaemonFixture(test, 'agent-serve');

interface Served {
  readonly child: ChildProcess;
  readonly port: number;
  stderr(): string;
  events(): Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startServe(args: readonly string[]): Promise<Served> {
  const port = await freePort();
  const [cmd, argv] = agentCommand(['serve', '--metrics-port', String(port), '--metrics-address', '127.0.0.1', ...args]);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, port, stderr: () => stderr, events: () => parseEvents(stderr), exited };
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, body: await res.text() };
  } catch {
    return { status: 0, body: '' };
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function metric(body: string, name: string, labels: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${name}{${labels}}`) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

test('serve: /readyz 503 until the first sync, then 200; /healthz; /metrics with repo labels', async (t) => {
  const upstream = makeUpstream(join(upstreams.root, 'up'), 'ready');
  const url = upstreams.daemon.url('ready.git');
  const cache = join(upstreams.root, 'cache-ready');
  const key = repoKey(url);
  mkdirSync(join(cache, '.locks'), { recursive: true });
  // Another agent "is cloning": ours must wait, and say it is not ready meanwhile.
  const lock = await holdLock(join(cache, '.locks', `${key}.lock`));
  const served = await startServe(['--repo', `app=${url}`, '--cache-dir', cache, '--interval', '1h']);
  try {
    await until('http up', async () => ((await get(served.port, '/healthz')).status === 200 ? true : undefined));
    t.is((await get(served.port, '/readyz')).status, 503);
    t.is(metric((await get(served.port, '/metrics')).body, 'git_cache_ready', ''), 0);
    await lock.release();
    await until('ready', async () => ((await get(served.port, '/readyz')).status === 200 ? true : undefined));
    const { body } = await get(served.port, '/metrics');
    t.is(metric(body, 'git_cache_fetch_total', 'repo="app",result="success"'), 1);
    t.is(metric(body, 'git_cache_fetch_total', 'repo="app",result="error"'), 0);
    t.true((metric(body, 'git_cache_bytes', 'repo="app"') ?? 0) > 0);
    t.is(metric(body, 'git_cache_refs', 'repo="app"'), upstream.refs().length);
    t.true((metric(body, 'git_cache_last_success_timestamp_seconds', 'repo="app"') ?? 0) > 1_600_000_000);
    t.not(metric(body, 'git_cache_last_fetch_seconds', 'repo="app"'), undefined);
    t.regex(body, /git_cache_fetch_duration_seconds_count\{repo="app",result="success"\} 1/);
    t.is(metric(body, 'git_cache_ready', ''), 1);
    t.regex(body, /process_cpu_seconds_total/);
    t.false(body.includes(url), 'no URL in any label');
    t.is((await get(served.port, '/nope')).status, 404);
    const promtool = findTool('promtool');
    if (promtool) execFileSync(promtool, ['check', 'metrics'], { input: body, stdio: ['pipe', 'pipe', 'pipe'] });
  } finally {
    served.child.kill('SIGTERM');
    t.is((await served.exited).code, 0);
  }
});

test('serve exposes the agent-wide gauges: refresh interval, --volume-size in bytes, and the volume\'s free space', async (t) => {
  makeUpstream(join(upstreams.root, 'up'), 'gauges');
  const url = upstreams.daemon.url('gauges.git');
  const cache = join(upstreams.root, 'cache-gauges');
  const served = await startServe(['--repo', url, '--cache-dir', cache, '--interval', '2s', '--volume-size', '5Mi']);
  try {
    await until('ready', async () => ((await get(served.port, '/readyz')).status === 200 ? true : undefined));
    const { body } = await get(served.port, '/metrics');
    t.is(metric(body, 'git_cache_refresh_interval_seconds', ''), 2);
    t.is(metric(body, 'git_cache_volume_size_bytes', ''), 5_242_880);
    t.true((metric(body, 'git_cache_volume_available_bytes', '') ?? 0) > 0);
    t.regex(body, /^git_cache_volume_available_bytes \d+$/m, 'no labels');
  } finally {
    served.child.kill('SIGTERM');
    t.is((await served.exited).code, 0);
  }
});

test('serve without --volume-size reports the cache dir\'s filesystem size (statfs) as the volume size', async (t) => {
  makeUpstream(join(upstreams.root, 'up'), 'fs-size');
  const url = upstreams.daemon.url('fs-size.git');
  const cache = join(upstreams.root, 'cache-fs-size');
  const served = await startServe(['--repo', url, '--cache-dir', cache, '--interval', '90s']);
  try {
    await until('ready', async () => ((await get(served.port, '/readyz')).status === 200 ? true : undefined));
    const { body } = await get(served.port, '/metrics');
    const fs = statfsSync(cache);
    t.is(metric(body, 'git_cache_volume_size_bytes', ''), fs.blocks * fs.bsize);
    t.is(metric(body, 'git_cache_refresh_interval_seconds', ''), 90);
    const available = metric(body, 'git_cache_volume_available_bytes', '') ?? 0;
    t.true(available > 0 && available <= fs.blocks * fs.bsize, String(available));
  } finally {
    served.child.kill('SIGTERM');
    t.is((await served.exited).code, 0);
  }
});

test('serve: upstream down keeps the last good mirror and readiness, counts errors; SIGHUP re-syncs; SIGTERM exits 0', async (t) => {
  const ownRoot = join(upstreams.root, 'outage');
  mkdirSync(ownRoot);
  const upstream = makeUpstream(ownRoot, 'flaky');
  let flaky = await startGitDaemon(ownRoot);
  const port = flaky.port;
  const url = flaky.url('flaky.git');
  const cache = join(upstreams.root, 'cache-outage');
  const mirror = join(cache, `${repoKey(url)}.git`);
  const served = await startServe(['--repo', url, '--cache-dir', cache, '--interval', '1h']);
  try {
    await until('ready', async () => ((await get(served.port, '/readyz')).status === 200 ? true : undefined));
    const before = refsOf(mirror);

    // SIGHUP fetches new upstream commits now.
    const head = upstream.commit('after start');
    served.child.kill('SIGHUP');
    await until('fetched new head', () => (refsOf(mirror).includes(`refs/heads/main ${head}`) ? true : undefined));
    t.notDeepEqual(refsOf(mirror), before);
    // The counter moves right after git exits, a moment after the refs did.
    const successes = await until('the fetch counted', async () => {
      const value = metric((await get(served.port, '/metrics')).body, 'git_cache_fetch_total', 'repo="flaky",result="success"');
      return value !== undefined && value >= 2 ? value : undefined;
    });
    t.is(successes, 2);

    // Upstream goes away: errors counted, mirror and readiness kept.
    await flaky.stop();
    const kept = refsOf(mirror);
    served.child.kill('SIGHUP');
    const errors = await until('an error counted', async () => {
      const value = metric((await get(served.port, '/metrics')).body, 'git_cache_fetch_total', 'repo="flaky",result="error"');
      return value !== undefined && value >= 1 ? value : undefined;
    });
    t.true(errors >= 1);
    t.is((await get(served.port, '/readyz')).status, 200);
    t.deepEqual(refsOf(mirror), kept);
    t.true(assertMirrorSound(mirror).ok);
    t.true(served.events().some((e) => e.event === 'sync_failed' && e.repo === 'flaky'));
    await until('a retry scheduled with backoff', () => (served.events().some((e) => e.event === 'retry_scheduled') ? true : undefined));
    t.pass();

    // Upstream back: the next (SIGHUP) sync succeeds again.
    flaky = await startGitDaemon(ownRoot, port);
    const head2 = upstream.commit('back again');
    served.child.kill('SIGHUP');
    await until('recovered', () => (refsOf(mirror).includes(`refs/heads/main ${head2}`) ? true : undefined));
  } finally {
    served.child.kill('SIGTERM');
    const exit = await served.exited;
    t.is(exit.code, 0);
    t.true(served.events().some((e) => e.event === 'stopped'));
    await flaky.stop();
  }
});

test('serve: SIGTERM during a clone stops git, exits 0, and leaves no mirror or staging behind', async (t) => {
  const upstream = makeUpstream(join(upstreams.root, 'up'), 'big');
  const work = join(upstreams.root, 'up', 'big.work');
  for (let i = 0; i < 6; i++) writeFileSync(join(work, `r${i}.bin`), randomBytes(4 << 20));
  git(['add', '-A'], work);
  git(['commit', '-q', '-m', 'big'], work);
  git(['push', '-q', upstream.path, 'main'], work);
  const url = upstreams.daemon.url('big.git');
  const cache = join(upstreams.root, 'cache-big');
  const served = await startServe(['--repo', url, '--cache-dir', cache]);
  await until('clone started', () => (served.events().some((e) => e.event === 'clone_started') ? true : undefined));
  served.child.kill('SIGTERM');
  const exit = await served.exited;
  t.is(exit.code, 0, served.stderr());
  const mirror = join(cache, `${repoKey(url)}.git`);
  if (existsSync(mirror)) t.true(assertMirrorSound(mirror).ok, 'the clone finished before SIGTERM: then it is complete');
  t.deepEqual(readdirSync(join(cache, '.staging')), []);
});

test('serve --git-daemon-port exports the mirrors read-only over git://, and nothing else', async (t) => {
  const upstream = makeUpstream(join(upstreams.root, 'up'), 'exported');
  const url = upstreams.daemon.url('exported.git');
  const cache = join(upstreams.root, 'cache-exported');
  const gitPort = await freePort();
  const served = await startServe(['--repo', url, '--cache-dir', cache, '--git-daemon-port', String(gitPort), '--git-daemon-address', '127.0.0.1']);
  try {
    await until('ready', async () => ((await get(served.port, '/readyz')).status === 200 ? true : undefined));
    const key = repoKey(url);
    const clone = join(upstreams.root, 'from-agent-daemon');
    await until('agent daemon serves', () => {
      try {
        git(['clone', '-q', '--mirror', `git://127.0.0.1:${gitPort}/${key}.git`, clone]);
        return true;
      } catch {
        rmSync(clone, { recursive: true, force: true });
        return undefined;
      }
    });
    t.deepEqual(refsOf(clone), upstream.refs());
    // No pushes.
    const work = join(upstreams.root, 'push-attempt');
    git(['clone', '-q', `git://127.0.0.1:${gitPort}/${key}.git`, work]);
    writeFileSync(join(work, 'x'), 'x');
    git(['add', 'x'], work);
    git(['commit', '-q', '-m', 'x'], work);
    t.throws(() => execFileSync('git', ['-C', work, 'push', 'origin', 'HEAD:refs/heads/evil'], { stdio: 'pipe' }));
    // Nothing outside the mirror list: not the staging area, not the lock dir, not a path escape.
    for (const path of ['.staging', '.locks', 'bin', '../', `${key}`]) {
      t.throws(() => execFileSync('git', ['ls-remote', `git://127.0.0.1:${gitPort}/${path}`], { stdio: 'pipe' }), undefined, path);
    }
  } finally {
    served.child.kill('SIGTERM');
    t.is((await served.exited).code, 0);
  }
});

test('serve: SIGTERM while waiting for another agent\'s lock exits 0 without touching the cache', async (t) => {
  makeUpstream(join(upstreams.root, 'up'), 'waiting');
  const url = upstreams.daemon.url('waiting.git');
  const cache = join(upstreams.root, 'cache-waiting');
  mkdirSync(join(cache, '.locks'), { recursive: true });
  const lock = await holdLock(join(cache, '.locks', `${repoKey(url)}.lock`));
  const served = await startServe(['--repo', url, '--cache-dir', cache, '--log-level', 'debug']);
  try {
    await until('waiting for the lock', () => (served.events().some((e) => e.event === 'lock_waiting') ? true : undefined));
    served.child.kill('SIGTERM');
    t.is((await served.exited).code, 0, served.stderr());
    t.false(existsSync(join(cache, `${repoKey(url)}.git`)));
  } finally {
    await lock.release();
  }
});
