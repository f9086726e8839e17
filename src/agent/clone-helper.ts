/** Installs the clone helper into the cache volume: atomic (write beside, chmod, rename), only when changed. */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CLONE_HELPER_RELATIVE_PATH } from '../shared/names.js';
import { CLONE_HELPER_SCRIPT } from './assets/git-clone-cached.js';

export function cloneHelperPath(cacheDir: string): string {
  return join(cacheDir, CLONE_HELPER_RELATIVE_PATH);
}

/** Returns true when the file was (re)written. */
export async function installCloneHelper(cacheDir: string): Promise<boolean> {
  const target = cloneHelperPath(cacheDir);
  try {
    if ((await readFile(target, 'utf8')) === CLONE_HELPER_SCRIPT) return false;
  } catch {
    // not there yet
  }
  await mkdir(dirname(target), { recursive: true });
  const tmp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, CLONE_HELPER_SCRIPT, { mode: 0o755 });
    // The process umask may have narrowed the mode; readers run as other UIDs.
    await chmod(tmp, 0o755);
    await rename(tmp, target);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  return true;
}
