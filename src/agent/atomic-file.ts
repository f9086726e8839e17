/**
 * Files other processes read while the agent may be rewriting them (the mirror's marker, the clone helper in
 * the shared volume, a private key copy): written beside the target and renamed over it, so a reader sees the
 * old file or the new one, never a torn one.
 */
import { randomBytes } from 'node:crypto';
import { chmod, rename, rm, writeFile } from 'node:fs/promises';

export async function writeFileAtomic(path: string, data: string | Buffer, mode: number): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode });
    // The process umask may have narrowed the mode; readers may run as other UIDs.
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}
