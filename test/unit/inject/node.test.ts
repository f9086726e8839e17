/**
 * Node mode (volume.type node): one writer per node. What the function generates (the node DaemonSet, its
 * Service with internalTrafficPolicy Local, the NetworkPolicies, the keeper as the node agents' tier) and what
 * selected workloads get (the hostPath read-only, a credential-free wait init container, env, nothing that
 * writes; no volume at all in namespaces without hostPath), and that re-running and switching away behave.
 */
import test from 'ava';
import { kubernetesSchemaErrors } from '../../support/k8s-schema.js';
import { repoKey } from '../../../src/shared/repo-url.js';
import { SELECTED, at, containersOf, deployment, inject, podSpecOf, resourceList, runFunction, type Json } from '../../support/krm.js';

const REPOS = [
  { url: 'git@github.com:example/monorepo.git', sshSecretName: 'monorepo-ssh' },
  { url: 'https://github.com/example/tools.git', httpsSecretName: 'tools-token' },
];

function nodeConfig(spec: Json = {}, metadata: Json = { name: 'ci-cache', namespace: 'git-cache' }): Json {
  return { apiVersion: 'git-cache.dev/v1alpha1', kind: 'GitCache', metadata, spec: { repos: REPOS, volume: { type: 'node' }, ...spec } };
}

function job(name: string, namespace: string | undefined, podLabels: Record<string, string> = SELECTED): Json {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, ...(namespace ? { namespace } : {}) },
    spec: { template: { metadata: { labels: podLabels }, spec: { restartPolicy: 'Never', containers: [{ name: 'build', image: 'registry.example/build:1' }] } } },
  };
}

const generated = (items: Json[]) => items.filter((item) => at(item, 'metadata', 'annotations', 'git-cache.dev/generated-by') === 'ci-cache');
const byKind = (items: Json[], kind: string, name?: string) => generated(items).filter((item) => item.kind === kind && (name === undefined || at(item, 'metadata', 'name') === name));
const named = (items: Json[], name: string) => items.find((item) => at(item, 'metadata', 'name') === name) as Json;

