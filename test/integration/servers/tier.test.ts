// The upstream cache tier (--upstream-cache): the built agent against a private ssh upstream (a real OpenSSH
// server with key auth; every clone or fetch of it is one "Accepted publickey" line in its log) and a keeper
// (the real agent's `serve` with its git daemon) as the tier. Node agents take objects and refs from the keeper
// without credentials, the git host sees only the keeper, origin stays the repo URL, refs equal upstream's; a
// tier that is down, silent or still cloning is handled, and the fallback to the git host needs the credentials.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { FLAG } from '../../../src/shared/agent-cli.js';
import { LOCK_DIR_NAME } from '../../../src/shared/names.js';
import { mirrorPath, repoKey } from '../../../src/shared/repo-url.js';
import { holdLock, parseEvents } from '../../support/git-fixtures.js';
import { testWithTools } from '../../support/tools.js';
import { httpGet, repoFlags, runAgentToEnd, startAgent, waitForReady, writeSshCredentials, type AgentProcess } from '../../support/servers/agent.js';
import { freePort, makeTempDir, removeDir, waitFor } from '../../support/servers/process.js';
import { startSshd, type SshServer } from '../../support/servers/sshd.js';
import { createUpstream, git, type Upstream } from '../../support/servers/upstream.js';

const test = testWithTools(['sshd', 'ssh', 'ssh-keygen', 'flock', 'git']);

interface Setup {
  readonly server: SshServer;
  readonly dir: string;
  readonly upstream: Upstream;
  readonly url: string;
  readonly credentials: string;
  readonly noCredentials: string;
  /** ssh sessions the git host accepted so far: one per clone or fetch that reached it. */
  hostFetches(): number;
}

async function setup(teardown: (fn: () => Promise<void> | void) => void): Promise<Setup> {
  const server = await startSshd();
  const dir = makeTempDir('tier');
  teardown(async () => {
    await server.stop();
    removeDir(dir);
  });
  chmodSync(dir, 0o755);
  const upstream = createUpstream(dir, 'app');
  const url = server.url(upstream.path);
  const credentials = join(dir, 'credentials');
  writeSshCredentials(credentials, 'app', { privateKey: server.clientPrivateKey, knownHosts: server.knownHosts });
  const noCredentials = join(dir, 'no-credentials');
  mkdirSync(noCredentials);
  return { server, dir, upstream, url, credentials, noCredentials, hostFetches: () => (server.log().match(/Accepted publickey/g) ?? []).length };
}

interface Keeper {
  readonly agent: AgentProcess;
  readonly tier: string;
  readonly metricsPort: number;
  readonly cacheDir: string;
}

async function startKeeper(s: Setup, teardown: (fn: () => Promise<void> | void) => void, cacheDir = join(s.dir, 'keeper')): Promise<Keeper> {
  const metricsPort = await freePort();
  const daemonPort = await freePort();
  mkdirSync(cacheDir, { recursive: true });
  const agent = startAgent([
    'serve',
    FLAG.cacheDir,
    cacheDir,
    FLAG.credentialsDir,
    s.credentials,
    FLAG.interval,
    '1h',
    FLAG.metricsPort,
    String(metricsPort),
    '--metrics-address',
    '127.0.0.1',
    FLAG.gitDaemonPort,
    String(daemonPort),
    '--git-daemon-address',
    '127.0.0.1',
    ...repoFlags([{ name: 'app', url: s.url }]),
  ]);
  teardown(async () => {
    await agent.stop();
  });
  return { agent, tier: `git://127.0.0.1:${daemonPort}`, metricsPort, cacheDir };
}

function nodeSync(s: Setup, cacheDir: string, tier: string, credentials: string, extra: string[] = []): ReturnType<typeof runAgentToEnd> {
  return runAgentToEnd(['sync', FLAG.cacheDir, cacheDir, FLAG.credentialsDir, credentials, FLAG.upstreamCache, tier, ...extra, ...repoFlags([{ name: 'app', url: s.url }])]);
}

