/**
 * Real git for tests: upstream repositories with history, a `git daemon` on 127.0.0.1 (with its verbose log,
 * so tests can count upload-pack requests), and a runner for the agent as a separate process.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestFn } from 'ava';
import { REPO_ROOT } from './tools.js';

export const GIT_TEST_ENV: Record<string, string> = {
  ...(process.env as Record<string, string>),
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.invalid',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

export function git(args: readonly string[], cwd?: string, env: Record<string, string> = GIT_TEST_ENV): string {
  return execFileSync('git', args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `gc-${prefix}-`));
}

/** A free TCP port on 127.0.0.1 (closed again before returning; callers retry on the rare race). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface UpstreamRepo {
  /** Absolute path of the bare repository. */
  readonly path: string;
  /** Adds a commit on `branch` (default main) and pushes it; returns the new commit id. */
  commit(message?: string, branch?: string, bytes?: number): string;
  createBranch(name: string, from?: string): void;
  deleteBranch(name: string): void;
  /** `refname sha` lines of the bare repo, sorted: what a full mirror must hold. */
  refs(): string[];
}

/** `<parent>/<name>.git` with `commits` commits on main, a branch `feature` and a tag `v1`. */
export function makeUpstream(parent: string, name: string, commits = 3): UpstreamRepo {
  const path = join(parent, `${name}.git`);
  const work = join(parent, `${name}.work`);
  mkdirSync(work, { recursive: true });
  git(['init', '-q', '--bare', '-b', 'main', path]);
  git(['init', '-q', '-b', 'main', work]);
  let counter = 0;
  const commit = (message = `commit ${counter}`, branch = 'main', bytes = 0): string => {
    writeFileSync(join(work, 'file.txt'), `${message}\n${counter++}\n`);
    if (bytes > 0) writeFileSync(join(work, `blob-${counter}.bin`), Buffer.alloc(bytes, counter % 251));
    git(['add', '-A'], work);
    git(['commit', '-q', '-m', message], work);
    git(['push', '-q', '--force', path, branch], work);
    return git(['rev-parse', 'HEAD'], work).trim();
  };
  for (let i = 0; i < commits; i++) commit();
  git(['tag', 'v1'], work);
  git(['branch', 'feature'], work);
  git(['push', '-q', path, 'feature', 'v1'], work);
  return {
    path,
    commit: (message, branch = 'main', bytes = 0) => {
      if (branch !== 'main') git(['checkout', '-q', branch], work);
      const id = commit(message, branch, bytes);
      git(['checkout', '-q', 'main'], work);
      return id;
    },
    createBranch: (branchName, from = 'main') => {
      git(['branch', '-f', branchName, from], work);
      git(['push', '-q', path, branchName], work);
    },
    deleteBranch: (branchName) => {
      git(['push', '-q', path, '--delete', branchName], work);
    },
    refs: () => refsOf(path),
  };
}

/** Sorted `refname sha` lines of any repository. */
export function refsOf(gitDir: string): string[] {
  return git(['--git-dir', gitDir, 'for-each-ref', '--format=%(refname) %(objectname)'])
    .split('\n')
    .filter(Boolean)
    .sort();
}

export interface GitDaemon {
  readonly port: number;
  readonly basePath: string;
  url(relativePath: string): string;
  /** Number of upload-pack requests (clones + fetches) the daemon served for a path (e.g. `/repo.git`). */
  uploadPacks(relativePath: string): number;
  log(): string;
  stop(): Promise<void>;
}

async function waitForListen(port: number, host: string, child: ChildProcess, log: () => string): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`git daemon exited: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, host);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`git daemon did not listen on ${port}: ${log()}`);
}

/**
 * `git daemon --base-path=<basePath> --export-all --listen=<host> --port=<free>`, verbose log kept. `host` is
 * 127.0.0.1, or the test cluster's host address (CLUSTER.hostIP in cluster.ts) for an upstream pods can reach.
 */
export async function startGitDaemon(basePath: string, port?: number, host = '127.0.0.1'): Promise<GitDaemon> {
  for (let attempt = 0; ; attempt++) {
    const chosen = port ?? (await freePort());
    const logDir = tempDir('daemon-log');
    const logFile = join(logDir, 'daemon.log');
    writeFileSync(logFile, '');
    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync(logFile, 'a');
    const child = spawn(
      'git',
      ['daemon', '--reuseaddr', `--listen=${host}`, `--port=${chosen}`, `--base-path=${basePath}`, '--export-all', '--verbose', '--informative-errors', basePath],
      { stdio: ['ignore', fd, fd], env: GIT_TEST_ENV },
    );
    closeSync(fd);
    const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
    try {
      await waitForListen(chosen, host, child, log);
    } catch (error) {
      child.kill('SIGKILL');
      if (attempt < 3 && port === undefined) continue;
      throw error;
    }
    return {
      port: chosen,
      basePath,
      url: (rel) => `git://${host}:${chosen}/${rel.replace(/^\/+/, '')}`,
      uploadPacks: (rel) => log().split('\n').filter((line) => line.includes(`Request upload-pack for '/${rel.replace(/^\/+/, '')}'`)).length,
      log,
      stop: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) {
            rmSync(logDir, { recursive: true, force: true });
            resolve();
            return;
          }
          child.once('close', () => {
            rmSync(logDir, { recursive: true, force: true });
            resolve();
          });
          child.kill('SIGTERM');
        }),
    };
  }
}

