/**
 * Per-repo exclusive locks with flock(2) semantics, shared by every agent on the cache volume.
 *
 * Node has no flock(). We open `<dir>/.locks/<key>.lock` ourselves and hand that open file description to
 * util-linux `flock --exclusive 3` as its fd 3: flock(2) locks belong to the open file description, so once
 * the helper exits 0 the lock is held by our fd. Every git we run under the lock inherits the same description
 * (as its fd 3), so the lock is released only when the agent AND the git it started are gone: a `kill -9` of
 * the agent while git keeps writing does not let another agent in, and a crash never leaves a stale lock,
 * because the kernel drops it when the last holder dies. No lock-age guessing anywhere.
 * (`flock FILE git ...` would hold the lock across one command only; the agent needs it across clone,
 * verification, configuration and the rename.)
 */
import { spawn } from 'node:child_process';
import { open, type FileHandle } from 'node:fs/promises';

export interface HeldLock {
  readonly path: string;
  /** Pass to child processes that must keep the lock alive while they run. */
  readonly fd: number;
  release(): Promise<void>;
}

export class LockAbortedError extends Error {}

function runFlock(args: readonly string[], fd: number, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', [...args, '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const onAbort = (): void => {
      child.kill('SIGKILL');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (error) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new Error(`cannot run flock (util-linux): ${error.message}`));
    });
    child.on('close', (code) => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) reject(new LockAbortedError('stopped while waiting for a lock'));
      else if (code === 0 || code === 1) resolve(code);
      else reject(new Error(`flock failed (exit ${code}): ${stderr.trim()}`));
    });
  });
}

/**
 * Takes the lock, waiting for it unless `wait` is false; returns undefined when it is busy and `wait` is false.
 */
export async function acquireLock(path: string, options: { wait: boolean; signal?: AbortSignal | undefined }): Promise<HeldLock | undefined> {
  const handle: FileHandle = await open(path, 'a', 0o644);
  try {
    const code = await runFlock(options.wait ? ['--exclusive'] : ['--exclusive', '--nonblock'], handle.fd, options.signal);
    if (code !== 0) {
      await handle.close();
      return undefined;
    }
  } catch (error) {
    await handle.close();
    throw error;
  }
  let released = false;
  return {
    path,
    fd: handle.fd,
    release: async () => {
      if (released) return;
      released = true;
      await handle.close();
    },
  };
}
