// Helm post-renderer mode, through the real `helm template --post-renderer` (helm v3, built by
// scripts/install-test-tools.sh): what users put in their CI and in `helm upgrade --install`.
import { join } from 'node:path';
import { findTool, testWithTools } from '../../support/tools.js';
import { makeTempDir, removeDir } from '../../support/servers/process.js';
import { FUNCTION_BUNDLE, INTEGRATIONS, assertMatchesExpected, runTool } from './helpers.js';
import { writeFileSync } from 'node:fs';

const HELM_DIR = join(INTEGRATIONS, 'helm');
const CHART = join(HELM_DIR, 'example-chart');
const CONFIG = join(HELM_DIR, 'gitcache.yaml');
const EXPECTED = join(HELM_DIR, '.expected', 'rendered.yaml');

const testHelm = testWithTools(['helm']);

/** `helm template` with the function as post-renderer; helm's own state kept in a temp dir. */
async function helmTemplate(home: string, config: string, extra: readonly string[] = []) {
  const helm = findTool('helm') ?? 'helm';
  return runTool(
    helm,
    ['template', 'demo', CHART, '--namespace', 'shop', ...extra, '--post-renderer', FUNCTION_BUNDLE, '--post-renderer-args', '--config', '--post-renderer-args', config],
    {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: home,
        HELM_CACHE_HOME: join(home, 'cache'),
        HELM_CONFIG_HOME: join(home, 'config'),
        HELM_DATA_HOME: join(home, 'data'),
      },
    },
  );
}

testHelm('helm template --post-renderer inject-git-cache --config renders the chart with the cache injected, as expected', async (t) => {
  const home = makeTempDir('helm-home');
  t.teardown(() => removeDir(home));
  const rendered = await helmTemplate(home, CONFIG);
  t.is(rendered.code, 0, rendered.stderr);
  t.regex(rendered.stdout, /GIT_CACHE_REF/);
  assertMatchesExpected(t, rendered.stdout, EXPECTED);
});

testHelm('helm post-rendering is idempotent: the function run again on helm\'s output gives the same bytes', async (t) => {
  const home = makeTempDir('helm-home');
  t.teardown(() => removeDir(home));
  const once = await helmTemplate(home, CONFIG);
  t.is(once.code, 0, once.stderr);
  const twice = await runTool(FUNCTION_BUNDLE, ['--config', CONFIG], { input: once.stdout, env: { PATH: process.env.PATH ?? '' } });
  t.is(twice.code, 0, twice.stderr);
  t.is(twice.stdout, once.stdout);
});

testHelm('helm post-rendering of a chart whose disabled templates render to nothing still works', async (t) => {
  const home = makeTempDir('helm-home');
  t.teardown(() => removeDir(home));
  // nightlyBuild off: cronjob.yaml renders to an empty document between the others.
  const rendered = await helmTemplate(home, CONFIG, ['--set', 'nightlyBuild.enabled=false', '--set', 'debugPod.enabled=true']);
  t.is(rendered.code, 0, rendered.stderr);
  t.notRegex(rendered.stdout, /kind: CronJob/);
  t.regex(rendered.stdout, /kind: Pod\n/);
});

testHelm('a bad post-renderer config makes helm fail with the function\'s own message', async (t) => {
  const home = makeTempDir('helm-home');
  t.teardown(() => removeDir(home));
  const badConfig = join(home, 'bad-gitcache.yaml');
  writeFileSync(
    badConfig,
    'apiVersion: git-cache.dev/v1alpha1\nkind: GitCache\nmetadata:\n  name: git-cache\nspec:\n  repos:\n  - url: "ext::git-remote-evil"\n',
  );
  const rendered = await helmTemplate(home, badConfig);
  t.not(rendered.code, 0);
  t.regex(rendered.stderr, /post.?render/i);
  t.regex(rendered.stderr, /inject-git-cache: error \(spec\.repos\[0\]\.url\)/);
  t.notRegex(rendered.stdout, /GIT_CACHE_REF/);
});
