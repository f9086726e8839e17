/**
 * A bad config under the real clients: a hostile repo URL (`ext::sh -c id`, git's remote helper that would run a
 * command) makes kpt and kustomize fail, the function exits 1, the package stays as it was, and what the user
 * sees names the offending field.
 */
import test from 'ava';
import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { testWithTools } from '../support/tools.js';
import { FUNCTION_EXEC, FUNCTION_PATH, kptEval, kptRender, kustomizeBuild, makeWorkspace, snapshotTree, type Workspace } from '../support/e2e.js';

const HOSTILE_URL = 'ext::sh -c id';
const GOOD_URL = 'https://github.com/example-org/platform.git';

/** The sidecar example with its first repo's URL replaced by the hostile one (in gitcache.yaml). */
async function hostileWorkspace(): Promise<Workspace> {
  const workspace = await makeWorkspace('sidecar');
  const file = join(workspace.packageDir, 'gitcache.yaml');
  const text = await readFile(file, 'utf8');
  if (!text.includes(`url: ${GOOD_URL}`)) throw new Error(`examples/sidecar/gitcache.yaml no longer has url: ${GOOD_URL}`);
  await writeFile(file, text.replace(`url: ${GOOD_URL}`, `url: "${HOSTILE_URL}"`));
  return workspace;
}

testWithTools(['kpt'])('a hostile repo URL makes kpt fn render fail naming spec.repos[0].url, and the package is left unchanged', async (t) => {
  const workspace = await hostileWorkspace();
  try {
    const before = await snapshotTree(workspace.packageDir);
    const outcome = await kptRender(workspace, join(workspace.root, 'results'));
    t.not(outcome.exitCode, 0);
    t.regex(outcome.stderr, /\[error\] spec\.repos\[0\]\.url: /);
    t.regex(outcome.stderr, /Exit code: 1/);
    t.deepEqual(await snapshotTree(workspace.packageDir), before);
    const results = parse(await readFile(join(workspace.root, 'results', 'results.yaml'), 'utf8')) as { items: { exitCode: number; results: { severity: string; field?: { path: string } }[] }[] };
    t.is(results.items[0]?.exitCode, 1);
    t.deepEqual(results.items[0]?.results.map((result) => [result.severity, result.field?.path]), [['error', 'spec.repos[0].url']]);
  } finally {
    await workspace.cleanup();
  }
});

testWithTools(['kpt'])('a hostile repoUrl in the ConfigMap form makes kpt fn eval fail naming data.repoUrl, and the package is left unchanged', async (t) => {
  const workspace = await makeWorkspace('configmap');
  try {
    const before = await snapshotTree(workspace.packageDir);
    const outcome = await kptEval(workspace, join(workspace.root, 'results'), { execPath: FUNCTION_EXEC, args: { repoUrl: HOSTILE_URL, mode: 'init' } });
    t.not(outcome.exitCode, 0);
    t.regex(outcome.stderr, /\[error\] data\.repoUrl: /);
    t.deepEqual(await snapshotTree(workspace.packageDir), before);
  } finally {
    await workspace.cleanup();
  }
});

testWithTools(['kustomize'])('a hostile repo URL makes kustomize build fail, and its error output names spec.repos[0].url', async (t) => {
  const workspace = await hostileWorkspace();
  try {
    const outcome = await kustomizeBuild(workspace.packageDir);
    t.not(outcome.exitCode, 0);
    t.is(outcome.stdout, '', 'kustomize printed resources despite the error');
    // kustomize shows only "exit status 1" of its own: the field must come from the function's stderr.
    t.regex(outcome.stderr, /spec\.repos\[0\]\.url/);
  } finally {
    await workspace.cleanup();
  }
});

test('the function itself exits 1 on a hostile URL with an error result at spec.repos[0].url and the items unchanged', async (t) => {
  const item = 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    git-cache.enabled: "true"\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: app:1\n';
  const input = [
    'apiVersion: config.kubernetes.io/v1',
    'kind: ResourceList',
    'items:',
    ...item.trimEnd().split('\n').map((line, index) => (index === 0 ? `- ${line}` : `  ${line}`)),
    'functionConfig:',
    '  apiVersion: git-cache.dev/v1alpha1',
    '  kind: GitCache',
    '  metadata:',
    '    name: git-cache',
    '  spec:',
    '    repos:',
    `    - url: "${HOSTILE_URL}"`,
    '',
  ].join('\n');
  const outcome = await execa(FUNCTION_PATH, [], { input, reject: false });
  t.is(outcome.exitCode, 1);
  t.notRegex(outcome.stdout + outcome.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'a stack trace was printed');
  const output = parse(outcome.stdout) as { items: unknown[]; results: { severity: string; message: string; field?: { path: string } }[] };
  t.deepEqual(output.items, [parse(item)]);
  t.is(output.results.length, 1);
  t.is(output.results[0]?.severity, 'error');
  t.is(output.results[0]?.field?.path, 'spec.repos[0].url');
});
