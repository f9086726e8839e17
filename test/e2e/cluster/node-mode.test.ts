/**
 * Node mode on the real cluster (scripts/test-cluster.sh): the function renders a GitCache with
 * `volume.type: node` and a private ssh upstream (a real OpenSSH server on the host's bridge address, key auth),
 * the kubelet runs the node DaemonSet from the agent image podman built from this worktree, and:
 * - 20 one-shot Jobs (in a namespace with Pod Security "privileged", as hostPath needs) clone from the node cache:
 *   each clone borrows from the node's mirror (alternates), no Job pod holds a credential (no Secret volume, no
 *   /etc/git-cache) or can write the cache (its write fails), the app runs as a UID with no route to the
 *   upstream, and the upstream's log shows exactly one clone (the node agent's; refreshes are hourly here);
 * - a pod in a namespace labelled `pod-security.kubernetes.io/enforce: restricted` (node.networkNamespaces) is
 *   admitted without warnings, its credential-free init container waits until the node Service serves the
 *   mirror to it (`git-cache wait --cache-url`), and a plain `git clone <ssh URL>` in it reads the node Service
 *   (transparent mode rewrites the URL to git://, internalTrafficPolicy: Local), with no key and no contact with
 *   the upstream;
 * - the generated NetworkPolicy, enforced (the test cluster runs kube-router's firewall, scripts/test-cluster.sh):
 *   a selected pod of the reader namespace connects to the node Service's git and refresh ports but not to its
 *   metrics port; an unselected pod of that namespace connects to none; a selected pod of another namespace,
 *   here the monitoring namespace (`networkPolicy.metricsNamespaces`), connects to the metrics port only. The
 *   control: once the policy is deleted, the unselected pod connects, so the refusals are the policy's doing.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { mirrorPath } from '../../../src/shared/repo-url.js';
import {
  CLUSTER,
  REFUSED,
  RESTRICTED_POD_SECURITY,
  agentServiceTargets,
  apply,
  clusterNamespace,
  connectionProbePod,
  getJson,
  kubectl,
  kubectlOk,
  logFacts,
  logs,
  probeConnections,
  renderWithFunction,
  testWithCluster,
  waitForJobComplete,
  waitForPodSucceeded,
  type Manifest,
} from '../../support/cluster.js';
import { makeTempDir, removeDir } from '../../support/servers/process.js';
import { startSshd, type SshServer } from '../../support/servers/sshd.js';
import { createUpstream, type Upstream } from '../../support/servers/upstream.js';

const test = testWithCluster(['sshd', 'ssh-keygen']);
const system = clusterNamespace(test, 'node-sys', { enforce: 'privileged', warn: 'privileged' });
const ci = clusterNamespace(test, 'node-ci', { enforce: 'privileged', warn: 'privileged' });
const restricted = clusterNamespace(test, 'node-restricted');
const other = clusterNamespace(test, 'node-other');

const JOBS = 20;
const SELECTED = { 'git-cache.enabled': 'true' };
const RESTRICTED_CONTAINER = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true };

let server: SshServer | undefined;
let upstream: Upstream | undefined;
let dir = '';
let nodePath = '';

test.before(async () => {
  server = await startSshd(CLUSTER.hostIP);
  dir = makeTempDir('cluster-node');
  upstream = createUpstream(dir, 'app');
  nodePath = join(CLUSTER.volumesDir, `node-mode-${process.pid}`);
});

test.after.always(async () => {
  await server?.stop();
  if (dir) removeDir(dir);
  if (nodePath) rmSync(nodePath, { recursive: true, force: true });
});

const acceptedLogins = (): number => (server?.log().match(/Accepted publickey/g) ?? []).length;


// The mirror belongs to the node agent's UID 65532; git wants another UID to name it safe (a local clone's
// upload-pack reads only the global config for that).
const JOB_SCRIPT = `
export HOME=/work
git config --global --add safe.directory '*'
echo "uid=$(id -u)"
if touch "$GIT_CACHE_DIR/probe" 2>/dev/null; then echo cache_write=allowed; else echo cache_write=refused; fi
if [ -e /etc/git-cache ]; then echo credentials=present; else echo credentials=absent; fi
echo "upstream=$(node -e 'const s = require("net").connect(Number(process.argv[1]), process.argv[2]); s.on("connect", () => { console.log("connected"); process.exit(0); }); s.on("error", (e) => { console.log(e.code); process.exit(0); });' "$UPSTREAM_PORT" "$UPSTREAM_HOST")"
git clone -q --shared "$GIT_CACHE_REF" /work/app && echo "clone_head=$(git -C /work/app rev-parse HEAD)"
echo "alternates=$(cat /work/app/.git/objects/info/alternates)"
`;

function job(index: number): Manifest {
  const uid = CLUSTER.noUpstreamUids.first + 100 + index;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: `build-${index}`, namespace: ci.name },
    spec: {
      backoffLimit: 0,
      template: {
        metadata: { labels: SELECTED },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'build',
              image: CLUSTER.agentImage,
              imagePullPolicy: 'Never',
              command: ['sh', '-c', JOB_SCRIPT],
              // Where the private upstream listens (ssh would fail earlier: this UID has no passwd entry).
              env: [
                { name: 'UPSTREAM_HOST', value: CLUSTER.hostIP },
                { name: 'UPSTREAM_PORT', value: String(server?.port ?? 0) },
              ],
              securityContext: { runAsUser: uid, runAsGroup: uid, ...RESTRICTED_CONTAINER },
              volumeMounts: [{ name: 'work', mountPath: '/work' }],
            },
          ],
          volumes: [{ name: 'work', emptyDir: {} }],
        },
      },
    },
  };
}

/**
 * A pod that clones from the node Service over git:// (no volume: restricted Pod Security); `script` replaces
 * the clone (with $URL set).
 */
