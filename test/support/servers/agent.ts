/**
 * The built agent (`dist/git-cache.mjs`, what `npm ci` produces and the image runs) as a process for the
 * server tests: rebuilt once when older than its sources, run to completion or kept running (serve), its
 * descendants' argv and environment sampled from /proc while it works, and per-repo credential dirs laid out
 * like the mounted Secrets.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FLAG } from '../../../src/shared/agent-cli.js';
import {
  HTTPS_PASSWORD_FILE,
  HTTPS_USERNAME_FILE,
  SSH_KEY_FILE,
  SSH_KNOWN_HOSTS_FILE,
  httpsCredentialDir,
  sshCredentialDir,
} from '../../../src/shared/names.js';
import { REPO_ROOT } from '../tools.js';
import { waitFor } from './process.js';

export const BUILT_AGENT = join(REPO_ROOT, 'dist', 'git-cache.mjs');

function newestSourceMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMtime(path));
    else newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Makes sure dist/git-cache.mjs is built from the current sources. Test files run in parallel, so the check
 * and the build run under an exclusive flock.
 */
export function ensureBuiltAgent(): string {
  const stale = (): boolean =>
    !existsSync(BUILT_AGENT) ||
    statSync(BUILT_AGENT).mtimeMs < Math.max(newestSourceMtime(join(REPO_ROOT, 'src', 'agent')), newestSourceMtime(join(REPO_ROOT, 'src', 'shared')));
  if (stale()) {
    execFileSync('flock', [join(REPO_ROOT, 'package.json'), 'sh', '-c', `[ -f "$1" ] && [ -z "$(find "$2/src/agent" "$2/src/shared" -newer "$1" -print -quit)" ] || node scripts/build.mjs`, 'build', BUILT_AGENT, REPO_ROOT], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  }
  return BUILT_AGENT;
}

/** `--repo NAME=URL` pairs plus the other flags. */
export function repoFlags(repos: ReadonlyArray<{ name: string; url: string }>): string[] {
  return repos.flatMap((repo) => [FLAG.repo, `${repo.name}=${repo.url}`]);
}

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or 128 + signal number style null) once the process has closed. */
  readonly closed: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface AgentSpawnOptions {
  readonly env?: Record<string, string | undefined>;
  /** Command prefix such as `setpriv --reuid 4242 ...` (the agent runs as its last argument list). */
  readonly wrapper?: readonly string[];
}

export function startAgent(args: readonly string[], options: AgentSpawnOptions = {}): AgentProcess {
  ensureBuiltAgent();
  const command = [...(options.wrapper ?? []), process.execPath, BUILT_AGENT, ...args];
  const spawnOptions: SpawnOptions = { env: { ...process.env, ...options.env } as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT };
  const child = spawn(command[0] as string, command.slice(1), spawnOptions);
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const closed = new Promise<number | null>((resolve) => {
    child.once('close', (code) => resolve(code));
    child.once('error', () => resolve(127));
  });
  return {
    child,
    pid: child.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    closed,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await closed;
      clearTimeout(timer);
      return code;
    },
  };
}

export interface AgentResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runAgentToEnd(args: readonly string[], options: AgentSpawnOptions = {}, timeoutMs = 120_000): Promise<AgentResult> {
  const agent = startAgent(args, options);
  const timer = setTimeout(() => agent.child.kill('SIGKILL'), timeoutMs);
  const code = await agent.closed;
  clearTimeout(timer);
  return { code, stdout: agent.stdout(), stderr: agent.stderr() };
}

/** The last non-empty stderr line: where the agent puts its one-line failure reason. */
export function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}

/** The `message` of the agent's final JSON log line, or the raw line. */
export function failureMessage(stderr: string): string {
  const line = lastLine(stderr);
  try {
    const event = JSON.parse(line) as { message?: unknown; event?: unknown; msg?: unknown };
    return [event.event ?? event.msg, event.message].filter((part) => typeof part === 'string').join(': ');
  } catch {
    return line;
  }
}

export interface ProcessSample {
  readonly pid: number;
  readonly argv: string[];
  /** NUL-separated environment, or undefined if it could not be read (process gone). */
  readonly environ: string | undefined;
}

function parentPid(pid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** argv and environment of every live descendant of `root` (and of `root` itself). */
export function sampleTree(root: number): ProcessSample[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = parentPid(entry);
    if (parent !== undefined) parents.set(Number(entry), parent);
  }
  const inTree = (pid: number): boolean => {
    for (let current: number | undefined = pid, hops = 0; current !== undefined && hops < 64; current = parents.get(current), hops++) {
      if (current === root) return true;
    }
    return false;
  };
  const samples: ProcessSample[] = [];
  for (const pid of parents.keys()) {
    if (!inTree(pid)) continue;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      let environ: string | undefined;
      try {
        environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      } catch {
        environ = undefined;
      }
      samples.push({ pid, argv, environ });
    } catch {
      // exited between listing and reading
    }
  }
  return samples;
}

/** Also every process on the machine's argv (what `ps` shows anyone). */
export function sampleAllArgv(): string[] {
  const lines: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      lines.push(readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' '));
    } catch {
      // gone
    }
  }
  return lines;
}

/** Samples the agent's process tree every few ms until `until` resolves. */
export async function sampleWhile(root: number, until: Promise<unknown>, everyMs = 5): Promise<{ tree: ProcessSample[]; allArgv: string[] }> {
  const tree: ProcessSample[] = [];
  const allArgv: string[] = [];
  let done = false;
  void until.finally(() => {
    done = true;
  });
  while (!done) {
    tree.push(...sampleTree(root));
    allArgv.push(...sampleAllArgv());
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return { tree, allArgv };
}

export interface CredentialFiles {
  readonly dir: string;
}

/** File modes like a Kubernetes Secret volume (root-owned, 0644 by default). */
function writeSecretFile(path: string, content: string, mode = 0o644): void {
  writeFileSync(path, content, { mode });
  chmodSync(path, mode);
}

export function writeSshCredentials(root: string, repoName: string, files: { privateKey?: string; knownHosts?: string }): string {
  const dir = sshCredentialDir(repoName, root);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (files.privateKey !== undefined) writeSecretFile(join(dir, SSH_KEY_FILE), files.privateKey);
  if (files.knownHosts !== undefined) writeSecretFile(join(dir, SSH_KNOWN_HOSTS_FILE), files.knownHosts);
  return dir;
}

export function writeHttpsCredentials(root: string, repoName: string, username: string, password: string): string {
  const dir = httpsCredentialDir(repoName, root);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  writeSecretFile(join(dir, HTTPS_USERNAME_FILE), username);
  writeSecretFile(join(dir, HTTPS_PASSWORD_FILE), password);
  return dir;
}

/** chown -R, for running the agent under another uid. */
export function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) chownTree(join(path, entry), uid, gid);
}

/** GETs a path of the agent's HTTP server. */
export async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

export async function waitForReady(port: number, agent: AgentProcess, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    'the agent to answer /readyz with 200',
    async () => {
      if (agent.child.exitCode !== null) throw new Error(`agent exited with ${agent.child.exitCode}: ${agent.stderr()}`);
      try {
        return (await httpGet(port, '/readyz')).status === 200 ? true : undefined;
      } catch {
        return undefined;
      }
    },
    timeoutMs,
    100,
  );
}
