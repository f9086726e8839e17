/**
 * `npm run bench:clone`: clone time and bytes over a shaped link, side by side, for generated repositories.
 * See docs/benchmarks.md ("Clone benchmark") for the method and the published figures.
 *
 *   npm run bench:clone -- [--runs 3] [--sizes small,medium] [--large] [--pods 10] [--loopback]
 *                          [--delay-ms 10] [--rate-mbit 50] [--work-dir /var/tmp/git-cache-bench] [--out docs/bench]
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mirrorPath } from '../../src/shared/repo-url.js';
import { appGitEnv } from '../../src/inject/transparent.js';
import { CLONE_HELPER_RELATIVE_PATH } from '../../src/shared/names.js';
import { renderChart, formatValue, type ChartPanel } from './chart.js';
import { isolatedGitEnv, measure, median, runCommand, type Job, type Measurement } from './measure.js';
import { netnsUnavailableReason, startLoopbackLink, startNetnsLink, writeJson, type UpstreamLink } from './network.js';
import { REPO_SPECS, ensureRepo, type GeneratedRepo, type RepoSpec } from './repos.js';
import { mountScratch, type ScratchFilesystem } from './scratch-fs.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const AGENT = join(ROOT, 'bin', 'git-cache.js');

const { values: options } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    sizes: { type: 'string', default: 'small,medium' },
    large: { type: 'boolean', default: false },
    pods: { type: 'string', default: '10' },
    loopback: { type: 'boolean', default: false },
    'delay-ms': { type: 'string', default: '10' },
    'rate-mbit': { type: 'string', default: '50' },
    'work-dir': { type: 'string', default: '/var/tmp/git-cache-bench' },
    out: { type: 'string', default: join(ROOT, 'docs', 'bench') },
  },
});

const runs = Math.max(1, Number(options.runs));
const pods = Math.max(2, Number(options.pods));
const shape = { delayMs: Number(options['delay-ms']), rateMbit: Number(options['rate-mbit']) };
const sizes = [...new Set([...(options.sizes ?? '').split(',').filter(Boolean), ...(options.large ? ['large'] : [])])] as RepoSpec['name'][];
const workDir = options['work-dir'] ?? '/var/tmp/git-cache-bench';
const outDir = options.out ?? join(ROOT, 'docs', 'bench');

const log = (message: string): void => {
  process.stderr.write(`[bench:clone] ${message}\n`);
};

const GIT_ENV = isolatedGitEnv(join(workDir, 'home'));

interface Strategy {
  readonly id: string;
  readonly label: string;
  readonly network: boolean;
  job(context: CloneContext): Job;
}

interface CloneContext {
  readonly url: string;
  readonly dir: string;
  readonly mirror: string;
  readonly cacheDir: string;
}

const STRATEGIES: readonly Strategy[] = [
  { id: 'full', label: 'full clone', network: true, job: (c) => [['git', 'clone', '-q', c.url, c.dir]] },
  { id: 'depth1', label: 'clone --depth 1', network: true, job: (c) => [['git', 'clone', '-q', '--depth', '1', c.url, c.dir]] },
  { id: 'cached', label: 'warm mirror (--reference-if-able)', network: true, job: (c) => [['git', 'clone', '-q', '--reference-if-able', c.mirror, c.url, c.dir]] },
  {
    id: 'dissociate',
    label: 'warm mirror + --dissociate',
    network: true,
    job: (c) => [['git', '-c', 'core.commitGraph=false', 'clone', '-q', '--reference-if-able', c.mirror, '--dissociate', c.url, c.dir]],
  },
  // From the mirror, without contacting upstream: what app containers do with no credential and no route.
  { id: 'helper', label: 'from the mirror (helper)', network: true, job: (c) => [[join(c.cacheDir, CLONE_HELPER_RELATIVE_PATH), c.url, c.dir]] },
  // A plain `git clone URL` under the env the function injects (transparent mode). git makes a local clone of
  // the mirror: on one filesystem it hardlinks the packs; across filesystems (a pod's cache volume and its
  // workspace are two) it copies them, which --no-hardlinks reproduces here.
  { id: 'transparent', label: 'transparent `git clone`', network: true, job: (c) => [transparentEnv(c, ['git', 'clone', '-q', c.url, c.dir])] },
  {
    id: 'transparent-copy',
    label: 'transparent `git clone`, packs copied (cache on another volume)',
    network: true,
    job: (c) => [transparentEnv(c, ['git', 'clone', '-q', '--no-hardlinks', c.url, c.dir])],
  },
  // The floor: what a clone costs with every object already local and no network at all — the working tree
  // of the same commit, written by `git clone --shared` from the local mirror (objects borrowed through
  // alternates, nothing copied). It does exactly the local work of the cached clone, minus the conversation
  // with upstream.
  { id: 'floor', label: 'local floor (no network)', network: false, job: (c) => [['git', 'clone', '-q', '--shared', c.mirror, c.dir]] },
];

/** `env GIT_CONFIG_COUNT=... git ...`: the command under the transparent configuration the function injects. */
function transparentEnv(c: CloneContext, argv: string[]): string[] {
  const env = appGitEnv({ repos: [{ url: c.url, mirror: { path: c.mirror } }], endpoint: undefined, transparent: true, cacheDir: c.cacheDir });
  return ['env', ...env.map((variable) => `${variable.name}=${variable.value}`), ...argv];
}