function events(stderr: string, name: string): Array<Record<string, unknown>> {
  return parseEvents(stderr).filter((event) => event.event === name);
}

/** What a reader of the node mirror sees: origin, refs, HEAD, the marker's URL, connectivity. */
function assertMirrorOf(t: { is(a: unknown, b: unknown, m?: string): void; deepEqual(a: unknown, b: unknown, m?: string): void }, s: Setup, mirror: string): void {
  t.is(git(['--git-dir', mirror, 'config', 'remote.origin.url']).trim(), s.url, 'origin is the repo, not the tier');
  t.is(git(['--git-dir', mirror, 'show-ref']), s.upstream.refs(), 'refs equal the upstream repository\'s');
  t.is(git(['--git-dir', mirror, 'symbolic-ref', 'HEAD']).trim(), 'refs/heads/main');
  t.is((JSON.parse(readFileSync(join(mirror, 'git-cache.json'), 'utf8')) as { url: string }).url, s.url);
  git(['--git-dir', mirror, 'fsck', '--connectivity-only', '--no-progress']);
  t.deepEqual(spawnSync('test', ['-e', join(mirror, 'shallow')]).status, 1, 'not shallow');
}

test('node agents take objects and refs from the keeper tier without credentials: the git host sees the keeper only, refreshes included', async (t) => {
  const s = await setup((fn) => t.teardown(fn));
  const keeper = await startKeeper(s, (fn) => t.teardown(fn));
  await waitForReady(keeper.metricsPort, keeper.agent);
  t.is(s.hostFetches(), 1, 'the keeper cloned once from the git host');

  const nodes = [1, 2, 3].map((n) => join(s.dir, `node-${n}`));
  for (const node of nodes) {
    const result = await nodeSync(s, node, keeper.tier, s.noCredentials);
    t.is(result.code, 0, result.stderr);
    t.is(events(result.stderr, 'clone_done')[0]?.source, 'upstream cache');
    assertMirrorOf(t, s, mirrorPath(node, s.url));
  }
  t.is(s.hostFetches(), 1, 'three node clones, none at the git host');

  // Upstream moves: a commit on main, a branch deleted. The keeper refreshes (SIGHUP), then the nodes.
  s.upstream.commit('NEWS', 'a change\n');
  git(['--git-dir', s.upstream.path, 'branch', '-D', 'feature']);
  keeper.agent.child.kill('SIGHUP');
  await waitFor('the keeper to refresh', () => (events(keeper.agent.stderr(), 'fetch_done').length > 0 ? true : undefined), 30_000);
  t.is(s.hostFetches(), 2);
  for (const node of nodes) {
    const result = await nodeSync(s, node, keeper.tier, s.noCredentials);
    t.is(result.code, 0, result.stderr);
    t.is(events(result.stderr, 'fetch_done')[0]?.source, 'upstream cache');
    assertMirrorOf(t, s, mirrorPath(node, s.url));
  }
  t.false(git(['--git-dir', mirrorPath(nodes[0] as string, s.url), 'show-ref']).includes('refs/heads/feature'), 'the deleted branch is pruned through the tier');
  t.is(s.hostFetches(), 2, 'one fetch at the git host for the whole refresh round');
});

test('a tier that is down: the agent falls back to the git host, which needs the credentials', async (t) => {
  const s = await setup((fn) => t.teardown(fn));
  const closedPort = await freePort();
  const tier = `git://127.0.0.1:${closedPort}`;
  const withoutCredentials = await nodeSync(s, join(s.dir, 'node-a'), tier, s.noCredentials);
  t.is(withoutCredentials.code, 1, 'no tier and no credentials: the private repository cannot be read');
  t.is(s.hostFetches(), 0);

  const node = join(s.dir, 'node-b');
  const result = await nodeSync(s, node, tier, s.credentials);
  t.is(result.code, 0, result.stderr);
  const [warning] = events(result.stderr, 'upstream_cache_unavailable');
  t.regex(String(warning?.reason), /unreachable.*Connection refused|unreachable/);
  t.is(events(result.stderr, 'clone_done')[0]?.source, 'git host');
  t.is(s.hostFetches(), 1);
  assertMirrorOf(t, s, mirrorPath(node, s.url));

  // serve counts the fallback.
  const metricsPort = await freePort();
  const served = startAgent([
    'serve',
    FLAG.cacheDir,
    node,
    FLAG.credentialsDir,
    s.credentials,
    FLAG.upstreamCache,
    tier,
    FLAG.metricsPort,
    String(metricsPort),
    '--metrics-address',
    '127.0.0.1',
    ...repoFlags([{ name: 'app', url: s.url }]),
  ]);
  t.teardown(() => served.stop());
  await waitForReady(metricsPort, served);
  const metrics = (await httpGet(metricsPort, '/metrics')).body;
  t.regex(metrics, /git_cache_upstream_cache_fallback_total\{repo="app"\} 1/);
});

