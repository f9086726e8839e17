/**
 * Where the clones, checkouts and the agent's cache volume are written: a fresh ext4 filesystem (with a
 * journal, as a node's disk has) in a loop-mounted sparse image, so the figures do not depend on the state of
 * the machine's own filesystem.
 *
 * Why: on an ext4 filesystem WITHOUT a journal (this VM's root filesystem is one), the inode allocator skips
 * every inode freed in the last 60 s (360 s while its inode-table block is dirty) and pays a buffer-cache
 * lookup for each skipped one (ext4 `find_inode_bit` -> `recently_deleted`). Deleting the previous 2,500-file
 * checkout and then cloning again made every file creation scan past thousands of freshly freed inodes: a
 * 0.2 s `git clone --shared` took 3.8 s, nearly all of it system time, and it grew with every run. Any other
 * process deleting files on the same filesystem (a test suite) has the same effect. A journaled ext4 never
 * takes that path.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';

export interface ScratchFilesystem {
  /** Directory to write clones under. */
  readonly dir: string;
  /** One sentence for the report. */
  readonly description: string;
  teardown(): void;
}

const IMAGE_BYTES = 48 * 1024 ** 3;

function run(argv: readonly string[]): void {
  const [command = '', ...args] = argv;
  execFileSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function journalless(dir: string): boolean {
  // /proc/mounts has no journal flag; a mounted ext4 with a journal has a jbd2 entry named after its device.
  try {
    const mount = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' '))
      .filter((fields) => fields[2] === 'ext4' && (dir === fields[1] || dir.startsWith(`${fields[1] === '/' ? '' : fields[1]}/`)))
      .sort((a, b) => (b[1]?.length ?? 0) - (a[1]?.length ?? 0))[0];
    const device = mount?.[0]?.split('/').pop();
    if (!device) return false;
    return !execFileSync('ls', ['/proc/fs/jbd2'], { encoding: 'utf8' }).split('\n').some((entry) => entry.startsWith(`${device}-`));
  } catch {
    return false;
  }
}

/** Mounts a fresh journaled ext4 at `<runDir>/scratch`; falls back to a plain directory (and says so). */
export function mountScratch(workDir: string, runDir: string, log: (message: string) => void): ScratchFilesystem {
  const dir = join(runDir, 'scratch');
  const image = join(workDir, `scratch-${process.pid}.img`);
  mkdirSync(dir, { recursive: true });
  try {
    const fd = openSync(image, 'w');
    ftruncateSync(fd, IMAGE_BYTES);
    closeSync(fd);
    run(['mkfs.ext4', '-q', '-F', '-E', 'nodiscard', '-L', 'gc-bench', image]);
    // discard: freed blocks punch holes in the sparse image; noinit_itable: no background zeroing during the runs.
    run(['mount', '-o', 'loop,discard,noinit_itable', image, dir]);
  } catch (error) {
    rmSync(image, { force: true });
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    const warning = journalless(dir) ? ' WARNING: it is an ext4 without a journal, where file creation right after deletions is slow (see bench/clone/scratch-fs.ts)' : '';
    log(`could not mount a scratch ext4 (${reason}); writing clones to ${dir} on the machine's filesystem.${warning}`);
    return {
      dir,
      description: `clones written to the machine's own filesystem (a loop-mounted ext4 was not available).${warning}`,
      teardown: () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  return {
    dir,
    description: 'clones, checkouts and the cache volume on a fresh ext4 (with journal, default mkfs options) in a loop-mounted sparse image, as on a node\'s disk',
    teardown: () => {
      try {
        run(['umount', dir]);
      } catch {
        run(['umount', '-l', dir]);
      }
      rmSync(image, { force: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
