/**
 * A mirror's life as the agent lives it: upstream gains one commit at a time and the mirror fetches after each
 * (`git fetch --prune --atomic origin` with the agent's mirror config, so one pack per fetch).
 *
 * The new commits are generated once with `git fast-import` into upstream's object store from a seeded PRNG
 * (code-like edits to a few hundred files of the generated repository, a new file now and then), on a ref
 * that is deleted afterwards: the objects stay in upstream's pack, unreferenced, and each "push" is then only
 * an update-ref of main. The fetches run over file:// (upload-pack on a pipe: the same packs as git:// or
 * https, without a network in the way).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIRROR_CONFIG } from '../../src/agent/mirror/mirror.js';
import { makeLineMaker, mulberry32 } from '../clone/repos.js';

export const GIT_ENV: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', LANG: 'C' };

export function git(args: readonly string[], input?: string): string {
  return execFileSync('git', args, { env: GIT_ENV, encoding: 'utf8', input, maxBuffer: 1 << 30, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
}

const SERIES_REF = 'refs/bench/series';
const HOT_FILES = 300;

/**
 * `count` commits on top of upstream's main, each editing 1 to 6 of 300 files, stored in upstream but
 * reachable from no ref. Returns their ids, oldest first. Idempotent: a stamp records a finished series.
 */
export async function ensureSeries(upstream: string, count: number, log: (message: string) => void): Promise<string[]> {
  const stamp = join(upstream, `bench-series-${count}`);
  if (existsSync(stamp)) return readFileSync(stamp, 'utf8').trim().split('\n');
  const tip = git(['--git-dir', upstream, 'rev-parse', 'refs/heads/main']).trim();
  const paths = git(['--git-dir', upstream, 'ls-tree', '-r', '--name-only', tip])
    .split('\n')
    .filter((path) => path.endsWith('.ts'))
    .slice(0, HOT_FILES);
  const files = new Map<string, string[]>();
  for (const path of paths) files.set(path, git(['--git-dir', upstream, 'cat-file', 'blob', `${tip}:${path}`]).split('\n'));
  const random = mulberry32(0x5eed ^ count);
  const line = makeLineMaker(random);
  log(`generating ${count} commits on top of ${tip.slice(0, 12)} (edits to ${paths.length} files)...`);
  const child = spawn('git', ['--git-dir', upstream, 'fast-import', '--quiet'], { env: GIT_ENV, stdio: ['pipe', 'inherit', 'inherit'] });
  const exited = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? 1)));
  const write = (chunk: string): Promise<void> => (child.stdin.write(chunk) ? Promise.resolve() : new Promise((resolve) => child.stdin.once('drain', () => resolve())));
  let time = 1_900_000_000;
  for (let i = 0; i < count; i++) {
    time += 600;
    const message = `bench change ${i}: ${line().trim().slice(0, 50)}`;
    await write(`commit ${SERIES_REF}\ncommitter Bench <bench@example.invalid> ${time} +0000\ndata ${Buffer.byteLength(message)}\n${message}\n${i === 0 ? `from ${tip}\n` : ''}`);
    const touched = 1 + Math.floor(random() * 6);
    for (let k = 0; k < touched; k++) {
      const path = paths[Math.floor(random() * paths.length)] ?? '';
      const lines = files.get(path) ?? [];
      const at = Math.floor(random() * (lines.length + 1));
      if (random() < 0.6) lines.splice(at, 1, line());
      else lines.splice(at, 0, line(), line());
      const content = lines.join('\n');
      await write(`M 100644 inline ${path}\ndata ${Buffer.byteLength(content)}\n${content}\n`);
    }
    if (i % 50 === 49) {
      const content = Array.from({ length: 80 }, line).join('\n');
      await write(`M 100644 inline src/bench-added/file-${i}.ts\ndata ${Buffer.byteLength(content)}\n${content}\n`);
    }
    await write('\n');
  }
  child.stdin.end('done\n');
  if ((await exited) !== 0) throw new Error('git fast-import failed');
  const commits = git(['--git-dir', upstream, 'rev-list', '--reverse', `${tip}..${SERIES_REF}`]).trim().split('\n');
  git(['--git-dir', upstream, 'update-ref', '-d', SERIES_REF]);
  writeFileSync(stamp, `${commits.join('\n')}\n`);
  return commits;
}

/** `git clone --mirror` configured exactly as the agent configures its mirrors, plus its marker file. */
export function cloneMirror(upstreamUrl: string, mirror: string): void {
  git(['clone', '-q', '--mirror', '--no-local', upstreamUrl, mirror]);
  for (const [key, value] of MIRROR_CONFIG) git(['--git-dir', mirror, 'config', key, value]);
  writeFileSync(join(mirror, 'git-cache.json'), `${JSON.stringify({ fetchStartedAt: Date.now(), fetchCompletedAt: Date.now(), url: upstreamUrl })}\n`);
}

/** The agent's refresh: what src/agent/mirror/mirror.ts runs. */
export function fetchMirror(mirror: string): void {
  git(['--git-dir', mirror, 'fetch', '-q', '--prune', '--atomic', '--no-write-fetch-head', 'origin']);
}

export function moveMain(upstream: string, commit: string): void {
  git(['--git-dir', upstream, 'update-ref', 'refs/heads/main', commit]);
}

export function packCount(mirror: string): number {
  const files = new Set(readdirSync(join(mirror, 'objects', 'pack')));
  return [...files].filter((name) => name.endsWith('.pack') && files.has(name.replace(/\.pack$/, '.idx'))).length;
}