/** How the tests start the agent: from source through tsx, so they always test the current code. */
/**
 * A temp root with a `git daemon` serving `<root>/up`, started before a test file's tests and stopped (root
 * removed) after them. Read `root` and `daemon` inside tests, not at module level.
 */
export function gitDaemonFixture(test: TestFn, prefix: string): { readonly root: string; readonly daemon: GitDaemon } {
  const fixture: { root: string; daemon: GitDaemon | undefined } = { root: '', daemon: undefined };
  test.before(async () => {
    fixture.root = tempDir(prefix);
    mkdirSync(join(fixture.root, 'up'));
    fixture.daemon = await startGitDaemon(join(fixture.root, 'up'));
  });
  test.after.always(async () => {
    await fixture.daemon?.stop();
    if (fixture.root) rmSync(fixture.root, { recursive: true, force: true });
  });
  return {
    get root() {
      return fixture.root;
    },
    get daemon() {
      if (!fixture.daemon) throw new Error('the git daemon fixture is used before its test.before hook ran');
      return fixture.daemon;
    },
  };
}

/** Holds `<cache>/.locks/<key>.lock` from outside (as another agent would) until release() is called. */
export async function holdLock(lockFile: string): Promise<{ release(): Promise<void> }> {
  const holder = spawn('flock', ['--exclusive', lockFile, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'ignore'] });
  await new Promise<void>((resolve) => holder.stdout?.once('data', () => resolve()));
  return {
    release: () =>
      new Promise<void>((resolve) => {
        holder.once('close', () => resolve());
        holder.stdin?.end();
      }),
  };
}

export const AGENT_MAIN = join(REPO_ROOT, 'src', 'agent', 'main.ts');

export function agentCommand(args: readonly string[]): [string, string[]] {
  return [process.execPath, ['--import', 'tsx', AGENT_MAIN, ...args]];
}

export interface AgentRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The JSON log events on stderr. */
  readonly events: Array<Record<string, unknown>>;
}

export function parseEvents(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Runs the agent to completion. */
export function runAgent(args: readonly string[], env: Record<string, string | undefined> = {}, timeoutMs = 120_000): Promise<AgentRun> {
  const [cmd, argv] = agentCommand(args);
  return runProcess(cmd, argv, env, timeoutMs);
}

export function runProcess(cmd: string, argv: readonly string[], env: Record<string, string | undefined> = {}, timeoutMs = 120_000): Promise<AgentRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { env: { ...process.env, ...env } as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let events: Array<Record<string, unknown>> = [];
      try {
        events = parseEvents(stderr);
      } catch {
        events = [];
      }
      resolve({ code, signal, stdout, stderr, events });
    });
  });
}

/** Pids of every descendant of `pid` (children, grandchildren, ...), from /proc. */
export function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(entry), ppid);
    } catch {
      // exited
    }
  }
  const out: number[] = [];
  const frontier = [pid];
  while (frontier.length > 0) {
    const current = frontier.pop() as number;
    for (const [child, parent] of parentOf) {
      if (parent === current) {
        out.push(child);
        frontier.push(child);
      }
    }
  }
  return out;
}

/** A mirror a reader could use: valid repo, not shallow, connected, with every upstream ref. */
export function assertMirrorSound(mirror: string): { ok: boolean; reason?: string } {
  try {
    if (existsSync(join(mirror, 'shallow'))) return { ok: false, reason: 'shallow' };
    if (!existsSync(join(mirror, 'git-cache.json'))) return { ok: false, reason: 'no marker' };
    git(['--git-dir', mirror, 'rev-parse', '--git-dir']);
    git(['--git-dir', mirror, 'fsck', '--connectivity-only', '--no-progress']);
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}
