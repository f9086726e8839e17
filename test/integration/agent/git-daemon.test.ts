/**
 * The agent's git port as node mode's network readers use it: a real `git-cache serve --git-daemon-port`
 * against a real upstream `git daemon`, and the readers' git configured exactly as the function configures a
 * pod in `node.networkNamespaces` (transparent mode pointing every spelling of the URL at
 * git://<agent>/<key>.git, no volume, no GIT_CACHE_ENDPOINT). The CI tools' command sequences
 * (test/e2e/ci-tools/*.sh) get a commit pushed after the mirror's last refresh: the agent sees the fetch want
 * a commit (or name a ref) its mirror lacks and refreshes first; the upstream's log counts every fetch. Hostile
 * and malformed clients are refused by git, bounded, and leave the port serving.
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { appGitEnv } from '../../../src/inject/transparent.js';
import { repoKey } from '../../../src/shared/repo-url.js';
import { MAX_CONNECTIONS } from '../../../src/agent/serving/git-daemon.js';
import { GIT_TEST_ENV, freePort, git, gitDaemonFixture, makeUpstream, type UpstreamRepo } from '../../support/git-fixtures.js';
import { startAgent, waitForReady, type AgentProcess } from '../../support/servers/agent.js';
import { CI_TOOLS_DIR, CI_TOOL_CASES } from '../../support/ci-tool-cases.js';
import { REPO_ROOT, testWithTools } from '../../support/tools.js';

const test = testWithTools(['git', 'flock', 'dash']);
const upstreams = gitDaemonFixture(test, 'git-port');
const run = promisify(execFile);

interface World {
  readonly url: string;
  readonly upstream: UpstreamRepo;
  readonly agent: AgentProcess;
  readonly gitPort: number;
  readonly mirrorUrl: string;
  /** What the function gives a network reader's app container. */
  readonly env: Record<string, string>;
  readonly home: string;
}

let world: Promise<World> | undefined;

/** One upstream, one serving agent with its git port (interval 1h: only readers' fetches move the mirror). */
function setup(): Promise<World> {
  world ??= (async () => {
    const upstream = makeUpstream(join(upstreams.root, 'up'), 'app');
    const url = upstreams.daemon.url('app.git');
    const metricsPort = await freePort();
    const gitPort = await freePort();
    const agent = startAgent([
      'serve', '--repo', `app=${url}`, '--cache-dir', join(upstreams.root, 'cache'), '--interval', '1h', '--metrics-port', String(metricsPort),
      '--git-daemon-port', String(gitPort), '--git-daemon-address', '127.0.0.1', '--refresh-min-interval', '200ms',
    ]);
    await waitForReady(metricsPort, agent);
    const mirrorUrl = `git://127.0.0.1:${gitPort}/${repoKey(url)}.git`;
    const injected = appGitEnv({ repos: [{ url, mirror: { url: mirrorUrl } }], endpoint: undefined, transparent: true, cacheDir: undefined });
    const home = join(upstreams.root, 'home');
    const env = { ...GIT_TEST_ENV, HOME: home, ...Object.fromEntries(injected.map((variable) => [variable.name, variable.value])) };
    return { url, upstream, agent, gitPort, mirrorUrl, env, home };
  })();
  return world;
}

test.after.always(async () => {
  if (world) await (await world).agent.stop();
});

const fetchesFromUpstream = (): number => upstreams.daemon.uploadPacks('/app.git');

