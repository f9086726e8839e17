/**
 * Shared by the integration suites (Helm, Argo CD, SEA, monitoring): running a real tool with a controlled
 * environment, and comparing a render with its checked-in expectation.
 */
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { REPO_ROOT } from '../../support/tools.js';

/** The function bundle `npm run build` makes (needs `node` on PATH through its shebang). */
export const FUNCTION_BUNDLE = join(REPO_ROOT, 'function', 'inject-git-cache');
/** The single executable `npm run build:sea` makes (needs no `node`). */
export const FUNCTION_SEA = join(REPO_ROOT, 'dist', 'inject-git-cache-linux-x64');
export const INTEGRATIONS = join(REPO_ROOT, 'integrations');

export interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly input?: string;
  readonly cwd?: string;
  /** The whole environment of the child (nothing is inherited). */
  readonly env: Readonly<Record<string, string>>;
}

/** Runs a program to completion; never throws for a non-zero exit. */
export async function runTool(file: string, args: readonly string[], options: RunOptions): Promise<Ran> {
  const result = await execa(file, args, {
    input: options.input ?? '',
    cwd: options.cwd,
    env: options.env,
    extendEnv: false,
    reject: false,
    stripFinalNewline: false,
    timeout: 120_000,
  });
  return { code: result.exitCode ?? 1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/**
 * Asserts `actual` equals the checked-in file. With UPDATE_EXPECTED=1 the file is rewritten instead (after a
 * deliberate change of the function's output; review the diff before committing it).
 */
export function assertMatchesExpected(t: ExecutionContext, actual: string, expectedFile: string): void {
  if (process.env.UPDATE_EXPECTED === '1') {
    mkdirSync(dirname(expectedFile), { recursive: true });
    writeFileSync(expectedFile, actual);
    t.log(`rewrote ${expectedFile}`);
  }
  t.true(existsSync(expectedFile), `${expectedFile} is missing; create it with UPDATE_EXPECTED=1 and review it`);
  t.is(actual, readFileSync(expectedFile, 'utf8'), `differs from ${expectedFile} (UPDATE_EXPECTED=1 rewrites it)`);
}

/** Copies a tree and drops every exec bit from its files, as Argo CD does with the repo it hands to a plugin. */
export function copyWithoutExecBits(from: string, to: string): void {
  cpSync(from, to, { recursive: true });
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else chmodSync(path, statSync(path).mode & 0o666);
    }
  };
  walk(to);
}

/** Whether any file under `dir` has an exec bit (to prove the copy really dropped them). */
export function anyExecutable(dir: string): boolean {
  return readdirSync(dir).some((entry) => {
    const path = join(dir, entry);
    const stat = statSync(path);
    return stat.isDirectory() ? anyExecutable(path) : (stat.mode & 0o111) !== 0;
  });
}
