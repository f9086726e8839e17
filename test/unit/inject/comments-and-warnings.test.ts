/**
 * Smaller promises of injection: a comment above the pod spec's first key stays with that key, and a Job in
 * legacy-sidecar mode gets a warning because its pods would never complete.
 */
import test from 'ava';
import { SELECTED, gitCache, inject, resourceList, runFunction } from '../../support/krm.js';

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
  const warnings = results.filter((result) => result.severity === 'warning');
  t.is(warnings.length, 1);
  t.is(warnings[0]?.resourceRef?.name, 'build');
  t.regex(warnings[0]?.message ?? '', /never complete; use mode init/);
  const initMode = inject([job], gitCache({ repos: [{ url: 'https://git.example.com/org/app.git' }], mode: 'init' }));
  t.deepEqual(initMode.results.filter((result) => result.severity === 'warning'), []);
});
