/**
 * The hostile corpus: inputs built to stall or crash a YAML reader, or to make the function lose user data,
 * each run through the built function as a process (function/inject-git-cache, as kpt and kustomize run it)
 * under GNU time. Each must end in bounded wall time and peak memory with its expected outcome: a one-line
 * error naming the problem and the items unchanged, or a correct result. The worst case's time and memory are
 * logged and written to .test-results/hostile.json.
 *
 * The bounds are generous for a shared 2-core machine; what they catch is the failure class (minutes of CPU,
 * gigabytes, a native abort), not a regression of a few percent.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT, testWithTools } from '../../support/tools.js';

const test = testWithTools(['time']);
const FUNCTION = join(REPO_ROOT, 'function', 'inject-git-cache');

const CONFIG = `functionConfig:
  apiVersion: git-cache.dev/v1alpha1
  kind: GitCache
  metadata: {name: git-cache}
  spec:
    repos:
    - url: https://git.example.com/org/app.git
`;

function resourceList(items: string): string {
  return `apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n${CONFIG}items:\n${items}`;
}

function configMapWith(data: string): string {
  return `- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: hostile}\n  data:\n${data.replace(/^/gm, '    ')}\n`;
}

/** The classic "billion laughs": `levels` levels of 9 aliases of the level below. */
function aliasBomb(levels: number): string {
  const lines = ['l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let level = 1; level <= levels; level++) lines.push(`l${level}: &l${level} [${Array(9).fill(`*l${level - 1}`).join(', ')}]`);
  return lines.join('\n');
}

const SELECTED_POD = (spec: string) => `- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: victim\n    labels: {git-cache.enabled: "true"}\n  spec:\n${spec.replace(/^/gm, '    ')}\n`;

interface Run {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  peakMiB: number;
}

function runFunction(input: string | Buffer | { fd: number }, args: string[] = []): Run {
  const work = mkdtempSync(join(tmpdir(), 'gc-hostile-'));
  try {
    const timeFile = join(work, 'time');
    const stdin = typeof input === 'object' && 'fd' in input ? input.fd : 'pipe';
    const started = process.hrtime.bigint();
    const run = spawnSync('time', ['-f', '%M', '-o', timeFile, FUNCTION, ...args], {
      input: stdin === 'pipe' ? (input as string | Buffer) : undefined,
      stdio: [stdin, 'pipe', 'pipe'],
      maxBuffer: 1 << 30,
      timeout: 180_000,
      encoding: 'utf8',
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const peakKiB = existsSync(timeFile) ? Number(parse(`x: ${String(spawnSync('tail', ['-1', timeFile]).stdout).trim()}`).x) : Number.NaN;
    return { exitCode: run.status, stdout: run.stdout, stderr: run.stderr, seconds, peakMiB: peakKiB / 1024 };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

interface Case {
  readonly name: string;
  readonly input: () => string | Buffer | { fd: number };
  readonly args?: string[];
  readonly exitCode: 0 | 1;
  /** The one-line reason on stderr (errors), or undefined for a clean run. */
  readonly stderr?: RegExp;
  /** Extra checks on stdout. */
  readonly check?: (run: Run, input: string) => string | undefined;
  readonly maxSeconds: number;
  readonly maxMiB: number;
}

/** The input's text unchanged, followed by the results. */
const sameText = (run: Run, input: string) => (run.stdout.startsWith(input.replace(/results:[\s\S]*$/, '')) ? undefined : 'stdout does not start with the input unchanged');
/** Input that cannot be read as YAML has no items to give back: a ResourceList of the one error, no `items`. */
const resultsOnly = (run: Run) =>
  /^apiVersion: config\.kubernetes\.io\/v1\nkind: ResourceList\nresults:\n- severity: error\n  message: ".+"\n$/.test(run.stdout) ? undefined : `not a ResourceList of the error alone: ${run.stdout.slice(0, 300)}`;

const CASES: Case[] = [
  ...[4, 6, 9, 12].map(
    (levels): Case => ({
      name: `alias bomb, ${levels} levels of 9`,
      input: () => resourceList(configMapWith(aliasBomb(levels))),
      exitCode: levels <= 4 ? 0 : 1,
      stderr: levels <= 4 ? undefined : /aliases expand to more than 1000000 nodes \(the limit\), e\.g\. the alias \*l\d+ at line \d+, column \d+/,
      maxSeconds: 20,
      maxMiB: 300,
    }),
  ),
  {
    name: 'wide aliases: 200 aliases of a 10,000-entry list',
    input: () => resourceList(configMapWith(`big: &big [${Array(10_000).fill('x').join(', ')}]\ncopies: [${Array(200).fill('*big').join(', ')}]`)),
    exitCode: 1,
    stderr: /aliases expand to more than 1000000 nodes/,
    maxSeconds: 20,
    maxMiB: 300,
  },
  {
    name: 'many aliases: 100,001 aliases of a scalar',
    input: () => resourceList(configMapWith(`a: &a x\nmany: [${Array(100_001).fill('*a').join(', ')}]`)),
    exitCode: 1,
    stderr: /more than 100000 aliases in the input \(the limit\)/,
    maxSeconds: 30,
    maxMiB: 600,
  },
  {
    name: 'many ordinary aliases: 20,000 items sharing one label map (linear, accepted)',
    input: () =>
      resourceList(
        `- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: base, labels: &labels {app: web, tier: front}}\n` +
          Array.from({ length: 20_000 }, (_, index) => `- {apiVersion: v1, kind: ConfigMap, metadata: {name: c${index}, labels: *labels}}\n`).join(''),
      ),
    exitCode: 0,
    check: sameText,
    maxSeconds: 90,
    maxMiB: 1200,
  },
  {
    name: 'deep nesting: 100,000 nested flow sequences',
    input: () => resourceList(configMapWith(`deep: ${'['.repeat(100_000)}${']'.repeat(100_000)}`)),
    exitCode: 1,
    stderr: /nesting deeper than 1000 levels of mappings and sequences at line \d+, column \d+/,
    maxSeconds: 20,
    maxMiB: 300,
  },
  {
    name: 'deep nesting: 5,000 nested block mappings',
    input: () => resourceList(configMapWith(Array.from({ length: 5000 }, (_, depth) => `${' '.repeat(depth)}k:`).join('\n'))),
    exitCode: 1,
    stderr: /nesting deeper than 1000 levels/,
    maxSeconds: 20,
    maxMiB: 300,
  },
  {
    name: 'huge scalar: a 30 MB string (accepted, untouched)',
    input: () => resourceList(configMapWith(`blob: ${'x'.repeat(30 * 1024 * 1024)}`)),
    exitCode: 0,
    check: sameText,
    maxSeconds: 30,
    maxMiB: 600,
  },
  {
    name: 'long line: 200,000 quoted strings in one flow sequence (accepted, linear)',
    input: () => resourceList(configMapWith(`list: [${Array.from({ length: 200_000 }, (_, index) => `"v${index}"`).join(', ')}]`)),
    exitCode: 0,
    check: sameText,
    maxSeconds: 30,
    maxMiB: 600,
  },
  {
    name: 'input over the byte limit (33 MiB)',
    input: () => resourceList(configMapWith(`blob: ${'x'.repeat(33 * 1024 * 1024)}`)),
    exitCode: 1,
    stderr: /input is \d+ bytes, more than the limit of 33554432 \(raise it with --max-input-bytes\)/,
    maxSeconds: 20,
    maxMiB: 400,
  },
  {
    name: 'too many tokens for the byte limit (1,000,000 one-digit entries with --max-input-bytes 2100000)',
    input: () => resourceList(configMapWith(`many: [${Array(1_000_000).fill('1').join(',')}]`)),
    args: ['--max-input-bytes', '2100000'],
    exitCode: 1,
    stderr: /more than 525000 YAML tokens in the input/,
    maxSeconds: 30,
    maxMiB: 500,
  },
  {
    name: '100,000 items (accepted)',
    input: () => resourceList(Array.from({ length: 100_000 }, (_, index) => `- {apiVersion: v1, kind: ConfigMap, metadata: {name: c${index}}}\n`).join('')),
    exitCode: 0,
    check: sameText,
    maxSeconds: 150,
    maxMiB: 2000,
  },
  {
    name: 'duplicate keys (first-wins kind, last-wins labels)',
    input: () => resourceList('- apiVersion: v1\n  kind: Pod\n  kind: Secret\n  metadata: {name: x}\n'),
    exitCode: 1,
    stderr: /duplicate key "kind" \(first at line 12, column 3\) at line 13, column 3/,
    check: resultsOnly,
    maxSeconds: 20,
    maxMiB: 300,
  },
  {
    name: 'invalid UTF-8',
    input: () => Buffer.concat([Buffer.from(resourceList('- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: "')), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')]),
    exitCode: 1,
    stderr: /input is not valid UTF-8: byte 0xff at line 13, column 21/,
    maxSeconds: 20,
    maxMiB: 300,
  },
  ...(
    [
      ['raw control character', '- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: "a\u0007b"}\n', /control character U\+0007 at line 13, column 22/],
      ['recursive alias', '- &r {apiVersion: v1, kind: ConfigMap, metadata: {name: x}, data: {self: *r}}\n', /the alias \*r is inside the node it names/],
      ['undefined alias', '- {apiVersion: v1, kind: ConfigMap, metadata: {name: x}, data: *nowhere}\n', /the alias \*nowhere names no anchor defined before it/],
    ] as const
  ).map(
    ([name, items, stderr]): Case => ({ name, input: () => resourceList(items), exitCode: 1, stderr, check: resultsOnly, maxSeconds: 20, maxMiB: 300 }),
  ),
  {
    name: 'forged status annotation naming the user\'s own container, volume and env var',
    input: () =>
      resourceList(
        `- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: p\n    annotations:\n      git-cache.dev/status: '{"version":"0.1.0","mode":"sidecar","repos":[],"initContainers":["migrate"],"containers":[],"volumes":["data"],"env":["DATABASE_URL"]}'\n  spec:\n    initContainers: [{name: migrate, image: m}]\n    containers: [{name: app, image: a, env: [{name: DATABASE_URL, value: x}], volumeMounts: [{name: data, mountPath: /data}]}]\n    volumes: [{name: data, emptyDir: {}}]\n`,
      ),
    exitCode: 0,
    check: (run) => {
      for (const kept of ['{name: migrate, image: m}', 'env: [{name: DATABASE_URL, value: x}]', 'volumeMounts: [{name: data, mountPath: /data}]', 'volumes: [{name: data, emptyDir: {}}]']) {
        if (!run.stdout.includes(kept)) return `lost ${kept}`;
      }
      return /lists migrate, data, DATABASE_URL, which git-cache never injects; left in place/.test(run.stdout) ? undefined : 'no warning naming the foreign names';
    },
    maxSeconds: 20,
    maxMiB: 300,
  },
  ...(
    [
      ['containers as a mapping', 'containers: {name: app, image: a}', 'spec.containers', 'a list'],
      ['initContainers as a mapping', 'initContainers: {name: i}\ncontainers: [{name: app, image: a}]', 'spec.initContainers', 'a list'],
      ['volumes as a mapping', 'containers: [{name: app, image: a}]\nvolumes: {name: v}', 'spec.volumes', 'a list'],
      ['env as a mapping', 'containers: [{name: app, image: a, env: {A: b}}]', 'spec.containers.0.env', 'a list'],
      ['volumeMounts as a mapping', 'containers: [{name: app, image: a, volumeMounts: {name: v}}]', 'spec.containers.0.volumeMounts', 'a list'],
      ['securityContext as a string', 'containers: [{name: app, image: a}]\nsecurityContext: restricted', 'spec.securityContext', 'a mapping'],
    ] as const
  ).map(
    ([what, spec, path, expected]): Case => ({
      name: `mistyped field: ${what}`,
      input: () => resourceList(SELECTED_POD(spec)),
      exitCode: 1,
      stderr: new RegExp(`\\(${path.replace(/\./g, '\\.')}\\): expected ${expected} at ${path.replace(/\./g, '\\.')}, found`),
      check: (run, input) => sameText(run, input) ?? (run.stdout.includes(`path: "${path}"`) ? undefined : 'no result with the field path'),
      maxSeconds: 20,
      maxMiB: 300,
    }),
  ),
  {
    name: 'mistyped field: annotations as a string on a selected pod template',
    input: () => resourceList('- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: victim\n    labels: {git-cache.enabled: "true"}\n    annotations: "oops"\n  spec:\n    containers: [{name: app, image: a}]\n'),
    exitCode: 1,
    stderr: /expected a mapping at metadata\.annotations, found a string/,
    check: sameText,
    maxSeconds: 20,
    maxMiB: 300,
  },
  {
    name: 'several documents on stdin',
    input: () => `${resourceList('[]\n'.slice(0, 0))}---\napiVersion: v1\nkind: ConfigMap\n`,
    exitCode: 1,
    stderr: /input holds 2 YAML documents, a ResourceList is one; to transform a plain YAML stream pass --config FILE/,
    maxSeconds: 20,
    maxMiB: 300,
  },
];

const measured: { name: string; seconds: number; peakMiB: number }[] = [];

for (const hostile of CASES) {
  test.serial(`hostile: ${hostile.name}: exit ${hostile.exitCode}${hostile.stderr ? ' with its reason' : ''}, within ${hostile.maxSeconds} s and ${hostile.maxMiB} MiB`, (t) => {
    const input = hostile.input();
    const run = runFunction(input, hostile.args);
    measured.push({ name: hostile.name, seconds: run.seconds, peakMiB: run.peakMiB });
    t.log(`${run.seconds.toFixed(2)} s, peak ${run.peakMiB.toFixed(0)} MiB`);
    t.is(run.exitCode, hostile.exitCode, run.stderr.slice(0, 500));
    if (hostile.stderr) {
      const lines = run.stderr.trimEnd().split('\n');
      t.is(lines.length, 1, run.stderr.slice(0, 500));
      t.regex(lines[0] ?? '', hostile.stderr);
      t.notRegex(run.stderr, /internal error|\n\s+at |RangeError|heap/);
      if (!(typeof input === 'object' && 'fd' in input)) {
        // Errors: the input items unchanged (the input as it came, plus the results), or a ResourceList of the reason.
        t.regex(run.stdout, /^(apiVersion: config\.kubernetes\.io\/v1\nkind: ResourceList\n)/);
      }
    } else {
      t.is(run.stderr, '');
    }
    const problem = hostile.check?.(run, typeof input === 'string' ? input : '');
    t.is(problem, undefined);
    t.true(run.seconds <= hostile.maxSeconds, `${run.seconds.toFixed(1)} s > ${hostile.maxSeconds} s`);
    t.true(run.peakMiB <= hostile.maxMiB, `${run.peakMiB.toFixed(0)} MiB > ${hostile.maxMiB} MiB`);
  });
}

test.serial('hostile: stdin that is a directory, or closed, is a one-line reason, not EISDIR or EBADF', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gc-hostile-dir-'));
  try {
    const fd = openSync(dir, 'r');
    const run = runFunction({ fd });
    closeSync(fd);
    t.is(run.exitCode, 1, run.stderr);
    t.regex(run.stderr, /^inject-git-cache: stdin is a directory; pipe a ResourceList into it\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Node opens /dev/null for a closed fd 0 at startup, so a closed stdin reads as empty input.
  const closed = spawnSync('sh', ['-c', 'exec "$0" <&-', FUNCTION], { encoding: 'utf8' });
  t.is(closed.status, 1);
  t.regex(closed.stderr, /^inject-git-cache: (stdin is closed; pipe a ResourceList into it|input is empty; expected a ResourceList)\n$/);
});

test.serial.after.always('the worst case of the hostile corpus, in time and in memory', () => {
  if (measured.length === 0) return;
  const slowest = measured.reduce((a, b) => (b.seconds > a.seconds ? b : a));
  const largest = measured.reduce((a, b) => (b.peakMiB > a.peakMiB ? b : a));
  const summary = { cases: measured, slowest, largest };
  const dir = join(REPO_ROOT, '.test-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'hostile.json'), `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`hostile corpus: slowest ${slowest.name} ${slowest.seconds.toFixed(2)} s; largest ${largest.name} ${largest.peakMiB.toFixed(0)} MiB`);
});
