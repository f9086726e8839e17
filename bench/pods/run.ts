/**
 * `npm run bench:pods`: what one-shot pods (Jobs) pay for their clone, side by side in one run on the shaped
 * link of bench:clone, for N pods per node and M nodes (separate cache directories stand in for nodes):
 *
 * - `depth1`   the status quo: every pod runs `git clone --depth 1 URL`;
 * - `emptydir` git-cache with a per-pod emptyDir: every pod's agent mirrors the whole history (`git-cache sync`
 *              into a fresh directory), then the pod clones from it with the clone helper;
 * - `node`     node mode: one `git-cache serve` per node (started when the node's first pod arrives, as a
 *              DaemonSet pod on a fresh node), each pod runs `git-cache wait` (its init container) and clones with
 *              the clone helper (`<cache>/bin/git-clone-cached URL DIR`: from the mirror, no request to upstream),
 *              as the README's first clone example does;
 * - `tier`     node mode with a keeper: a `git-cache serve --git-daemon-port` keeper (started with the run) is the
 *              only client of the git host; node agents run with `--upstream-cache` pointing at it.
 *
 * Pods run one after another, round-robin over the nodes, so pod i lands on node i mod M and the first N*M pods
 * are "N pods per node": one run per strategy and node count gives every N. Each pod's time is measured from its
 * start (init step included) to the end of its clone; the link's byte counter is read around each pod and from
 * the start of the run (so agents' clones and background refreshes count). Per-pod emptyDir pods are independent
 * of each other, so only `--emptydir-pods` of them are measured and the totals for larger N and M are
 * extrapolated (and marked so); 150 of them would move 20+ GiB through a 50 Mbit/s link.
 *
 *   npm run bench:pods -- [--pods 1,10,50] [--nodes 1,3] [--emptydir-pods 3] [--refresh 60s] [--floor-runs 5]
 *                         [--strategies depth1,emptydir,node,tier] [--loopback] [--delay-ms 10] [--rate-mbit 50]
 *                         [--work-dir /var/tmp/git-cache-bench] [--out docs/bench]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mirrorPath } from '../../src/shared/repo-url.js';
import { formatValue } from '../clone/chart.js';
import { isolatedGitEnv, median, runCommand, waitForQuiet } from '../clone/measure.js';
import { netnsUnavailableReason, registerCleanup, startLoopbackLink, startNetnsLink, writeJson, type UpstreamLink } from '../clone/network.js';
import { REPO_SPECS, ensureRepo, type GeneratedRepo } from '../clone/repos.js';
import { mountScratch } from '../clone/scratch-fs.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const AGENT = join(ROOT, 'bin', 'git-cache.js');

const STRATEGIES = ['depth1', 'emptydir', 'node', 'tier'] as const;
type StrategyId = (typeof STRATEGIES)[number];
/** Strategies whose pods share nothing: a pod costs the same on any node, whatever ran before it. */
const NODE_INDEPENDENT = new Set<StrategyId>(['depth1', 'emptydir']);
const LABELS: Record<StrategyId, string> = {
  depth1: 'status quo: git clone --depth 1',
  emptydir: 'git-cache, per-pod emptyDir',
  node: 'git-cache node mode',
  tier: 'git-cache node mode + keeper tier',
};

const { values: options } = parseArgs({
  options: {
    pods: { type: 'string', default: '1,10,50' },
    nodes: { type: 'string', default: '1,3' },
    'emptydir-pods': { type: 'string', default: '3' },
    refresh: { type: 'string', default: '60s' },
    'floor-runs': { type: 'string', default: '5' },
    'quiet-wait': { type: 'string', default: '2s' },
    strategies: { type: 'string', default: STRATEGIES.join(',') },
    loopback: { type: 'boolean', default: false },
    'delay-ms': { type: 'string', default: '10' },
    'rate-mbit': { type: 'string', default: '50' },
    'work-dir': { type: 'string', default: '/var/tmp/git-cache-bench' },
    out: { type: 'string', default: join(ROOT, 'docs', 'bench') },
  },
});