const agentSync = (cacheDir: string, url: string): string[] => [process.execPath, AGENT, 'sync', '--cache-dir', cacheDir, '--repo', url, '--log-level', 'warn'];

interface StrategyResult {
  readonly id: string;
  readonly label: string;
  readonly runs: Measurement[];
  readonly medianSeconds: number;
  readonly medianBytes: number;
  readonly medianCpuSeconds: number | undefined;
  readonly medianCpuSystemSeconds: number | undefined;
}

interface PodsResult {
  readonly pods: number;
  readonly withoutCache: Measurement;
  readonly onePodWithCache: Measurement;
  readonly withCache: Measurement;
  readonly bytesPerAdditionalPod: number;
}

interface RepoResult {
  readonly repo: Omit<GeneratedRepo, 'spec' | 'path'> & { spec: RepoSpec };
  readonly mirrorColdSync: Measurement;
  readonly mirrorWarmSync: Measurement;
  readonly strategies: StrategyResult[];
  readonly pods: PodsResult;
  readonly targets: Target[];
  /** 1-minute load average before and after this repository's measurements (other work on the machine). */
  readonly loadAverage: { before: number; after: number };
}

interface Target {
  readonly name: string;
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean;
}

function git(args: readonly string[]): string {
  return execFileSync('git', args, { encoding: 'utf8', env: GIT_ENV }).trim();
}

function verifyClone(strategy: Strategy, dir: string, repo: GeneratedRepo, url: string): void {
  const head = git(['-C', dir, 'rev-parse', 'HEAD']);
  if (head !== repo.head) throw new Error(`${strategy.id}: HEAD ${head}, expected ${repo.head}`);
  const alternates = join(dir, '.git', 'objects', 'info', 'alternates');
  const borrows = existsSync(alternates) && readFileSync(alternates, 'utf8').trim() !== '';
  const shouldBorrow = ['cached', 'helper', 'floor'].includes(strategy.id);
  if (['helper', 'transparent', 'transparent-copy'].includes(strategy.id)) {
    const origin = git(['-C', dir, 'config', 'remote.origin.url']);
    if (origin !== url) throw new Error(`${strategy.id}: origin ${origin}, expected ${url}`);
  }
  if (borrows !== shouldBorrow) throw new Error(`${strategy.id}: alternates ${borrows ? 'present' : 'absent'}, expected the opposite`);
}

