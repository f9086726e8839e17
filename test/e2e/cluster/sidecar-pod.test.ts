/**
 * A real pod on the real cluster (scripts/test-cluster.sh): the function injects the native sidecar into a Pod,
 * the kubelet runs the agent image podman built from this worktree, and the app container (another container
 * of the same image, as a no-upstream UID) proves from inside the pod that:
 * - it started only once the mirror was complete (the mirror holds upstream's main when the app starts);
 * - it runs as its own non-root UID with a read-only root filesystem, and its write to the cache mount fails;
 * - it has no route to the upstream (the test cluster's per-UID rule), while the cache container, which fetched
 *   the mirror from that very upstream, has one; a local `git clone --shared` from the mirror still works.
 */
import { rmSync } from 'node:fs';
import {
  CLUSTER,
  RESTRICTED_CONTAINER_SECURITY,
  UPSTREAM_PROBE_JS,
  apply,
  clusterNamespace,
  getJson,
  logFacts,
  logs,
  renderWithFunction,
  scriptContainer,
  testWithCluster,
  waitForPodSucceeded,
  type Manifest,
} from '../../support/cluster.js';
import { makeUpstream, startGitDaemon, tempDir, type GitDaemon, type UpstreamRepo } from '../../support/git-fixtures.js';

const test = testWithCluster();
const ns = clusterNamespace(test, 'sidecar-pod');
const APP_UID = CLUSTER.noUpstreamUids.first + 1;

let root = '';
let daemon: GitDaemon | undefined;
let upstream: UpstreamRepo | undefined;

test.before(async () => {
  root = tempDir('cluster-sidecar');
  upstream = makeUpstream(root, 'app', 3);
  daemon = await startGitDaemon(root, undefined, CLUSTER.hostIP);
});

test.after.always(async () => {
  await daemon?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});


// The mirror belongs to the cache container's UID: git wants it named safe (in global config: a local clone's
// upload-pack does not honour -c safe.directory).
const APP_SCRIPT = `
export HOME=/work
git config --global --add safe.directory '*'
echo "uid=$(id -u)"
echo "mirror_main=$(git --git-dir="$GIT_CACHE_REF" rev-parse refs/heads/main 2>&1)"
if touch "$GIT_CACHE_DIR/probe" 2>/dev/null; then echo cache_write=allowed; else echo cache_write=refused; fi
if touch /probe 2>/dev/null; then echo root_write=allowed; else echo root_write=refused; fi
echo "upstream=$(node -e "${UPSTREAM_PROBE_JS}")"
git clone -q --shared "$GIT_CACHE_REF" /work/app && echo "clone_head=$(git -C /work/app rev-parse HEAD)"
`;

test('a native-sidecar pod of the agent image: the app starts on a complete mirror, read-only, non-root, with no route to the upstream', async (t) => {
  if (!daemon || !upstream) return t.fail('fixture missing');
  const url = daemon.url('app.git');
  const pod: Manifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'app', labels: { 'git-cache.enabled': 'true' } },
    spec: {
      restartPolicy: 'Never',
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        scriptContainer('app', APP_SCRIPT, {
          env: { UPSTREAM_HOST: CLUSTER.hostIP, UPSTREAM_PORT: String(daemon.port) },
          securityContext: { ...RESTRICTED_CONTAINER_SECURITY, runAsUser: APP_UID, runAsGroup: APP_UID },
          volumeMounts: [{ name: 'work', mountPath: '/work' }],
        }),
      ],
      volumes: [{ name: 'work', emptyDir: {} }],
    },
  };
  const config = { apiVersion: 'git-cache.dev/v1alpha1', kind: 'GitCache', metadata: { name: 'git-cache' }, spec: { repos: [{ url }], image: CLUSTER.agentImage, imagePullPolicy: 'Never' } };
  const { warnings } = await apply(renderWithFunction([pod], config), ns.name);
  t.deepEqual(warnings, [], 'the restricted Pod Security level warned');

  await waitForPodSucceeded('app', ns.name, 180);
  const app = logFacts(await logs('app', 'app', ns.name));
  const main = upstream.refs().find((line) => line.startsWith('refs/heads/main '))?.split(' ')[1];
  t.is(app.uid, String(APP_UID));
  t.is(app.mirror_main, main, 'the app started before the mirror held upstream main');
  t.is(app.cache_write, 'refused', 'the app container could write to the cache');
  t.is(app.root_write, 'refused', 'the app container could write to its root filesystem');
  t.is(app.upstream, 'ENETUNREACH', 'the app container has a route to the upstream');
  t.is(app.clone_head, main);
  t.true(daemon.uploadPacks('app.git') >= 1, 'the cache container never fetched from the upstream');

  const status = await getJson<{ status: { initContainerStatuses: Array<{ name: string; state: { terminated?: { startedAt: string } } }>; containerStatuses: Array<{ name: string; state: { terminated?: { startedAt: string; exitCode: number } } }> } }>('pod', 'app', ns.name);
  const cache = status.status.initContainerStatuses.find((entry) => entry.name === 'git-cache');
  const appStatus = status.status.containerStatuses.find((entry) => entry.name === 'app');
  t.is(appStatus?.state.terminated?.exitCode, 0);
  t.true(Date.parse(cache?.state.terminated?.startedAt ?? '') <= Date.parse(appStatus?.state.terminated?.startedAt ?? ''), 'the app started before the cache container');
});
