/** Running one timed command (or a batch at once) and reading the link's byte counter around it. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UpstreamLink } from './network.js';

/** GNU time reports the user+system CPU of a command and every child it waited for (index-pack, checkout). */
const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/** git with no system or user configuration and no prompts, so a run measures git, not this machine's setup. */
export function isolatedGitEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    LANG: 'C',
  };
}

export interface CommandResult {
  readonly code: number;
  readonly stderr: string;
  /** Client CPU seconds (user + system), when GNU time is available. */
  readonly cpuSeconds?: number;
  /** The system (kernel) part of cpuSeconds. */
  readonly systemSeconds?: number;
}

export interface Measurement {
  readonly seconds: number;
  readonly bytes: number;
  readonly fetches: number;
  /** Client-side CPU seconds of every command (robust against other load on the machine, unlike wall time). */
  readonly cpuSeconds: number | undefined;
  /** The system (kernel) part of cpuSeconds: file creation, page cache. */
  readonly cpuSystemSeconds: number | undefined;
  /** CPU idle fraction just before the measurement started (see waitForQuiet). */
  readonly idleBefore: number;
}

const COMMAND_TIMEOUT_MS = 15 * 60_000;

export async function runTimedCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<CommandResult> {
  if (!GNU_TIME) return runCommand(argv, env);
  const dir = mkdtempSync(join(tmpdir(), 'gc-bench-time-'));
  const output = join(dir, 'time');
  try {
    const result = await runCommand([GNU_TIME, '-q', '-o', output, '-f', '%U %S', ...argv], env);
    const [user = NaN, system = NaN] = readFileSync(output, 'utf8').trim().split('\n').pop()?.split(' ').map(Number) ?? [];
    return { ...result, cpuSeconds: user + system, systemSeconds: system };
  } catch {
    return runCommand(argv, env);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function runCommand(argv: readonly string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<CommandResult> {
  return new Promise((resolve) => {
    const [command = '', ...args] = argv;
    const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 64 << 10) stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: 127, stderr: error.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, stderr });
    });
  });
}

/** Sequence of commands for one clone (e.g. agent sync, then git clone). */
export type Job = ReadonlyArray<readonly string[]>;

interface JobCpu {
  readonly total: number | undefined;
  readonly system: number | undefined;
}

async function runJob(job: Job, env: NodeJS.ProcessEnv): Promise<JobCpu> {
  let total: number | undefined = 0;
  let system: number | undefined = 0;
  for (const argv of job) {
    const result = await runTimedCommand(argv, env);
    if (result.code !== 0) throw new Error(`\`${argv.join(' ')}\` failed (${result.code}): ${result.stderr.trim().slice(-2000)}`);
    total = total === undefined || result.cpuSeconds === undefined || Number.isNaN(result.cpuSeconds) ? undefined : total + result.cpuSeconds;
    system = system === undefined || result.systemSeconds === undefined || Number.isNaN(result.systemSeconds) ? undefined : system + result.systemSeconds;
  }
  return { total, system };
}

const sumOrUndefined = (values: ReadonlyArray<number | undefined>): number | undefined =>
  values.some((value) => value === undefined) ? undefined : values.reduce<number>((sum, value) => sum + (value ?? 0), 0);

/** Fraction of CPU time that was idle over `ms`, from /proc/stat (1 when it cannot be read). */
async function idleFraction(ms: number): Promise<number> {
  const sample = (): number[] | undefined => {
    try {
      const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
      return fields;
    } catch {
      return undefined;
    }
  };
  const before = sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = sample();
  if (!before || !after) return 1;
  const delta = after.map((value, i) => value - (before[i] ?? 0));
  const total = delta.reduce((sum, value) => sum + value, 0);
  // idle + iowait
  return total > 0 ? ((delta[3] ?? 0) + (delta[4] ?? 0)) / total : 1;
}

/**
 * Other work on a shared machine distorts wall times: wait (at most `maxWaitMs`) until the CPUs were at least
 * `minIdle` idle over half a second; returns the idle fraction seen last, which is recorded with the result.
 */
export async function waitForQuiet(minIdle = 0.75, maxWaitMs = 30_000): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const idle = await idleFraction(500);
    if (idle >= minIdle || Date.now() > deadline) return idle;
  }
}

/** Runs the jobs at the same time; wall time from the first start to the last end, bytes over the link. */
export async function measure(link: UpstreamLink, jobs: readonly Job[], env: NodeJS.ProcessEnv): Promise<Measurement> {
  // Let late ACKs of the previous measurement cross the link before the counter is read.
  await new Promise((resolve) => setTimeout(resolve, 150));
  const idleBefore = await waitForQuiet();
  const bytesBefore = await link.bytes();
  const fetchesBefore = link.uploadPacks();
  const started = performance.now();
  const cpu = await Promise.all(jobs.map((job) => runJob(job, env)));
  const seconds = (performance.now() - started) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 150));
  const cpuSeconds = sumOrUndefined(cpu.map((job) => job.total));
  const cpuSystemSeconds = sumOrUndefined(cpu.map((job) => job.system));
  return { seconds, bytes: (await link.bytes()) - bytesBefore, fetches: link.uploadPacks() - fetchesBefore, cpuSeconds, cpuSystemSeconds, idleBefore };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}