async function sh(w: World, script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('dash', ['-c', script], { env: w.env, cwd: REPO_ROOT, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

const quoted = (args: readonly string[]): string => args.map((arg) => `'${arg}'`).join(' ');

for (const entry of CI_TOOL_CASES) {
  test.serial(`network reader, ${entry.tool}: a commit pushed after the mirror's last refresh`, async (t) => {
    const w = await setup();
    const sha = w.upstream.commit(`for ${entry.tool} over the network`);
    entry.before?.(w, sha);
    const dir = join(w.home, entry.tool.replace('.sh', ''));
    const before = fetchesFromUpstream();
    const result = await sh(w, `${join(CI_TOOLS_DIR, entry.tool)} ${quoted(entry.args(w, dir, sha))}`);
    if (entry.newer === 'checked-out') {
      t.is(result.code, 0, result.stderr);
      t.is(git(['-C', dir, 'rev-parse', 'HEAD']).trim(), sha);
      t.is(git(['-C', dir, 'config', 'remote.origin.url']).trim(), w.url, 'origin is the URL as written');
      t.is(git(['-C', dir, 'fsck', '--no-progress', '--connectivity-only']).trim(), '');
      t.is(fetchesFromUpstream() - before, 1, 'the agent fetched once; the tool read the git port');
      t.regex(w.agent.stderr(), /"event":"git_fetch_refreshed".*"repo":"app"/);
    } else {
      t.not(result.code, 0, `documented: ${entry.tool} does not get a commit newer than the mirror`);
      t.regex(result.stderr, entry.newer);
      t.is(fetchesFromUpstream() - before, 0, 'and nothing reached upstream');
    }
  });
}

test.serial('a plain clone, a branch fetch and a fetch of commits the mirror has cost upstream nothing', async (t) => {
  const w = await setup();
  const before = fetchesFromUpstream();
  const dir = join(w.home, 'plain');
  const clone = await sh(w, `git clone -q ${quoted([w.url, dir])} && cd '${dir}' && git fetch -q origin main feature v1 && git fetch -q origin "$(git rev-parse HEAD)" && git fetch -q --tags origin '+refs/heads/feature*:refs/remotes/origin/feature*' '+refs/tags/feature*:refs/tags/feature*'`);
  t.is(clone.code, 0, clone.stderr);
  t.is(fetchesFromUpstream() - before, 0);
});

test.serial('what a fetch names only decides whether to refresh: a commit upstream does not have costs one refresh for any number of requests, then git refuses it', async (t) => {
  const w = await setup();
  const before = fetchesFromUpstream();
  const dir = join(w.home, 'bogus');
  await sh(w, `git init -q '${dir}' && git -C '${dir}' remote add origin '${w.url}'`);
  const bogus = 'f'.repeat(40);
  const attempts = await Promise.all(Array.from({ length: 10 }, () => sh(w, `git -C '${dir}' fetch -q origin ${bogus}`)));
  for (const attempt of attempts) {
    t.not(attempt.code, 0);
    t.regex(attempt.stderr, /not our ref|couldn't find remote ref|upload-pack/);
  }
  const fetches = fetchesFromUpstream() - before;
  t.true(fetches >= 1 && fetches <= 2, `10 concurrent fetches of an unknown commit: ${fetches} upstream fetches (coalesced)`);
});

test.serial('protocol v0 clients are served unread: a commit the mirror has is fetched, a newer one is refused without a refresh', async (t) => {
  const w = await setup();
  const dir = join(w.home, 'v0');
  const have = git(['--git-dir', w.upstream.path, 'rev-parse', 'refs/heads/feature']).trim();
  const cloned = await sh(w, `git -c protocol.version=0 clone -q ${quoted([w.url, dir])}`);
  t.is(cloned.code, 0, cloned.stderr);
  const newer = w.upstream.commit('v0 cannot see me');
  const before = fetchesFromUpstream();
  t.is((await sh(w, `git -C '${dir}' -c protocol.version=0 fetch -q origin ${have}`)).code, 0);
  const refused = await sh(w, `git -C '${dir}' -c protocol.version=0 fetch -q origin ${newer}`);
  t.not(refused.code, 0);
  t.is(fetchesFromUpstream() - before, 0);
});

/** Raw bytes to the git port; what comes back within `ms` (or until the agent closes). */
function raw(port: number, bytes: Buffer, ms = 3000): Promise<{ reply: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ reply, closed: false });
    }, ms);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ reply, closed: true });
    });
  });
}

function pkt(text: string): Buffer {
  return Buffer.from(`${(text.length + 4).toString(16).padStart(4, '0')}${text}`, 'latin1');
}

