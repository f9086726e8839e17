/**
 * Shared plumbing for the server harnesses: free loopback ports, temp dirs, long-running child processes that
 * are waited on until they listen and always reaped on stop.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const LOOPBACK = '127.0.0.1';

/** A port the kernel just handed out on 127.0.0.1 (closed again, so a server can bind it right after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `gc-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a value (not undefined) or `timeoutMs` passes; then throws `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(everyMs);
  }
}

export async function portAccepts(port: number, host = LOOPBACK): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A background server process whose output goes to a log file; `stop()` sends SIGTERM, then SIGKILL. */
export interface Daemon {
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/**
 * Each daemon gets its own process group, and stop() signals the whole group: servers that prefork
 * (fcgiwrap -c N) leave no orphans holding our pipes.
 */
export function startDaemon(command: string, args: readonly string[], logFile: string, options: SpawnOptions = {}): Daemon {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...options });
  const signalGroup = (signal: NodeJS.Signals): void => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // group already gone
    }
  };
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null)));
    child.once('error', (error) => {
      log.write(`spawn error: ${error.message}\n`);
      resolve(127);
    });
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        signalGroup('SIGTERM');
        const timer = setTimeout(() => signalGroup('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      // Whatever the group still holds (preforked workers) goes too.
      signalGroup('SIGKILL');
      child.stdout?.destroy();
      child.stderr?.destroy();
      await new Promise<void>((resolve) => log.end(resolve));
    })();
    return stopping;
  };
  return { child, logFile, exited, stop };
}

/** Waits until the daemon accepts TCP connections on `port`; fails early (with its log) if it exits first. */
export async function waitForPort(daemon: Daemon, port: number, name: string, readLog: () => string, host = LOOPBACK): Promise<void> {
  let exitCode: number | null | undefined;
  void daemon.exited.then((code) => {
    exitCode = code;
  });
  await waitFor(`${name} to listen on ${host}:${port}`, async () => {
    if (exitCode !== undefined) throw new Error(`${name} exited with ${exitCode}:\n${readLog()}`);
    return (await portAccepts(port, host)) ? true : undefined;
  });
}

/** Starts a server on a fresh port, retrying with another port when the first one was taken in between. */
export async function withPortRetry<T>(attempt: (port: number) => Promise<T>, tries = 3): Promise<T> {
  let lastError: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      return await attempt(await freePort());
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

export const isRoot = (): boolean => process.getuid?.() === 0;
