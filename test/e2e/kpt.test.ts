/**
 * The examples under real kpt: `kpt fn render --allow-exec` (each Kptfile's exec pipeline) and the imperative
 * `kpt fn eval --exec` (GitCache file or ConfigMap `key=value` form), each run twice on a copy of the example.
 * The second run must leave every file byte-identical, and the package diff and kpt's results must equal the
 * example's `.expected/diff.patch` and `.expected/results.yaml`.
 */
import { execa } from 'execa';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, testWithTools } from '../support/tools.js';
import {
  EXAMPLES_DIR,
  expectedAfterRender,
  tool,
  expectedOrUpdate,
  expectedPath,
  kptEval,
  kptRender,
  listExamples,
  makeWorkspace,
  readResults,
  readRunConfig,
  snapshotTree,
  trackChanges,
  workspacePathFromExpected,
} from '../support/e2e.js';

const test = testWithTools(['kpt']);

for (const example of listExamples()) {
  // Serial: with UPDATE_EXPECTED=1 these write the .expected files that the eval tests then compare with.
  test.serial(`examples/${example}: kpt fn render --allow-exec gives .expected/diff.patch and results.yaml, and a second render changes nothing`, async (t) => {
    const config = await readRunConfig(example);
    const workspace = await makeWorkspace(example);
    try {
      const diff = await trackChanges(workspace);
      const first = await kptRender(workspace, join(workspace.root, 'results-1'));
      t.is(first.exitCode, config.exitCode, first.stderr);
      const afterFirst = await snapshotTree(workspace.packageDir);

      const second = await kptRender(workspace, join(workspace.root, 'results-2'));
      t.is(second.exitCode, config.exitCode, second.stderr);
      t.deepEqual(await snapshotTree(workspace.packageDir), afterFirst, 'the second render changed the package');

      const patch = await diff();
      t.not(patch, '', 'render changed nothing');
      t.is(patch, await expectedOrUpdate(expectedPath(example, 'diff.patch'), patch));
      const results = await readResults(join(workspace.root, 'results-1'));
      t.is(results, await expectedOrUpdate(expectedPath(example, 'results.yaml'), results));
      t.is(await readResults(join(workspace.root, 'results-2')), results, 'the second render reported different results');
    } finally {
      await workspace.cleanup();
    }
  });

  test(`examples/${example}: kpt fn eval --exec gives the same diff as the pipeline, and a second eval changes nothing`, async (t) => {
    const config = await readRunConfig(example);
    if (!config.execPath) {
      t.fail('.expected/config.yaml names no execPath for the eval run');
      return;
    }
    const workspace = await makeWorkspace(example);
    try {
      const diff = await trackChanges(workspace);
      const evalConfig = {
        execPath: workspacePathFromExpected(example, config.execPath),
        fnConfig: config.fnConfig ? workspacePathFromExpected(example, config.fnConfig) : undefined,
        args: config.args,
      };
      const first = await kptEval(workspace, join(workspace.root, 'results-1'), evalConfig);
      t.is(first.exitCode, config.exitCode, first.stderr);
      const afterFirst = await snapshotTree(workspace.packageDir);

      const second = await kptEval(workspace, join(workspace.root, 'results-2'), evalConfig);
      t.is(second.exitCode, config.exitCode, second.stderr);
      t.deepEqual(await snapshotTree(workspace.packageDir), afterFirst, 'the second eval changed the package');

      // Never written from here: the render test owns diff.patch; the imperative run must agree with it.
      t.is(await diff(), await readFile(expectedPath(example, 'diff.patch'), 'utf8'));
      t.is(await readResults(join(workspace.root, 'results-1')), await readFile(expectedPath(example, 'results.yaml'), 'utf8'));
    } finally {
      await workspace.cleanup();
    }
  });
}

test('the top-level Kptfile makes the repository a package of the examples: kpt pkg tree and kpt fn render . skip node_modules, integrations and sources', async (t) => {
  const examples = listExamples();
  const root = await mkdtemp(join(tmpdir(), 'git-cache-e2e-top-'));
  try {
    await cp(join(REPO_ROOT, 'Kptfile'), join(root, 'Kptfile'));
    await cp(join(REPO_ROOT, '.krmignore'), join(root, '.krmignore'));
    for (const example of examples) {
      await cp(join(EXAMPLES_DIR, example), join(root, 'examples', example), { recursive: true, filter: (source) => !source.split(/[\\/]/).includes('.expected') });
    }
    await symlink(join(REPO_ROOT, 'function'), join(root, 'function'));
    // What a checkout holds beside the examples that kpt must not read: none of it is a valid package resource.
    const decoys = {
      'node_modules/some-dep/.github/workflows/ci.yml': 'on: [push]\njobs: {}\n',
      'node_modules/typescript/lib/messages.json': '{"\u0001": 1}',
      'integrations/helm/example-chart/templates/job.yaml': 'apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}\n',
      'package.json': '{"name": "git-cache"}\n',
    };
    for (const [path, text] of Object.entries(decoys)) {
      await mkdir(join(root, path, '..'), { recursive: true });
      await writeFile(join(root, path), text);
    }

    const tree = await execa(tool('kpt'), ['pkg', 'tree', '.'], { cwd: root, reject: false });
    t.is(tree.exitCode, 0, tree.stderr);
    for (const example of examples) t.regex(tree.stdout, new RegExp(`Package "${example}"`));
    t.notRegex(tree.stdout, /node_modules|integrations|package\.json|\.expected|Kustomization/);

    const render = await execa(tool('kpt'), ['fn', 'render', '--allow-exec', '.'], { cwd: root, reject: false });
    t.is(render.exitCode, 0, render.stderr);
    t.regex(render.stderr, new RegExp(`Successfully executed ${examples.length} function\\(s\\) in ${examples.length + 1} package\\(s\\)`));
    for (const example of examples) {
      t.deepEqual(await snapshotTree(join(root, 'examples', example)), await expectedAfterRender(example), `examples/${example} rendered from the top differs from .expected/diff.patch`);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