function networkReader(name: string, namespace: string, labels: Record<string, string>, url: string, script?: string): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels },
    spec: {
      restartPolicy: 'Never',
      securityContext: RESTRICTED_POD_SECURITY,
      containers: [
        {
          name: 'lint',
          image: CLUSTER.agentImage,
          imagePullPolicy: 'Never',
          command: ['sh', '-c', `export HOME=/work; ${script ?? 'git clone -q "$URL" /work/app && echo "clone_head=$(git -C /work/app rev-parse HEAD)"'}`],
          env: [{ name: 'URL', value: url }],
          securityContext: RESTRICTED_CONTAINER,
          volumeMounts: [{ name: 'work', mountPath: '/work' }],
        },
      ],
      volumes: [{ name: 'work', emptyDir: {} }],
    },
  };
}

function byNamespace(items: readonly Manifest[], namespace: string): Manifest[] {
  return items.filter((item) => (item.metadata as { namespace?: string }).namespace === namespace);
}

test.serial('node mode: a DaemonSet on the hostPath, 20 one-shot Jobs borrowing from it without credentials, one clone at the private upstream', async (t) => {
  if (!server || !upstream) return t.fail('fixture missing');
  const url = server.url(upstream.path);
  const main = upstream.refs().split('\n').find((line) => line.endsWith(' refs/heads/main'))?.split(' ')[0];
  const config: Manifest = {
    apiVersion: 'git-cache.dev/v1alpha1',
    kind: 'GitCache',
    metadata: { name: 'git-cache', namespace: system.name },
    spec: {
      repos: [{ url, sshSecretName: 'app-ssh' }],
      image: CLUSTER.agentImage,
      imagePullPolicy: 'Never',
      refreshInterval: '1h',
      volume: { type: 'node', path: nodePath },
      node: { serve: true, networkNamespaces: [restricted.name] },
      networkPolicy: { metricsNamespaces: [other.name] },
    },
  };
  const secret: Manifest = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'app-ssh', namespace: system.name },
    stringData: { 'ssh-privatekey': server.clientPrivateKey, known_hosts: server.knownHosts },
  };
  const jobs = Array.from({ length: JOBS }, (_, index) => job(index));
  // The repo's own URL: transparent mode sends it to the node Service's git daemon (this pod has no ssh key).
  const reader = networkReader('lint', restricted.name, SELECTED, url);
  const rendered = renderWithFunction([secret, ...jobs, reader], config);

  // The node DaemonSet first: its agent clones once, with the only credentials.
  const infrastructure = byNamespace(rendered, system.name);
  t.deepEqual(infrastructure.map((item) => `${String(item.kind)}/${String((item.metadata as { name: string }).name)}`).sort(), [
    'DaemonSet/git-cache-node',
    'NetworkPolicy/git-cache-node',
    'Secret/app-ssh',
    'Service/git-cache-node',
  ]);
  await apply(infrastructure, system.name);
  const rollout = await kubectl(['rollout', 'status', 'daemonset/git-cache-node', '--timeout=240s'], { namespace: system.name, timeoutMs: 300_000 });
  t.is(rollout.exitCode, 0, `${rollout.stderr}\n${(await kubectl(['describe', 'daemonset', 'git-cache-node'], { namespace: system.name })).stdout}`);
  t.is(acceptedLogins(), 1, 'the node agent cloned once from the private upstream');

  // 20 Jobs at once, in a namespace where hostPath is allowed.
  const { warnings } = await apply(byNamespace(rendered, ci.name), ci.name);
  t.deepEqual(warnings, []);
  await Promise.all(jobs.map((_, index) => waitForJobComplete(`build-${index}`, ci.name, 600)));
  for (let index = 0; index < JOBS; index++) {
    const pod = (await kubectlOk(['get', 'pods', '-l', `job-name=build-${index}`, '-o', 'jsonpath={.items[0].metadata.name}'], { namespace: ci.name })).trim();
    const result = logFacts(await logs(pod, 'build', ci.name));
    t.is(result.uid, String(CLUSTER.noUpstreamUids.first + 100 + index));
    t.is(result.clone_head, main, `job ${index}: ${JSON.stringify(result)}`);
    t.is(result.alternates, `${mirrorPath('/git-cache', url)}/objects`, `job ${index} borrows from the node cache`);
    t.is(result.cache_write, 'refused', `job ${index} wrote to the cache`);
    t.is(result.credentials, 'absent');
    t.is(result.upstream, 'ENETUNREACH', `job ${index}: the app's UID has a route to the upstream`);
    const spec = (await getJson<{ spec: { volumes: Manifest[]; initContainers: Manifest[] } }>('pod', pod, ci.name)).spec;
    t.false(spec.volumes.some((volume) => 'secret' in volume), `job ${index}'s pod has a Secret volume`);
    t.deepEqual(spec.volumes.find((volume) => volume.name === 'git-cache')?.hostPath, { path: nodePath, type: 'Directory' });
  }
  t.is(acceptedLogins(), 1, `${JOBS} Jobs later, the upstream has still served one clone`);

  // A pod where Pod Security forbids hostPath reads its node's mirror over the network.
  const restrictedApply = await apply(byNamespace(rendered, restricted.name), restricted.name);
  t.deepEqual(restrictedApply.warnings, [], 'the restricted Pod Security level warned');
  await waitForPodSucceeded('lint', restricted.name, 180).catch(async (error: unknown) => {
    throw new Error(`${String(error)}\n${await logs('lint', 'lint', restricted.name).catch(() => '')}`);
  });
  t.is(logFacts(await logs('lint', 'lint', restricted.name)).clone_head, main);
  t.is(acceptedLogins(), 1);

  // A commit pushed after the node's last refresh (interval 1h): a network reader fetching it by id, as
  // actions/checkout does, gets it; the node agent fetched once more from the upstream, on the reader's behalf.
  const newer = upstream.commit('NEWER.md', 'pushed after the last refresh\n');
  const checkout = networkReader('checkout', restricted.name, SELECTED, url, [
    'git init -q /work/app && cd /work/app && git remote add origin "$URL"',
    `git fetch -q --depth=1 origin '+${newer}:refs/remotes/origin/main' && echo "fetched=$(git rev-parse refs/remotes/origin/main)"`,
  ].join(' && '));
  await apply(byNamespace(renderWithFunction([checkout], config), restricted.name), restricted.name);
  await waitForPodSucceeded('checkout', restricted.name, 180).catch(async (error: unknown) => {
    throw new Error(`${String(error)}\n${await logs('checkout', 'lint', restricted.name).catch(() => '')}`);
  });
  t.is(logFacts(await logs('checkout', 'lint', restricted.name)).fetched, newer);
  t.is(acceptedLogins(), 2, 'the node agent fetched the newer commit once, for the reader');
});

