/**
 * Deterministic benchmark repositories, generated with `git fast-import` from a seeded PRNG: the same sizes,
 * history and bytes on every machine. Each has real history: many commits editing code-like text files, new
 * files over time, binary assets replaced now and then (incompressible, as images and archives are), release
 * branches and tags every few hundred commits (so the ref advertisement is not trivially small).
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, renameSync, rmSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface RepoSpec {
  readonly name: 'small' | 'medium' | 'large' | 'history';
  readonly textFiles: number;
  readonly textFileLines: number;
  readonly commits: number;
  readonly filesPerCommit: number;
  readonly binaryFiles: number;
  readonly binaryBytes: number;
  /** A binary file gets a new version every this many commits. */
  readonly binaryEvery: number;
}

export const REPO_SPECS: Record<RepoSpec['name'], RepoSpec> = {
  small: { name: 'small', textFiles: 150, textFileLines: 60, commits: 120, filesPerCommit: 3, binaryFiles: 2, binaryBytes: 256 << 10, binaryEvery: 30 },
  medium: { name: 'medium', textFiles: 2500, textFileLines: 120, commits: 1500, filesPerCommit: 6, binaryFiles: 20, binaryBytes: 1 << 20, binaryEvery: 25 },
  large: { name: 'large', textFiles: 12000, textFileLines: 150, commits: 6000, filesPerCommit: 8, binaryFiles: 60, binaryBytes: 2 << 20, binaryEvery: 12 },
  // Shaped like a long-lived project (redis: 19k commits, 140 MiB pack, a small HEAD tree): long history, most of
  // the bytes in old versions, so a shallow clone is small and a full mirror is not. bench:pods uses it.
  history: { name: 'history', textFiles: 1600, textFileLines: 160, commits: 16000, filesPerCommit: 3, binaryFiles: 4, binaryBytes: 256 << 10, binaryEvery: 40 },
};

/** Bump when the generator changes, so cached repositories are rebuilt. */
const GENERATOR_VERSION = 1;

const GIT_ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' };

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'shi', 'po', 'va', 'ze', 'qu', 'dor', 'ex', 'fin', 'gal', 'hub', 'ion', 'jet', 'lux', 'mon'];
const KEYWORDS = ['const', 'let', 'return', 'if', 'for', 'function', 'await', 'export', 'import', 'class', 'new', 'throw'];

export function makeLineMaker(random: () => number): () => string {
  const vocabulary = Array.from({ length: 4000 }, () => {
    const parts = 1 + Math.floor(random() * 3);
    let word = '';
    for (let i = 0; i < parts; i++) word += SYLLABLES[Math.floor(random() * SYLLABLES.length)];
    return word;
  });
  const pick = (): string => vocabulary[Math.floor(random() * vocabulary.length)] ?? 'x';
  return () => {
    const indent = '  '.repeat(Math.floor(random() * 4));
    const keyword = KEYWORDS[Math.floor(random() * KEYWORDS.length)] ?? 'let';
    return `${indent}${keyword} ${pick()}_${pick()} = ${pick()}(${pick()}, ${Math.floor(random() * 100000)}); // ${pick()} ${pick()}`;
  };
}

function randomBuffer(random: () => number, size: number): Buffer {
  const buffer = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4) buffer.writeUInt32LE(Math.floor(random() * 4294967296), i);
  return buffer;
}

/** Writes the fast-import stream for `spec` to `write` (awaiting backpressure). */
async function generate(spec: RepoSpec, write: (chunk: string | Buffer) => Promise<void>): Promise<void> {
  const random = mulberry32(0x9e3779b9 ^ spec.textFiles ^ (spec.commits << 8));
  const line = makeLineMaker(random);
  const files: string[][] = [];
  const paths: string[] = [];
  const addFile = (index: number): void => {
    paths.push(`src/module-${index % 37}/part-${Math.floor(index / 37) % 50}/file-${index}.ts`);
    files.push(Array.from({ length: spec.textFileLines }, line));
  };
  const initialFiles = Math.floor(spec.textFiles * 0.8);
  for (let i = 0; i < initialFiles; i++) addFile(i);
  const blobs = (text: string | Buffer): string => {
    const data = typeof text === 'string' ? Buffer.from(text) : text;
    return `data ${data.length}\n`;
  };
  let time = 1_600_000_000;
  const commitHeader = async (message: string, parent: boolean): Promise<void> => {
    time += 3600;
    await write(`commit refs/heads/main\ncommitter Bench <bench@example.invalid> ${time} +0000\n${blobs(message)}${message}\n`);
    if (!parent) return;
  };
  const modify = async (path: string, content: string | Buffer): Promise<void> => {
    await write(`M 100644 inline ${path}\n${blobs(content)}`);
    await write(content);
    await write('\n');
  };
  // initial commit: every text file and the binaries
  await commitHeader('initial import', false);
  for (let i = 0; i < files.length; i++) await modify(paths[i] ?? '', `${(files[i] ?? []).join('\n')}\n`);
  for (let b = 0; b < spec.binaryFiles; b++) await modify(`assets/blob-${b}.bin`, randomBuffer(random, spec.binaryBytes));
  await write('\n');
  let nextBinary = 0;
  for (let c = 1; c < spec.commits; c++) {
    await commitHeader(`change ${c}: ${line().trim().slice(0, 60)}`, true);
    const touched = new Set<number>();
    for (let k = 0; k < spec.filesPerCommit; k++) touched.add(Math.floor(random() * files.length));
    // Files keep being added until the tree reaches its final size.
    if (files.length < spec.textFiles && random() < (spec.textFiles - initialFiles) / (spec.commits * 0.7)) {
      addFile(files.length);
      touched.add(files.length - 1);
    }
    for (const index of touched) {
      const lines = files[index] ?? [];
      const edits = 1 + Math.floor(random() * 6);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(random() * (lines.length + 1));
        const roll = random();
        if (roll < 0.5) lines.splice(at, 1, line());
        else if (roll < 0.8) lines.splice(at, 0, line(), line());
        else if (lines.length > 10) lines.splice(at, 1);
      }
      await modify(paths[index] ?? '', `${lines.join('\n')}\n`);
    }
    if (c % spec.binaryEvery === 0) {
      await modify(`assets/blob-${nextBinary % spec.binaryFiles}.bin`, randomBuffer(random, spec.binaryBytes));
      nextBinary++;
    }
    await write('\n');
    if (c % 250 === 0) await write(`reset refs/heads/release-${c / 250}\nfrom refs/heads/main\n\n`);
    if (c % 100 === 0) await write(`reset refs/tags/v0.${c / 100}.0\nfrom refs/heads/main\n\n`);
  }
  await write('done\n');
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(path) : statSync(path).size;
  }
  return total;
}

