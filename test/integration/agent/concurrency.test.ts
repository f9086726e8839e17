/**
 * Many agents on one cache dir: one clone, coalesced fetches, everyone succeeds. And kill -9 of agents and
 * their git at random moments: the mirror path never holds a broken mirror and the next sync succeeds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoKey } from '../../../src/shared/repo-url.js';
import { testWithTools } from '../../support/tools.js';
import {
  agentCommand,
  assertMirrorSound,
  descendants,
  git,
  makeUpstream,
  parseEvents,
  refsOf,
  runAgent,
    gitDaemonFixture,
  holdLock,
} from '../../support/git-fixtures.js';

const test = testWithTools(['git', 'flock']);

const upstreams = gitDaemonFixture(test, 'agent-concurrency');

interface LiveAgent {
  readonly child: ChildProcess;
  /** Resolves when the agent logged `event`. */
  until(event: string): Promise<void>;
  done: Promise<{ code: number | null; events: Array<Record<string, unknown>>; stderr: string }>;
}

function startAgent(args: readonly string[]): LiveAgent {
  const [cmd, argv] = agentCommand(args);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const waiters: Array<{ event: string; resolve: () => void }> = [];
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const w of [...waiters]) {
      if (stderr.includes(`"event":"${w.event}"`)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  const done = new Promise<{ code: number | null; events: Array<Record<string, unknown>>; stderr: string }>((resolve) => {
    child.on('close', (code) => resolve({ code, events: parseEvents(stderr), stderr }));
  });
  return {
    child,
    done,
    until: (event) =>
      new Promise<void>((resolve, reject) => {
        if (stderr.includes(`"event":"${event}"`)) resolve();
        else {
          waiters.push({ event, resolve });
          void done.then(() => reject(new Error(`agent exited before ${event}: ${stderr}`)));
        }
      }),
  };
}

test('8 concurrent agents on one dir all succeed with exactly one clone, and their fetches coalesce into one', async (t) => {
  const upstream = makeUpstream(join(upstreams.root, 'up'), 'many');
  const url = upstreams.daemon.url('many.git');
  const cache = join(upstreams.root, 'cache-many');
  const key = repoKey(url);
  mkdirSync(join(cache, '.locks'), { recursive: true });
  const args = ['sync', '--repo', url, '--cache-dir', cache, '--log-level', 'debug'];

  // Round 1: all 8 are waiting for the repo lock before anyone may clone.
  let lock = await holdLock(join(cache, '.locks', `${key}.lock`));
  let agents = Array.from({ length: 8 }, () => startAgent(args));
  await Promise.all(agents.map((a) => a.until('lock_waiting')));
  await lock.release();
  let results = await Promise.all(agents.map((a) => a.done));
  for (const r of results) t.is(r.code, 0, r.stderr);
  const actions = (rs: typeof results, event: string): number => rs.filter((r) => r.events.some((e) => e.event === event)).length;
  t.is(actions(results, 'clone_done'), 1);
  t.is(actions(results, 'fetch_coalesced'), 7);
  t.is(upstreams.daemon.uploadPacks('many.git'), 1, upstreams.daemon.log());
  t.deepEqual(refsOf(join(cache, `${key}.git`)), upstream.refs());

  // Round 2: new upstream commits; 8 agents again queue up; one fetches, seven coalesce.
  upstream.commit('round two');
  lock = await holdLock(join(cache, '.locks', `${key}.lock`));
  agents = Array.from({ length: 8 }, () => startAgent(args));
  await Promise.all(agents.map((a) => a.until('lock_waiting')));
  await lock.release();
  results = await Promise.all(agents.map((a) => a.done));
  for (const r of results) t.is(r.code, 0, r.stderr);
  t.is(actions(results, 'fetch_done'), 1);
  t.is(actions(results, 'fetch_coalesced'), 7);
  t.is(upstreams.daemon.uploadPacks('many.git'), 2);
  t.deepEqual(refsOf(join(cache, `${key}.git`)), upstream.refs());
});

test('8 agents started together without coordination all succeed and clone once', async (t) => {
  const upstream = makeUpstream(join(upstreams.root, 'up'), 'herd');
  const url = upstreams.daemon.url('herd.git');
  const cache = join(upstreams.root, 'cache-herd');
  const results = await Promise.all(Array.from({ length: 8 }, () => runAgent(['sync', '--repo', url, '--cache-dir', cache])));
  for (const r of results) t.is(r.code, 0, r.stderr);
  t.is(results.filter((r) => r.events.some((e) => e.event === 'clone_done')).length, 1);
  t.true(upstreams.daemon.uploadPacks('herd.git') < 8, upstreams.daemon.log());
  t.deepEqual(refsOf(join(cache, `${repoKey(url)}.git`)), upstream.refs());
});

function killTree(pid: number): void {
  const all = [pid, ...descendants(pid)];
  for (const p of all) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

test('kill -9 of the agent and its git at random moments during clone and fetch never leaves a broken mirror', async (t) => {
  const upstream = makeUpstream(join(upstreams.root, 'up'), 'crash');
  // Some incompressible history so clone and fetch take long enough to be interrupted mid-way.
  const work = join(upstreams.root, 'up', 'crash.work');
  for (let i = 0; i < 4; i++) {
    writeFileSync(join(work, `random-${i}.bin`), randomBytes(4 << 20));
    git(['add', '-A'], work);
    git(['commit', '-q', '-m', `random ${i}`], work);
  }
  git(['push', '-q', upstream.path, 'main'], work);
  const url = upstreams.daemon.url('crash.git');
  const cache = join(upstreams.root, 'cache-crash');
  const mirror = join(cache, `${repoKey(url)}.git`);
  const args = ['sync', '--repo', url, '--cache-dir', cache];

  const iterations = 6;
  for (let i = 0; i < iterations; i++) {
    const phase = i % 2 === 0 ? 'clone' : 'fetch';
    if (phase === 'clone') rmSync(mirror, { recursive: true, force: true });
    else {
      writeFileSync(join(work, `more-${i}.bin`), randomBytes(3 << 20));
      git(['add', '-A'], work);
      git(['commit', '-q', '-m', `more ${i}`], work);
      git(['push', '-q', upstream.path, 'main'], work);
    }
    const agent = startAgent([...args, '--log-level', 'debug']);
    await agent.until(phase === 'clone' ? 'clone_started' : 'lock_acquired').catch(() => undefined);
    const delay = Math.floor(Math.random() * 300);
    await new Promise((r) => setTimeout(r, delay));
    const running = descendants(agent.child.pid as number).length;
    killTree(agent.child.pid as number);
    const killed = await agent.done;
    t.log(`iteration ${i}: ${phase}, killed ${delay}ms in with ${running} child process(es) (exit ${killed.code ?? 'SIGKILL'})`);

    if (existsSync(mirror)) {
      const sound = assertMirrorSound(mirror);
      t.true(sound.ok, `iteration ${i}: mirror at its path is broken after kill -9: ${sound.reason ?? ''}`);
    }
    const next = await runAgent(args);
    t.is(next.code, 0, next.stderr);
    const sound = assertMirrorSound(mirror);
    t.true(sound.ok, sound.reason);
    t.deepEqual(refsOf(mirror), upstream.refs(), `iteration ${i}`);
  }
});