const numbers = (text: string | undefined): number[] => [...new Set((text ?? '').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0))].sort((a, b) => a - b);
const podCounts = numbers(options.pods);
const nodeCounts = numbers(options.nodes);
const maxPods = Math.max(...podCounts);
const emptyDirPods = Math.max(1, Number(options['emptydir-pods']));
const floorRuns = Math.max(1, Number(options['floor-runs']));
/** Before each pod, wait at most this long for the CPUs to be >= 75% idle (a shared machine). */
const quietWaitMs = Math.max(0, Number(/^(\d+)s$/.exec(options['quiet-wait'] ?? '2s')?.[1] ?? 2) * 1000);
const strategies = (options.strategies ?? '').split(',').filter((id): id is StrategyId => (STRATEGIES as readonly string[]).includes(id));
const shape = { delayMs: Number(options['delay-ms']), rateMbit: Number(options['rate-mbit']) };
const workDir = options['work-dir'] ?? '/var/tmp/git-cache-bench';
const outDir = options.out ?? join(ROOT, 'docs', 'bench');

const log = (message: string): void => {
  process.stderr.write(`[bench:pods] ${message}\n`);
};

const GIT_ENV = isolatedGitEnv(join(workDir, 'home'));

interface PodSample {
  readonly index: number;
  readonly node: number;
  /** From the pod's start (agent start on a fresh node, init step) to the end of its clone. */
  readonly seconds: number;
  /** The init step: `git-cache wait` (node modes) or `git-cache sync` (emptyDir); 0 for the status quo. */
  readonly initSeconds: number;
  /** The app's `git clone`. */
  readonly cloneSeconds: number;
  /** Bytes over the link while this pod ran (background refreshes of running agents included). */
  readonly bytes: number;
  /** Bytes over the link from the start of the run to the end of this pod. */
  readonly cumulativeBytes: number;
  /** upload-packs the git host served from the start of the run to the end of this pod. */
  readonly cumulativeUploadPacks: number;
  readonly idleBefore: number;
}

interface StrategyRun {
  readonly strategy: StrategyId;
  readonly nodes: number;
  readonly pods: PodSample[];
}

interface Row {
  readonly strategy: StrategyId;
  readonly nodes: number;
  readonly podsPerNode: number;
  readonly pods: number;
  readonly extrapolated: boolean;
  readonly medianSeconds: number;
  readonly p95Seconds: number;
  readonly medianCloneSeconds: number;
  readonly p95CloneSeconds: number;
  readonly totalBytes: number;
  readonly uploadPacks: number | undefined;
}

/** Nearest-rank percentile. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

function git(args: readonly string[]): string {
  return execFileSync('git', args, { encoding: 'utf8', env: GIT_ENV }).trim();
}

function agent(args: readonly string[]): string[] {
  return [process.execPath, AGENT, ...args, '--log-level', 'warn'];
}

/** Commands that failed once and were run again (a transfer cut on the shaped link); listed in the report. */
const retries: string[] = [];

async function run(argv: readonly string[], cleanup?: () => void): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    const result = await runCommand(argv, GIT_ENV);
    if (result.code === 0) return (performance.now() - started) / 1000;
    const failure = `\`${argv.join(' ')}\` failed (${result.code}): ${result.stderr.trim().slice(-2000)}`;
    if (attempt > 1) throw new Error(failure);
    log(`  retrying once: ${failure}`);
    retries.push(failure);
    cleanup?.();
  }
}

