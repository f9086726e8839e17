/**
 * `npm run bench:fn`: time and peak memory of the function on a 10,000-item ResourceList with 5,000 selected
 * Deployments, side by side in one run against
 *   (a) the floor: parsing and re-printing the same input with `yaml`, same options, nothing else;
 *   (b) kustomize's built-in PatchTransformer doing the equivalent injection (a strategic-merge patch with
 *       the same additions, targeted by the same label) on the same resources.
 * Runs are interleaved (floor, function, kustomize, floor, ...) so machine noise hits all three alike; medians
 * are reported. Targets: function ≤ 1.0x the floor in time and ≤ 1.5x in peak memory (it parses as strictly as
 * kyaml but never re-prints what it does not change).
 *
 * Options: --runs N (default 5), --kustomize-runs N (default 1, 0 to skip: one kustomize run takes minutes at
 * this size, and its figure is a comparison, not a target), --items N (10000), --selected N (5000), --json FILE.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { parse, stringify } from 'yaml';
import { generateBenchInput } from './generate.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? Number(args[index + 1]) : fallback;
};
const runs = option('runs', 5);
const kustomizeRuns = option('kustomize-runs', 1);
const total = option('items', 10_000);
const selected = option('selected', 5_000);
const jsonIndex = args.indexOf('--json');
const jsonOut = jsonIndex >= 0 ? args[jsonIndex + 1] : undefined;

interface Sample {
  seconds: number;
  /** User + system CPU seconds: steadier than wall time on a shared machine. */
  cpuSeconds: number;
  maxRssKiB: number;
}

