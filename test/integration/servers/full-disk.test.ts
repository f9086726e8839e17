// A full disk: the cache dir is a 6 MiB tmpfs and the upstream holds more incompressible data than fits.
// A first clone fails cleanly (non-zero, one-line reason, nothing at <key>.git, staging cleaned), and a failed
// update of an existing mirror leaves it intact (fsck passes, refs unchanged). Needs root to mount a tmpfs.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FLAG } from '../../../src/shared/agent-cli.js';
import { STAGING_DIR_NAME } from '../../../src/shared/names.js';
import { mirrorPath } from '../../../src/shared/repo-url.js';
import { startGitDaemon } from '../../support/git-fixtures.js';
import { testWithTools } from '../../support/tools.js';
import { failureMessage, lastLine, repoFlags, runAgentToEnd } from '../../support/servers/agent.js';
import { isRoot, makeTempDir, removeDir } from '../../support/servers/process.js';
import { createUpstream, git } from '../../support/servers/upstream.js';

const SIZE = '6m';

/** Mounts a tmpfs, or says why it cannot. */
function tryMount(target: string): string | undefined {
  if (!isRoot()) return 'not root';
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE},mode=0755`, 'gc-full-disk', target], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return `mount -t tmpfs not permitted: ${(error as { stderr?: Buffer }).stderr?.toString().trim() ?? String(error)}`;
  }
}

function unmount(target: string): void {
  try {
    execFileSync('umount', [target], { stdio: 'ignore' });
  } catch {
    execFileSync('umount', ['-l', target], { stdio: 'ignore' });
  }
}

function leftovers(dir: string, pattern: RegExp): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (pattern.test(entry.name)) found.push(path);
    if (entry.isDirectory()) found.push(...leftovers(path, pattern));
  }
  return found;
}

interface FullDisk {
  cacheDir: string;
  sync(...names: string[]): ReturnType<typeof runAgentToEnd>;
  mirror(name: string): string;
  upstream: Record<'small' | 'big' | 'grow', ReturnType<typeof createUpstream>>;
}

/** A 6 MiB tmpfs cache dir and a git daemon serving small, big (12 MiB random) and grow; undefined when not possible. */
async function fullDisk(t: { teardown(fn: () => Promise<void>): void; pass(message: string): void }): Promise<FullDisk | undefined> {
  const dir = makeTempDir('full-disk');
  const cacheDir = join(dir, 'cache');
  mkdirSync(cacheDir);
  const reason = tryMount(cacheDir);
  if (reason) {
    console.error(`[skip] full-disk test: ${reason}`);
    removeDir(dir);
    t.pass(`skipped: ${reason}`);
    return undefined;
  }
  const upstreams = join(dir, 'upstreams');
  const upstream = {
    small: createUpstream(upstreams, 'small'),
    big: createUpstream(upstreams, 'big', { commits: 3, randomBytes: 12 << 20 }),
    grow: createUpstream(upstreams, 'grow'),
  };
  const daemon = await startGitDaemon(upstreams);
  t.teardown(async () => {
    await daemon.stop();
    unmount(cacheDir);
    removeDir(dir);
  });
  const url = (name: string): string => daemon.url(`${name}.git`);
  return {
    cacheDir,
    upstream,
    mirror: (name) => mirrorPath(cacheDir, url(name)),
    sync: (...names) => runAgentToEnd(['sync', FLAG.cacheDir, cacheDir, ...repoFlags(names.map((name) => ({ name, url: url(name) })))]),
  };
}

const diskTest = testWithTools(['mount', 'umount', 'flock']);

diskTest('a full disk (6 MiB tmpfs): a too-big clone fails cleanly with no half mirror, and a failed update keeps the previous mirror intact', async (t) => {
  const disk = await fullDisk(t);
  if (!disk) return;
  const first = await disk.sync('small', 'grow');
  t.is(first.code, 0, first.stderr);
  t.is(git(['--git-dir', disk.mirror('small'), 'show-ref']), disk.upstream.small.refs());

  // 1. A clone that cannot fit.
  const bigRun = await disk.sync('big');
  t.not(bigRun.code, 0);
  t.log(`clone reason: ${failureMessage(bigRun.stderr)}`);
  t.regex(lastLine(bigRun.stderr), /^\{.*"level":"error".*\}$/, 'the last line is one error event');
  t.false(existsSync(disk.mirror('big')), 'no half mirror at <key>.git');
  t.deepEqual(leftovers(join(disk.cacheDir, STAGING_DIR_NAME), /.*/), [], 'staging cleaned');
  t.notThrows(() => git(['--git-dir', disk.mirror('small'), 'fsck', '--full', '--no-progress']), 'the other mirror is intact');

  // 2. An update that cannot fit: the existing mirror stays as it was.
  const refsBefore = git(['--git-dir', disk.mirror('grow'), 'show-ref']);
  disk.upstream.grow.commit('big.bin', randomBytes(12 << 20));
  const growRun = await disk.sync('grow');
  t.not(growRun.code, 0);
  t.log(`fetch reason: ${failureMessage(growRun.stderr)}`);
  t.regex(lastLine(growRun.stderr), /^\{.*"level":"error".*\}$/);
  t.notThrows(() => git(['--git-dir', disk.mirror('grow'), 'fsck', '--full', '--no-progress']), 'the previous mirror passes fsck');
  t.is(git(['--git-dir', disk.mirror('grow'), 'show-ref']), refsBefore, 'its refs are unchanged');
  t.deepEqual(leftovers(join(disk.cacheDir, STAGING_DIR_NAME), /.*/), []);
  t.log(`left in the mirror: ${JSON.stringify(leftovers(disk.mirror('grow'), /^tmp_(pack|idx)_|\.lock$/).map((p) => p.slice(disk.cacheDir.length)))}`);
  t.log(execFileSync('df', ['-k', disk.cacheDir], { encoding: 'utf8' }).trim().split('\n').at(-1) ?? '');
});

// Once a defect: when `git fetch` died of ENOSPC, objects/pack/tmp_pack_* (as big as the free space was) stayed
// in the mirror, so the volume stayed full and every later clone or fetch on it failed too; and the one-line
// reason was "fetch-pack: invalid index-pack output" rather than git's "No space left on device". The agent now
// removes a failed fetch's temporary files under the repo lock, and the reason names the cause. The disk must
// have room again afterwards: a small repo still clones onto the same volume.
diskTest('after a fetch fails on a full disk, no temporary pack is left behind, the reason says the disk is full, and the space is free again', async (t) => {
  const disk = await fullDisk(t);
  if (!disk) return;
  t.is((await disk.sync('grow')).code, 0);
  disk.upstream.grow.commit('big.bin', randomBytes(12 << 20));
  const failed = await disk.sync('grow');
  t.not(failed.code, 0);
  t.deepEqual(leftovers(disk.mirror('grow'), /^tmp_(pack|idx)_|\.lock$/), [], 'no temporary packs or locks left to fill the disk');
  t.regex(failureMessage(failed.stderr), /No space left on device/);
  t.regex(failed.stderr, /"event":"stale_git_files_removed"[^\n]*tmp_pack_/, 'the removal is logged');
  const next = await disk.sync('small');
  t.is(next.code, 0, next.stderr);
  t.notThrows(() => git(['--git-dir', disk.mirror('grow'), 'fsck', '--full', '--no-progress']), 'the mirror that failed to update is intact');
});
