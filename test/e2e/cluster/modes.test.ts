/**
 * Every injection mode as real pods on the real cluster, in a namespace that ENFORCES Pod Security `restricted`
 * (so an injected container that broke it would be refused, not just warned about). The upstream is nginx +
 * git-http-backend with basic auth on the host's bridge address; its credentials are a Secret that only the
 * cache container may mount. The app containers (the agent image, run as a no-upstream UID) print what they
 * see from inside the pod; `kubectl exec` checks the running ones.
 * - sidecar (native sidecar) Deployment that becomes Available;
 * - init Job that completes;
 * - legacy-sidecar Deployment that becomes Available (its Jobs never complete: the function warns);
 * - keeper: the generated PVC bound to a PersistentVolume on a host directory, the keeper Deployment (the only
 *   writer, the only holder of the Secret) and a Job whose credential-free `wait` init container lets the app
 *   start once the mirror is there.
 * In every mode: the app starts on a complete mirror, runs non-root with a read-only root filesystem, cannot
 * write to the cache, cannot see the Secret and has no route to the upstream.
 */
import {
  CLUSTER,
  RESTRICTED_CONTAINER_SECURITY,
  apply,
  clusterNamespace,
  exec,
  getJson,
  hostVolume,
  kubectlOk,
  logFacts,
  logs,
  persistentVolume,
  renderWithFunction,
  scriptContainer,
  testWithCluster,
  waitForDeploymentAvailable,
  waitForJobComplete,
  UPSTREAM_PROBE_JS,
  type Manifest,
} from '../../support/cluster.js';
import { makeUpstream, type UpstreamRepo } from '../../support/git-fixtures.js';
import { startSmartHttp, type SmartHttpServer } from '../../support/servers/smart-http.js';

const test = testWithCluster(['nginx', 'fcgiwrap']);
const ns = clusterNamespace(test, 'modes');
const APP_UID = CLUSTER.noUpstreamUids.first + 2;
const CREDENTIALS_DIR = '/etc/git-cache/credentials';
const PASSWORD = 'modes-test-password-4f1c';

let server: SmartHttpServer | undefined;
let upstream: UpstreamRepo | undefined;

test.before(async () => {
  server = await startSmartHttp({ password: PASSWORD, host: CLUSTER.hostIP });
  upstream = makeUpstream(server.projectRoot, 'app', 3);
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'app-https' }, stringData: { username: server.username, password: PASSWORD } };
  await apply([secret], ns.name);
});

test.after.always(async () => {
  await server?.stop();
});

const APP_SCRIPT = `
mkdir -p "$HOME" && git config --global --add safe.directory '*'
echo "uid=$(id -u)"
echo "mirror_main=$(git --git-dir="$GIT_CACHE_REF" rev-parse refs/heads/main 2>&1)"
if touch "$GIT_CACHE_DIR/probe" 2>/dev/null; then echo cache_write=allowed; else echo cache_write=refused; fi
if touch /probe 2>/dev/null; then echo root_write=allowed; else echo root_write=refused; fi
if [ -e ${CREDENTIALS_DIR} ]; then echo secrets=visible; else echo secrets=absent; fi
if env | grep -q '${PASSWORD}'; then echo password_in_env=yes; else echo password_in_env=no; fi
echo "upstream=$(node -e "${UPSTREAM_PROBE_JS}")"
git clone -q --shared "$GIT_CACHE_REF" /tmp/app && echo "clone_head=$(git -C /tmp/app rev-parse HEAD)"
echo done=1
if [ "$STAY" = 1 ]; then exec sleep 100000; fi
`;

function podSpec(stay: boolean): Manifest {
  return {
    restartPolicy: stay ? 'Always' : 'Never',
    securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
    terminationGracePeriodSeconds: 2,
    containers: [
      scriptContainer('app', APP_SCRIPT, {
        env: { HOME: '/tmp/home', UPSTREAM_HOST: CLUSTER.hostIP, UPSTREAM_PORT: String(server?.port ?? 0), STAY: stay ? '1' : '0' },
        securityContext: { ...RESTRICTED_CONTAINER_SECURITY, runAsUser: APP_UID, runAsGroup: APP_UID },
        volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
      }),
    ],
    volumes: [{ name: 'tmp', emptyDir: {} }],
  };
}

