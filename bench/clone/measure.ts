/** Running one timed command (or a batch at once) and reading the link's byte counter around it. */
import { spawn } from 'node:child_process';
import type { UpstreamLink } from './network.js';

export interface CommandResult {
  readonly code: number;
  readonly stderr: string;
}

export interface Measurement {
  readonly seconds: number;
  readonly bytes: number;
  readonly fetches: number;
}

const COMMAND_TIMEOUT_MS = 15 * 60_000;

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

async function runJob(job: Job, env: NodeJS.ProcessEnv): Promise<void> {
  for (const argv of job) {
    const result = await runCommand(argv, env);
    if (result.code !== 0) throw new Error(`\`${argv.join(' ')}\` failed (${result.code}): ${result.stderr.trim().slice(-2000)}`);
  }
}

/** Runs the jobs at the same time; wall time from the first start to the last end, bytes over the link. */
export async function measure(link: UpstreamLink, jobs: readonly Job[], env: NodeJS.ProcessEnv): Promise<Measurement> {
  // Let late ACKs of the previous measurement cross the link before the counter is read.
  await new Promise((resolve) => setTimeout(resolve, 150));
  const bytesBefore = await link.bytes();
  const fetchesBefore = link.uploadPacks();
  const started = performance.now();
  await Promise.all(jobs.map((job) => runJob(job, env)));
  const seconds = (performance.now() - started) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 150));
  return { seconds, bytes: (await link.bytes()) - bytesBefore, fetches: link.uploadPacks() - fetchesBefore };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}