test('node mode generates a DaemonSet (the only writer and credential holder, on the hostPath), its Service and a NetworkPolicy, all valid', (t) => {
  const { items, outcome } = inject([job('build', 'ci')], nodeConfig());
  t.is(outcome.exitCode, 0);
  t.deepEqual(generated(items).map((item) => `${String(item.kind)}/${String(at(item, 'metadata', 'name'))}`), [
    'DaemonSet/git-cache-node',
    'Service/git-cache-node',
    'NetworkPolicy/git-cache-node',
  ]);
  for (const resource of generated(items)) {
    t.is(at(resource, 'metadata', 'namespace'), 'git-cache');
    t.deepEqual(kubernetesSchemaErrors(resource), [], String(resource.kind));
  }
  const [daemonSet] = byKind(items, 'DaemonSet');
  t.deepEqual(at(daemonSet, 'spec', 'updateStrategy'), { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  const pod = podSpecOf(daemonSet as Json);
  t.deepEqual(pod.tolerations, [{ operator: 'Exists' }], 'by default on every node, tainted or not');
  t.is(pod.automountServiceAccountToken, false);
  t.deepEqual(at(pod, 'volumes', 0), { name: 'git-cache', hostPath: { path: '/var/lib/git-cache', type: 'DirectoryOrCreate' } });
  const [agent, ...otherContainers] = containersOf(pod, 'containers');
  t.deepEqual(otherContainers, []);
  const args = agent?.args as string[];
  t.deepEqual(args.slice(0, 3), ['serve', '--cache-dir', '/git-cache']);
  t.false(args.includes('--git-daemon-port'), 'serve: false: no network serving of mirrors');
  t.false(args.includes('--upstream-cache'), 'no keeper, no tier');
  t.deepEqual(at(agent, 'securityContext', 'capabilities'), { drop: ['ALL'] });
  t.is(at(agent, 'securityContext', 'runAsUser'), 65532);
  t.is(at(agent, 'securityContext', 'readOnlyRootFilesystem'), true);
  t.truthy(agent?.readinessProbe);
  t.truthy(agent?.livenessProbe);
  t.truthy(at(agent, 'resources', 'requests'));
  t.deepEqual((agent?.ports as Json[]).map((port) => port.name), ['gc-metrics', 'gc-refresh']);
  t.true(JSON.stringify(pod.volumes).includes('"secretName":"monorepo-ssh"'));
  t.true(JSON.stringify(pod.volumes).includes('"secretName":"tools-token"'));
  // The kubelet creates a missing hostPath root-owned: the one root step hands the directory to the agent's
  // UID with only CHOWN and FOWNER, and no credential.
  const [owner] = containersOf(pod, 'initContainers');
  t.is(owner?.name, 'git-cache-volume-owner');
  t.deepEqual(owner?.command, ['install', '-d', '-o', '65532', '-g', '65532', '-m', '0755', '/git-cache']);
  t.deepEqual(at(owner, 'securityContext', 'capabilities'), { drop: ['ALL'], add: ['CHOWN', 'FOWNER'] });
  t.is(at(owner, 'securityContext', 'allowPrivilegeEscalation'), false);
  t.is(at(owner, 'securityContext', 'readOnlyRootFilesystem'), true);
  t.deepEqual(owner?.volumeMounts, [{ name: 'git-cache', mountPath: '/git-cache' }]);

  const [service] = byKind(items, 'Service');
  t.is(at(service, 'spec', 'internalTrafficPolicy'), 'Local', 'each pod reaches the agent of its own node');
  t.deepEqual((at(service, 'spec', 'ports') as Json[]).map((port) => port.name), ['gc-metrics', 'gc-refresh']);
});

test('node settings reach the DaemonSet: path, name, tolerations, nodeSelector, priorityClassName, maxUnavailable, serve', (t) => {
  const config = nodeConfig({
    volume: { type: 'node', path: '/mnt/fast/git', size: '200Gi' },
    node: {
      name: 'mirrors',
      serve: true,
      tolerations: [{ key: 'ci', operator: 'Equal', value: 'true', effect: 'NoSchedule' }],
      nodeSelector: { pool: 'ci' },
      priorityClassName: 'system-node-critical',
      maxUnavailable: '20%',
    },
  });
  const { items, outcome } = inject([job('build', 'ci')], config);
  t.is(outcome.exitCode, 0);
  const [daemonSet] = byKind(items, 'DaemonSet', 'mirrors');
  const pod = podSpecOf(daemonSet as Json);
  t.deepEqual(pod.tolerations, [{ key: 'ci', operator: 'Equal', value: 'true', effect: 'NoSchedule' }]);
  t.deepEqual(pod.nodeSelector, { pool: 'ci' });
  t.is(pod.priorityClassName, 'system-node-critical');
  t.is(at(daemonSet, 'spec', 'updateStrategy', 'rollingUpdate', 'maxUnavailable'), '20%');
  t.is(at(pod, 'volumes', 0, 'hostPath', 'path'), '/mnt/fast/git');
  const args = at(pod, 'containers', 0, 'args') as string[];
  t.is(args[args.indexOf('--git-daemon-port') + 1], '9418');
  t.is(args[args.indexOf('--volume-size') + 1], '200Gi');
  const [service] = byKind(items, 'Service', 'mirrors');
  t.deepEqual((at(service, 'spec', 'ports') as Json[]).map((port) => `${String(port.name)}:${String(port.port)}`), ['gc-metrics:9901', 'gc-refresh:9902', 'git:9418']);
  const build = podSpecOf(named(items, 'build'));
  t.deepEqual(at(build, 'volumes', 0), { name: 'git-cache', hostPath: { path: '/mnt/fast/git', type: 'Directory' } });
  t.deepEqual(kubernetesSchemaErrors(daemonSet), []);
});

test('a selected workload gets the hostPath read-only (type Directory), a credential-free read-only wait init container and the env, nothing that writes', (t) => {
  const { items } = inject([job('build', 'ci'), deployment('web', { labels: SELECTED })], nodeConfig({ node: { waitTimeout: '20m' } }));
  for (const name of ['build', 'web']) {
    const workload = named(items, name);
    const pod = podSpecOf(workload);
    t.deepEqual(pod.volumes, [
      { name: 'git-cache', hostPath: { path: '/var/lib/git-cache', type: 'Directory' } },
      { name: 'git-cache-tmp', emptyDir: {} },
    ]);
    const [wait, ...moreInit] = containersOf(pod, 'initContainers');
    t.deepEqual(moreInit, []);
    t.is(wait?.name, 'git-cache');
    const args = wait?.args as string[];
    t.is(args[0], 'wait');
    t.is(args[args.indexOf('--timeout') + 1], '20m');
    t.false(args.includes('--credentials-dir'));
    t.false(JSON.stringify(pod).includes('monorepo-ssh'), 'no Secret reaches the workload');
    t.false(JSON.stringify(pod).includes('tools-token'));
    t.false(JSON.stringify(pod).includes('/etc/git-cache'));
    for (const container of [...containersOf(pod, 'initContainers'), ...containersOf(pod, 'containers')]) {
      for (const mount of (container.volumeMounts as Json[]).filter((entry) => entry.name === 'git-cache')) t.is(mount.readOnly, true, `${String(container.name)} mounts the cache read-only`);
    }
    const [app] = containersOf(pod, 'containers');
    t.deepEqual(
      (app?.env as Json[]).map((variable) => variable.name).filter((name) => /^GIT_CACHE_(DIR|REF)/.test(String(name))),
      ['GIT_CACHE_DIR', 'GIT_CACHE_REF', 'GIT_CACHE_REF_MONOREPO', 'GIT_CACHE_REF_TOOLS'],
    );
    // The node agent of the pod's own node refreshes on request (the Service has internalTrafficPolicy Local).
    t.is((app?.env as Json[]).find((variable) => variable.name === 'GIT_CACHE_ENDPOINT')?.value, 'http://git-cache-node.git-cache.svc:9902');
    t.regex(String(at(workload, 'spec', 'template', 'metadata', 'annotations', 'git-cache.dev/status')), /"mode":"node"/);
    t.deepEqual(kubernetesSchemaErrors(workload), []);
  }
});

test('workloads in node.networkNamespaces get no cache volume, a credential-free init container that waits for the node Service, no endpoint; the NetworkPolicy admits only selected pods of the reader namespaces', (t) => {
  const config = nodeConfig({
    node: { serve: true, networkNamespaces: ['restricted-ci'] },
    networkPolicy: { namespaces: ['other-team'], metricsNamespaces: ['prometheus'] },
  });
  const { items, outcome, results } = inject([job('build', 'ci'), job('lint', 'restricted-ci'), job('nightly', undefined)], config);
  t.is(outcome.exitCode, 0);
  const lint = podSpecOf(named(items, 'lint'));
  t.deepEqual(lint.volumes, [{ name: 'git-cache-tmp', emptyDir: {} }], 'scratch space for the wait container only');
  const [wait] = containersOf(lint, 'initContainers');
  t.is(wait?.name, 'git-cache');
  t.deepEqual((wait?.args as string[]).slice(0, 3), ['wait', '--cache-url', 'git://git-cache-node.git-cache.svc']);
  t.false((wait?.args as string[]).includes('--cache-dir'));
  t.false((wait?.args as string[]).includes('--credentials-dir'));
  t.deepEqual(wait?.volumeMounts, [{ name: 'git-cache-tmp', mountPath: '/tmp' }], 'no cache volume, no Secret');
  t.like(wait?.securityContext, { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
  t.is(at(lint, 'containers', 0, 'volumeMounts'), undefined);
  t.regex(String(at(named(items, 'lint'), 'spec', 'template', 'metadata', 'annotations', 'git-cache.dev/status')), /"mode":"node-network"/);
  t.regex(results.find((result) => result.resourceRef?.name === 'lint')?.message ?? '', /no volume: mirrors are read over the network/);
  // Transparent mode points a plain `git clone URL` at the node Service's git daemon. No GIT_CACHE_ENDPOINT: the
  // refresh port wants the token on the volume this pod does not mount (a fetch of a newer commit refreshes
  // through the git port instead).
  const lintEnv = Object.fromEntries((at(lint, 'containers', 0, 'env') as Json[]).map((variable) => [variable.name, variable.value]));
  const nodeMirror = (url: string) => `git://git-cache-node.git-cache.svc/${repoKey(url)}.git`;
  const insteadOf = Object.entries(lintEnv).filter(([name, value]) => name.startsWith('GIT_CONFIG_KEY_') && String(value).endsWith('.insteadOf'));
  t.true(insteadOf.length > 0);
  for (const [, key] of insteadOf) t.regex(String(key), /^url\.git:\/\/git-cache-node\.git-cache\.svc\/[0-9a-f]{20}\.git\.insteadOf$/);
  t.true(Object.values(lintEnv).includes(`url.${nodeMirror(REPOS[0]?.url ?? '')}.insteadOf`) || Object.values(lintEnv).includes(`url.${nodeMirror(REPOS[1]?.url ?? '')}.insteadOf`));
  t.is(lintEnv.GIT_CACHE_ENDPOINT, undefined);
  t.is(Object.fromEntries((at(podSpecOf(named(items, 'build')), 'containers', 0, 'env') as Json[]).map((variable) => [variable.name, variable.value])).GIT_CACHE_ENDPOINT, 'http://git-cache-node.git-cache.svc:9902', 'hostPath readers keep the endpoint');
  t.is(lintEnv.GIT_CACHE_DIR, undefined, 'no cache directory in the pod');
  t.is(lintEnv.GIT_CONFIG_SYSTEM, undefined);
  t.deepEqual(kubernetesSchemaErrors(named(items, 'lint')), []);

  const [policy] = byKind(items, 'NetworkPolicy', 'git-cache-node');
  t.deepEqual(at(policy, 'spec', 'podSelector'), {
    matchLabels: { 'app.kubernetes.io/name': 'git-cache', 'app.kubernetes.io/instance': 'ci-cache', 'app.kubernetes.io/component': 'node' },
  });
  t.deepEqual(at(policy, 'spec', 'policyTypes'), ['Ingress']);
  t.deepEqual(at(policy, 'spec', 'ingress'), [
    {
      // The Job without a namespace goes where the config's resources go (git-cache).
      from: [
        {
          namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['ci', 'git-cache', 'other-team', 'restricted-ci'] }] },
          podSelector: { matchLabels: SELECTED },
        },
      ],
      // Not gc-metrics: only the monitoring namespaces may scrape it.
      ports: [
        { protocol: 'TCP', port: 'gc-refresh' },
        { protocol: 'TCP', port: 'git' },
      ],
    },
    {
      from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['prometheus'] }] } }],
      ports: [{ protocol: 'TCP', port: 'gc-metrics' }],
    },
  ]);
  t.deepEqual(kubernetesSchemaErrors(policy), []);

  const closed = inject([job('build', 'ci')], nodeConfig({ networkPolicy: { enabled: false } }));
  t.deepEqual(byKind(closed.items, 'NetworkPolicy'), [], 'networkPolicy.enabled: false generates none');
});

