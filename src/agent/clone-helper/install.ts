/**
 * Installs what app containers use from the cache volume (see script.ts): the clone helper, the upload-pack
 * wrapper and their library, the origin include and the system git config of transparent mode, and the refresh
 * token. Each file is written atomically (beside, chmod, rename) and only when it changed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  CLIENT_LIBRARY_RELATIVE_PATH,
  CLONE_HELPER_RELATIVE_PATH,
  LOCK_DIR_NAME,
  ORIGIN_GITCONFIG_RELATIVE_PATH,
  REFRESH_TOKEN_RELATIVE_PATH,
  SYSTEM_GITCONFIG_RELATIVE_PATH,
  UPLOAD_PACK_WRAPPER_RELATIVE_PATH,
} from '../../shared/names.js';
import { mirrorPathForKey } from '../../shared/repo-url.js';
import { writeFileAtomic } from '../atomic-file.js';
import { acquireLock } from '../mirror/lock.js';
import {
  CLIENT_LIBRARY_SCRIPT,
  CLONE_HELPER_SCRIPT,
  UPLOAD_PACK_WRAPPER_SCRIPT,
  originGitConfig,
  safeDirectoriesOf,
  systemGitConfig,
} from './script.js';

export function cloneHelperPath(cacheDir: string): string {
  return join(cacheDir, CLONE_HELPER_RELATIVE_PATH);
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Writes `content` at `cacheDir/relative` unless it is there already; true when it was (re)written. */
async function install(cacheDir: string, relative: string, content: string, mode: number): Promise<boolean> {
  const target = join(cacheDir, relative);
  if ((await readOrUndefined(target)) === content) return false;
  await mkdir(dirname(target), { recursive: true });
  await writeFileAtomic(target, content, mode);
  return true;
}

/**
 * Installs the scripts and config files; returns the paths it (re)wrote. `keys` are this agent's repos: the
 * system config lists their mirrors in safe.directory, merged (under a lock) with what other agents sharing the
 * volume listed, so every mirror on it stays readable to app containers of any UID.
 */
export async function installClientFiles(cacheDir: string, keys: readonly string[]): Promise<string[]> {
  const written: string[] = [];
  const files: [string, string, number][] = [
    [CLIENT_LIBRARY_RELATIVE_PATH, CLIENT_LIBRARY_SCRIPT, 0o644],
    [CLONE_HELPER_RELATIVE_PATH, CLONE_HELPER_SCRIPT, 0o755],
    [UPLOAD_PACK_WRAPPER_RELATIVE_PATH, UPLOAD_PACK_WRAPPER_SCRIPT, 0o755],
    [ORIGIN_GITCONFIG_RELATIVE_PATH, originGitConfig(cacheDir), 0o644],
  ];
  for (const [relative, content, mode] of files) if (await install(cacheDir, relative, content, mode)) written.push(join(cacheDir, relative));

  await mkdir(join(cacheDir, LOCK_DIR_NAME), { recursive: true });
  const lock = await acquireLock(join(cacheDir, LOCK_DIR_NAME, 'client-files.lock'), { wait: true });
  try {
    const systemPath = join(cacheDir, SYSTEM_GITCONFIG_RELATIVE_PATH);
    const listed = safeDirectoriesOf((await readOrUndefined(systemPath)) ?? '');
    const mirrors = [...new Set([...listed, ...keys.map((key) => mirrorPathForKey(cacheDir, key))])].sort();
    if (await install(cacheDir, SYSTEM_GITCONFIG_RELATIVE_PATH, systemGitConfig(mirrors), 0o644)) written.push(systemPath);
  } finally {
    await lock?.release();
  }
  return written;
}

/**
 * The refresh token (see REFRESH_TOKEN_RELATIVE_PATH): created once per volume, readable by every container that
 * mounts it. `wx` makes two agents starting together agree on the first one's token.
 */
export async function ensureRefreshToken(cacheDir: string): Promise<string> {
  const path = join(cacheDir, REFRESH_TOKEN_RELATIVE_PATH);
  try {
    await writeFile(path, randomBytes(24).toString('hex'), { flag: 'wx', mode: 0o644 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const token = (await readFile(path, 'utf8')).trim();
  if (!/^[0-9a-f]{32,}$/.test(token)) throw new Error(`${path} is not a refresh token written by git-cache; remove it`);
  return token;
}
