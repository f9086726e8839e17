import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError, run } from '../../../src/function/run.js';
import { REPO_ROOT } from '../../support/tools.js';
import { SELECTED, deployment, gitCache, readOutput, resourceList, runFunction, toYaml, type Json } from '../../support/krm.js';
import { readAsYaml11, readStreamAsYaml12 } from '../../support/yaml-readers.js';

const CONFIG = gitCache({ repos: [{ url: 'https://git.example.com/org/app.git' }] });

// Items as people write them, in kyaml's layout: comments, quoted YAML 1.1 look-alikes, flow style, numbers.
const HANDWRITTEN_ITEMS = `items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web # the web tier
    labels:
      git-cache.enabled: "true"
    annotations:
      config.kubernetes.io/index: '0'
      internal.config.kubernetes.io/path: 'web.yaml'
      kustomize.config.k8s.io/id: |
        kind: Deployment
      feature: "on"
  spec:
    selector:
      matchLabels: {app: web}
    template:
      metadata:
        labels: {app: web}
      spec:
        # the app container
        containers:
        - name: app
          image: registry.example/app:1.0
          env:
          - name: LEGACY
            value: "yes"
          - name: MODE
            value: "0755"
        volumes:
        - name: cfg
          secret:
            secretName: cfg
            defaultMode: 0644
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: settings
  data:
    enabled: "off"
    time: "12:30"
`;

function handwrittenList(config: Json): string {
  return `apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n${HANDWRITTEN_ITEMS}${toYaml({ functionConfig: config })}`;
}

function itemsSection(text: string): string {
  const start = text.indexOf('\nitems:\n');
  const end = text.indexOf('\nfunctionConfig:', start);
  return text.slice(start, end < 0 ? undefined : end);
}

function tempFile(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'inject-git-cache-'));
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

test('a valid run exits 0 with a ResourceList carrying info results, comments and quoted strings intact', (t) => {
  const outcome = runFunction(handwrittenList(CONFIG));
  t.is(outcome.exitCode, 0);
  t.deepEqual(outcome.stderr, []);
  t.true(outcome.stdout.startsWith('apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n'));
  for (const kept of ['name: web # the web tier', '# the app container', 'value: "yes"', 'value: "0755"', 'defaultMode: 0644', 'feature: "on"', "config.kubernetes.io/index: '0'", 'enabled: "off"', 'time: "12:30"']) {
    t.true(outcome.stdout.includes(kept), kept);
  }
  const yaml11 = readAsYaml11(outcome.stdout) as { items: Json[] };
  t.is((yaml11.items[1]?.data as Json).enabled, 'off');
  t.is(readOutput(outcome.stdout).results[0]?.severity, 'info');
});

test('running twice gives byte-identical output', (t) => {
  const once = runFunction(handwrittenList(CONFIG)).stdout;
  t.is(runFunction(once).stdout, once);
});

test('config errors: exit 1, error results with field paths, the items byte-identical to the input', (t) => {
  const input = handwrittenList(gitCache({ repos: [{ url: 'ext::sh -c evil' }], mode: 'sometimes' }));
  const outcome = runFunction(input);
  t.is(outcome.exitCode, 1);
  t.is(itemsSection(outcome.stdout), itemsSection(input));
  const { results, kind } = readOutput(outcome.stdout);
  t.is(kind, 'ResourceList');
  t.deepEqual(results.map((result) => [result.severity, result.field?.path]).sort(), [
    ['error', 'spec.mode'],
    ['error', 'spec.repos[0].url'],
  ]);
});

test('item errors: exit 1 and every item byte-identical, even the valid ones that would have been injected', (t) => {
  const clash = toYaml(deployment('clash', { labels: SELECTED, podSpec: { containers: [{ name: 'git-cache', image: 'x:1' }] } }));
  const input = `apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n${HANDWRITTEN_ITEMS}- ${clash.replace(/\n(?=.)/g, '\n  ')}${toYaml({ functionConfig: CONFIG })}`;
  const outcome = runFunction(input);
  t.is(outcome.exitCode, 1);
  t.is(itemsSection(outcome.stdout), itemsSection(input));
  t.deepEqual(
    readOutput(outcome.stdout).results.map((result) => result.severity),
    ['error'],
  );
});

test('no functionConfig is an error result, not a crash', (t) => {
  const outcome = runFunction(resourceList([deployment('a', { labels: SELECTED })]));
  t.is(outcome.exitCode, 1);
  t.regex(readOutput(outcome.stdout).results[0]?.message ?? '', /no functionConfig/);
});

test('a v1beta1 ResourceList is answered in kind', (t) => {
  const outcome = runFunction(resourceList([deployment('a', { labels: SELECTED })], CONFIG, 'config.kubernetes.io/v1beta1'));
  t.is(outcome.exitCode, 0);
  t.is(readOutput(outcome.stdout).apiVersion, 'config.kubernetes.io/v1beta1');
});

test('--config FILE: a plain stream in, a plain stream out, results on stderr', (t) => {
  const config = tempFile('gitcache.yaml', toYaml(CONFIG));
  const stream = `${toYaml(deployment('b', { labels: SELECTED }))}---\n${toYaml({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { a: 'on' } })}---\n${toYaml(deployment('a'))}---\n${toYaml(deployment('a'))}`;
  const outcome = runFunction(stream, ['--config', config]);
  t.is(outcome.exitCode, 0);
  t.false(outcome.stdout.includes('ResourceList'));
  const docs = readStreamAsYaml12(outcome.stdout) as Json[];
  t.deepEqual(
    docs.map((doc) => `${String(doc.kind)}/${String((doc.metadata as Json).name)}`),
    ['Deployment/b', 'ConfigMap/x', 'Deployment/a', 'Deployment/a'],
  );
  t.truthy((((docs[0]?.spec as Json).template as Json).spec as Json).initContainers);
  t.deepEqual(docs[2], deployment('a'));
  t.deepEqual(outcome.stderr, [], 'info results are not printed for a plain stream');
  t.is(runFunction(outcome.stdout, [`--config=${config}`]).stdout, outcome.stdout, 'idempotent');
});