test('a network reader selected only through its workload labels gets a warning: its pods would not pass the NetworkPolicy', (t) => {
  const workloadLabelled = { ...job('lint', 'restricted-ci', { app: 'lint' }), metadata: { name: 'lint', namespace: 'restricted-ci', labels: SELECTED } };
  const { results, outcome } = inject([workloadLabelled], nodeConfig({ node: { serve: true, networkNamespaces: ['restricted-ci'] } }));
  t.is(outcome.exitCode, 0);
  const warning = results.find((result) => result.severity === 'warning');
  t.regex(warning?.message ?? '', /put the labels on the pod template/);
  t.is(warning?.field?.path, 'spec.template.metadata.labels');
});

test('with a keeper, node mode makes it the tier: its own ReadWriteOnce claim, its git daemon, node agents fetch from it, and only they may', (t) => {
  const { items, outcome } = inject([job('build', 'ci')], nodeConfig({ keeper: {}, upstreamCache: 'git://git-cache.central.example.com' }));
  t.is(outcome.exitCode, 0);
  t.deepEqual(generated(items).map((item) => `${String(item.kind)}/${String(at(item, 'metadata', 'name'))}`), [
    'PersistentVolumeClaim/git-cache',
    'Deployment/git-cache-keeper',
    'Service/git-cache-keeper',
    'DaemonSet/git-cache-node',
    'Service/git-cache-node',
    'NetworkPolicy/git-cache-keeper',
    'NetworkPolicy/git-cache-node',
  ]);
  const [pvc] = byKind(items, 'PersistentVolumeClaim');
  t.deepEqual(at(pvc, 'spec', 'accessModes'), ['ReadWriteOnce']);
  const keeperArgs = at(podSpecOf(byKind(items, 'Deployment')[0] as Json), 'containers', 0, 'args') as string[];
  t.is(keeperArgs[keeperArgs.indexOf('--git-daemon-port') + 1], '9418');
  t.is(keeperArgs[keeperArgs.indexOf('--upstream-cache') + 1], 'git://git-cache.central.example.com', 'an explicit upstreamCache goes to the top of the chain');
  const nodeArgs = at(podSpecOf(byKind(items, 'DaemonSet')[0] as Json), 'containers', 0, 'args') as string[];
  t.is(nodeArgs[nodeArgs.indexOf('--upstream-cache') + 1], 'git://git-cache-keeper.git-cache.svc');
  t.true(nodeArgs.includes('--credentials-dir'), 'node agents keep the credentials: they fall back to the git host when the tier is down');
  const [keeperPolicy] = byKind(items, 'NetworkPolicy', 'git-cache-keeper');
  t.deepEqual(at(keeperPolicy, 'spec', 'ingress', 0, 'from'), [
    { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'git-cache', 'app.kubernetes.io/instance': 'ci-cache', 'app.kubernetes.io/component': 'node' } } },
  ]);
  t.deepEqual(at(keeperPolicy, 'spec', 'ingress', 0, 'ports'), [
    { protocol: 'TCP', port: 'gc-refresh' },
    { protocol: 'TCP', port: 'git' },
  ]);
  // The workload still reads its node's hostPath, not the keeper's claim.
  t.deepEqual(at(podSpecOf(named(items, 'build')), 'volumes', 0, 'hostPath'), { path: '/var/lib/git-cache', type: 'Directory' });
  for (const resource of generated(items)) t.deepEqual(kubernetesSchemaErrors(resource), [], String(resource.kind));
});

