/**
 * Mirrors of repos that no agent serves any more are deleted after the grace period (--orphan-grace): real
 * agents sharing one cache directory with different repo sets, a real git daemon upstream. A mirror that some
 * live agent still serves is never deleted, whatever the other agents' repo lists; a busy lock, a fresh claim,
 * a symlink or a directory that is not a mirror are left alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLAIMS_DIR_NAME, LOCK_DIR_NAME } from '../../../src/shared/names.js';
import { mirrorPath, repoKey } from '../../../src/shared/repo-url.js';
import { createLogger } from '../../../src/agent/log.js';
import { deleteOrphans } from '../../../src/agent/mirror/orphans.js';
import { testWithTools } from '../../support/tools.js';
import { agentCommand, freePort, git, gitDaemonFixture, holdLock, makeUpstream, parseEvents, runAgent } from '../../support/git-fixtures.js';

const test = testWithTools(['git', 'flock']);
const upstreams = gitDaemonFixture(test, 'agent-orphans');

interface Serving {
  readonly child: ChildProcess;
  readonly port: number;
  stderr(): string;
  stop(): Promise<void>;
}

async function serve(cache: string, repos: readonly string[], extra: readonly string[] = []): Promise<Serving> {
  const port = await freePort();
  const [cmd, argv] = agentCommand([
    'serve',
    '--cache-dir',
    cache,
    '--interval',
    '1h',
    '--metrics-port',
    String(port),
    '--metrics-address',
    '127.0.0.1',
    ...extra,
    ...repos.flatMap((url) => ['--repo', url]),
  ]);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    child,
    port,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await closed;
    },
  };
}

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function metricValue(port: number, name: string): Promise<number | undefined> {
  try {
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = body.split('\n').find((entry) => entry.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  } catch {
    return undefined;
  }
}

test('agents sharing a cache dir: a mirror nobody serves goes after the grace period, one another agent serves stays until that agent is gone', async (t) => {
  const [a, b, c] = ['alpha', 'beta', 'gamma'].map((name) => {
    makeUpstream(join(upstreams.root, 'up'), name);
    return upstreams.daemon.url(`${name}.git`);
  }) as [string, string, string];
  const cache = join(upstreams.root, 'cache-shared');
  const first = await runAgent(['sync', '--cache-dir', cache, '--repo', a, '--repo', b, '--repo', c]);
  t.is(first.code, 0, first.stderr);
  // A borrowing clone of beta, made while beta was served: what the grace period protects.
  const borrower = join(upstreams.root, 'borrower');
  git(['clone', '-q', '--reference', mirrorPath(cache, b), b, borrower]);

  // Agent X serves gamma only, agent Y alpha only: beta is nobody's from now on. Grace 8 s.
  const graceMs = 8000;
  const unclaimedSince = Date.now();
  utimesSync(join(cache, CLAIMS_DIR_NAME, repoKey(b)), new Date(unclaimedSince), new Date(unclaimedSince));
  const x = await serve(cache, [c], ['--orphan-grace', '8s']);
  const y = await serve(cache, [a], ['--orphan-grace', '8s']);
  t.teardown(async () => {
    await x.stop();
    await y.stop();
  });
  await until('Y to report beta as a pending orphan', async () => ((await metricValue(y.port, 'git_cache_orphan_bytes')) ?? 0) > 0);
  t.true(Date.now() - unclaimedSince < graceMs, 'the agents started within the grace period');
  t.true(existsSync(mirrorPath(cache, b)), 'within the grace period beta stays');
  git(['-C', borrower, 'log', '-1', '--format=%H']);

  const deletions = (): Array<Record<string, unknown>> => [...parseEvents(x.stderr()), ...parseEvents(y.stderr())].filter((event) => event.event === 'orphan_deleted');
  // The mirror leaves its path at once (renamed aside); the log line follows its removal.
  await until('beta to be deleted', () => !existsSync(mirrorPath(cache, b)) && deletions().length > 0);
  t.true(Date.now() - unclaimedSince >= graceMs, 'not before the grace period');
  await new Promise((resolve) => setTimeout(resolve, graceMs + 2000));
  t.deepEqual(
    deletions().map((event) => event.key),
    [repoKey(b)],
    'exactly beta was deleted, once',
  );
  t.false(existsSync(join(cache, CLAIMS_DIR_NAME, repoKey(b))));
  // More than a grace period later, alpha and gamma (each served by one live agent) are still there.
  t.true(existsSync(mirrorPath(cache, a)));
  t.true(existsSync(mirrorPath(cache, c)));
  t.is(((await metricValue(x.port, 'git_cache_orphans_deleted_total')) ?? 0) + ((await metricValue(y.port, 'git_cache_orphans_deleted_total')) ?? 0), 1);
  // The borrower is broken now: that is the price, and why the default grace period is a day.
  t.throws(() => git(['-C', borrower, 'fsck', '--no-progress']));

  // X is gone: after the grace period Y deletes gamma too.
  await x.stop();
  await until('gamma to be deleted once X stopped claiming it', () => !existsSync(mirrorPath(cache, c)), 30_000);
  t.true(existsSync(mirrorPath(cache, a)));
});

test('--orphan-grace never keeps every mirror; a plain sync never deletes', async (t) => {
  const [a, b] = ['one', 'two'].map((name) => {
    makeUpstream(join(upstreams.root, 'up'), name);
    return upstreams.daemon.url(`${name}.git`);
  }) as [string, string];
  const cache = join(upstreams.root, 'cache-never');
  t.is((await runAgent(['sync', '--cache-dir', cache, '--repo', a, '--repo', b])).code, 0);
  utimesSync(join(cache, CLAIMS_DIR_NAME, repoKey(b)), new Date(0), new Date(0));
  t.is((await runAgent(['sync', '--cache-dir', cache, '--repo', a])).code, 0);
  t.true(existsSync(mirrorPath(cache, b)));
  const agent = await serve(cache, [a], ['--orphan-grace', 'never']);
  t.teardown(() => agent.stop());
  await until('ready', async () => (await metricValue(agent.port, 'git_cache_ready')) === 1);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.true(existsSync(mirrorPath(cache, b)));
});

test('deleteOrphans leaves alone: fresh claims, busy locks, symlinks and directories not named like a mirror', async (t) => {
  makeUpstream(join(upstreams.root, 'up'), 'solo');
  const url = upstreams.daemon.url('solo.git');
  const cache = join(upstreams.root, 'cache-edge');
  t.is((await runAgent(['sync', '--cache-dir', cache, '--repo', url])).code, 0);
  const key = repoKey(url);
  const logger = createLogger('error');
  const claim = join(cache, CLAIMS_DIR_NAME, key);
  const old = new Date(Date.now() - 48 * 3600_000);

  // A fresh claim (an agent serving it renewed it just now): kept.
  let scan = await deleteOrphans(cache, new Set(), 24 * 3600_000, logger);
  t.deepEqual(scan.deleted, []);
  t.true(scan.pendingBytes > 0);

  // Unclaimed for two days, but an agent holds its lock: kept this pass, gone the next.
  utimesSync(claim, old, old);
  const lock = await holdLock(join(cache, LOCK_DIR_NAME, `${key}.lock`));
  scan = await deleteOrphans(cache, new Set(), 24 * 3600_000, logger);
  t.deepEqual(scan.deleted, []);
  t.true(existsSync(mirrorPath(cache, url)));
  await lock.release();

  // Not ours to judge: a symlink named like a mirror, a directory that is not a key, a file.
  const outside = join(upstreams.root, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'keep'), 'x');
  const fakeKey = 'a'.repeat(20);
  symlinkSync(outside, join(cache, `${fakeKey}.git`));
  mkdirSync(join(cache, 'notes.git'));
  writeFileSync(join(cache, `${'b'.repeat(20)}.git`), 'a file');
  scan = await deleteOrphans(cache, new Set(), 24 * 3600_000, logger);
  t.deepEqual(
    scan.deleted.map((entry) => entry.key),
    [key],
  );
  t.false(existsSync(mirrorPath(cache, url)));
  t.true(existsSync(join(outside, 'keep')), 'a symlink is never followed');
  t.true(existsSync(join(cache, `${fakeKey}.git`)));
  t.true(existsSync(join(cache, 'notes.git')));
  t.true(existsSync(join(cache, `${'b'.repeat(20)}.git`)));

  // A mirror from before claims existed: judged by its last fetch (the marker).
  t.is((await runAgent(['sync', '--cache-dir', cache, '--repo', url])).code, 0);
  const { rmSync } = await import('node:fs');
  rmSync(claim);
  scan = await deleteOrphans(cache, new Set(), 24 * 3600_000, logger);
  t.deepEqual(scan.deleted, [], 'fetched a moment ago: not an orphan yet');
  scan = await deleteOrphans(cache, new Set(), 24 * 3600_000, logger, Date.now() + 25 * 3600_000);
  t.deepEqual(
    scan.deleted.map((entry) => entry.key),
    [key],
  );
});
