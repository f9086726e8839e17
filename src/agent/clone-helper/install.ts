/** Installs the clone helper into the cache volume: atomic (write beside, chmod, rename), only when changed. */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CLONE_HELPER_RELATIVE_PATH } from '../../shared/names.js';
import { CLONE_HELPER_SCRIPT } from './script.js';
import { writeFileAtomic } from '../atomic-file.js';

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
  await writeFileAtomic(target, CLONE_HELPER_SCRIPT, 0o755);
  return true;
}
