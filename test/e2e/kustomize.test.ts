/**
 * The examples under kustomize, both ways a kustomization runs a KRM function:
 * - standalone `kustomize build --enable-alpha-plugins --enable-exec` with `exec.path` (kubectl's built-in
 *   kustomize has no --enable-exec and silently skips exec functions);
 * - `kubectl kustomize --enable-alpha-plugins` with a container transformer (`container.image`). There is no
 *   container engine here, so a stand-in `docker` (test/support/fake-docker/docker) first on PATH runs the
 *   function image's entrypoint; its argv log proves kustomize really went through it.
 * Each build runs twice (the second over the first one's output, with the same transformer) and must give
 * byte-identical output equal to `.expected/kustomize.yaml`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { testWithTools } from '../support/tools.js';
import {
  FUNCTION_IMAGE,
  expectedOrUpdate,
  expectedPath,
  kubectlKustomize,
  kustomizeBuild,
  listExamples,
  makeRerunKustomization,
  makeWorkspace,
  transformerFiles,
  useContainerTransformer,
} from '../support/e2e.js';

const kustomizeTest = testWithTools(['kustomize']);
const kubectlTest = testWithTools(['kubectl']);

for (const example of listExamples()) {
  // Serial: with UPDATE_EXPECTED=1 this writes .expected/kustomize.yaml, which the container test compares with.
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

  kubectlTest(`examples/${example}: kubectl kustomize with the container transformer runs the image's entrypoint and gives .expected/kustomize.yaml twice`, async (t) => {
    const workspace = await makeWorkspace(example);
    try {
      const transformers = await transformerFiles(workspace.packageDir);
      t.true(transformers.length > 0, 'the kustomization lists no transformers');
      for (const file of transformers) await useContainerTransformer(join(workspace.packageDir, file));
      const dockerLog = join(workspace.root, 'docker-argv.log');

      const first = await kubectlKustomize(workspace.packageDir, dockerLog);
      t.is(first.exitCode, 0, first.stderr);
      const rerunDir = await makeRerunKustomization(workspace, workspace.packageDir, first.stdout, example);
      const second = await kubectlKustomize(rerunDir, dockerLog);
      t.is(second.exitCode, 0, second.stderr);
      t.is(second.stdout, first.stdout, 'the second build changed the output');
      t.is(first.stdout, await readFile(expectedPath(example, 'kustomize.yaml'), 'utf8'));

      const calls = (await readFile(dockerLog, 'utf8')).trimEnd().split('\n').map((line) => line.split('\t'));
      t.is(calls.length, 2 * transformers.length, 'kustomize did not call docker once per transformer and build');
      for (const argv of calls) {
        t.is(argv[0], 'run');
        t.is(argv.at(-1), FUNCTION_IMAGE, `docker was asked for another image: ${argv.join(' ')}`);
        for (const flag of ['--rm', '-i', '--network', 'none', '--user', 'nobody']) t.true(argv.includes(flag), `docker run without ${flag}`);
      }
    } finally {
      await workspace.cleanup();
    }
  });
}