async function benchRepo(link: UpstreamLink, repo: GeneratedRepo, scratch: string): Promise<RepoResult> {
  const loadBefore = loadavg()[0] ?? 0;
  const url = link.url(repo.relativePath);
  const cacheDir = join(scratch, 'cache');
  mkdirSync(cacheDir, { recursive: true });
  const mirror = mirrorPath(cacheDir, url);
  log(`${repo.spec.name}: agent builds the mirror through the link (git-cache sync)`);
  const mirrorColdSync = await measure(link, [[agentSync(cacheDir, url)]], GIT_ENV);
  const mirrorWarmSync = await measure(link, [[agentSync(cacheDir, url)]], GIT_ENV);
  log(`  cold sync ${formatValue(mirrorColdSync.seconds, 'seconds')} ${formatValue(mirrorColdSync.bytes, 'bytes')}; warm refresh ${formatValue(mirrorWarmSync.seconds, 'seconds')} ${formatValue(mirrorWarmSync.bytes, 'bytes')}`);
  const strategies = STRATEGIES.filter((strategy) => strategy.id !== 'helper' || existsSync(join(cacheDir, CLONE_HELPER_RELATIVE_PATH)));
  const measured = new Map<string, Measurement[]>(strategies.map((strategy) => [strategy.id, []]));
  for (let run = 0; run < runs; run++) {
    // Interleaved, so slow drift (page cache, thermal) spreads over every strategy alike.
    for (const strategy of strategies) {
      const dir = join(scratch, `clone-${strategy.id}-${run}`);
      rmSync(dir, { recursive: true, force: true });
      const result = await measure(link, [strategy.job({ url, dir, mirror, cacheDir })], GIT_ENV);
      verifyClone(strategy, dir, repo, url);
      measured.get(strategy.id)?.push(result);
      log(
        `  run ${run + 1}/${runs} ${strategy.id.padEnd(10)} ${formatValue(result.seconds, 'seconds').padStart(9)} ${formatValue(result.bytes, 'bytes').padStart(10)}` +
          `  cpu ${result.cpuSeconds !== undefined ? formatValue(result.cpuSeconds, 'seconds') : 'n/a'} (sys ${result.cpuSystemSeconds !== undefined ? formatValue(result.cpuSystemSeconds, 'seconds') : 'n/a'})  idle before ${(result.idleBefore * 100).toFixed(0)}%`,
      );
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const results: StrategyResult[] = strategies.map((strategy) => {
    const list = measured.get(strategy.id) ?? [];
    const cpu = list.map((m) => m.cpuSeconds);
    const system = list.map((m) => m.cpuSystemSeconds);
    return {
      id: strategy.id,
      label: strategy.label,
      runs: list,
      medianSeconds: median(list.map((m) => m.seconds)),
      medianBytes: median(list.map((m) => m.bytes)),
      medianCpuSeconds: cpu.every((value) => value !== undefined) ? median(cpu as number[]) : undefined,
      medianCpuSystemSeconds: system.every((value) => value !== undefined) ? median(system as number[]) : undefined,
    };
  });
  const podsResult = await benchPods(link, url, scratch);
  return {
    repo: { ...repo, spec: repo.spec },
    mirrorColdSync,
    mirrorWarmSync,
    strategies: results,
    pods: podsResult,
    targets: targetsFor(results, podsResult),
    loadAverage: { before: loadBefore, after: loadavg()[0] ?? 0 },
  };
}

async function benchPods(link: UpstreamLink, url: string, scratch: string): Promise<PodsResult> {
  const podDirs = (name: string, count: number): string[] => Array.from({ length: count }, (_, i) => join(scratch, `${name}-${i}`));
  const clean = (dirs: string[]): void => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
  log(`  ${pods} pods at once, no cache: ${pods} full clones in parallel`);
  const plain = podDirs('pod-plain', pods);
  const withoutCache = await measure(link, plain.map((dir) => [['git', 'clone', '-q', url, dir]]), GIT_ENV);
  clean(plain);
  // A pod with the cache: its agent syncs the shared (initially empty) volume, then the app clones through it.
  const podWithCache = (cacheDir: string, dir: string): Job => [agentSync(cacheDir, url), ['git', 'clone', '-q', '--reference-if-able', mirrorPath(cacheDir, url), url, dir]];
  log('  1 pod with an empty shared cache volume');
  const oneCache = join(scratch, 'pods-one-cache');
  const one = podDirs('pod-one', 1);
  const onePodWithCache = await measure(link, one.map((dir) => podWithCache(oneCache, dir)), GIT_ENV);
  clean([...one, oneCache]);
  log(`  ${pods} pods at once on one empty shared cache volume (agents coalesce on the per-repo lock)`);
  const sharedCache = join(scratch, 'pods-shared-cache');
  const many = podDirs('pod-cache', pods);
  const withCache = await measure(link, many.map((dir) => podWithCache(sharedCache, dir)), GIT_ENV);
  clean([...many, sharedCache]);
  const bytesPerAdditionalPod = (withCache.bytes - onePodWithCache.bytes) / (pods - 1);
  log(
    `  without cache ${formatValue(withoutCache.bytes, 'bytes')} (${withoutCache.fetches} upload-packs); with cache ${formatValue(withCache.bytes, 'bytes')} (${withCache.fetches} upload-packs); per additional pod ${formatValue(bytesPerAdditionalPod, 'bytes')}`,
  );
  return { pods, withoutCache, onePodWithCache, withCache, bytesPerAdditionalPod };
}

function targetsFor(results: readonly StrategyResult[], podsResult: PodsResult): Target[] {
  const get = (id: string): StrategyResult | undefined => results.find((result) => result.id === id);
  const full = get('full');
  const depth1 = get('depth1');
  const cached = get('cached');
  const floor = get('floor');
  if (!full || !depth1 || !cached || !floor) return [];
  const vsFull = full.medianSeconds / cached.medianSeconds;
  const vsDepth = depth1.medianSeconds / cached.medianSeconds;
  const vsFloor = cached.medianSeconds / floor.medianSeconds;
  const perPod = podsResult.bytesPerAdditionalPod / full.medianBytes;
  const cpuVsFloor = cached.medianCpuSeconds !== undefined && floor.medianCpuSeconds ? cached.medianCpuSeconds / floor.medianCpuSeconds : undefined;
  return [
    { name: 'warm mirror vs full clone', goal: '>= 20x faster', measured: `${vsFull.toFixed(1)}x`, met: vsFull >= 20 },
    { name: 'warm mirror vs --depth 1', goal: '>= 5x faster', measured: `${vsDepth.toFixed(1)}x`, met: vsDepth >= 5 },
    { name: 'upstream bytes per additional pod', goal: '<= 1% of a full clone', measured: `${(perPod * 100).toFixed(3)}%`, met: perPod <= 0.01 },
    { name: 'warm mirror vs local floor', goal: '<= 1.3x', measured: `${vsFloor.toFixed(2)}x`, met: vsFloor <= 1.3 },
    ...(cpuVsFloor !== undefined
      ? [{ name: 'warm mirror vs local floor, client CPU (load-independent cross-check)', goal: '<= 1.3x', measured: `${cpuVsFloor.toFixed(2)}x`, met: cpuVsFloor <= 1.3 }]
      : []),
    // Cloning with no credential and no route (issue 8): within 1.3x of the floor, and nothing sent upstream.
    ...(['helper', 'transparent', 'transparent-copy'] as const).flatMap((id): Target[] => {
      const strategy = get(id);
      if (!strategy) return [];
      const ratio = strategy.medianSeconds / floor.medianSeconds;
      return [
        { name: `${strategy.label} vs local floor`, goal: '<= 1.3x', measured: `${ratio.toFixed(2)}x`, met: ratio <= 1.3 },
        { name: `${strategy.label}: bytes to upstream`, goal: '0', measured: formatValue(strategy.medianBytes, 'bytes'), met: strategy.medianBytes === 0 },
      ];
    }),
  ];
}

function markdown(link: UpstreamLink, scratch: ScratchFilesystem, results: readonly RepoResult[]): string {
  const lines: string[] = [];
  lines.push(`Link: ${link.description}.`, '', `Bytes: ${link.bytesMeaning}.`, '', `Filesystem: ${scratch.description}.`, '');
  lines.push(`| repository | strategy | median wall time | median bytes over the wire | median client CPU (of it system) | runs (wall s) |`, '|---|---|---:|---:|---:|---|');
  for (const result of results) {
    for (const strategy of result.strategies) {
      lines.push(
        `| ${result.repo.spec.name} | ${strategy.label} | ${formatValue(strategy.medianSeconds, 'seconds')} | ${strategy.id === 'floor' ? '0 (no network)' : formatValue(strategy.medianBytes, 'bytes')} | ${strategy.medianCpuSeconds !== undefined ? `${formatValue(strategy.medianCpuSeconds, 'seconds')} (${strategy.medianCpuSystemSeconds !== undefined ? formatValue(strategy.medianCpuSystemSeconds, 'seconds') : 'n/a'})` : 'n/a'} | ${strategy.runs.map((run) => run.seconds.toFixed(3)).join(', ')} |`,
      );
    }
    lines.push(`| ${result.repo.spec.name} | agent: first mirror sync (cold) | ${formatValue(result.mirrorColdSync.seconds, 'seconds')} | ${formatValue(result.mirrorColdSync.bytes, 'bytes')} | | |`);
    lines.push(`| ${result.repo.spec.name} | agent: refresh, nothing new | ${formatValue(result.mirrorWarmSync.seconds, 'seconds')} | ${formatValue(result.mirrorWarmSync.bytes, 'bytes')} | | |`);
  }
  lines.push('', `1-minute load average (${cpus().length} cores) before/after each repository: ${results.map((result) => `${result.repo.spec.name} ${result.loadAverage.before.toFixed(1)}/${result.loadAverage.after.toFixed(1)}`).join(', ')}.`);
  lines.push('', `| repository | ${pods} pods at once | wall time (all done) | total upstream bytes | upload-packs served |`, '|---|---|---:|---:|---:|');
  for (const result of results) {
    const p = result.pods;
    lines.push(`| ${result.repo.spec.name} | without cache (${p.pods} full clones) | ${formatValue(p.withoutCache.seconds, 'seconds')} | ${formatValue(p.withoutCache.bytes, 'bytes')} | ${p.withoutCache.fetches} |`);
    lines.push(`| ${result.repo.spec.name} | 1 pod, empty cache (agent sync + clone) | ${formatValue(p.onePodWithCache.seconds, 'seconds')} | ${formatValue(p.onePodWithCache.bytes, 'bytes')} | ${p.onePodWithCache.fetches} |`);
    lines.push(`| ${result.repo.spec.name} | with cache (${p.pods} agents + clones, one shared volume) | ${formatValue(p.withCache.seconds, 'seconds')} | ${formatValue(p.withCache.bytes, 'bytes')} | ${p.withCache.fetches} |`);
    lines.push(`| ${result.repo.spec.name} | per additional pod with cache | | ${formatValue(p.bytesPerAdditionalPod, 'bytes')} | |`);
  }
  lines.push('', '| repository | target | goal | measured | met |', '|---|---|---|---:|---|');
  for (const result of results) {
    for (const target of result.targets) lines.push(`| ${result.repo.spec.name} | ${target.name} | ${target.goal} | ${target.measured} | ${target.met ? 'yes' : '**no**'} |`);
  }
  return `${lines.join('\n')}\n`;
}

function chart(link: UpstreamLink, results: readonly RepoResult[]): string {
  const strategyLabels = STRATEGIES.map((strategy) => strategy.label);
  const series = (pick: (strategy: StrategyResult) => number): ChartPanel['series'] =>
    results.map((result) => ({
      label: `${result.repo.spec.name} (${formatValue(result.repo.packBytes, 'bytes')})`,
      values: new Map(strategyLabels.map((label) => {
        const strategy = result.strategies.find((s) => s.label === label);
        return [label, strategy ? pick(strategy) : undefined] as const;
      })),
    }));
  const podGroups = [`${pods} pods, no cache`, `${pods} pods, shared cache`, 'per additional pod (cache)'];
  const panels: ChartPanel[] = [
    { title: 'Wall time per clone (median, log scale)', unit: 'seconds', groups: strategyLabels, series: series((s) => s.medianSeconds) },
    { title: 'Bytes over the wire per clone (median, log scale)', unit: 'bytes', groups: strategyLabels, series: series((s) => (s.id === 'floor' ? 0 : s.medianBytes)) },
    {
      title: `Total upstream bytes, ${pods} pods starting at once (log scale)`,
      unit: 'bytes',
      groups: podGroups,
      series: results.map((result) => ({
        label: `${result.repo.spec.name} (${formatValue(result.repo.packBytes, 'bytes')})`,
        values: new Map<string, number>([
          [podGroups[0] ?? '', result.pods.withoutCache.bytes],
          [podGroups[1] ?? '', result.pods.withCache.bytes],
          [podGroups[2] ?? '', Math.max(0, result.pods.bytesPerAdditionalPod)],
        ]),
      })),
    },
  ];
  const title = link.kind === 'loopback' ? 'git-cache clone benchmark (LOOPBACK-ONLY VARIANT)' : 'git-cache clone benchmark';
  return renderChart(title, `${shape.rateMbit} Mbit/s, ${2 * shape.delayMs} ms RTT; median of ${runs} runs; ${cpus().length} cores`, panels);
}

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist', 'git-cache.mjs'))) throw new Error('the agent is not built: run `npm run build` first');
  const unavailable = options.loopback ? 'asked for with --loopback' : netnsUnavailableReason();
  const runDir = join(workDir, `run-${process.pid}`);
  const reposDir = join(workDir, 'repos');
  mkdirSync(runDir, { recursive: true });
  mkdirSync(GIT_ENV.HOME ?? join(workDir, 'home'), { recursive: true });
  const repos: GeneratedRepo[] = [];
  for (const size of sizes) {
    const spec = REPO_SPECS[size];
    if (!spec) throw new Error(`unknown size ${size} (small, medium, large)`);
    repos.push(await ensureRepo(spec, reposDir, log));
  }
  let link: UpstreamLink;
  if (unavailable) {
    log(`network namespaces/tc unavailable (${unavailable}): running the LOOPBACK-ONLY variant`);
    link = await startLoopbackLink(reposDir, runDir, shape, { daemon: 39418, relay: 39419, stats: 39420 });
  } else {
    link = await startNetnsLink(reposDir, runDir, shape);
  }
  log(link.description);
  const scratchFs = mountScratch(workDir, runDir, log);
  log(`filesystem: ${scratchFs.description}`);
  const results: RepoResult[] = [];
  try {
    for (const repo of repos) {
      log(`${repo.spec.name}: ${formatValue(repo.packBytes, 'bytes')} objects, ${repo.commits} commits, ${repo.refs} refs, tree ${repo.treeFiles} files / ${formatValue(repo.treeBytes, 'bytes')}`);
      const scratch = join(scratchFs.dir, repo.spec.name);
      results.push(await benchRepo(link, repo, scratch));
      rmSync(scratch, { recursive: true, force: true });
    }
  } finally {
    link.teardown();
    scratchFs.teardown();
    rmSync(runDir, { recursive: true, force: true });
  }
  mkdirSync(outDir, { recursive: true });
  const suffix = link.kind === 'loopback' ? '-loopback' : '';
  const gitVersion = (await runCommand(['git', '--version'], GIT_ENV)).code === 0 ? git(['--version']) : 'unknown';
  writeJson(join(outDir, `clone${suffix}.json`), {
    date: new Date().toISOString(),
    link: { kind: link.kind, description: link.description, bytes: link.bytesMeaning, ...shape },
    filesystem: scratchFs.description,
    machine: { cores: cpus().length, cpu: cpus()[0]?.model, memoryBytes: totalmem(), kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(), git: gitVersion, node: process.version },
    runs,
    results,
  });
  const table = markdown(link, scratchFs, results);
  writeFileSync(join(outDir, `clone${suffix}.md`), table);
  writeFileSync(join(outDir, `clone${suffix}.svg`), chart(link, results));
  process.stdout.write(table);
  log(`wrote ${join(outDir, `clone${suffix}.{json,md,svg}`)}`);
}

await main();