test.serial('hostile clients: paths outside the mirrors, other services, garbage and oversized requests are refused by git, fetch nothing, and the port keeps serving', async (t) => {
  const w = await setup();
  const before = fetchesFromUpstream();
  const key = repoKey(w.url);
  const cases: Array<[string, Buffer]> = [
    ['a path outside the cache', pkt('git-upload-pack /../../etc\0host=x\0\0version=2\0')],
    ['the cache directory itself', pkt('git-upload-pack /\0host=x\0\0version=2\0')],
    ['an unknown key', pkt(`git-upload-pack /${'0'.repeat(20)}.git\0host=x\0\0version=2\0`)],
    ['receive-pack (push)', pkt(`git-receive-pack /${key}.git\0host=x\0`)],
    ['upload-archive', pkt(`git-upload-archive /${key}.git\0host=x\0`)],
    ['no pkt-line at all', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['a length beyond the pkt-line limit', Buffer.from('ffff' + 'x'.repeat(100))],
    ['a v2 fetch of unknown commits after garbage', Buffer.concat([pkt(`git-upload-pack /${key}.git\0host=x\0\0version=2\0`), pkt('command=fetch\n'), Buffer.from('zzzz'), pkt(`want ${'e'.repeat(40)}\n`), Buffer.from('0000')])],
  ];
  for (const [what, bytes] of cases) {
    const { reply, closed } = await raw(w.gitPort, bytes);
    t.true(closed, `${what}: the connection ends`);
    // The last case names a mirror this port serves: upload-pack advertises its capabilities, then refuses the garbage.
    const served = what.startsWith('a v2 fetch') ? /refs\/heads\/main|packfile/ : /^[0-9a-f]{4}version 2|refs\/heads\/main/;
    t.notRegex(reply, served, `${what}: nothing of the mirror is served (${JSON.stringify(reply.slice(0, 80))})`);
  }
  // A request of more than MAX_INSPECTED_REQUEST bytes of wants is passed to git unread (no refresh, bounded memory).
  const wants = Array.from({ length: 25_000 }, (_, i) => pkt(`want ${i.toString(16).padStart(40, 'a')}\n`));
  const big = await raw(w.gitPort, Buffer.concat([pkt(`git-upload-pack /${key}.git\0host=x\0\0version=2\0`), pkt('command=fetch\n'), Buffer.from('0001'), ...wants, Buffer.from('0000')]), 20_000);
  t.true(big.closed);
  t.is(fetchesFromUpstream() - before, 0, 'nothing was fetched');
  // More connections than MAX_CONNECTIONS at once: the extra ones are closed; afterwards the port serves again.
  const idle = await Promise.all(
    Array.from({ length: MAX_CONNECTIONS + 16 }, () => new Promise<ReturnType<typeof connect>>((resolve) => {
      const socket = connect(w.gitPort, '127.0.0.1', () => resolve(socket));
      socket.on('error', () => resolve(socket));
    })),
  );
  for (const socket of idle) socket.destroy();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = await sh(w, `git ls-remote '${w.url}' refs/heads/main`);
  t.is(after.code, 0, after.stderr);
  t.regex(after.stdout, /refs\/heads\/main/);
  t.is(w.agent.child.exitCode, null, 'the agent still runs');
  t.deepEqual(await daemonsLeftAfter(w, 5000), [], 'every connection\'s git daemon is gone');
});

test.serial('a client that connects and says nothing, or stops halfway through a request, is closed in bounded time and leaves no git daemon behind', async (t) => {
  const w = await setup();
  const key = repoKey(w.url);
  // A v2 fetch whose request never ends: git waits for the rest of it (no refresh: the request is not complete).
  const halfway = connect(w.gitPort, '127.0.0.1');
  halfway.on('error', () => undefined);
  halfway.write(Buffer.concat([pkt(`git-upload-pack /${key}.git\0host=x\0\0version=2\0`), pkt('command=fetch\n'), Buffer.from('0001'), pkt(`want ${'e'.repeat(40)}\n`)]));
  const started = Date.now();
  const silent = await raw(w.gitPort, Buffer.alloc(0), 30_000);
  t.true(silent.closed, 'git daemon\'s --init-timeout (10 s) ends a silent connection');
  t.is(silent.reply, '', 'nothing was served');
  t.true(Date.now() - started < 25_000, `closed after ${Date.now() - started} ms`);
  t.false(halfway.destroyed, 'a request still arriving is not cut off');
  t.is((await daemonsLeft(w)).length, 1, 'the halfway client\'s git daemon still waits for the rest');
  halfway.destroy();
  t.deepEqual(await daemonsLeftAfter(w, 5000), [], 'its git daemon went with it');
});

/** The `git daemon --inetd` processes the agent still runs (one per open connection). */
async function daemonsLeft(w: World): Promise<string[]> {
  const { stdout } = await run('ps', ['-o', 'args=', '--ppid', String(w.agent.child.pid)]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter((line) => line.includes('--inetd'));
}

/** Those still running after up to `ms` (a closed connection's git daemon takes a moment to exit). */
async function daemonsLeftAfter(w: World, ms: number): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = await daemonsLeft(w);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
