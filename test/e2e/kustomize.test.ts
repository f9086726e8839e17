/**
 * The examples under standalone `kustomize build --enable-alpha-plugins --enable-exec` with `exec.path`
 * (kubectl's built-in kustomize has no --enable-exec and silently skips exec functions). The container form
 * (`container.image`, run by podman) is in test/e2e/cluster/images.test.ts, with the images.
 * Each build runs twice (the second over the first one's output, with the same transformer) and must give
 * byte-identical output equal to `.expected/kustomize.yaml`.
 */
import { testWithTools } from '../support/tools.js';
import { expectedOrUpdate, expectedPath, kustomizeBuild, listExamples, makeRerunKustomization, makeWorkspace } from '../support/e2e.js';

const kustomizeTest = testWithTools(['kustomize']);

for (const example of listExamples()) {
  // Serial: with UPDATE_EXPECTED=1 this writes .expected/kustomize.yaml, which the container tests compare with.
  kustomizeTest.serial(`examples/${example}: kustomize build --enable-exec gives .expected/kustomize.yaml, and rebuilding its output changes nothing`, async (t) => {
    const workspace = await makeWorkspace(example);
    try {
      const first = await kustomizeBuild(workspace.packageDir);
      t.is(first.exitCode, 0, first.stderr);
      t.regex(first.stdout, /git-cache\.dev\/status/, 'nothing was injected: was the exec function skipped?');

      const rerunDir = await makeRerunKustomization(workspace, workspace.packageDir, first.stdout, example);
      const second = await kustomizeBuild(rerunDir);
      t.is(second.exitCode, 0, second.stderr);
      t.is(second.stdout, first.stdout, 'the second build changed the output');

      t.is(first.stdout, await expectedOrUpdate(expectedPath(example, 'kustomize.yaml'), first.stdout));
    } finally {
      await workspace.cleanup();
    }
  });
}
