/**
 * Runs a shell script the way an app container reads the cache: as a UID that owns nothing on it and has no
 * passwd entry, with the cache bind-mounted read-only in a private mount namespace (EROFS is the kernel's
 * answer), under dash or busybox sh, with the PATH given (a busybox-only PATH for a minimal image).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { runProcess, type AgentRun } from './git-fixtures.js';
import { findTool } from './tools.js';

export interface CacheReader {
  readonly cache: string;
  readonly home: string;
  readonly uid: number;
}

export function runAsCacheReader(reader: CacheReader, shell: 'dash' | 'busybox', script: string, env: Record<string, string>): Promise<AgentRun> {
  const { PATH: path = process.env.PATH ?? '/usr/bin:/bin', ...rest } = env;
  const tool = (name: string): string => findTool(name) ?? name;
  const shellArgv = shell === 'dash' ? tool('dash') : `${tool('busybox')} sh`;
  // The reader's PATH is set last, so a busybox-only PATH applies to the script and not to mount/setpriv.
  const inner =
    `${tool('mount')} --bind "$0" "$0" && ${tool('mount')} -o remount,ro,bind "$0" && ` +
    `exec ${tool('setpriv')} --reuid ${reader.uid} --regid ${reader.uid} --clear-groups ${tool('env')} PATH="$2" ${shellArgv} -c "$1"`;
  return runProcess(tool('unshare'), ['--mount', '--propagation', 'private', tool('sh'), '-c', inner, reader.cache, script, path], {
    HOME: reader.home,
    GIT_CACHE_DIR: reader.cache,
    GIT_TERMINAL_PROMPT: '0',
    ...rest,
  });
}

/** A directory with busybox's applets and git, as a minimal image has: no curl, and wget unless `wget` is false. */
export function busyboxPath(root: string, wget = true): string {
  const dir = join(root, wget ? 'busybox-bin' : 'busybox-bin-nowget');
  if (existsSync(dir)) return dir;
  mkdirSync(dir, { recursive: true });
  execFileSync(findTool('busybox') ?? 'busybox', ['--install', '-s', dir]);
  rmSync(join(dir, 'wget'), { force: true });
  if (wget) symlinkSync(findTool('busybox') ?? 'busybox', join(dir, 'wget'));
  symlinkSync(findTool('git') ?? '/usr/bin/git', join(dir, 'git'));
  return dir;
}
