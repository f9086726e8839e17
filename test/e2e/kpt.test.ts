/**
 * The examples under real kpt: `kpt fn render --allow-exec` (each Kptfile's exec pipeline) and the imperative
 * `kpt fn eval --exec` (GitCache file or ConfigMap `key=value` form), each run twice on a copy of the example.
 * The second run must leave every file byte-identical, and the package diff and kpt's results must equal the
 * example's `.expected/diff.patch` and `.expected/results.yaml`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { testWithTools } from '../support/tools.js';
import {
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