test('the keeper of pvc mode gets a NetworkPolicy too: its git daemon serves only selected pods of the reader namespaces', (t) => {
  const config = { ...nodeConfig({ volume: { type: 'pvc' }, keeper: { gitDaemon: true } }), metadata: { name: 'ci-cache', namespace: 'git-cache' } };
  const { items } = inject([job('build', 'ci')], config);
  const [policy] = byKind(items, 'NetworkPolicy', 'git-cache-keeper');
  t.deepEqual(at(policy, 'spec', 'ingress', 0), {
    from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['ci'] }] }, podSelector: { matchLabels: SELECTED } }],
    ports: [
      { protocol: 'TCP', port: 'gc-refresh' },
      { protocol: 'TCP', port: 'git' },
    ],
  });
  // Without any namespace known, selected pods of the policy's own namespace are admitted.
  const { items: bare } = inject([job('build', undefined)], { ...config, metadata: { name: 'ci-cache' } });
  t.deepEqual(at(byKind(bare, 'NetworkPolicy')[0], 'spec', 'ingress', 0, 'from'), [{ podSelector: { matchLabels: SELECTED } }]);
});

test('spec.upstreamCache reaches the writing agents of the sidecar modes', (t) => {
  for (const mode of ['sidecar', 'init', 'legacy-sidecar']) {
    const { items } = inject([job('build', 'ci')], { ...nodeConfig({ volume: { type: 'emptyDir' }, mode, upstreamCache: 'git://git-cache-keeper.ci.svc:9418' }) });
    const pod = podSpecOf(named(items, 'build'));
    const writers = [...containersOf(pod, 'initContainers'), ...containersOf(pod, 'containers')].filter((container) => String(container.name).startsWith('git-cache'));
    t.true(writers.length > 0);
    for (const writer of writers) {
      const args = writer.args as string[];
      t.is(args[args.indexOf('--upstream-cache') + 1], 'git://git-cache-keeper.ci.svc:9418', `${mode}: ${String(writer.name)}`);
    }
  }
});

