/**
 * YAML anchors and aliases: a workload whose labels (or whole pod spec) come through an alias is read, selected
 * and injected like a written-out one, and the output means what the input meant: untouched aliases stay as
 * they are, and an aliased node that injection changes is written out where it is used.
 */
import test from 'ava';
import { parse } from 'yaml';
import { runFunction } from '../../support/krm.js';

const input = `apiVersion: config.kubernetes.io/v1
kind: ResourceList
functionConfig:
  apiVersion: git-cache.dev/v1alpha1
  kind: GitCache
  metadata: {name: git-cache}
  spec:
    repos:
    - url: https://git.example.com/org/app.git
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: shared
    labels: &selected
      git-cache.enabled: "true"
      team: platform
  data:
    schedule: "*/5 * * * *"
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web
    labels: *selected
  spec:
    template:
      metadata:
        labels: {app: web}
      spec: &podspec
        containers:
        - name: app
          image: busybox:1.36
- apiVersion: batch/v1
  kind: Job
  metadata:
    name: again
  spec:
    template:
      metadata:
        labels: *selected
      spec: *podspec
`;

interface Item {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: { template?: { spec?: { initContainers?: { name: string }[]; containers: { name: string; env?: { name: string }[] }[] } } };
}

test('a workload selected through an aliased label map is injected; an aliased pod spec is injected per workload, not shared', (t) => {
  const outcome = runFunction(input);
  t.is(outcome.exitCode, 0, outcome.stdout);
  const output = parse(outcome.stdout) as { items: Item[] };
  const [configMap, web, job] = output.items;
  t.deepEqual(configMap?.metadata.labels, { 'git-cache.enabled': 'true', team: 'platform' });
  t.deepEqual(web?.metadata.labels, { 'git-cache.enabled': 'true', team: 'platform' });
  for (const workload of [web, job]) {
    const podSpec = workload?.spec?.template?.spec;
    t.is(podSpec?.initContainers?.[0]?.name, 'git-cache', workload?.metadata.name);
    t.deepEqual(
      podSpec?.containers[0]?.env?.map((variable) => variable.name).filter((name) => /^GIT_CACHE_(DIR|REF)/.test(name)),
      ['GIT_CACHE_DIR', 'GIT_CACHE_REF', 'GIT_CACHE_REF_APP'],
      'env added once, not twice through a shared node',
    );
  }
  // Untouched aliases stay; the aliased pod spec that is changed is written out where it is used.
  t.regex(outcome.stdout, /labels: \*selected/);
  t.notRegex(outcome.stdout, /spec: \*podspec/);
  t.is(runFunction(outcome.stdout).stdout, outcome.stdout, 'idempotent');
});