function deployment(name: string): Manifest {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { 'git-cache.enabled': 'true' } },
    spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: podSpec(true) } },
  };
}

function job(name: string): Manifest {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels: { 'git-cache.enabled': 'true' } },
    spec: { backoffLimit: 0, template: { spec: podSpec(false) } },
  };
}

function config(name: string, spec: Manifest): Manifest {
  const repos = [{ url: server?.url('app.git'), httpsSecretName: 'app-https' }];
  return { apiVersion: 'git-cache.dev/v1alpha1', kind: 'GitCache', metadata: { name }, spec: { repos, image: CLUSTER.agentImage, imagePullPolicy: 'Never', ...spec } };
}


async function podOf(selector: string): Promise<string> {
  return kubectlOk(['get', 'pods', '-l', selector, '-o', 'jsonpath={.items[0].metadata.name}'], { namespace: ns.name });
}

async function appFacts(pod: string): Promise<Record<string, string>> {
  for (let i = 0; i < 60; i++) {
    const seen = logFacts(await logs(pod, 'app', ns.name));
    if (seen.done === '1') return seen;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the app of ${pod} never finished its checks`);
}

/** What every mode promises the app container. */
function assertApp(t: import('ava').ExecutionContext, app: Record<string, string>): void {
  const main = upstream?.refs().find((line) => line.startsWith('refs/heads/main '))?.split(' ')[1];
  t.is(app.uid, String(APP_UID));
  t.is(app.mirror_main, main, 'the app started before the mirror held upstream main');
  t.is(app.cache_write, 'refused', 'the app could write to the cache');
  t.is(app.root_write, 'refused', 'the app could write to its root filesystem');
  t.is(app.secrets, 'absent', 'the app sees the credential Secret');
  t.is(app.password_in_env, 'no', 'the password is in the app environment');
  t.is(app.upstream, 'ENETUNREACH', 'the app container has a route to the upstream');
  t.is(app.clone_head, main);
}

/** In a running cache container: its UID, its read-only root, and the Secret it alone mounts. */
async function assertCacheContainer(t: import('ava').ExecutionContext, pod: string, container: string): Promise<void> {
  t.is((await exec(pod, container, ['id', '-u'], ns.name)).stdout.trim(), '65532');
  t.not((await exec(pod, container, ['touch', '/probe'], ns.name)).exitCode, 0, 'the cache container could write to its root filesystem');
  const username = await exec(pod, container, ['cat', `${CREDENTIALS_DIR}/app/https/username`], ns.name);
  t.is(username.stdout, server?.username ?? "", `the cache container cannot read its Secret: ${username.stderr}`);
}

async function assertAppHasNoSecret(t: import('ava').ExecutionContext, pod: string): Promise<void> {
  const listing = await exec(pod, 'app', ['sh', '-c', `ls ${CREDENTIALS_DIR}; grep -c git-cache/credentials /proc/self/mountinfo`], ns.name);
  t.regex(listing.stderr, /No such file/, 'the app container sees the credentials directory');
  t.is(listing.stdout.trim(), '0', 'a credentials mount is visible in the app container');
}

test('sidecar: a Deployment becomes Available; its native sidecar holds the Secret, the app neither it nor a route upstream', async (t) => {
  const { warnings } = await apply(renderWithFunction([deployment('sidecar')], config('gc-sidecar', { mode: 'sidecar' })), ns.name);
  t.deepEqual(warnings, []);
  await waitForDeploymentAvailable('sidecar', ns.name);
  const pod = await podOf('app=sidecar');
  assertApp(t, await appFacts(pod));
  await assertCacheContainer(t, pod, 'git-cache');
  await assertAppHasNoSecret(t, pod);
  const status = await getJson<{ status: { initContainerStatuses: Array<{ name: string; ready: boolean; started: boolean }> } }>('pod', pod, ns.name);
  t.like(status.status.initContainerStatuses.find((entry) => entry.name === 'git-cache'), { ready: true, started: true }, 'the sidecar is not Ready (readiness probe on /readyz)');
});

test('init: a Job completes; the one-shot sync ran to completion before the app started', async (t) => {
  const { warnings } = await apply(renderWithFunction([job('init')], config('gc-init', { mode: 'init' })), ns.name);
  t.deepEqual(warnings, []);
  await waitForJobComplete('init', ns.name);
  const pod = await podOf('job-name=init');
  assertApp(t, await appFacts(pod));
  const status = await getJson<{ status: { initContainerStatuses: Array<{ name: string; state: { terminated?: { exitCode: number; finishedAt: string } } }>; containerStatuses: Array<{ name: string; state: { terminated?: { startedAt: string } } }> } }>('pod', pod, ns.name);
  const sync = status.status.initContainerStatuses.find((entry) => entry.name === 'git-cache')?.state.terminated;
  const app = status.status.containerStatuses.find((entry) => entry.name === 'app')?.state.terminated;
  t.is(sync?.exitCode, 0);
  t.true(Date.parse(sync?.finishedAt ?? '') <= Date.parse(app?.startedAt ?? ''), 'the app started before the sync finished');
});

test('legacy-sidecar: a Deployment becomes Available; the regular git-cache container holds the Secret', async (t) => {
  const { warnings } = await apply(renderWithFunction([deployment('legacy')], config('gc-legacy', { mode: 'legacy-sidecar' })), ns.name);
  t.deepEqual(warnings, []);
  await waitForDeploymentAvailable('legacy', ns.name);
  const pod = await podOf('app=legacy');
  assertApp(t, await appFacts(pod));
  await assertCacheContainer(t, pod, 'git-cache');
  await assertAppHasNoSecret(t, pod);
});

test('keeper: the generated PVC binds a host-directory PersistentVolume; the keeper alone holds the Secret; a Job waits for the mirror and completes', async (t) => {
  const storageClassName = 'git-cache-test-hostdir';
  const claimName = 'keeper-mirrors';
  const pv = persistentVolume({ name: `${ns.name}-mirrors`, hostPath: hostVolume('keeper'), claimName, namespace: ns.name, storageClassName, size: '1Gi' });
  await kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(pv) });
  try {
    const rendered = renderWithFunction([job('keeper-job')], config('gc-keeper', { volume: { type: 'pvc', claimName, size: '1Gi', storageClassName }, keeper: { waitTimeout: '3m' } }));
    const kinds = new Set(rendered.map((item) => item.kind));
    for (const kind of ['PersistentVolumeClaim', 'Deployment', 'Service', 'Job']) t.true(kinds.has(kind), `the function generated no ${kind}`);
    const { warnings } = await apply(rendered, ns.name);
    t.deepEqual(warnings, []);
    await waitForDeploymentAvailable('git-cache-keeper', ns.name);
    await waitForJobComplete('keeper-job', ns.name);
    const pod = await podOf('job-name=keeper-job');
    assertApp(t, await appFacts(pod));

    const keeper = await podOf('app.kubernetes.io/component=keeper');
    await assertCacheContainer(t, keeper, 'git-cache');
    const spec = await getJson<{ spec: { initContainers: Array<{ name: string; volumeMounts: Array<{ mountPath: string }> }> } }>('pod', pod, ns.name);
    for (const container of spec.spec.initContainers) {
      t.false(container.volumeMounts.some((mount) => mount.mountPath.startsWith(CREDENTIALS_DIR)), `${container.name} of the Job mounts credentials`);
    }
  } finally {
    await kubectlOk(['delete', 'persistentvolume', `${ns.name}-mirrors`, '--wait=false', '--ignore-not-found']);
  }
});

