// The single executable (`npm run build:sea`): the function without Node, as Argo CD's repo-server and CI images
// without Node run it. The kustomize exec path runs with a PATH that holds only kustomize and the executable.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { REPO_ROOT, findTool, testWithTools } from '../../support/tools.js';
import { makeTempDir, removeDir } from '../../support/servers/process.js';
import { FUNCTION_BUNDLE, FUNCTION_SEA, INTEGRATIONS, assertMatchesExpected, copyWithoutExecBits, runTool } from './helpers.js';

const supported = process.platform === 'linux' && process.arch === 'x64';

// Built here when missing or older than the bundle, so the suite tests the current source (takes a few seconds).
test.before(() => {
  if (!supported) return;
  if (existsSync(FUNCTION_SEA) && statSync(FUNCTION_SEA).mtimeMs >= statSync(FUNCTION_BUNDLE).mtimeMs) return;
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build-sea.mjs')], { stdio: ['ignore', 'ignore', 'pipe'] });
});

const testSea = supported ? testWithTools(['kustomize']) : test.skip;
const testSeaAlone = supported ? test : test.skip;

/** A PATH directory with only kustomize and inject-git-cache (the SEA): no node, no shell. */
function nodelessPath(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  symlinkSync(findTool('kustomize') ?? 'kustomize', join(bin, 'kustomize'));
  symlinkSync(FUNCTION_SEA, join(bin, 'inject-git-cache'));
  return bin;
}

function onPath(name: string, path: string): boolean {
  return path.split(':').some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const TINY_RESOURCE_LIST = `apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web
    labels:
      git-cache.enabled: "true"
    annotations:
      config.kubernetes.io/index: "0"
  spec:
    selector:
      matchLabels: {app: web}
    template:
      metadata:
        labels: {app: web}
      spec:
        containers:
        - name: app
          image: registry.example.com/web:1.0.0
functionConfig:
  apiVersion: git-cache.dev/v1alpha1
  kind: GitCache
  metadata:
    name: git-cache
  spec:
    repos:
    - url: https://github.com/example-org/platform.git
`;

testSea('kustomize build with exec functions runs the SEA with no node on PATH and renders exactly what the bundle renders', async (t) => {
  const dir = makeTempDir('sea-kustomize');
  t.teardown(() => removeDir(dir));
  copyWithoutExecBits(join(INTEGRATIONS, 'argocd', 'apps'), join(dir, 'apps'));
  const path = nodelessPath(dir);
  t.false(onPath('node', path), 'node is reachable on the PATH under test');
  const rendered = await runTool(join(path, 'kustomize'), ['build', '--enable-alpha-plugins', '--enable-exec', join(dir, 'apps', 'kustomize-exec')], {
    env: { PATH: path, HOME: dir },
  });
  t.is(rendered.code, 0, rendered.stderr);
  // The same expectation the bundle meets in argocd.test.ts.
  assertMatchesExpected(t, rendered.stdout, join(INTEGRATIONS, 'argocd', 'apps', 'kustomize-exec', '.expected', 'rendered.yaml'));
});

testSeaAlone('the SEA and the bundle give byte-identical ResourceLists, and the SEA runs with an empty environment', async (t) => {
  const viaSea = await runTool(FUNCTION_SEA, [], { input: TINY_RESOURCE_LIST, env: {} });
  const viaBundle = await runTool(process.execPath, [FUNCTION_BUNDLE], { input: TINY_RESOURCE_LIST, env: { PATH: process.env.PATH ?? '' } });
  t.is(viaSea.code, 0, viaSea.stderr);
  t.is(viaSea.stderr, '');
  t.regex(viaSea.stdout, /GIT_CACHE_REF/);
  t.is(viaSea.stdout, viaBundle.stdout);
});

testSeaAlone('the SEA reports errors like the bundle: exit 1, results in the ResourceList, no stack trace', async (t) => {
  const bad = TINY_RESOURCE_LIST.replace('https://github.com/example-org/platform.git', '"--upload-pack=touch /tmp/x"');
  const viaSea = await runTool(FUNCTION_SEA, [], { input: bad, env: {} });
  const viaBundle = await runTool(process.execPath, [FUNCTION_BUNDLE], { input: bad, env: { PATH: process.env.PATH ?? '' } });
  t.is(viaSea.code, 1);
  t.regex(viaSea.stdout, /severity: error/);
  t.notRegex(viaSea.stdout + viaSea.stderr, /\n\s+at /);
  t.is(viaSea.stdout, viaBundle.stdout);
});

testSeaAlone('the SEA has the bundle\'s --version and --help, with no experimental-feature warning on stderr', async (t) => {
  for (const flag of ['--version', '--help']) {
    const viaSea = await runTool(FUNCTION_SEA, [flag], { env: {} });
    const viaBundle = await runTool(process.execPath, [FUNCTION_BUNDLE, flag], { env: {} });
    t.is(viaSea.code, 0);
    t.is(viaSea.stdout, viaBundle.stdout);
    t.is(viaSea.stderr, '', `${flag} wrote to stderr`);
  }
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  t.is((await runTool(FUNCTION_SEA, ['--version'], { env: {} })).stdout.trim(), pkg.version);
});