/** Wall time and peak RSS of one process, from GNU time (which reads the child's rusage). */
function measure(command: string, commandArgs: string[], stdinFile: string): Sample {
  const timeFile = join(work, 'time.txt');
  const run = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', '-o', timeFile, command, ...commandArgs], {
    stdio: [readFileSync(stdinFile) ? 'pipe' : 'ignore', 'ignore', 'pipe'],
    input: readFileSync(stdinFile),
    maxBuffer: 1 << 30,
  });
  if (run.status !== 0) throw new Error(`${command} failed (${run.status}): ${run.stderr.toString().slice(0, 500)}`);
  const [seconds = 'NaN', user = 'NaN', system = 'NaN', rss = 'NaN'] = readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-4);
  return { seconds: Number(seconds), cpuSeconds: Number(user) + Number(system), maxRssKiB: Number(rss) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function findKustomize(): string[] {
  const standalone = join(root, '.tools', 'bin', 'kustomize');
  if (existsSync(standalone)) return [standalone, 'build'];
  return ['kubectl', 'kustomize'];
}

const work = mkdtempSync(join(tmpdir(), 'gc-bench-fn-'));
try {
  const fn = join(root, 'function', 'inject-git-cache');
  if (!existsSync(fn)) throw new Error('function/inject-git-cache is missing: run npm run build');
  const floor = join(work, 'floor.cjs');
  await build({ entryPoints: [join(root, 'bench', 'fn', 'floor.ts')], outfile: floor, bundle: true, platform: 'node', target: 'node20', format: 'cjs', logLevel: 'warning' });

  const input = generateBenchInput(total, selected);
  const inputFile = join(work, 'resource-list.yaml');
  writeFileSync(inputFile, input.resourceList);

  // kustomize's equivalent: take what the function added to one selected Deployment and apply exactly that
  // as a strategic-merge patch to every Deployment with the label.
  const sample = generateBenchInput(1, 1);
  const injected = parse(execFileSync(fn, { input: sample.resourceList, maxBuffer: 1 << 26 }).toString()) as {
    items: { spec: { template: { metadata: { annotations: Record<string, string> }; spec: Record<string, unknown> & { containers: { name: string; env: unknown[]; volumeMounts: unknown[] }[] } } } }[];
  };
  const template = injected.items[0]?.spec.template;
  if (!template) throw new Error('the function injected nothing into the sample Deployment');
  const app = template.spec.containers[0];
  const patch = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'any' },
    spec: {
      template: {
        metadata: { annotations: template.metadata.annotations },
        spec: {
          initContainers: template.spec.initContainers,
          containers: [{ name: app?.name, env: app?.env.slice(-4), volumeMounts: app?.volumeMounts }],
          volumes: template.spec.volumes,
          securityContext: template.spec.securityContext,
        },
      },
    },
  };
  const kustomizeDir = join(work, 'kustomize');
  execFileSync('mkdir', ['-p', kustomizeDir]);
  writeFileSync(join(kustomizeDir, 'resources.yaml'), input.stream);
  writeFileSync(join(kustomizeDir, 'patch.yaml'), stringify(patch));
  writeFileSync(
    join(kustomizeDir, 'kustomization.yaml'),
    stringify({ resources: ['resources.yaml'], patches: [{ path: 'patch.yaml', target: { kind: 'Deployment', labelSelector: 'git-cache.enabled=true' } }] }),
  );
  const [kustomizeBin = 'kubectl', ...kustomizeArgs] = findKustomize();
  const emptyStdin = join(work, 'empty');
  writeFileSync(emptyStdin, '');

  const samples = { floor: [] as Sample[], function: [] as Sample[], kustomize: [] as Sample[] };
  process.stderr.write(
    `bench:fn: ${total} items, ${selected} selected Deployments, input ${(input.resourceList.length / 1e6).toFixed(1)} MB, ${runs} runs (kustomize ${Math.min(runs, kustomizeRuns)})\n`,
  );
  for (let run = 0; run < runs; run++) {
    samples.floor.push(measure(process.execPath, [floor], inputFile));
    samples.function.push(measure(process.execPath, [fn], inputFile));
    if (run < kustomizeRuns) samples.kustomize.push(measure(kustomizeBin, [...kustomizeArgs, kustomizeDir], emptyStdin));
    process.stderr.write(`  run ${run + 1}/${runs} done\n`);
  }

  const summary = Object.fromEntries(
    Object.entries(samples).map(([name, list]) => [
      name,
      {
        seconds: median(list.map((sample) => sample.seconds)),
        cpuSeconds: median(list.map((sample) => sample.cpuSeconds)),
        maxRssMiB: median(list.map((sample) => sample.maxRssKiB)) / 1024,
        runs: list,
      },
    ]),
  ) as Record<keyof typeof samples, { seconds: number; cpuSeconds: number; maxRssMiB: number; runs: Sample[] }>;
  const timeRatio = summary.function.seconds / summary.floor.seconds;
  const cpuRatio = summary.function.cpuSeconds / summary.floor.cpuSeconds;
  const memoryRatio = summary.function.maxRssMiB / summary.floor.maxRssMiB;
  const rows = [
    ['floor (yaml parse + print)', summary.floor],
    ['inject-git-cache', summary.function],
    ...(samples.kustomize.length > 0 ? [[`kustomize PatchTransformer (${[kustomizeBin.split('/').pop(), ...kustomizeArgs].join(' ')})`, summary.kustomize] as const] : []),
  ] as const;
  console.log(`\n| | median wall time (s) | median CPU time (s) | median peak RSS (MiB) | runs, wall (s) | runs, CPU (s) |\n| --- | --- | --- | --- | --- | --- |`);
  for (const [label, figures] of rows) {
    const list = (pick: (run: Sample) => number) => figures.runs.map((run) => pick(run).toFixed(2)).join(', ');
    console.log(
      `| ${label} | ${figures.seconds.toFixed(2)} | ${figures.cpuSeconds.toFixed(2)} | ${figures.maxRssMiB.toFixed(0)} | ${list((run) => run.seconds)} | ${list((run) => run.cpuSeconds)} |`,
    );
  }
  console.log(
    `\nfunction / floor: wall time ${timeRatio.toFixed(2)}x, CPU time ${cpuRatio.toFixed(2)}x (target ≤ 1.0x: ${timeRatio <= 1.0 ? 'met' : 'MISSED'} in wall time, ${cpuRatio <= 1.0 ? 'met' : 'MISSED'} in CPU time), memory ${memoryRatio.toFixed(2)}x (target ≤ 1.5x: ${memoryRatio <= 1.5 ? 'met' : 'MISSED'})`,
  );
  if (samples.kustomize.length > 0) {
    console.log(`function / kustomize: time ${(summary.function.seconds / summary.kustomize.seconds).toFixed(2)}x, memory ${(summary.function.maxRssMiB / summary.kustomize.maxRssMiB).toFixed(2)}x`);
  }
  if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify({ total, selected, runs, summary, timeRatio, cpuRatio, memoryRatio }, null, 2)}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
