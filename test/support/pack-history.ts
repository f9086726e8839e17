/**
 * Mirrors with a long fetch history, as an agent builds them over months: upstream gains one commit at a time
 * and the mirror fetches after each, keeping one pack per fetch (the agent's `fetch.unpackLimit=1`). The
 * commits are made up front with `git fast-import` in a side repository and pushed to upstream one by one, so
 * a refresh costs two git runs (push, fetch) rather than a checkout and a commit.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { GIT_TEST_ENV, git } from './git-fixtures.js';

/** `count` commits on top of `upstream`'s main, each changing two files, in `<side>` (not in upstream). */
export function prepareCommits(upstream: string, side: string, count: number, label: string): string[] {
  git(['clone', '-q', '--bare', '--no-local', upstream, side]);
  const tip = git(['--git-dir', side, 'rev-parse', 'refs/heads/main']).trim();
  const chunks: string[] = [];
  for (let i = 0; i < count; i++) {
    const message = `${label} ${i}`;
    const text = Array.from({ length: 40 }, (_, line) => `${label} line ${line} of change ${i}: ${(i * 7919 + line * 104729) % 1000003}`).join('\n');
    const small = `${label} ${i}\n`;
    chunks.push(
      `commit refs/heads/main\ncommitter Test <test@example.invalid> ${1_700_000_000 + i} +0000\ndata ${Buffer.byteLength(message)}\n${message}\n`,
      i === 0 ? `from ${tip}\n` : '',
      `M 100644 inline notes/${label}-${i % 25}.txt\ndata ${Buffer.byteLength(text)}\n${text}\n`,
      `M 100644 inline counter.txt\ndata ${Buffer.byteLength(small)}\n${small}\n\n`,
    );
  }
  execFileSync('git', ['--git-dir', side, 'fast-import', '--quiet'], { input: `${chunks.join('')}done\n`, env: GIT_TEST_ENV });
  return git(['--git-dir', side, 'rev-list', '--reverse', `${tip}..refs/heads/main`]).trim().split('\n');
}

/** Pushes each commit to upstream's main and fetches the mirror after each one, as the agent's refresh does. */
export function refreshOneByOne(side: string, upstream: string, mirror: string, commits: readonly string[]): void {
  for (const commit of commits) {
    git(['--git-dir', side, 'push', '-q', '--force', upstream, `${commit}:refs/heads/main`]);
    git(['--git-dir', mirror, 'fetch', '-q', '--prune', '--atomic', '--no-write-fetch-head', 'origin']);
  }
}

/** `pack-<hash>` names of the readable packs (.pack with .idx) in a repository's object store. */
export function packNames(gitDir: string): string[] {
  const dir = join(gitDir, 'objects', 'pack');
  const files = new Set(readdirSync(dir));
  return [...files].filter((name) => name.endsWith('.pack') && files.has(name.replace(/\.pack$/, '.idx'))).map((name) => name.replace(/\.pack$/, '')).sort();
}

/** Every object id a repository can read (packed or loose, reachable or not), sorted. */
export function allObjects(gitDir: string): string[] {
  return git(['--git-dir', gitDir, 'cat-file', '--batch-all-objects', '--batch-check=%(objectname)']).trim().split('\n').sort();
}
