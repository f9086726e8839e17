/**
 * Runs git as a child process: its own process group (so stopping it also stops ssh, index-pack and the
 * remote helpers), optional lock fd passed as fd 3 (see ../mirror/lock.ts), stderr split into lines for progress
 * logging, and the tail kept for a one-line failure reason.
 */
import { spawn } from 'node:child_process';
import { isProgressLine, scrub } from '../log.js';
import { gitConfigArgs } from './runtime.js';

export interface GitRun {
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** An open fd holding the repo's flock: the child inherits it, so the lock lives as long as git does. */
  readonly lockFd?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onStderrLine?: ((line: string) => void) | undefined;
  /** Written to git's stdin, which is then closed (default: no stdin). */
  readonly stdin?: string | undefined;
  /** A command git runs under, e.g. `nice -n 19`: it must exec its last arguments. */
  readonly wrapper?: readonly string[] | undefined;
}

export interface GitResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderrTail: readonly string[];
  readonly aborted: boolean;
}

export class GitError extends Error {
  constructor(
    message: string,
    readonly result: GitResult,
  ) {
    super(message);
  }
}

const KILL_GRACE_MS = 3000;
const TAIL_LINES = 40;

export function runGit(run: GitRun): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    if (run.signal?.aborted) {
      resolve({ code: null, signal: null, stdout: '', stderrTail: [], aborted: true });
      return;
    }
    const stdio: ('ignore' | 'pipe' | number)[] = [run.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'];
    if (run.lockFd !== undefined) stdio.push(run.lockFd);
    const [command = 'git', ...prefix] = [...(run.wrapper ?? []), 'git'];
    const child = spawn(command, [...prefix, ...gitConfigArgs(), ...run.args], { env: run.env, stdio, detached: true });
    if (run.stdin !== undefined && child.stdin) {
      // git may exit without reading everything (a failure): EPIPE is then expected, not an error of ours.
      child.stdin.on('error', () => undefined);
      child.stdin.end(run.stdin);
    }
    const stdout: Buffer[] = [];
    const tail: string[] = [];
    let partial = '';
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;

    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    const onAbort = (): void => {
      aborted = true;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    };
    run.signal?.addEventListener('abort', onAbort, { once: true });

    const takeLine = (line: string): void => {
      if (line.trim().length === 0) return;
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      run.onStderrLine?.(line);
    };
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString('utf8')).split(/[\r\n]/);
      partial = parts.pop() ?? '';
      for (const line of parts) takeLine(line);
    });
    child.on('error', (error) => {
      run.signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
    child.on('close', (code, signal) => {
      if (killTimer) clearTimeout(killTimer);
      run.signal?.removeEventListener('abort', onAbort);
      takeLine(partial);
      // Whatever the group still holds (a stuck ssh) goes with it.
      if (code !== 0) killGroup('SIGKILL');
      resolve({ code, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderrTail: tail, aborted });
    });
  });
}

/**
 * Lines that say why git failed, most telling first. Git's own last `fatal:` line is often only the
 * consequence: ssh prints "Host key verification failed." and git then "fatal: Could not read from remote
 * repository."; index-pack dies of ENOSPC ("fatal: write error: No space left on device") and fetch then says
 * "fatal: fetch-pack: invalid index-pack output".
 */
const DIAGNOSTICS: readonly RegExp[] = [
  /Host key verification failed/i,
  /Permission denied/i,
  /No space left on device|Disk quota exceeded/i,
  /Authentication failed/i,
  /Could not resolve host/i,
  /Connection refused/i,
  /Repository not found|repository '[^']*' not found|does not appear to be a git repository/i,
];

/**
 * One line saying what went wrong: the newest line naming a known cause (in DIAGNOSTICS order), else git's last
 * `fatal:`/`error:` line, else the last line. URL userinfo is scrubbed here already; callers log it through the
 * logger, which also scrubs known secret values.
 */
export function failureReason(result: GitResult): string {
  if (result.aborted) return 'stopped';
  const lines = result.stderrTail.filter((line) => !isProgressLine(line));
  const newestFirst = [...lines].reverse();
  const diagnostic = DIAGNOSTICS.map((pattern) => newestFirst.find((line) => pattern.test(line))).find((line) => line !== undefined);
  const fatal = newestFirst.find((line) => /^(fatal|error):/.test(line));
  const chosen = diagnostic ?? fatal ?? lines[lines.length - 1];
  if (chosen) return scrub(chosen.trim());
  return result.signal ? `git was killed by ${result.signal}` : `git exited with code ${result.code}`;
}