export interface GeneratedRepo {
  readonly spec: RepoSpec;
  /** `<name>.git` under the served base path. */
  readonly relativePath: string;
  readonly path: string;
  readonly head: string;
  readonly packBytes: number;
  readonly refs: number;
  readonly commits: number;
  readonly treeFiles: number;
  readonly treeBytes: number;
}

function describe(spec: RepoSpec, basePath: string): GeneratedRepo {
  const relativePath = `${spec.name}.git`;
  const path = join(basePath, relativePath);
  const git = (args: string[]): string => execFileSync('git', ['-C', path, ...args], { encoding: 'utf8', env: GIT_ENV, maxBuffer: 256 << 20 }).trim();
  const tree = git(['ls-tree', '-r', '-l', 'HEAD']).split('\n');
  return {
    spec,
    relativePath,
    path,
    head: git(['rev-parse', 'HEAD']),
    packBytes: dirBytes(join(path, 'objects')),
    refs: git(['show-ref']).split('\n').length,
    commits: Number(git(['rev-list', '--count', 'HEAD'])),
    treeFiles: tree.length,
    treeBytes: tree.reduce((sum, row) => sum + Number(row.split(/\s+/)[3] ?? 0), 0),
  };
}

/** `<basePath>/<name>.git`, generated once and reused while the generator version matches. */
export async function ensureRepo(spec: RepoSpec, basePath: string, log: (message: string) => void): Promise<GeneratedRepo> {
  const final = join(basePath, `${spec.name}.git`);
  const stamp = join(final, `bench-generator-v${GENERATOR_VERSION}`);
  if (existsSync(stamp)) return describe(spec, basePath);
  mkdirSync(basePath, { recursive: true });
  rmSync(final, { recursive: true, force: true });
  const staging = join(basePath, `.${spec.name}.git.tmp`);
  rmSync(staging, { recursive: true, force: true });
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', staging], { env: GIT_ENV });
  log(`generating ${spec.name} repository (${spec.commits} commits, ${spec.textFiles} text files, ${spec.binaryFiles} binaries)...`);
  const started = Date.now();
  const child = spawn('git', ['-C', staging, 'fast-import', '--quiet', '--depth=50'], { env: GIT_ENV, stdio: ['pipe', 'inherit', 'inherit'] });
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
  const stdin = child.stdin;
  let pending: string[] = [];
  let pendingBytes = 0;
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const chunk = pending.join('');
    pending = [];
    pendingBytes = 0;
    if (!stdin.write(chunk)) await new Promise<void>((resolve) => stdin.once('drain', resolve));
  };
  await generate(spec, async (chunk) => {
    if (typeof chunk === 'string') {
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes > 1 << 20) await flush();
      return;
    }
    await flush();
    if (!stdin.write(chunk)) await new Promise<void>((resolve) => stdin.once('drain', resolve));
  });
  await flush();
  stdin.end();
  if ((await exited) !== 0) throw new Error(`git fast-import failed for ${spec.name}`);
  // One pack with a bitmap, as a hosting service would serve it. Big binaries are not delta candidates.
  execFileSync('git', ['-C', staging, '-c', 'core.bigFileThreshold=512k', '-c', 'repack.writeBitmaps=true', 'repack', '-adq'], { env: GIT_ENV, stdio: 'inherit' });
  execFileSync('git', ['-C', staging, 'config', 'uploadpack.allowFilter', 'true'], { env: GIT_ENV });
  execFileSync('touch', [join(staging, `bench-generator-v${GENERATOR_VERSION}`)]);
  renameSync(staging, final);
  log(`  ${spec.name}: generated in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return describe(spec, basePath);
}
