/**
 * Smaller promises of injection: a comment above the pod spec's first key stays with that key, a Job in
 * legacy-sidecar mode gets a warning because its pods would never complete, and a run-to-completion workload on
 * a per-pod emptyDir gets a warning because each of its pods mirrors the full history.
 */
import test from 'ava';
import { SELECTED, deployment, gitCache, inject, resourceList, runFunction } from '../../support/krm.js';

test('a comment above containers (the first key of the pod spec) stays above containers, not above the inserted initContainers', (t) => {
  const job = `apiVersion: batch/v1
kind: Job
metadata:
  name: build
  labels: {git-cache.enabled: "true"}
spec:
  template:
    spec:
      # the build container
      containers:
      - name: app
        image: busybox:1.36
      restartPolicy: Never
`;
  const outcome = runFunction(resourceList([job], gitCache({ repos: [{ url: 'https://git.example.com/org/app.git' }] })));
  t.is(outcome.exitCode, 0);
  t.regex(outcome.stdout, /# the build container\n\s+containers:\n/);
  t.notRegex(outcome.stdout, /# the build container\n\s+initContainers:/);
});

test('legacy-sidecar on a Job or CronJob warns that its pods never complete; on a Deployment it does not', (t) => {
  const job = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'build', labels: SELECTED }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'app', image: 'busybox:1.36' }] } } } };
  const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', labels: SELECTED }, spec: { template: { spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] } } } };
  const config = gitCache({ repos: [{ url: 'https://git.example.com/org/app.git' }], mode: 'legacy-sidecar' });
  const { results, outcome } = inject([job, deployment], config);
  t.is(outcome.exitCode, 0);
  const warnings = results.filter((result) => result.severity === 'warning' && /never complete/.test(result.message));
  t.is(warnings.length, 1);
  t.is(warnings[0]?.resourceRef?.name, 'build');
  t.regex(warnings[0]?.message ?? '', /never complete; use mode init/);
  const initMode = inject([job], gitCache({ repos: [{ url: 'https://git.example.com/org/app.git' }], mode: 'init' }));
  t.deepEqual(initMode.results.filter((result) => result.severity === 'warning' && /never complete/.test(result.message)), []);
});

const oneShot = (kind: string, restartPolicy: string): Record<string, unknown> => {
  const podSpec = { restartPolicy, containers: [{ name: 'app', image: 'busybox:1.36' }] };
  const template = { metadata: { labels: SELECTED }, spec: podSpec };
  if (kind === 'Pod') return { apiVersion: 'v1', kind, metadata: { name: `one-${restartPolicy.toLowerCase()}`, labels: SELECTED }, spec: podSpec };
  if (kind === 'CronJob') return { apiVersion: 'batch/v1', kind, metadata: { name: 'nightly' }, spec: { schedule: '@daily', jobTemplate: { spec: { template } } } };
  return { apiVersion: 'batch/v1', kind, metadata: { name: 'build' }, spec: { template } };
};

test('a run-to-completion workload on a per-pod emptyDir gets a warning that each run mirrors the full history, naming node and keeper mode', (t) => {
  const repos = [{ url: 'https://git.example.com/org/app.git' }];
  const items = [oneShot('Job', 'Never'), oneShot('CronJob', 'OnFailure'), oneShot('Pod', 'Never'), oneShot('Pod', 'OnFailure'), oneShot('Pod', 'Always'), deployment('web', { labels: SELECTED })];
  for (const mode of ['sidecar', 'init', 'legacy-sidecar']) {
    const { results, outcome } = inject(items, gitCache({ repos, mode }));
    t.is(outcome.exitCode, 0);
    const warned = results.filter((result) => result.severity === 'warning' && /mirrors the full history/.test(result.message));
    t.deepEqual(
      warned.map((result) => result.resourceRef?.name),
      ['build', 'nightly', 'one-never', 'one-onfailure'],
      `${mode}: Jobs, CronJobs and bare Pods that do not restart; not a restarting Pod or a Deployment`,
    );
    for (const warning of warned) {
      t.regex(warning.message, /volume\.type node/);
      t.regex(warning.message, /keeper/);
      t.regex(warning.field?.path ?? '', /spec\.volumes$/);
    }
  }
  for (const shared of [
    { volume: { type: 'pvc' } },
    { volume: { type: 'pvc' }, keeper: {} },
  ]) {
    const { results } = inject(items, gitCache({ repos, ...shared }));
    t.deepEqual(results.filter((result) => /mirrors the full history/.test(result.message)), [], JSON.stringify(shared));
  }
  const node = inject(items, { ...gitCache({ repos, volume: { type: 'node' } }), metadata: { name: 'git-cache', namespace: 'git-cache' } });
  t.deepEqual(node.results.filter((result) => /mirrors the full history/.test(result.message)), [], 'node mode');
});
