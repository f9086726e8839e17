/**
 * The two images of the Dockerfile, as podman built them from this worktree for the test cluster
 * (scripts/test-cluster.sh images: localhost/git-cache:test and localhost/inject-git-cache:test):
 * - the agent image is at most 200 MB, has git, ssh, nss_wrapper and tini, and mirrors a repository when run as
 *   an arbitrary UID (no passwd entry) with a read-only root filesystem;
 * - the function image runs as a KRM function through `kpt fn eval --image` (KPT_FN_RUNTIME=podman) and through
 *   kustomize's container functions (`kubectl kustomize --enable-alpha-plugins`, whose `docker run` the docker
 *   shim hands to podman): for every example, the same package diff and the same output as the exec runs
 *   checked in `.expected/`.
 * The images come with the cluster (built by `up`), hence these tests live with the cluster suites.
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLUSTER, testWithCluster } from '../../support/cluster.js';
import {
  expectedPath,
  kptEvalImage,
  kubectlKustomize,
  listExamples,
  makeRerunKustomization,
  makeWorkspace,
  readRunConfig,
  trackChanges,
  transformerFiles,
  useContainerTransformer,
  workspacePathFromExpected,
} from '../../support/e2e.js';
import { makeUpstream, startGitDaemon, tempDir } from '../../support/git-fixtures.js';

const test = testWithCluster(['kpt', 'podman']);
const AGENT_SIZE_LIMIT = 200_000_000;

async function podman(args: readonly string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const result = await execa('podman', args, { reject: false, timeout: 180_000 });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

test('the agent image is at most 200 MB and holds git, ssh, nss_wrapper, tini and flock', async (t) => {
  const size = Number((await podman(['image', 'inspect', '--format', '{{.Size}}', CLUSTER.agentImage])).stdout.trim());
  t.log(`${CLUSTER.agentImage}: ${size} bytes`);
  t.true(size > 0 && size <= AGENT_SIZE_LIMIT, `the agent image is ${size} bytes`);
  const tools = await podman(['run', '--rm', '--entrypoint', 'sh', CLUSTER.agentImage, '-c', 'git --version && ssh -V 2>&1 && tini --version && command -v flock && ls /usr/lib/x86_64-linux-gnu/libnss_wrapper.so']);
  t.is(tools.exitCode, 0, tools.stderr);
  t.regex(tools.stdout, /git version 2\./);
  t.regex(tools.stdout, /OpenSSH_/);
  t.regex(tools.stdout, /tini version/);
});

test('the agent image mirrors a repository as an arbitrary UID without a passwd entry on a read-only root filesystem', async (t) => {
  const root = tempDir('image-uid');
  const daemon = await startGitDaemon(root);
  try {
    const upstream = makeUpstream(root, 'app', 2);
    const cache = join(root, 'cache');
    mkdirSync(cache, { mode: 0o777 });
    await execa('chmod', ['0777', cache]);
    const run = await podman([
      'run', '--rm', '--network', 'host', '--read-only', '--tmpfs', '/tmp', '--user', '123456:0', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      '-v', `${cache}:/git-cache`, CLUSTER.agentImage, 'sync', '--cache-dir', '/git-cache', '--repo', daemon.url('app.git'),
    ]);
    t.is(run.exitCode, 0, run.stderr);
    const mirrors = (await execa('sh', ['-c', `ls -d ${cache}/*.git`])).stdout.trim().split('\n');
    t.is(mirrors.length, 1);
    const main = upstream.refs().find((line) => line.startsWith('refs/heads/main '))?.split(' ')[1];
    t.is(readFileSync(join(mirrors[0] ?? '', 'packed-refs'), 'utf8').includes(`${main} refs/heads/main`), true, 'the mirror does not hold upstream main');
  } finally {
    await daemon.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

for (const example of listExamples()) {
  test.serial(`examples/${example}: kpt fn eval --image (podman) gives .expected/diff.patch`, async (t) => {
    const config = await readRunConfig(example);
    const workspace = await makeWorkspace(example);
    try {
      const diff = await trackChanges(workspace);
      const outcome = await kptEvalImage(workspace, join(workspace.root, 'results'), {
        image: CLUSTER.functionImage,
        fnConfig: config.fnConfig ? workspacePathFromExpected(example, config.fnConfig) : undefined,
        args: config.args,
      });
      t.is(outcome.exitCode, config.exitCode, outcome.stderr);
      t.is(await diff(), await readFile(expectedPath(example, 'diff.patch'), 'utf8'));
      t.regex(await readFile(join(workspace.root, 'results', 'results.yaml'), 'utf8'), new RegExp(`image: ${CLUSTER.functionImage}`));
    } finally {
      await workspace.cleanup();
    }
  });

  test.serial(`examples/${example}: kubectl kustomize runs the function image through docker (podman) and gives .expected/kustomize.yaml twice`, async (t) => {
    const workspace = await makeWorkspace(example);
    try {
      const transformers = await transformerFiles(workspace.packageDir);
      t.true(transformers.length > 0, 'the kustomization lists no transformers');
      for (const file of transformers) await useContainerTransformer(join(workspace.packageDir, file), CLUSTER.functionImage);
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
        t.is(argv.at(-1), CLUSTER.functionImage, `docker was asked for another image: ${argv.join(' ')}`);
        for (const flag of ['--rm', '-i', '--network', 'none', '--user', 'nobody']) t.true(argv.includes(flag), `docker run without ${flag}`);
      }
    } finally {
      await workspace.cleanup();
    }
  });
}
