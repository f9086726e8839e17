/**
 * Keeper mode (a shared ReadWriteMany PVC, one keeper Deployment as the only writer and credential holder) and
 * the opt-in monitoring resources: what is generated, what selected workloads get, and that re-running replaces
 * rather than duplicates.
 */
import test from 'ava';
import { kubernetesSchemaErrors } from '../../support/k8s-schema.js';
import { SELECTED, at, containersOf, deployment, gitCache, inject, podSpecOf, resourceList, runFunction, type Json } from '../../support/krm.js';

const keeperConfig = (extra: Json = {}) =>
  gitCache(
    {
      repos: [{ url: 'git@github.com:example/lib.git', sshSecretName: 'lib-ssh' }],
      volume: { type: 'pvc', size: '50Gi', storageClassName: 'nfs', claimName: 'shared-git' },
      keeper: { gitDaemon: true },
      ...extra,
    },
    'ci-cache',
  );

const generated = (items: Json[]) => items.filter((item) => at(item, 'metadata', 'annotations', 'git-cache.dev/generated-by') === 'ci-cache');

test('keeper: generates one RWX PVC, a 1-replica Recreate keeper Deployment that alone holds the credentials, its Service and NetworkPolicy', (t) => {
  const { items, outcome } = inject([deployment('web', { labels: SELECTED })], keeperConfig());
  t.is(outcome.exitCode, 0);
  const [pvc, keeper, service, policy, ...rest] = generated(items);
  t.deepEqual(rest, []);
  t.is(policy?.kind, 'NetworkPolicy');
  t.is(pvc?.kind, 'PersistentVolumeClaim');
  t.deepEqual(at(pvc, 'spec', 'accessModes'), ['ReadWriteMany']);
  t.is(at(pvc, 'spec', 'resources', 'requests', 'storage'), '50Gi');
  t.is(at(pvc, 'spec', 'storageClassName'), 'nfs');
  t.is(at(pvc, 'metadata', 'name'), 'shared-git');
  t.is(keeper?.kind, 'Deployment');
  t.is(at(keeper, 'spec', 'replicas'), 1);
  t.is(at(keeper, 'spec', 'strategy', 'type'), 'Recreate');
  t.is(at(keeper, 'metadata', 'labels', 'app.kubernetes.io/managed-by'), 'inject-git-cache');
  t.is(at(keeper, 'metadata', 'labels', 'app.kubernetes.io/component'), 'keeper');
  const keeperPod = podSpecOf(keeper as Json);
  const [agent] = containersOf(keeperPod, 'containers');
  t.deepEqual((agent?.args as string[]).slice(0, 1), ['serve']);
  t.true((agent?.args as string[]).includes('--git-daemon-port'));
  t.true(JSON.stringify(agent?.volumeMounts).includes('/etc/git-cache/credentials/lib/ssh'));
  t.true(JSON.stringify(keeperPod.volumes).includes('"secretName":"lib-ssh"'));
  t.true(JSON.stringify(keeperPod.volumes).includes('"claimName":"shared-git"'));
  t.is(service?.kind, 'Service');
  t.deepEqual(
    (at(service, 'spec', 'ports') as Json[]).map((port) => port.name),
    ['gc-metrics', 'gc-refresh', 'git'],
  );
  t.true((agent?.args as string[]).includes('--refresh-port'), 'the keeper answers refresh requests of other pods on its own port');
  for (const resource of [pvc, keeper, service, policy]) t.deepEqual(kubernetesSchemaErrors(resource), [], String(resource?.kind));
});

test('keeper: a selected workload gets a read-only, credential-free wait init container and the PVC read-only', (t) => {
  const { items } = inject([deployment('web', { labels: SELECTED })], keeperConfig());
  const web = items.find((item) => at(item, 'metadata', 'name') === 'web') as Json;
  const podSpec = podSpecOf(web);
  const [wait] = containersOf(podSpec, 'initContainers');
  t.is(wait?.name, 'git-cache');
  t.is((wait?.args as string[])[0], 'wait');
  t.true((wait?.args as string[]).includes('--timeout'));
  t.false(JSON.stringify(wait).includes('credentials'));
  t.false(JSON.stringify(podSpec).includes('lib-ssh'), 'no Secret reaches the workload');
  t.true((wait?.volumeMounts as Json[]).every((mount) => mount.name !== 'git-cache' || mount.readOnly === true));
  t.deepEqual(at(podSpec, 'volumes', 0), { name: 'git-cache', persistentVolumeClaim: { claimName: 'shared-git', readOnly: true } });
  t.regex(String(at(web, 'spec', 'template', 'metadata', 'annotations', 'git-cache.dev/status')), /"mode":"keeper"/);
  t.deepEqual(kubernetesSchemaErrors(web), []);
});

test('keeper: running again replaces the generated resources in place (byte-identical), and dropping keeper removes them', (t) => {
  const input = resourceList([deployment('web', { labels: SELECTED })], keeperConfig({ monitoring: { serviceMonitor: true } }));
  const first = runFunction(input);
  const second = runFunction(first.stdout);
  t.is(second.stdout, first.stdout);
  t.is(generated(inject([], keeperConfig()).items).length, 4);

  const firstItems = inject([], keeperConfig({ monitoring: { serviceMonitor: true } })).items;
  t.deepEqual(generated(firstItems).map((item) => item.kind), ['PersistentVolumeClaim', 'Deployment', 'Service', 'NetworkPolicy', 'ServiceMonitor']);

  const withoutKeeper = gitCache({ repos: [{ url: 'git@github.com:example/lib.git' }] }, 'ci-cache');
  const reRun = inject(generated(firstItems), withoutKeeper);
  t.deepEqual(generated(reRun.items), [], 'generated resources disappear when the config stops asking for them');
});

test('keeper needs volume.type pvc, and a ServiceMonitor needs the keeper: errors with field paths', (t) => {
  const emptyDir = inject([deployment('web', { labels: SELECTED })], gitCache({ repos: [{ url: 'https://example.com/a.git' }], keeper: {} }));
  t.is(emptyDir.outcome.exitCode, 1);
  t.deepEqual(emptyDir.results.map((result) => result.field?.path), ['spec.keeper.enabled']);
  const monitor = inject([], gitCache({ repos: [{ url: 'https://example.com/a.git' }], monitoring: { serviceMonitor: true } }));
  t.deepEqual(monitor.results.map((result) => result.field?.path), ['spec.monitoring.serviceMonitor']);
});

test('monitoring.podMonitor generates a PodMonitor on the cache containers\' metrics port with the injection selector', (t) => {
  const { items } = inject([deployment('web', { labels: SELECTED })], gitCache({ repos: [{ url: 'https://example.com/a.git' }], monitoring: { podMonitor: true } }, 'ci-cache'));
  const [podMonitor] = generated(items);
  t.is(podMonitor?.kind, 'PodMonitor');
  t.deepEqual(at(podMonitor, 'spec', 'selector'), { matchLabels: SELECTED });
  t.is(at(podMonitor, 'spec', 'podMetricsEndpoints', 0, 'port'), 'gc-metrics');
});
