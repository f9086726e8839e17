/**
 * What a git-cache.dev/status annotation may make the function remove: only names the function itself injects
 * (src/shared/names.ts isInjected*Name), whatever the annotation claims. Every name injection adds, in every
 * mode, is one of those, so a re-run always removes its own injection and nothing of the user's.
 */
import test from 'ava';
import { loadConfig } from '../../../src/config/load.js';
import { buildAdditions, type InjectionMode } from '../../../src/inject/additions.js';
import { foreignNames } from '../../../src/inject/pod-template.js';
import { isInjectedContainerName, isInjectedEnvName, isInjectedVolumeName } from '../../../src/shared/names.js';
import { gitCache } from '../../support/krm.js';

const REPOS = [{ url: 'https://git.example.com/org/app.git', httpsSecretName: 'app-https' }, { url: 'git@git.example.com:org/lib.git', sshSecretName: 'lib-ssh' }];

const CONFIGS: { spec: Record<string, unknown>; modes: InjectionMode[] }[] = [
  { spec: { repos: REPOS, mode: 'sidecar' }, modes: ['sidecar'] },
  { spec: { repos: REPOS, mode: 'init' }, modes: ['init'] },
  { spec: { repos: REPOS, mode: 'legacy-sidecar' }, modes: ['legacy-sidecar'] },
  { spec: { repos: REPOS, volume: { type: 'pvc', claimName: 'mirrors' }, keeper: { enabled: true } }, modes: ['keeper'] },
  { spec: { repos: REPOS, volume: { type: 'node' } }, modes: ['node'] },
  { spec: { repos: REPOS, volume: { type: 'node' }, node: { serve: true } }, modes: ['node-network'] },
];

for (const { spec, modes } of CONFIGS) {
  for (const mode of modes) {
    test(`every name injection adds in ${mode} mode is one the status may remove`, (t) => {
      const config = gitCache(spec);
      (config.metadata as Record<string, unknown>).namespace = 'git-cache';
      const loaded = loadConfig(config);
      if (!loaded.ok) return t.fail(JSON.stringify(loaded.results));
      const additions = buildAdditions(loaded.config, loaded.config.repos, mode);
      for (const container of [...additions.initContainers, ...additions.containers]) t.true(isInjectedContainerName(container.name), container.name);
      for (const volume of additions.volumes) t.true(isInjectedVolumeName(volume.name), volume.name);
      for (const variable of additions.appEnv) t.true(isInjectedEnvName(variable.name), variable.name);
      if (additions.appMount) t.true(isInjectedVolumeName(additions.appMount.name));
      t.true(additions.appEnv.length > 0 || mode === 'node-network' || additions.initContainers.length > 0);
    });
  }
}

test('the predicates: git-cache* containers and volumes, GIT_CACHE_* and git config env vars, nothing else', (t) => {
  for (const name of ['git-cache', 'git-cache-init', 'git-cache-tmp', 'git-cache-ssh-lib']) {
    t.true(isInjectedContainerName(name) && isInjectedVolumeName(name), name);
  }
  for (const name of ['app', 'migrate', 'data', 'my-git-cache', 'Git-Cache']) t.false(isInjectedContainerName(name) || isInjectedVolumeName(name), name);
  for (const name of ['GIT_CACHE_DIR', 'GIT_CACHE_REF', 'GIT_CACHE_REF_APP', 'GIT_CACHE_ENDPOINT', 'GIT_CONFIG_COUNT', 'GIT_CONFIG_KEY_0', 'GIT_CONFIG_VALUE_12']) {
    t.true(isInjectedEnvName(name), name);
  }
  for (const name of ['DATABASE_URL', 'HOME', 'GIT_CONFIG_KEY_', 'GIT_CONFIG_KEY_x', 'GIT_CONFIG_GLOBAL', 'GIT_DIR', 'git_cache_dir']) t.false(isInjectedEnvName(name), name);
});

test('a status annotation naming the user\'s own things: those names are foreign, kept and reported', (t) => {
  t.deepEqual(
    foreignNames({ version: '0.1.0', mode: 'sidecar', repos: [], initContainers: ['git-cache', 'migrate'], containers: ['app'], volumes: ['git-cache', 'data'], env: ['GIT_CACHE_DIR', 'DATABASE_URL'] }),
    ['migrate', 'app', 'data', 'DATABASE_URL'],
  );
});
