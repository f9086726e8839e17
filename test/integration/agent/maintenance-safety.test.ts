/**
 * Maintenance never breaks a mirror or a clone that borrows from it: killed with SIGKILL at moments spread over
 * a whole run (the agent alone, whose git then finishes its step holding the lock, or the agent and all its
 * git), and while readers in a borrowing clone keep reading. The mirror holds 400 refreshes' worth of packs, a
 * deleted branch and a force-pushed-away commit that only the borrower still reaches.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { repoKey } from '../../../src/shared/repo-url.js';
import { MAX_PACKS } from '../../../src/agent/maintenance/plan.js';
import type { ExecutionContext } from 'ava';
import { testWithTools } from '../../support/tools.js';
import { GIT_TEST_ENV, descendants, git, gitDaemonFixture, makeUpstream, parseEvents, refsOf, runAgent } from '../../support/git-fixtures.js';
import { allObjects, packNames, prepareCommits, refreshOneByOne } from '../../support/pack-history.js';
import { startAgent, type AgentProcess } from '../../support/servers/agent.js';

const test = testWithTools(['git', 'flock', 'nice']);

const upstreams = gitDaemonFixture(test, 'agent-maintenance-safety');

interface Scene {
  url: string;
  upstream: string;
  cache: string;
  mirror: string;
  /** The mirror as it was before any maintenance, restored before each run. */
  template: string;
  borrower: string;
  doomed: string;
  dropped: string;
  objects: string[];
  refs: string[];
}

const scene = {} as Scene;
let built: Promise<void> | undefined;

/** Built by the first test that needs it (the git daemon fixture's hook must have run). */
function ensureScene(): Promise<void> {
  built ??= buildScene();
  return built;
}

async function buildScene(): Promise<void> {
  const upstream = makeUpstream(join(upstreams.root, 'up'), 'safety', 5);
  scene.upstream = upstream.path;
  scene.url = upstreams.daemon.url('safety.git');
  scene.cache = join(upstreams.root, 'cache');
  scene.mirror = join(scene.cache, `${repoKey(scene.url)}.git`);
  const sync = async (): Promise<void> => {
    const run = await runAgent(['sync', '--repo', scene.url, '--cache-dir', scene.cache, '--no-maintenance']);
    if (run.code !== 0) throw new Error(run.stderr);
  };
  await sync();
  upstream.createBranch('doomed');
  scene.doomed = upstream.commit('only on doomed', 'doomed', 8192);
  scene.dropped = upstream.commit('dropped by a force-push', 'main', 4096);
  await sync();
  scene.borrower = join(upstreams.root, 'borrower');
  git(['clone', '-q', '--reference-if-able', scene.mirror, '--', scene.url, scene.borrower]);
  git(['-C', scene.borrower, 'checkout', '-q', 'doomed']);
  upstream.deleteBranch('doomed');
  git(['--git-dir', upstream.path, 'update-ref', 'refs/heads/main', `${scene.dropped}~1`]);
  const side = join(upstreams.root, 'side.git');
  refreshOneByOne(side, upstream.path, scene.mirror, prepareCommits(upstream.path, side, 400, 'safety'));
  scene.template = join(upstreams.root, 'template.git');
  cpSync(scene.mirror, scene.template, { recursive: true });
  scene.objects = allObjects(scene.template);
  scene.refs = refsOf(scene.template);
}

function restoreMirror(): void {
  rmSync(scene.mirror, { recursive: true, force: true });
  cpSync(scene.template, scene.mirror, { recursive: true });
}

/** Waits until nobody holds the repo lock: every git a killed agent left behind has finished. */
function waitForLockFree(): void {
  execFileSync('flock', ['--exclusive', '--wait', '120', join(scene.cache, '.locks', `${repoKey(scene.url)}.lock`), 'true']);
}

/** What a reader of the mirror or of the borrower must find, whatever happened to the maintenance run. */
function assertIntact(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void; is: (a: unknown, b: unknown, m?: string) => void }, when: string): void {
  git(['--git-dir', scene.mirror, 'fsck', '--no-progress']);
  const objects = new Set(allObjects(scene.mirror));
  t.deepEqual(scene.objects.filter((id) => !objects.has(id)), [], `${when}: no object of the mirror is gone`);
  t.deepEqual(refsOf(scene.mirror), scene.refs, `${when}: refs unchanged`);
  git(['-C', scene.borrower, 'fsck', '--no-progress']);
  t.is(git(['-C', scene.borrower, 'cat-file', '-t', scene.doomed]).trim(), 'commit', `${when}: the deleted branch's commit is readable in the borrower`);
  t.is(git(['-C', scene.borrower, 'cat-file', '-t', scene.dropped]).trim(), 'commit', `${when}: the force-pushed-away commit is readable in the borrower`);
}