test('--config FILE with errors: exit 1, the stream unchanged, one line per error on stderr', (t) => {
  const config = tempFile('gitcache.yaml', toYaml(CONFIG));
  const stream = toYaml(deployment('a', { labels: SELECTED, podSpec: { containers: [{ name: 'c', image: 'i:1' }], volumes: [{ name: 'git-cache', emptyDir: {} }] } }));
  const outcome = runFunction(stream, ['--config', config]);
  t.is(outcome.exitCode, 1);
  t.is(outcome.stdout, stream);
  t.is(outcome.stderr.length, 1);
  t.regex(outcome.stderr[0] ?? '', /^error \[Deployment a\] \(spec\.template\.spec\.volumes\): /);
});

test('--config FILE also accepts a ConfigMap, and takes precedence over a ResourceList functionConfig', (t) => {
  const config = tempFile('cm.yaml', toYaml({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { repoUrl: 'https://h.example/o/from-file.git', mode: 'init' } }));
  const outcome = runFunction(resourceList([deployment('a', { labels: SELECTED })], CONFIG), ['--config', config]);
  t.is(outcome.exitCode, 0);
  t.true(outcome.stdout.includes('from-file.git'));
  t.regex(outcome.stdout, /"mode":"init"/);
});

test('--config with a missing or multi-document file is a usage error naming the file: exit 1, one line', (t) => {
  const usageError = (argv: string[], message: RegExp) => {
    const outcome = runFunction('', argv);
    t.is(outcome.exitCode, 1, argv.join(' '));
    t.is(outcome.stderr.length, 1);
    t.regex(outcome.stderr[0] ?? '', message);
  };
  usageError(['--config', '/nonexistent/gitcache.yaml'], /\/nonexistent\/gitcache\.yaml: ENOENT/);
  usageError(['--config', tempFile('two.yaml', 'a: 1\n---\nb: 2\n')], /exactly one/);
  usageError(['--config'], /--config needs a value/);
  usageError(['--bogus'], /unknown argument "--bogus"/);
  usageError(['--max-input-bytes', '1e9'], /positive whole number/);
  t.true(new UsageError('x') instanceof Error);
});

test('--help and --version print and exit 0 without reading stdin', (t) => {
  const stdin = () => {
    throw new Error('stdin must not be read');
  };
  const help = run(['--help'], stdin);
  t.is(help.exitCode, 0);
  t.regex(help.stdout, /--config FILE/);
  t.regex(help.stdout, /ResourceList/);
  t.is(runFunction('', ['-h']).stdout, help.stdout);
  t.regex(run(['--version'], stdin).stdout, /^\d+\.\d+\.\d+\n$/);
});

async function runMain(input: string, args: string[] = []) {
  return execa(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/function/main.ts'), ...args], { input, reject: false, cwd: REPO_ROOT, stripFinalNewline: false });
}

function assertNoStackTrace(t: import('ava').ExecutionContext, text: string): void {
  t.notRegex(text, /\n\s+at .+:\d+:\d+/);
  t.notRegex(text, /node:internal|\.ts:\d+/);
}

test('the process: malformed YAML on stdin exits 1 with a one-line reason on stderr, a ResourceList of that result on stdout, and no stack trace', async (t) => {
  const result = await runMain('apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: [\n');
  t.is(result.exitCode, 1);
  t.regex(result.stdout, /^apiVersion: config.kubernetes.io\/v1\nkind: ResourceList\nresults:\n- severity: error\n  message: ".+ at line 4, column 1"\n$/);
  t.regex(result.stderr, /^inject-git-cache: .+ at line \d+, column \d+\n$/);
  assertNoStackTrace(t, result.stderr);
});

test('the process: input that is not a ResourceList exits 1 with a one-line reason', async (t) => {
  const result = await runMain(toYaml(deployment('a')));
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /^inject-git-cache: input is not a ResourceList .*--config FILE\n$/);
  assertNoStackTrace(t, result.stderr);
});

test('the process: bad config exits 1 with the ResourceList on stdout and each error as one stderr line (kustomize shows only stderr)', async (t) => {
  const input = handwrittenList(gitCache({ repos: [{ url: 'file:///etc/passwd' }] }));
  const result = await runMain(input);
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /^inject-git-cache: error \(spec\.repos\[0\]\.url\): [^\n]*file:\/\/ are refused[^\n]*\n$/);
  t.is(itemsSection(result.stdout), itemsSection(input));
  assertNoStackTrace(t, result.stdout);
});

test('the process: a good run exits 0 and prints the same as run()', async (t) => {
  const input = handwrittenList(CONFIG);
  const result = await runMain(input);
  t.is(result.exitCode, 0);
  t.is(result.stdout, runFunction(input).stdout);
});

test('the process: an unknown flag is a one-line usage error', async (t) => {
  const result = await runMain('', ['--frobnicate']);
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /^inject-git-cache: unknown argument "--frobnicate"; see --help\n$/);
});
