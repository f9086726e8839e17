import test from 'ava';
import { selectorMatches } from '../../../src/inject/selector.js';
import { BUILTIN_WORKLOADS, apiGroup, workloadShape } from '../../../src/inject/workloads.js';

const labels = { app: 'web', tier: 'frontend', empty: '' };

test('matchLabels needs every label with its exact value', (t) => {
  t.true(selectorMatches({ matchLabels: { app: 'web' } }, labels));
  t.true(selectorMatches({ matchLabels: { app: 'web', tier: 'frontend' } }, labels));
  t.false(selectorMatches({ matchLabels: { app: 'web', tier: 'backend' } }, labels));
  t.false(selectorMatches({ matchLabels: { missing: '' } }, labels));
  t.true(selectorMatches({ matchLabels: { empty: '' } }, labels));
});

test('an empty selector matches everything, as in Kubernetes', (t) => {
  t.true(selectorMatches({}, {}));
  t.true(selectorMatches({ matchLabels: {}, matchExpressions: [] }, labels));
});

test('In needs the label present with one of the values', (t) => {
  t.true(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend', 'frontend'] }] }, labels));
  t.false(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend'] }] }, labels));
  t.false(selectorMatches({ matchExpressions: [{ key: 'missing', operator: 'In', values: [''] }] }, labels));
  t.true(selectorMatches({ matchExpressions: [{ key: 'empty', operator: 'In', values: [''] }] }, labels));
});

test('NotIn matches an absent label or one with another value', (t) => {
  t.true(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['backend'] }] }, labels));
  t.false(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['frontend'] }] }, labels));
  t.true(selectorMatches({ matchExpressions: [{ key: 'missing', operator: 'NotIn', values: ['x'] }] }, labels));
});

test('Exists and DoesNotExist look at presence only', (t) => {
  t.true(selectorMatches({ matchExpressions: [{ key: 'empty', operator: 'Exists' }] }, labels));
  t.false(selectorMatches({ matchExpressions: [{ key: 'missing', operator: 'Exists' }] }, labels));
  t.true(selectorMatches({ matchExpressions: [{ key: 'missing', operator: 'DoesNotExist' }] }, labels));
  t.false(selectorMatches({ matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, labels));
});

test('matchLabels and every expression must all hold', (t) => {
  const selector = {
    matchLabels: { app: 'web' },
    matchExpressions: [
      { key: 'tier', operator: 'In' as const, values: ['frontend'] },
      { key: 'canary', operator: 'DoesNotExist' as const },
    ],
  };
  t.true(selectorMatches(selector, labels));
  t.false(selectorMatches(selector, { ...labels, canary: 'true' }));
  t.false(selectorMatches(selector, { ...labels, app: 'api' }));
});

test('a label named like an Object.prototype property is not taken as present', (t) => {
  t.false(selectorMatches({ matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, {}));
  t.false(selectorMatches({ matchLabels: { toString: 'x' } }, {}));
});

const BUILTINS: readonly [string, string, readonly string[]][] = [
  ['v1', 'Pod', []],
  ['apps/v1', 'Deployment', ['spec', 'template']],
  ['apps/v1', 'StatefulSet', ['spec', 'template']],
  ['apps/v1', 'DaemonSet', ['spec', 'template']],
  ['apps/v1', 'ReplicaSet', ['spec', 'template']],
  ['v1', 'ReplicationController', ['spec', 'template']],
  ['batch/v1', 'Job', ['spec', 'template']],
  ['batch/v1', 'CronJob', ['spec', 'jobTemplate', 'spec', 'template']],
];

for (const [apiVersion, kind, path] of BUILTINS) {
  test(`${apiVersion} ${kind} is a workload with its pod template at ${path.join('.') || 'the resource itself'}`, (t) => {
    t.deepEqual(workloadShape(apiVersion, kind, [])?.podTemplatePath, path);
  });
}

test('every built-in workload kind is covered', (t) => {
  t.deepEqual(BUILTIN_WORKLOADS.map((entry) => entry.kind).sort(), BUILTINS.map(([, kind]) => kind).sort());
});

test('a built-in kind name from another API group is not a workload', (t) => {
  t.is(workloadShape('example.com/v1', 'Deployment', []), undefined);
  t.is(workloadShape('apps/v1', 'Pod', []), undefined);
  t.is(workloadShape('batch/v1', 'Deployment', []), undefined);
  t.is(workloadShape('serving.knative.dev/v1', 'Service', []), undefined);
  t.is(workloadShape('v1', 'Service', []), undefined);
  t.is(workloadShape('v1', 'ConfigMap', []), undefined);
});

test('legacy extensions and apps beta versions are still workloads', (t) => {
  t.deepEqual(workloadShape('extensions/v1beta1', 'Deployment', [])?.podTemplatePath, ['spec', 'template']);
  t.deepEqual(workloadShape('apps/v1beta2', 'StatefulSet', [])?.podTemplatePath, ['spec', 'template']);
  t.deepEqual(workloadShape('batch/v1beta1', 'CronJob', [])?.podTemplatePath, ['spec', 'jobTemplate', 'spec', 'template']);
});

test('custom workload kinds (Argo Rollout, Knative Service) use their configured pod template path', (t) => {
  const custom = [
    { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', podTemplatePath: 'spec/template' },
    { apiVersion: 'serving.knative.dev/v1', kind: 'Service', podTemplatePath: 'spec/template' },
    { kind: 'Workflow', podTemplatePath: 'spec/podSpecPatch/template' },
  ];
  t.deepEqual(workloadShape('argoproj.io/v1alpha1', 'Rollout', custom)?.podTemplatePath, ['spec', 'template']);
  t.deepEqual(workloadShape('serving.knative.dev/v1', 'Service', custom)?.podTemplatePath, ['spec', 'template']);
  t.is(workloadShape('v1', 'Service', custom), undefined, 'a core Service stays a non-workload');
  t.is(workloadShape('argoproj.io/v1beta1', 'Rollout', custom), undefined, 'apiVersion restricts the match');
  t.deepEqual(workloadShape('any.example/v9', 'Workflow', custom)?.podTemplatePath, ['spec', 'podSpecPatch', 'template']);
});

test('apiGroup is the part before the slash, empty for the core group', (t) => {
  t.is(apiGroup('v1'), '');
  t.is(apiGroup('apps/v1'), 'apps');
  t.is(apiGroup('serving.knative.dev/v1'), 'serving.knative.dev');
});