test('a tier that accepts connections but never answers is given up after the probe timeout, then the git host is used', async (t) => {
  const s = await setup((fn) => t.teardown(fn));
  const sockets = new Set<import('node:net').Socket>();
  const silent: Server = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const port = (silent.address() as { port: number }).port;
  const started = Date.now();
  const result = await nodeSync(s, join(s.dir, 'node'), `git://127.0.0.1:${port}`, s.credentials);
  const seconds = (Date.now() - started) / 1000;
  t.is(result.code, 0, result.stderr);
  t.regex(String(events(result.stderr, 'upstream_cache_unavailable')[0]?.reason), /no answer within 10 s/);
  t.true(seconds < 60, `bounded: ${seconds} s`);
  t.is(s.hostFetches(), 1);
});

test('a cold start: a node agent waits for a reachable keeper that is still cloning, then takes the repo from it (one clone at the git host)', async (t) => {
  const s = await setup((fn) => t.teardown(fn));
  const keeperDir = join(s.dir, 'keeper');
  mkdirSync(join(keeperDir, LOCK_DIR_NAME), { recursive: true });
  // The keeper cannot start its clone while we hold its repo lock: its daemon is up, the mirror is not there.
  const lock = await holdLock(join(keeperDir, LOCK_DIR_NAME, `${repoKey(s.url)}.lock`));
  const keeper = await startKeeper(s, (fn) => t.teardown(fn), keeperDir);
  await waitFor('the keeper daemon', () => (events(keeper.agent.stderr(), 'git_daemon_started').length > 0 ? true : undefined));
  const node = join(s.dir, 'node');
  const pending = nodeSync(s, node, keeper.tier, s.noCredentials, ['--upstream-cache-wait', '2m']);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  await lock.release();
  const result = await pending;
  t.is(result.code, 0, result.stderr);
  t.is(events(result.stderr, 'upstream_cache_waiting').length, 1);
  t.is(events(result.stderr, 'clone_done')[0]?.source, 'upstream cache');
  t.is(s.hostFetches(), 1, 'only the keeper cloned from the git host');
  assertMirrorOf(t, s, mirrorPath(node, s.url));

  // A tier that never gets the repo: the wait is bounded, then the git host.
  const other = join(s.dir, 'other-keeper');
  mkdirSync(join(other, LOCK_DIR_NAME), { recursive: true });
  const stuck = await holdLock(join(other, LOCK_DIR_NAME, `${repoKey(s.url)}.lock`));
  t.teardown(() => stuck.release());
  const otherKeeper = await startKeeper(s, (fn) => t.teardown(fn), other);
  await waitFor('the other keeper daemon', () => (events(otherKeeper.agent.stderr(), 'git_daemon_started').length > 0 ? true : undefined));
  const started = Date.now();
  const fallback = await nodeSync(s, join(s.dir, 'node-2'), otherKeeper.tier, s.credentials, ['--upstream-cache-wait', '3s']);
  t.is(fallback.code, 0, fallback.stderr);
  t.true(Date.now() - started >= 3000);
  t.regex(String(events(fallback.stderr, 'upstream_cache_unavailable')[0]?.reason), /does not serve this repository/);
  t.is(s.hostFetches(), 2);
});
