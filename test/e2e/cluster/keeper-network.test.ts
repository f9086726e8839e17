/**
 * The keeper's git daemon on the real cluster (scripts/test-cluster.sh), under the NetworkPolicy the function
 * generates for it, ENFORCED (kube-router's firewall): no unselected pod reads a mirror over the network.
 * The function renders a GitCache with `keeper.gitDaemon: true` (the keeper Service gets the `git` port) over a
 * selected Job; the keeper Deployment mirrors a repository from a real git daemon on the host's bridge address
 * into a PVC bound to a host directory, and the Job's credential-free init container waits for the mirror. Then
 * pods probe the keeper Service's git, gc-refresh and gc-metrics ports (and read the mirror over git://):
 * - a selected pod of the keeper's namespace (a reader) connects to git and gc-refresh and reads the mirror, but
 *   not the metrics port;
 * - an unselected pod of the same namespace connects to nothing and cannot read the mirror;
 * - a selected pod of another namespace (no reader namespace) connects to nothing;
 * - a pod of the monitoring namespace (`networkPolicy.metricsNamespaces`) connects to the metrics port only.
 * The control: once the policy is deleted, the unselected pod connects to every port and reads the mirror, so
 * the refusals are the policy's doing.
 */
import { rmSync } from 'node:fs';
import { gitDaemonBaseUrl, serviceHost } from '../../../src/shared/names.js';
import { repoKey, tierMirrorUrl } from '../../../src/shared/repo-url.js';
import {
  CLUSTER,
  REFUSED,
  RESTRICTED_POD_SECURITY,
  agentServiceTargets,
  RESTRICTED_CONTAINER_SECURITY,
  apply,
  clusterNamespace,
  connectionProbePod,
  hostVolume,
  kubectlOk,
  persistentVolume,
  probeConnections,
  renderWithFunction,
  scriptContainer,
  testWithCluster,
  waitForDeploymentAvailable,
  waitForJobComplete,
  type Manifest,
} from '../../support/cluster.js';
import { makeUpstream, startGitDaemon, tempDir, type GitDaemon, type UpstreamRepo } from '../../support/git-fixtures.js';

const test = testWithCluster();
const readers = clusterNamespace(test, 'keeper-net');
const other = clusterNamespace(test, 'keeper-other');
const monitoring = clusterNamespace(test, 'keeper-mon');

const SELECTED = { 'git-cache.enabled': 'true' };
const KEEPER = 'git-cache-keeper';
const STORAGE_CLASS = 'git-cache-test-hostdir';
const CLAIM = 'keeper-mirrors';

let root = '';
let daemon: GitDaemon | undefined;
let upstream: UpstreamRepo | undefined;

test.before(async () => {
  root = tempDir('cluster-keeper-network');
  upstream = makeUpstream(root, 'app', 3);
  daemon = await startGitDaemon(root, undefined, CLUSTER.hostIP);
});

test.after.always(async () => {
  await daemon?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
  await kubectlOk(['delete', 'persistentvolume', `${readers.name}-mirrors`, '--wait=false', '--ignore-not-found']).catch(() => undefined);
});

/** A selected Job: it makes the keeper's namespace a reader namespace, and its init container waits for the mirror. */
function readerJob(): Manifest {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'reader', labels: SELECTED },
    spec: {
      backoffLimit: 0,
      template: {
        metadata: { labels: SELECTED },
        spec: {
          restartPolicy: 'Never',
          securityContext: RESTRICTED_POD_SECURITY,
          containers: [scriptContainer('app', 'git --git-dir="$GIT_CACHE_REF" rev-parse refs/heads/main', { securityContext: RESTRICTED_CONTAINER_SECURITY })],
        },
      },
    },
  };
}