/** A long-running agent (node agent or keeper); stopped with SIGTERM at the end of its run. */
class Agents {
  private readonly children: ChildProcess[] = [];
  constructor() {
    registerCleanup(() => this.killAll());
  }
  start(args: readonly string[], logFile: string): void {
    const [command = '', ...rest] = agent(args);
    const child = spawn(command, rest, { env: GIT_ENV, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19));
    });
    child.on('close', () => writeFileSync(logFile, stderr));
    this.children.push(child);
  }
  async stopAll(): Promise<void> {
    await Promise.all(
      this.children.splice(0).map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
            child.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
  }
  private killAll(): void {
    for (const child of this.children) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

function verifyClone(dir: string, repo: GeneratedRepo, borrows: boolean): void {
  const head = git(['-C', dir, 'rev-parse', 'HEAD']);
  if (head !== repo.head) throw new Error(`clone in ${dir}: HEAD ${head}, expected ${repo.head}`);
  const alternates = join(dir, '.git', 'objects', 'info', 'alternates');
  const has = existsSync(alternates) && readFileSync(alternates, 'utf8').trim() !== '';
  if (has !== borrows) throw new Error(`clone in ${dir}: alternates ${has ? 'present' : 'absent'}, expected the opposite`);
}

async function runStrategy(link: UpstreamLink, repo: GeneratedRepo, scratch: string, strategy: StrategyId, nodes: number): Promise<StrategyRun> {
  const url = link.url(repo.relativePath);
  const runDir = join(scratch, `${strategy}-${nodes}`);
  mkdirSync(runDir, { recursive: true });
  const agents = new Agents();
  const nodeDir = (node: number): string => join(runDir, `node-${node}`);
  const started = new Set<number>();
  let keeperTier: string | undefined;
  const pods = strategy === 'emptydir' ? Math.min(emptyDirPods, maxPods * nodes) : maxPods * nodes;
  const samples: PodSample[] = [];
  await waitForQuiet();
  const bytesAtStart = await link.bytes();
  const packsAtStart = link.uploadPacks();
  try {
    if (strategy === 'tier') {
      // The keeper of a cold cluster: it starts with the run and is the only client of the git host.
      const port = 39500 + (process.pid % 400);
      keeperTier = `git://127.0.0.1:${port}`;
      agents.start(
        ['serve', '--cache-dir', join(runDir, 'keeper'), '--repo', url, '--interval', options.refresh ?? '60s', '--metrics-port', '0', '--git-daemon-port', String(port), '--git-daemon-address', '127.0.0.1'],
        join(runDir, 'keeper.log'),
      );
    }
    for (let index = 0; index < pods; index++) {
      const node = index % nodes;
      const checkout = join(runDir, `pod-${index}`);
      const idleBefore = await waitForQuiet(0.75, quietWaitMs);
      const bytesBefore = await link.bytes();
      const t0 = performance.now();
      let initSeconds = 0;
      let cloneSeconds: number;
      if (strategy === 'depth1') {
        cloneSeconds = await run(['git', 'clone', '-q', '--depth', '1', url, checkout], () => rmSync(checkout, { recursive: true, force: true }));
      } else if (strategy === 'emptydir') {
        const emptyDir = join(runDir, `emptydir-${index}`);
        initSeconds = await run(agent(['sync', '--cache-dir', emptyDir, '--repo', url]), () => rmSync(emptyDir, { recursive: true, force: true }));
        cloneSeconds = await run(cloneHelper(emptyDir, url, checkout));
        verifyClone(checkout, repo, true);
        rmSync(emptyDir, { recursive: true, force: true });
      } else {
        if (!started.has(node)) {
          // A fresh node: its DaemonSet pod starts as the first Job lands there.
          started.add(node);
          agents.start(
            [
              'serve',
              '--cache-dir',
              nodeDir(node),
              '--repo',
              url,
              '--interval',
              options.refresh ?? '60s',
              '--metrics-port',
              '0',
              ...(keeperTier ? ['--upstream-cache', keeperTier] : []),
            ],
            join(runDir, `node-${node}.log`),
          );
        }
        initSeconds = await run(agent(['wait', '--cache-dir', nodeDir(node), '--repo', url, '--timeout', '15m']));
        cloneSeconds = await run(cloneHelper(nodeDir(node), url, checkout));
      }
      const seconds = (performance.now() - t0) / 1000;
      const bytesAfter = await link.bytes();
      if (strategy !== 'emptydir') verifyClone(checkout, repo, strategy !== 'depth1');
      rmSync(checkout, { recursive: true, force: true });
      const sample: PodSample = {
        index,
        node,
        seconds,
        initSeconds,
        cloneSeconds,
        bytes: bytesAfter - bytesBefore,
        cumulativeBytes: bytesAfter - bytesAtStart,
        cumulativeUploadPacks: link.uploadPacks() - packsAtStart,
        idleBefore,
      };
      samples.push(sample);
      if (index < 3 || index % 10 === 9 || index === pods - 1) {
        log(
          `  ${strategy} M=${nodes} pod ${index + 1}/${pods} (node ${node + 1}): ${formatValue(seconds, 'seconds')} (init ${formatValue(initSeconds, 'seconds')}, clone ${formatValue(cloneSeconds, 'seconds')}), ` +
            `${formatValue(sample.bytes, 'bytes')}; run so far ${formatValue(sample.cumulativeBytes, 'bytes')}, ${sample.cumulativeUploadPacks} upload-packs`,
        );
      }
    }
  } finally {
    await agents.stopAll();
  }
  return { strategy, nodes, pods: samples };
}

/** A pod's clone as the README shows it: the helper the agent installs into the cache, quiet on stderr. */
function cloneHelper(cacheDir: string, url: string, checkout: string): string[] {
  return [join(cacheDir, 'bin', 'git-clone-cached'), url, checkout, '--', '-q'];
}

/** `git clone --shared` from a node's mirror, no network: the local work of a cached clone, nothing else. */
async function measureFloor(link: UpstreamLink, repo: GeneratedRepo, scratch: string): Promise<number[]> {
  const url = link.url(repo.relativePath);
  const cacheDir = join(scratch, 'floor-cache');
  await run(agent(['sync', '--cache-dir', cacheDir, '--repo', url]));
  const seconds: number[] = [];
  for (let i = 0; i < floorRuns; i++) {
    const dir = join(scratch, `floor-${i}`);
    await waitForQuiet(0.75, quietWaitMs);
    seconds.push(await run(['git', 'clone', '-q', '--shared', mirrorPath(cacheDir, url), dir]));
    verifyClone(dir, repo, true);
    rmSync(dir, { recursive: true, force: true });
  }
  rmSync(cacheDir, { recursive: true, force: true });
  return seconds;
}

function rowsOf(runResult: StrategyRun): Row[] {
  const perPod = runResult.pods;
  return podCounts.map((podsPerNode) => {
    const count = podsPerNode * runResult.nodes;
    const measured = perPod.slice(0, count);
    const extrapolated = measured.length < count;
    const last = measured[measured.length - 1];
    const bytesPerPod = median(perPod.map((pod) => pod.bytes));
    return {
      strategy: runResult.strategy,
      nodes: runResult.nodes,
      podsPerNode,
      pods: count,
      extrapolated,
      medianSeconds: median(measured.map((pod) => pod.seconds)),
      p95Seconds: percentile(measured.map((pod) => pod.seconds), 95),
      medianCloneSeconds: median(measured.map((pod) => pod.cloneSeconds)),
      p95CloneSeconds: percentile(measured.map((pod) => pod.cloneSeconds), 95),
      totalBytes: extrapolated ? bytesPerPod * count : (last?.cumulativeBytes ?? 0),
      uploadPacks: extrapolated ? undefined : last?.cumulativeUploadPacks,
    };
  });
}

interface Target {
  readonly name: string;
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean;
}

function targetsOf(runs: readonly StrategyRun[], floor: readonly number[]): { targets: Target[]; fullCloneBytes: number | undefined } {
  const find = (strategy: StrategyId, nodes: number): StrategyRun | undefined => runs.find((r) => r.strategy === strategy && r.nodes === nodes);
  const emptyDir = runs.find((r) => r.strategy === 'emptydir');
  // A full clone's bytes: what each per-pod emptyDir pod pulls (a full mirror clone, then a clone through it).
  const fullCloneBytes = emptyDir ? median(emptyDir.pods.map((pod) => pod.bytes)) : undefined;
  const targets: Target[] = [];
  const floorSeconds = median(floor);
  const node1 = find('node', 1);
  if (node1 && node1.pods.length > 1) {
    const warm = node1.pods.slice(1);
    const clone = median(warm.map((pod) => pod.cloneSeconds)) / floorSeconds;
    const whole = median(warm.map((pod) => pod.seconds)) / floorSeconds;
    targets.push({ name: `Nth pod on a warm node (pods 2-${node1.pods.length}), its clone vs the local floor`, goal: '<= 1.3x', measured: `${clone.toFixed(2)}x`, met: clone <= 1.3 });
    targets.push({ name: 'the same, the whole pod (wait init container + clone) vs the local floor', goal: '(for the record)', measured: `${whole.toFixed(2)}x`, met: whole <= 1.3 });
    const first = node1.pods[0];
    const lastPod = node1.pods[node1.pods.length - 1];
    if (fullCloneBytes && first && lastPod) {
      const perPod = (lastPod.cumulativeBytes - first.cumulativeBytes) / (node1.pods.length - 1) / fullCloneBytes;
      targets.push({ name: 'node mode: upstream bytes per additional pod (refreshes included)', goal: '<= 0.1% of a full clone', measured: `${(perPod * 100).toFixed(4)}%`, met: perPod <= 0.001 });
    }
  }
  for (const strategy of ['tier', 'node'] as const) {
    // The first pods on nodes 2..M, in the same run: what each additional node cost the git host (its agent's
    // first sync happened while its first pod waited). Two runs' totals differ by more than that (a full clone's
    // wire bytes vary by a few MiB from run to run), so the comparison stays inside one run.
    const more = runs.find((r) => r.strategy === strategy && r.nodes > 1);
    const firsts = more?.pods.slice(1, more.nodes) ?? [];
    if (!fullCloneBytes || firsts.length === 0) continue;
    const perNode = firsts.reduce((sum, pod) => sum + pod.bytes, 0) / firsts.length / fullCloneBytes;
    targets.push({
      name: `${LABELS[strategy]}: upstream bytes per additional node (its first pod's window)`,
      goal: strategy === 'tier' ? '<= 1% of a full clone' : '(no tier: for comparison)',
      measured: `${(perNode * 100).toFixed(4)}%`,
      met: perNode <= 0.01,
    });
  }
  return { targets, fullCloneBytes };
}

function markdown(link: UpstreamLink, filesystem: string, repo: GeneratedRepo, rows: readonly Row[], floor: readonly number[], targets: readonly Target[], fullCloneBytes: number | undefined): string {
  const lines: string[] = [];
  lines.push(
    `Repository: \`${repo.spec.name}\`, ${repo.commits} commits, ${repo.refs} refs, ${formatValue(repo.packBytes, 'bytes')} of objects, HEAD tree ${repo.treeFiles} files / ${formatValue(repo.treeBytes, 'bytes')}.`,
    '',
    `Link: ${link.description}.`,
    '',
    `Bytes: ${link.bytesMeaning}. Totals run from the start of each run (agents' clones and background refreshes every ${options.refresh} included).`,
    '',
    `Filesystem: ${filesystem}.`,
    '',
    `Local floor (\`git clone --shared\` from a mirror, no network), ${floor.length} runs: median ${formatValue(median(floor), 'seconds')} (${floor.map((s) => s.toFixed(3)).join(', ')}).` +
      (fullCloneBytes ? ` A full clone (one per-pod emptyDir pod) moves ${formatValue(fullCloneBytes, 'bytes')}.` : ''),
    '',
    '| strategy | nodes | pods per node | pods | pod time median | pod time p95 | clone step median | clone step p95 | total upstream bytes | upload-packs at the git host |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const row of rows) {
    const mark = row.extrapolated ? ' \\*' : '';
    lines.push(
      `| ${LABELS[row.strategy]} | ${row.nodes} | ${row.podsPerNode} | ${row.pods} | ${formatValue(row.medianSeconds, 'seconds')}${mark} | ${formatValue(row.p95Seconds, 'seconds')}${mark} | ` +
        `${formatValue(row.medianCloneSeconds, 'seconds')}${mark} | ${formatValue(row.p95CloneSeconds, 'seconds')}${mark} | ${formatValue(row.totalBytes, 'bytes')}${mark} | ${row.uploadPacks ?? 'n/a'} |`,
    );
  }
  if (rows.some((row) => row.extrapolated)) {
    lines.push(
      '',
      `\\* extrapolated: the status quo's and the per-pod emptyDir pods share nothing, so they were measured on one node (${maxPods} and ${emptyDirPods} pods); times are the median and p95 of the measured pods, bytes their median times the number of pods.`,
    );
  }
  if (retries.length > 0) lines.push('', `Commands that failed once and succeeded when run again (their time is the second run's): ${retries.length}.`);
  lines.push('', '| target | goal | measured | met |', '|---|---|---:|---|');
  for (const target of targets) lines.push(`| ${target.name} | ${target.goal} | ${target.measured} | ${target.goal.startsWith('(') ? '' : target.met ? 'yes' : '**no**'} |`);
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist', 'git-cache.mjs'))) throw new Error('the agent is not built: run `npm run build` first');
  if (podCounts.length === 0 || nodeCounts.length === 0 || strategies.length === 0) throw new Error('--pods, --nodes and --strategies need at least one value each');
  const unavailable = options.loopback ? 'asked for with --loopback' : netnsUnavailableReason();
  const runDir = join(workDir, `pods-${process.pid}`);
  const reposDir = join(workDir, 'repos');
  mkdirSync(runDir, { recursive: true });
  mkdirSync(GIT_ENV.HOME ?? join(workDir, 'home'), { recursive: true });
  const repo = await ensureRepo(REPO_SPECS.history, reposDir, log);
  log(`${repo.spec.name}: ${formatValue(repo.packBytes, 'bytes')} objects, ${repo.commits} commits, ${repo.refs} refs, tree ${repo.treeFiles} files / ${formatValue(repo.treeBytes, 'bytes')}`);
  let link: UpstreamLink;
  if (unavailable) {
    log(`network namespaces/tc unavailable (${unavailable}): running the LOOPBACK-ONLY variant`);
    link = await startLoopbackLink(reposDir, runDir, shape, { daemon: 39418, relay: 39419, stats: 39420 });
  } else {
    link = await startNetnsLink(reposDir, runDir, shape);
  }
  log(link.description);
  const scratchFs = mountScratch(workDir, runDir, log);
  // Ctrl-C and SIGTERM exit without running finally blocks: the mount goes with the other cleanups.
  let scratchMounted = true;
  const unmountScratch = (): void => {
    if (!scratchMounted) return;
    scratchMounted = false;
    scratchFs.teardown();
    rmSync(runDir, { recursive: true, force: true });
  };
  registerCleanup(unmountScratch);
  log(`filesystem: ${scratchFs.description}`);
  const loadBefore = loadavg()[0] ?? 0;
  const started = Date.now();
  const runs: StrategyRun[] = [];
  let floor: number[] = [];
  try {
    floor = await measureFloor(link, repo, scratchFs.dir);
    log(`local floor: median ${formatValue(median(floor), 'seconds')}`);
    for (const nodes of nodeCounts) {
      for (const strategy of strategies) {
        // The status quo's and per-pod emptyDir pods do not depend on the node count (nothing is shared): measured
        // once, on the first node count.
        if (NODE_INDEPENDENT.has(strategy) && nodes !== nodeCounts[0]) continue;
        log(`${LABELS[strategy]}, ${nodes} node(s)`);
        runs.push(await runStrategy(link, repo, scratchFs.dir, strategy, nodes));
        rmSync(join(scratchFs.dir, `${strategy}-${nodes}`), { recursive: true, force: true });
      }
    }
  } finally {
    link.teardown();
    unmountScratch();
  }
  const rows = nodeCounts.flatMap((nodes) =>
    strategies.flatMap((strategy) => {
      const found = runs.find((r) => r.strategy === strategy && (r.nodes === nodes || NODE_INDEPENDENT.has(strategy)));
      return found ? rowsOf({ ...found, nodes }) : [];
    }),
  );
  const { targets, fullCloneBytes } = targetsOf(runs, floor);
  const table = markdown(link, scratchFs.description, repo, rows, floor, targets, fullCloneBytes);
  mkdirSync(outDir, { recursive: true });
  const suffix = link.kind === 'loopback' ? '-loopback' : '';
  writeJson(join(outDir, `pods${suffix}.json`), {
    date: new Date().toISOString(),
    link: { kind: link.kind, description: link.description, bytes: link.bytesMeaning, ...shape },
    filesystem: scratchFs.description,
    machine: { cores: cpus().length, cpu: cpus()[0]?.model, memoryBytes: totalmem(), kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(), git: git(['--version']), node: process.version },
    repo: { ...repo, path: undefined },
    options: { podCounts, nodeCounts, emptyDirPods, refresh: options.refresh, floorRuns, strategies },
    loadAverage: { before: loadBefore, after: loadavg()[0] ?? 0 },
    minutes: (Date.now() - started) / 60_000,
    floor,
    fullCloneBytes,
    rows,
    targets,
    retries,
    runs,
  });
  writeFileSync(join(outDir, `pods${suffix}.md`), table);
  process.stdout.write(table);
  log(`wrote ${join(outDir, `pods${suffix}.{json,md}`)} in ${((Date.now() - started) / 60_000).toFixed(1)} min`);
}

await main();