function maintain(): AgentProcess {
  return startAgent(['maintain', '--repo', scene.url, '--cache-dir', scene.cache]);
}

/** ms from the agent's first log line to its exit, and the events it logged. */
async function timedRun(): Promise<{ ms: number; code: number | null; stderr: string }> {
  const agent = maintain();
  const startedAt = await firstLine(agent);
  const code = await agent.closed;
  return { ms: Date.now() - startedAt, code, stderr: agent.stderr() };
}

function firstLine(agent: AgentProcess): Promise<number> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (agent.stderr().includes('\n') || agent.child.exitCode !== null) resolve(Date.now());
      else setTimeout(check, 2);
    };
    check();
  });
}

function kill(agent: AgentProcess, wholeTree: boolean): number {
  const children = descendants(agent.pid);
  for (const pid of wholeTree ? [agent.pid, ...children] : [agent.pid]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return children.length;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** Kills the agent as soon as `now()` holds; false when the run ended first. */
async function killWhen(agent: AgentProcess, now: () => boolean, wholeTree: boolean): Promise<boolean> {
  while (agent.child.exitCode === null && agent.child.signalCode === null) {
    if (now()) {
      kill(agent, wholeTree);
      return true;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return false;
}

const gitRuns = (agent: AgentProcess, subcommand: string) => (): boolean => descendants(agent.pid).some((pid) => commandLine(pid).includes(` ${subcommand} `));

// Both tests run 20-odd maintenance runs with a full fsck of a mirror and a borrower after each: minutes on a
// loaded machine, longer than the suite's 5-minute default.
const LONG_TEST_MS = 20 * 60_000;

test.serial('kill -9 while each git step runs and at 10 moments spread over a run: the mirror and the borrower stay valid, the next run finishes', async (t) => {
  t.timeout(LONG_TEST_MS);
  await ensureScene();
  restoreMirror();
  const full = await timedRun();
  t.is(full.code, 0, full.stderr);
  t.log(`a full run over ${packNames(scene.template).length} packs: ${full.ms} ms`);
  assertIntact(t, 'after a full run');

  const moments = 10;
  const reached: string[] = [];
  for (let i = 0; i < moments; i++) {
    restoreMirror();
    const agent = maintain();
    const startedAt = await firstLine(agent);
    // Stratified: the i-th kill lands somewhere in the i-th tenth of a full run.
    const delay = Math.round(((i + Math.random()) / moments) * full.ms);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, startedAt + delay - Date.now())));
    const wholeTree = i % 2 === 1;
    const children = kill(agent, wholeTree);
    await agent.closed;
    waitForLockFree();
    const events = parseEvents(agent.stderr()).map((e) => String(e.event));
    const packs = packNames(scene.mirror).length;
    const phase = events.includes('maintenance_done') ? 'done' : events.includes('packs_rolled_up') ? 'after the roll-up' : `${packs} packs left`;
    reached.push(`${delay}ms ${wholeTree ? 'agent+git' : 'agent'} (${children} git running): ${phase}`);
    assertIntact(t, `kill ${i} at ${delay} ms`);
  }
  // And inside each git step (the moments above mostly land between them: these packs are small).
  const packsBefore = packNames(scene.template).length;
  const steps: ReadonlyArray<readonly [string, (agent: AgentProcess) => () => boolean, boolean]> = [
    ['pack-objects', (agent) => gitRuns(agent, 'pack-objects'), true],
    ['multi-pack-index', (agent) => gitRuns(agent, 'multi-pack-index'), false],
    ['commit-graph', (agent) => gitRuns(agent, 'commit-graph'), false],
    // Between the first and the last deleted pack: last, so the run below starts from a half-deleted state.
    ['the deletion of old packs', () => () => packNames(scene.mirror).length < packsBefore - 5, true],
  ];
  for (const [step, condition, mustHit] of steps) {
    for (const wholeTree of [false, true]) {
      restoreMirror();
      const agent = maintain();
      const hit = await killWhen(agent, condition(agent), wholeTree);
      await agent.closed;
      waitForLockFree();
      reached.push(`during ${step}, ${wholeTree ? 'agent+git' : 'agent'}: ${hit ? 'killed' : 'not seen running'} (${packNames(scene.mirror).length} packs left)`);
      if (mustHit) t.true(hit, `${step} lasts long enough to be killed in`);
      assertIntact(t, `kill during ${step}`);
    }
  }
  t.log(reached.join('\n'));
  const halfDeleted = packNames(scene.mirror).length;

  // The last killed state is where the next run picks up.
  const next = await runAgent(['maintain', '--repo', scene.url, '--cache-dir', scene.cache]);
  t.is(next.code, 0, next.stderr);
  t.true(halfDeleted > MAX_PACKS, `it started from ${halfDeleted} packs`);
  t.true(packNames(scene.mirror).length <= MAX_PACKS);
  t.deepEqual(readdirSync(join(scene.mirror, 'objects', 'pack')).filter((name) => /\.(pack|idx)$/.test(name) && !packNames(scene.mirror).some((base) => name.startsWith(base))), [], 'no half of a pack is left');
  assertIntact(t, 'after the run that followed the kills');
});

interface ReaderLog {
  runs: number;
  failures: string[];
}

/** Runs `args` in the borrower again and again until `stop()` is called; collects failing runs' stderr. */
function readLoop(args: readonly string[]): { log: ReaderLog; stop: () => Promise<void> } {
  const log: ReaderLog = { runs: 0, failures: [] };
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn('git', ['-C', scene.borrower, ...args], { env: GIT_TEST_ENV, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.on('close', (code) => resolve({ code, stderr }));
      });
      log.runs++;
      if (result.code !== 0) log.failures.push(result.stderr);
    }
  })();
  return {
    log,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

/** Maintenance under four reader loops in the borrower; asserts what they may and may not see. */
async function maintainUnderReaders(t: ExecutionContext, round: string): Promise<void> {
  const packsBefore = packNames(scene.mirror);
  const history = readLoop(['log', '-p', '--all']);
  const objects = readLoop(['rev-list', '--objects', '--all', '--missing=print']);
  const connectivity = readLoop(['fsck', '--connectivity-only', '--no-progress']);
  const fsck = readLoop(['fsck', '--no-progress']);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const run = await timedRun();
  await new Promise((resolve) => setTimeout(resolve, 300));
  await Promise.all([history.stop(), objects.stop(), connectivity.stop(), fsck.stop()]);
  t.is(run.code, 0, run.stderr);
  t.log(`${round}: maintenance ${run.ms} ms; runs: log -p ${history.log.runs}, rev-list --objects ${objects.log.runs}, fsck --connectivity-only ${connectivity.log.runs}, fsck ${fsck.log.runs} (${fsck.log.failures.length} reported a pack deleted under it)`);
  t.true(history.log.runs >= 3 && objects.log.runs >= 3 && fsck.log.runs >= 2, 'readers ran before, during and after the run');
  t.deepEqual(history.log.failures, [], 'git log -p never failed');
  t.deepEqual(objects.log.failures, [], 'every object stayed reachable');
  t.deepEqual(connectivity.log.failures, [], 'fsck --connectivity-only never failed');
  // A full fsck lists every pack (the mirror's too) first and verifies each later: a pack deleted in between
  // is reported ("index not opened", or "cannot be accessed" when it goes between fsck's open and its check),
  // like with git's own repack. Nothing else may be.
  const deleted = new Set(packsBefore.filter((name) => !packNames(scene.mirror).includes(name)));
  for (const stderr of fsck.log.failures) {
    for (const line of stderr.trim().split('\n')) {
      const match = /^error: packfile .*\/objects\/pack\/(pack-[0-9a-f]+)\.pack (?:index not opened|cannot be accessed)$/.exec(line);
      t.true(match !== null && deleted.has(match[1] ?? ''), `only packs maintenance deleted: ${line}`);
    }
  }
}

test.serial('readers in a borrowing clone keep working while maintenance replaces the packs they read', async (t) => {
  t.timeout(LONG_TEST_MS);
  await ensureScene();
  restoreMirror();
  await maintainUnderReaders(t, 'first run (400 fetch packs)');
  assertIntact(t, 'after maintenance under readers');

  // Again, now that a multi-pack-index the readers load exists, over new packs the borrower reads from.
  const side = join(upstreams.root, 'side-2.git');
  refreshOneByOne(side, scene.upstream, scene.mirror, prepareCommits(scene.upstream, side, 80, 'second'));
  git(['-C', scene.borrower, 'fetch', '-q', 'origin']);
  const objects = allObjects(scene.mirror);
  await maintainUnderReaders(t, 'second run (80 more fetch packs)');
  git(['--git-dir', scene.mirror, 'fsck', '--no-progress']);
  const after = new Set(allObjects(scene.mirror));
  t.deepEqual(objects.filter((id) => !after.has(id)), [], 'second run: no object of the mirror is gone');
  git(['-C', scene.borrower, 'fsck', '--no-progress']);
  t.is(git(['-C', scene.borrower, 'cat-file', '-t', scene.doomed]).trim(), 'commit');
});