test.serial('the keeper git daemon under its enforced NetworkPolicy: selected readers of its namespace read the mirror, unselected pods and other namespaces reach nothing, the monitoring namespace the metrics port only; without the policy the unselected pod reads', async (t) => {
  if (!daemon || !upstream) return t.fail('fixture missing');
  const url = daemon.url('app.git');
  const main = upstream.refs().find((line) => line.startsWith('refs/heads/main '))?.split(' ')[1];
  const pv = persistentVolume({ name: `${readers.name}-mirrors`, hostPath: hostVolume('keeper-network'), claimName: CLAIM, namespace: readers.name, storageClassName: STORAGE_CLASS });
  await kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(pv) });
  const config: Manifest = {
    apiVersion: 'git-cache.dev/v1alpha1',
    kind: 'GitCache',
    metadata: { name: 'git-cache' },
    spec: {
      repos: [{ url }],
      image: CLUSTER.agentImage,
      imagePullPolicy: 'Never',
      volume: { type: 'pvc', claimName: CLAIM, size: '1Gi', storageClassName: STORAGE_CLASS },
      keeper: { gitDaemon: true, waitTimeout: '3m' },
      networkPolicy: { metricsNamespaces: [monitoring.name] },
    },
  };
  const rendered = renderWithFunction([readerJob()], config);
  t.deepEqual(rendered.map((item) => `${String(item.kind)}/${String((item.metadata as { name: string }).name)}`).sort(), [
    `Deployment/${KEEPER}`,
    'Job/reader',
    `NetworkPolicy/${KEEPER}`,
    `PersistentVolumeClaim/${CLAIM}`,
    `Service/${KEEPER}`,
  ]);
  const { warnings } = await apply(rendered, readers.name);
  t.deepEqual(warnings, []);
  await waitForDeploymentAvailable(KEEPER, readers.name);
  await waitForJobComplete('reader', readers.name);

  const targets = await agentServiceTargets(t, KEEPER, readers.name);
  // Where the keeper's git daemon serves the mirror (what node agents use as their tier): git://<svc>/<key>.git.
  const readUrl = tierMirrorUrl(gitDaemonBaseUrl(serviceHost(KEEPER, readers.name)), repoKey(url));

  const [selected, unselected, otherNamespace, monitor] = await Promise.all([
    probeConnections(t, connectionProbePod({ name: 'probe-selected', namespace: readers.name, labels: SELECTED, targets, seconds: 10, readUrl })),
    probeConnections(t, connectionProbePod({ name: 'probe-unselected', namespace: readers.name, labels: { app: 'other' }, targets, seconds: 10, readUrl })),
    probeConnections(t, connectionProbePod({ name: 'probe-other', namespace: other.name, labels: SELECTED, targets, seconds: 10, readUrl })),
    probeConnections(t, connectionProbePod({ name: 'probe-monitoring', namespace: monitoring.name, labels: SELECTED, targets, seconds: 10 })),
  ]);
  t.like(selected, { git: 'connected', 'gc-refresh': 'connected', read: main }, 'a selected pod of the keeper namespace');
  t.regex(selected['gc-metrics'] ?? '', REFUSED, 'a reader reached the metrics port');
  for (const [who, facts] of [
    ['an unselected pod of the keeper namespace', unselected],
    ['a selected pod of a namespace that is no reader', otherNamespace],
  ] as const) {
    for (const port of ['git', 'gc-refresh', 'gc-metrics']) t.regex(facts[port] ?? '', REFUSED, `${who} reached ${port}`);
    t.is(facts.read, 'failed', `${who} read the mirror`);
  }
  t.is(monitor['gc-metrics'], 'connected', 'the monitoring namespace scrapes the metrics port');
  t.regex(monitor.git ?? '', REFUSED, 'the monitoring namespace reached the git daemon');
  t.regex(monitor['gc-refresh'] ?? '', REFUSED, 'the monitoring namespace reached the refresh port');

  // The control: without the policy the same unselected pod connects and reads (the enforcer refused it before).
  await kubectlOk(['delete', 'networkpolicy', KEEPER], { namespace: readers.name });
  const control = await probeConnections(t, connectionProbePod({ name: 'probe-control', namespace: readers.name, labels: { app: 'other' }, targets, seconds: 30, readUrl }));
  t.like(control, { git: 'connected', 'gc-refresh': 'connected', 'gc-metrics': 'connected', read: main }, 'without the policy');
});