test('running twice is byte-identical, and switching away from node mode removes the generated resources and re-injects', (t) => {
  const input = resourceList([job('build', 'ci'), job('lint', 'restricted-ci')], nodeConfig({ node: { serve: true, networkNamespaces: ['restricted-ci'] }, keeper: {} }));
  const first = runFunction(input);
  t.is(first.exitCode, 0);
  const second = runFunction(first.stdout);
  t.is(second.stdout, first.stdout);

  const firstItems = inject([job('build', 'ci')], nodeConfig({ keeper: {} })).items;
  const switched = inject(firstItems, nodeConfig({ volume: { type: 'emptyDir' } }));
  t.is(switched.outcome.exitCode, 0);
  t.deepEqual(generated(switched.items), [], 'DaemonSet, Services, NetworkPolicies and the keeper are gone');
  const build = podSpecOf(named(switched.items, 'build'));
  t.deepEqual(at(build, 'volumes', 0), { name: 'git-cache', emptyDir: {} });
  t.is(at(build, 'initContainers', 0, 'args', 0), 'serve');
  t.regex(String(at(named(switched.items, 'build'), 'spec', 'template', 'metadata', 'annotations', 'git-cache.dev/status')), /"mode":"sidecar"/);
});

test('node mode config errors carry field paths: no namespace, networkNamespaces without serve, node settings or a path outside node mode, a bad tier URL', (t) => {
  const cases: [Json, string, RegExp][] = [
    [nodeConfig({}, { name: 'ci-cache' }), 'metadata.namespace', /namespace/],
    [nodeConfig({ node: { networkNamespaces: ['restricted-ci'] } }), 'spec.node.networkNamespaces', /serve/],
    [nodeConfig({ volume: { type: 'emptyDir' }, node: { serve: true } }), 'spec.node', /volume\.type node only/],
    [nodeConfig({ volume: { type: 'pvc', path: '/var/lib/git-cache' } }), 'spec.volume.path', /node only/],
    [nodeConfig({ volume: { type: 'node', path: 'relative/dir' } }), 'spec.volume.path', /absolute/],
    [nodeConfig({ volume: { type: 'node', path: '/' } }), 'spec.volume.path', /must not be \//],
    [nodeConfig({ upstreamCache: 'file:///srv/cache' }), 'spec.upstreamCache', /git:\/\//],
    [nodeConfig({ upstreamCache: 'git://user@keeper' }), 'spec.upstreamCache', /user name/],
    [nodeConfig({ node: { networkNamespaces: ['Not_A_Namespace'] , serve: true } }), 'spec.node.networkNamespaces[0]', /namespace name/],
    [nodeConfig({ volume: { type: 'emptyDir' }, keeper: {} }), 'spec.keeper.enabled', /emptyDir cannot be shared/],
  ];
  for (const [config, path, message] of cases) {
    const { results, outcome, items } = inject([job('build', 'ci')], config);
    t.is(outcome.exitCode, 1, path);
    t.deepEqual(results.map((result) => result.field?.path), [path], JSON.stringify(results));
    t.regex(results[0]?.message ?? '', message);
    t.is(at(podSpecOf(named(items, 'build')), 'initContainers'), undefined, 'items unchanged');
  }
});

test('monitoring in node mode: a ServiceMonitor on the node Service, a PodMonitor on the node agents', (t) => {
  const { items } = inject([job('build', 'ci')], nodeConfig({ monitoring: { serviceMonitor: true, podMonitor: true } }));
  const [podMonitor] = byKind(items, 'PodMonitor');
  const [serviceMonitor] = byKind(items, 'ServiceMonitor');
  const nodeLabels = { matchLabels: { 'app.kubernetes.io/name': 'git-cache', 'app.kubernetes.io/instance': 'ci-cache', 'app.kubernetes.io/component': 'node' } };
  t.deepEqual(at(podMonitor, 'spec', 'selector'), nodeLabels);
  t.deepEqual(at(serviceMonitor, 'spec', 'selector'), nodeLabels);
});
