/**
 * `npm run bench:maintenance`: a mirror after N single-commit fetches (default 5,000), before and after
 * `git-cache maintain`, and one maintained by the agent's rule as it went (after any fetch that left more than
 * 50 packs), against a mirror freshly cloned from the same upstream. Side by side in one run, interleaved.
 * Also a refresh (a fetch of one new commit) into a copy of each.
 * See docs/benchmarks.md ("Maintenance benchmark") for the method and the published figures.
 *
 *   npm run bench:maintenance -- [--fetches 5000] [--size medium] [--runs 7]
 *                                [--work-dir /var/tmp/git-cache-bench-maintenance] [--out docs/bench]
 */
import { cpSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { diskUsage } from '../../src/agent/mirror/mirror.js';
import { repoKey } from '../../src/shared/repo-url.js';
import { MAX_PACKS } from '../../src/agent/maintenance/plan.js';
import { median, runTimedCommand, waitForQuiet } from '../clone/measure.js';
import { registerCleanup, writeJson } from '../clone/network.js';
import { REPO_SPECS, ensureRepo, type RepoSpec } from '../clone/repos.js';
import { mountScratch } from '../clone/scratch-fs.js';
import { GIT_ENV, cloneMirror, ensureSeries, fetchMirror, git, moveMain, packCount } from './history.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const AGENT = join(ROOT, 'bin', 'git-cache.js');

const { values: options } = parseArgs({
  options: {
    fetches: { type: 'string', default: '5000' },
    size: { type: 'string', default: 'medium' },
    runs: { type: 'string', default: '7' },
    'work-dir': { type: 'string', default: '/var/tmp/git-cache-bench-maintenance' },
    out: { type: 'string', default: join(ROOT, 'docs', 'bench') },
  },
});

const fetches = Math.max(1, Number(options.fetches));
const runs = Math.max(1, Number(options.runs));
const size = (options.size ?? 'medium') as RepoSpec['name'];
const workDir = options['work-dir'] ?? '/var/tmp/git-cache-bench-maintenance';
const outDir = options.out ?? join(ROOT, 'docs', 'bench');

const log = (message: string): void => {
  process.stderr.write(`[bench:maintenance] ${message}\n`);
};

type MirrorId = 'fresh' | 'before' | 'after' | 'steady';
const LABELS: Record<MirrorId, string> = {
  fresh: 'fresh clone',
  before: `after ${fetches} fetches`,
  after: 'then git-cache maintain',
  steady: 'maintained as it went',
};

interface Timing {
  /** Wall seconds of the command (of upload-pack, for the upload-pack measures). */
  readonly seconds: number;
  /** user + system CPU seconds: of upload-pack and its pack-objects for the upload-pack measures, else of the command. */
  readonly cpuSeconds: number;
}

interface MeasureSpec {
  readonly id: string;
  readonly label: string;
  /** Runs once against `mirror`; scratch is an empty directory to write into. */
  run(mirror: string, scratch: string): Promise<Timing>;
}

async function timed(argv: readonly string[]): Promise<Timing> {
  const started = performance.now();
  const result = await runTimedCommand(argv, GIT_ENV);
  if (result.code !== 0) throw new Error(`\`${argv.join(' ')}\` failed (${result.code}): ${result.stderr.trim().slice(-500)}`);
  return { seconds: (performance.now() - started) / 1000, cpuSeconds: result.cpuSeconds ?? NaN };
}

/** A clone from the mirror whose server side (upload-pack and the pack-objects it runs) is timed by GNU time. */
async function uploadPack(mirror: string, scratch: string, extra: readonly string[]): Promise<Timing> {
  const out = join(scratch, 'upload-pack.time');
  const wrapper = `/usr/bin/time -q -o '${out}' -f '%e %U %S' git upload-pack`;
  const clone = await timed(['git', 'clone', '-q', '--bare', '--no-local', ...extra, '--upload-pack', wrapper, `file://${mirror}`, join(scratch, 'clone.git')]);
  const [wall = NaN, user = NaN, system = NaN] = readFileSync(out, 'utf8').trim().split('\n').pop()?.split(' ').map(Number) ?? [];
  if (!(wall <= clone.seconds + 1)) throw new Error(`upload-pack timing unreadable: ${readFileSync(out, 'utf8')}`);
  return { seconds: wall, cpuSeconds: user + system };
}

/** `git fetch` of one new commit (the agent's refresh) into a copy of the mirror; the copy is not timed. */
async function refresh(mirror: string, scratch: string): Promise<Timing> {
  const copy = join(scratch, 'copy.git');
  cpSync(mirror, copy, { recursive: true });
  return timed(['git', '--git-dir', copy, 'fetch', '-q', '--prune', '--atomic', '--no-write-fetch-head', 'origin']);
}

function measures(upstreamUrl: string): MeasureSpec[] {
  return [
    { id: 'refresh', label: 'refresh: `git fetch` of one new commit', run: refresh },
    { id: 'reference-clone', label: '`git clone --reference` (with checkout)', run: (mirror, scratch) => timed(['git', 'clone', '-q', '--reference', mirror, upstreamUrl, join(scratch, 'work')]) },
    { id: 'full-clone', label: 'upload-pack: full clone', run: (mirror, scratch) => uploadPack(mirror, scratch, []) },
    { id: 'depth1', label: 'upload-pack: `--depth 1` clone', run: (mirror, scratch) => uploadPack(mirror, scratch, ['--depth', '1']) },
    { id: 'archive', label: '`git archive HEAD` (reads every file of the tip, as a checkout does)', run: (mirror) => timed(['git', '--git-dir', mirror, 'archive', 'HEAD']) },
    { id: 'log-all', label: '`git log --all`', run: (mirror) => timed(['git', '--git-dir', mirror, 'log', '--all']) },
    { id: 'rev-list-objects', label: '`git rev-list --all --objects`', run: (mirror) => timed(['git', '--git-dir', mirror, 'rev-list', '--all', '--objects']) },
  ];
}

/** `git-cache maintain` on every mirror in `cacheDir` (the real CLI), timed. */
async function maintain(cacheDir: string): Promise<Timing> {
  return timed([process.execPath, AGENT, 'maintain', '--cache-dir', cacheDir, '--log-level', 'warn']);
}

/** A copy of the generated repository that the series of commits is added to, reused while it matches. */
async function prepareUpstream(spec: RepoSpec): Promise<{ path: string; commits: string[]; refreshCommit: string; base: string }> {
  const generated = await ensureRepo(spec, join(workDir, 'repos'), log);
  const path = join(workDir, `upstream-${spec.name}.git`);
  if (!existsSync(join(path, 'bench-base'))) {
    rmSync(path, { recursive: true, force: true });
    cpSync(generated.path, path, { recursive: true });
    writeFileSync(join(path, 'bench-base'), `${generated.head}\n`);
  }
  const base = readFileSync(join(path, 'bench-base'), 'utf8').trim();
  moveMain(path, base);
  // One more than the fetches: the commit the refresh measure fetches.
  const series = await ensureSeries(path, fetches + 1, log);
  const commits = series.slice(0, fetches);
  const refreshCommit = series.at(-1) ?? base;
  // Like a git host's repository after its own gc: one pack with fresh deltas (newest versions whole), which a
  // fresh clone reuses. fast-import's packs are not (each version is a delta of the one before).
  const repacked = join(path, `bench-repacked-${fetches + 1}`);
  if (!existsSync(repacked)) {
    log('repacking upstream (git repack -a -d -f) as a git host would...');
    moveMain(path, refreshCommit);
    git(['--git-dir', path, 'repack', '-a', '-d', '-f', '-q']);
    writeFileSync(repacked, '');
  }
  moveMain(path, base);
  return { path, commits, refreshCommit, base };
}

function ratio(value: number, reference: number): string {
  return reference > 0 ? `${(value / reference).toFixed(2)}x` : 'n/a';
}

function formatSeconds(seconds: number): string {
  return seconds >= 1 ? `${seconds.toFixed(2)} s` : `${(seconds * 1000).toFixed(0)} ms`;
}

function formatBytes(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(0)} KiB`;
}

async function main(): Promise<void> {
  mkdirSync(workDir, { recursive: true });
  const runDir = join(workDir, `run-${process.pid}`);
  mkdirSync(runDir, { recursive: true });
  const scratch = mountScratch(workDir, runDir, log);
  registerCleanup(() => {
    scratch.teardown();
    rmSync(runDir, { recursive: true, force: true });
  });
  const spec = REPO_SPECS[size];
  const upstream = await prepareUpstream(spec);
  const upstreamUrl = `file://${upstream.path}`;
  const key = repoKey(upstreamUrl);
  const cacheOf = (id: MirrorId): string => join(scratch.dir, id);
  const mirrorOf = (id: MirrorId): string => join(cacheOf(id), `${key}.git`);

  cloneMirror(upstreamUrl, mirrorOf('before'));
  cloneMirror(upstreamUrl, mirrorOf('steady'));
  // The fetches run in the mirror maintained as the agent does; the pack each one leaves is hard-linked into the
  // unmaintained mirror too, whose main then moves like the other's. Both mirrors hold the same refs, so a fetch
  // into the unmaintained one would send the same request, get the same thin pack and complete it with the
  // same base objects: the same pack. Fetching into it directly costs more with every pack it holds (measured:
  // 500 fetches took 253 s from 0 to 500 packs, 640 s from 500 to 1,000), which made this benchmark take hours.
  log(`${fetches} single-commit fetches (packs kept in one mirror, maintained as the agent does in the other)...`);
  const steadyRuns: number[] = [];
  let steadyMaxPacks = 0;
  const fetchStarted = Date.now();
  const packDirOf = (id: MirrorId): string => join(mirrorOf(id), 'objects', 'pack');
  for (const [i, commit] of upstream.commits.entries()) {
    moveMain(upstream.path, commit);
    const known = new Set(readdirSync(packDirOf('steady')));
    fetchMirror(mirrorOf('steady'));
    const added = readdirSync(packDirOf('steady')).filter((name) => !known.has(name) && /\.(pack|idx)$/.test(name));
    for (const name of added) linkSync(join(packDirOf('steady'), name), join(packDirOf('before'), name));
    git(['--git-dir', mirrorOf('before'), 'update-ref', 'refs/heads/main', commit]);
    const packs = packCount(mirrorOf('steady'));
    steadyMaxPacks = Math.max(steadyMaxPacks, packs);
    if (packs > MAX_PACKS) steadyRuns.push((await maintain(cacheOf('steady'))).seconds);
    if ((i + 1) % 500 === 0) log(`  ${i + 1} fetches (${Math.round((Date.now() - fetchStarted) / 1000)} s), ${packCount(mirrorOf('before'))} packs`);
    // Lets a Ctrl-C or SIGTERM in (the cleanup unmounts the scratch filesystem).
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (git(['--git-dir', mirrorOf('before'), 'rev-parse', 'refs/heads/main']).trim() !== git(['--git-dir', mirrorOf('steady'), 'rev-parse', 'refs/heads/main']).trim()) {
    throw new Error('the two mirrors do not agree on main');
  }
  git(['--git-dir', mirrorOf('before'), 'fsck', '--connectivity-only', '--no-progress']);

  cpSync(cacheOf('before'), cacheOf('after'), { recursive: true });
  log('git-cache maintain on the copy...');
  const oneShot = await maintain(cacheOf('after'));
  cloneMirror(upstreamUrl, mirrorOf('fresh'));

  // From here on upstream is one commit ahead of every mirror, for the refresh measure.
  moveMain(upstream.path, upstream.refreshCommit);
  const ids: MirrorId[] = ['fresh', 'before', 'after', 'steady'];
  const specs = measures(upstreamUrl);
  const samples = new Map<string, Timing[]>();
  const idle: number[] = [];
  // Run 0 warms the page cache and is discarded; each later run visits the mirrors in a rotated order.
  for (let run = 0; run <= runs; run++) {
    log(run === 0 ? 'warm-up run...' : `run ${run}/${runs}...`);
    for (const measure of specs) {
      idle.push(await waitForQuiet(0.6, 20_000));
      for (let k = 0; k < ids.length; k++) {
        const id = ids[(k + run) % ids.length] as MirrorId;
        const dir = join(runDir, 'out');
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        const timing = await measure.run(mirrorOf(id), dir);
        if (run > 0) samples.set(`${measure.id}/${id}`, [...(samples.get(`${measure.id}/${id}`) ?? []), timing]);
      }
    }
  }
  rmSync(join(runDir, 'out'), { recursive: true, force: true });

  const medianOf = (measureId: string, id: MirrorId, field: keyof Timing): number => median((samples.get(`${measureId}/${id}`) ?? []).map((timing) => timing[field]));
  const mirrors = Object.fromEntries(
    await Promise.all(
      ids.map(async (id) => [id, { label: LABELS[id], packs: packCount(mirrorOf(id)), bytes: await diskUsage(mirrorOf(id)), commitGraph: existsSync(join(mirrorOf(id), 'objects', 'info', 'commit-graphs')) || existsSync(join(mirrorOf(id), 'objects', 'info', 'commit-graph')) }] as const),
    ),
  );
  const results = specs.map((measure) => ({
    id: measure.id,
    label: measure.label,
    seconds: Object.fromEntries(ids.map((id) => [id, medianOf(measure.id, id, 'seconds')])),
    cpuSeconds: Object.fromEntries(ids.map((id) => [id, medianOf(measure.id, id, 'cpuSeconds')])),
    samples: Object.fromEntries(ids.map((id) => [id, (samples.get(`${measure.id}/${id}`) ?? []).map((timing) => [Number(timing.seconds.toFixed(4)), Number(timing.cpuSeconds.toFixed(3))])])),
  }));
  const report = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), loadavg: loadavg(), git: git(['--version']).trim(), medianIdleBeforeMeasures: median(idle) },
    method: { size, fetches, runs, scratch: scratch.description },
    upstream: { commitsBefore: Number(git(['--git-dir', upstream.path, 'rev-list', '--count', upstream.base]).trim()), commitsAfter: Number(git(['--git-dir', upstream.path, 'rev-list', '--count', upstream.commits.at(-1) ?? upstream.base]).trim()) },
    fetchSeconds: (Date.now() - fetchStarted) / 1000,
    maintenance: {
      oneShot: { seconds: oneShot.seconds, cpuSeconds: oneShot.cpuSeconds },
      steady: { runs: steadyRuns.length, totalSeconds: steadyRuns.reduce((a, b) => a + b, 0), maxSeconds: Math.max(0, ...steadyRuns), maxPacksBetweenRuns: steadyMaxPacks },
    },
    mirrors,
    results,
  };
  mkdirSync(outDir, { recursive: true });
  writeJson(join(outDir, 'maintenance.json'), report);

  const header = `| measure | ${ids.map((id) => LABELS[id]).join(' | ')} |\n| --- | ${ids.map(() => '---').join(' | ')} |`;
  const cell = (value: string, id: MirrorId, reference: number, raw: number): string => (id === 'fresh' ? value : `${value} (${ratio(raw, reference)})`);
  const rows = [
    `| packs | ${ids.map((id) => cell(String(mirrors[id]?.packs), id, mirrors.fresh?.packs ?? 0, mirrors[id]?.packs ?? 0)).join(' | ')} |`,
    `| disk | ${ids.map((id) => cell(formatBytes(mirrors[id]?.bytes ?? 0), id, mirrors.fresh?.bytes ?? 0, mirrors[id]?.bytes ?? 0)).join(' | ')} |`,
    ...results.map((result) => `| ${result.label} | ${ids.map((id) => cell(formatSeconds(result.seconds[id] ?? NaN), id, result.seconds.fresh ?? NaN, result.seconds[id] ?? NaN)).join(' | ')} |`),
    ...results.map((result) => `| ${result.label}, CPU | ${ids.map((id) => cell(formatSeconds(result.cpuSeconds[id] ?? NaN), id, result.cpuSeconds.fresh ?? NaN, result.cpuSeconds[id] ?? NaN)).join(' | ')} |`),
  ];
  const markdown = [
    `# Maintenance benchmark (${report.date.slice(0, 10)})`,
    '',
    `${spec.name} repository (${report.upstream.commitsBefore} commits) plus ${fetches} single-commit fetches; medians of ${runs} runs after a warm-up; ratios against the fresh clone. ${report.machine.git}, ${report.machine.cpus} CPUs, median idle before measures ${(report.machine.medianIdleBeforeMeasures * 100).toFixed(0)}%. ${scratch.description}.`,
    '',
    header,
    ...rows,
    '',
    `git-cache maintain after ${fetches} fetches: ${formatSeconds(oneShot.seconds)} (${formatSeconds(oneShot.cpuSeconds)} CPU).` +
      ` Maintained as it went: ${steadyRuns.length} runs, ${formatSeconds(report.maintenance.steady.totalSeconds)} in all, longest ${formatSeconds(report.maintenance.steady.maxSeconds)}, at most ${steadyMaxPacks} packs.`,
    '',
  ].join('\n');
  writeFileSync(join(outDir, 'maintenance.md'), markdown);
  process.stdout.write(`${markdown}\n`);
}

main().catch((error: unknown) => {
  log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
});