test.serial('the node NetworkPolicy is enforced: selected reader pods reach git and refresh, others nothing, the monitoring namespace the metrics port only; without the policy the unselected pod connects', async (t) => {
  const targets = await agentServiceTargets(t, 'git-cache-node', system.name);

  const [selected, unselected, monitoring] = await Promise.all([
    probeConnections(t, connectionProbePod({ name: 'probe-selected', namespace: restricted.name, labels: SELECTED, targets, seconds: 10 })),
    probeConnections(t, connectionProbePod({ name: 'probe-unselected', namespace: restricted.name, labels: { app: 'other' }, targets, seconds: 10 })),
    probeConnections(t, connectionProbePod({ name: 'probe-monitoring', namespace: other.name, labels: SELECTED, targets, seconds: 10 })),
  ]);
  t.like(selected, { git: 'connected', 'gc-refresh': 'connected' }, 'a selected pod of a reader namespace');
  t.not(selected['gc-metrics'], 'connected', 'a reader scraped the metrics port');
  for (const port of ['git', 'gc-refresh', 'gc-metrics']) {
    t.regex(unselected[port] ?? '', REFUSED, `an unselected pod of the reader namespace reached ${port}`);
  }
  t.is(monitoring['gc-metrics'], 'connected', 'the monitoring namespace scrapes the metrics port');
  t.regex(monitoring.git ?? '', REFUSED, 'a selected pod of a namespace that is no reader reached the git daemon');
  t.regex(monitoring['gc-refresh'] ?? '', REFUSED, 'a selected pod of a namespace that is no reader reached the refresh port');

  // The control: without the policy the same unselected pod connects (the enforcer, not something else, refused it).
  await kubectlOk(['delete', 'networkpolicy', 'git-cache-node'], { namespace: system.name });
  const control = await probeConnections(t, connectionProbePod({ name: 'probe-control', namespace: restricted.name, labels: { app: 'other' }, targets, seconds: 30 }));
  t.like(control, { git: 'connected', 'gc-refresh': 'connected', 'gc-metrics': 'connected' }, 'without the policy');
});
