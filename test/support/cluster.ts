/**
 * The real Kubernetes cluster of the test suites (scripts/test-cluster.sh): a real kube-apiserver, kubelet,
 * containerd, kube-proxy and CoreDNS on this machine, running the images podman built from this worktree.
 *
 * Lifecycle. Cluster suites live in test/e2e/cluster/. `npm test` (scripts/test.mjs) brings the cluster up once
 * before ava starts when the run includes any file under test/e2e/cluster/, and takes it down after ava ends; every
 * suite (ava runs files in parallel child processes) shares that one cluster through GIT_CACHE_TEST_KUBECONFIG.
 * The cluster is machine-wide (ports, bridge, containerd), so whole runs that use it are SERIALIZED by a
 * machine-wide lock (/run/lock/git-cache-test-cluster.lock): a second `npm test` from another worktree waits
 * for the first to finish, then brings the cluster up from its own worktree's images. A run without cluster
 * suites (`npm test -- test/unit/...`) never takes the lock. While iterating, `scripts/test-cluster.sh up`
 * keeps a cluster up between runs (npm test then reuses it and leaves it up); `scripts/test-cluster.sh down`.
 *
 * Gate. `testWithCluster()` is `test` when the cluster is up; otherwise every test of the suite is skipped with
 * the reason and the install command printed, and under CI=true one failing test says why instead.
 *
 * Isolation between suites: each test file makes its own namespaces (`clusterNamespace`), labelled for Pod
 * Security (`restricted` enforce/warn/audit by default), deleted after the file's tests; nothing else is shared.
 *
 * Network facts tests rely on (CLUSTER):
 * - `hostIP` is this machine's address on the pod bridge: a test starts an upstream git server (sshd, nginx,
 *   git daemon) listening on it, and pods reach it; it is also the cluster DNS server and the API server.
 * - Services: `<svc>.<ns>.svc.cluster.local` resolves in pods (CoreDNS) and ClusterIPs connect (kube-proxy,
 *   iptables mode), including `internalTrafficPolicy: Local`.
 * - A container whose runAsUser is in `noUpstreamUids` has no route to `hostIP` (every connection but DNS gets
 *   ENETUNREACH), while the pod's other containers (the cache container runs as 65532) do: use it to prove an
 *   app container cannot reach the upstream. (A rule the CNI chain puts in each pod's network namespace before
 *   any container starts: scripts/cluster/no-upstream-cni.)
 * - NetworkPolicies are enforced (kube-router's firewall on the host, scripts/test-cluster.sh), for pod IPs and
 *   Services alike; a refused connection fails at once (ECONNREFUSED: kube-router REJECTs). A pod's address
 *   reaches the policies' peer sets a moment after it starts, so a client the policy admits may still be
 *   refused in its first second: probes that must connect retry for a few seconds (`connectionProbePod`).
 * - Volumes: `hostVolume(name)` is a host directory for a hostPath PersistentVolume (`persistentVolume`) or a
 *   hostPath volume (node mode); it lives under the cluster's state directory and goes with `down`.
 * - Images: `localhost/git-cache:test` (the agent) and `localhost/inject-git-cache:test` (the function), with
 *   `imagePullPolicy: Never` or `IfNotPresent`: there is no registry.
 */
import test, { type ExecutionContext, type TestFn } from 'ava';
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { GIT_DAEMON_PORT_NAME, METRICS_PORT_NAME, REFRESH_PORT_NAME } from '../../src/shared/names.js';
import { inject } from './krm.js';
import { REPO_ROOT, findTool, testWithTools } from './tools.js';

export const CLUSTER = {
  hostIP: '10.244.77.1',
  podCIDR: '10.244.77.0/24',
  serviceCIDR: '10.97.0.0/24',
  dnsDomain: 'cluster.local',
  noUpstreamUids: { first: 20000, last: 29999 },
  nodeName: 'git-cache-test-node',
  agentImage: 'localhost/git-cache:test',
  functionImage: 'localhost/inject-git-cache:test',
  /** Where hostVolume() directories live (removed by `scripts/test-cluster.sh down`). */
  volumesDir: '/var/lib/git-cache-test-cluster/volumes',
} as const;

/** kubectl of the cluster's own version (built with it by install-test-tools.sh), or any kubectl on PATH. */
const CLUSTER_KUBECTL = join(REPO_ROOT, '.tools', 'cluster', 'bin', 'kubectl');
function kubectlPath(): string | undefined {
  return existsSync(CLUSTER_KUBECTL) ? CLUSTER_KUBECTL : findTool('kubectl');
}

export const CLUSTER_INSTALL_HINT = 'install with: bash scripts/install-test-tools.sh; the cluster comes up with npm test (or scripts/test-cluster.sh up)';

/** The kubeconfig of the running cluster, or why there is none. */
function locateCluster(): { kubeconfig: string } | { reason: string } {
  const reason = process.env.GIT_CACHE_TEST_CLUSTER_UNAVAILABLE;
  if (reason) return { reason };
  const kubeconfig = process.env.GIT_CACHE_TEST_KUBECONFIG ?? join(REPO_ROOT, '.tools', 'cluster', 'kubeconfig');
  if (!existsSync(kubeconfig)) return { reason: `the test cluster is not up (no ${kubeconfig}); run cluster suites through npm test, or bring it up with scripts/test-cluster.sh up` };
  const kubectl = kubectlPath();
  if (!kubectl) return { reason: 'kubectl is not installed' };
  try {
    execFileSync(kubectl, ['--kubeconfig', kubeconfig, 'get', '--raw', '/readyz'], { stdio: 'ignore', timeout: 15_000 });
  } catch {
    return { reason: `the test cluster of ${kubeconfig} does not answer; bring it up again with scripts/test-cluster.sh up` };
  }
  return { kubeconfig };
}

let located: ReturnType<typeof locateCluster> | undefined;
function cluster(): ReturnType<typeof locateCluster> {
  located ??= locateCluster();
  return located;
}

/**
 * `test` when the cluster is up (and `tools`, e.g. kpt or kustomize, are installed); otherwise a suite whose tests
 * are skipped with the reason printed, or under CI=true one failing test that says why.
 */
export function testWithCluster(tools: readonly string[] = []): TestFn {
  const state = cluster();
  if ('kubeconfig' in state) return testWithTools(tools);
  const reason = `${state.reason}; ${CLUSTER_INSTALL_HINT}`;
  if (process.env.CI === 'true') {
    test('the test cluster is up', (t) => {
      t.fail(reason);
    });
  } else {
    console.error(`[skip] ${reason}`);
  }
  return testWithTools([`test-cluster (${state.reason})`], CLUSTER_INSTALL_HINT);
}

export function kubeconfigPath(): string {
  const state = cluster();
  if (!('kubeconfig' in state)) throw new Error(state.reason);
  return state.kubeconfig;
}

export interface Outcome {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface KubectlOptions {
  readonly namespace?: string;
  /** Text on stdin (`-f -`). */
  readonly input?: string;
  readonly timeoutMs?: number;
}

/** kubectl against the test cluster; never throws on a non-zero exit (check `exitCode`). */
export async function kubectl(args: readonly string[], options: KubectlOptions = {}): Promise<Outcome> {
  const namespace = options.namespace ? ['--namespace', options.namespace] : [];
  const result = await execa(kubectlPath() ?? 'kubectl', ['--kubeconfig', kubeconfigPath(), ...namespace, ...args], {
    input: options.input,
    reject: false,
    timeout: options.timeoutMs ?? 120_000,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** kubectl that must succeed: its stdout, or an error with stderr. */
export async function kubectlOk(args: readonly string[], options: KubectlOptions = {}): Promise<string> {
  const outcome = await kubectl(args, options);
  if (outcome.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${outcome.exitCode}): ${outcome.stderr.trim()}`);
  return outcome.stdout;
}

export type Manifest = Record<string, unknown>;

/**
 * Several manifests (objects or YAML text) as one multi-document stream. Objects go as JSON documents: kubectl
 * reads YAML 1.1, where a plain `on` or `yes` written by a YAML 1.2 printer would turn into a boolean.
 */
export function toManifestYaml(manifests: readonly (Manifest | string)[]): string {
  return manifests.map((item) => (typeof item === 'string' ? item : JSON.stringify(item))).join('\n---\n');
}

/** The warnings the API server sent (admission, Pod Security), one per line, from kubectl's stderr. */
export function warningsOf(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('Warning: '))
    .map((line) => line.slice('Warning: '.length));
}

/** `kubectl apply -f -` (server-side validation strict); returns the warnings. */
export async function apply(manifests: readonly (Manifest | string)[], namespace: string): Promise<{ stdout: string; warnings: string[] }> {
  const outcome = await kubectl(['apply', '--validate=strict', '-f', '-'], { namespace, input: toManifestYaml(manifests) });
  if (outcome.exitCode !== 0) throw new Error(`kubectl apply failed (${outcome.exitCode}): ${outcome.stderr.trim()}`);
  return { stdout: outcome.stdout, warnings: warningsOf(outcome.stderr) };
}

/** `kubectl apply --dry-run=server --validate=strict -f -`: the outcome with the warnings, nothing stored. */
export async function applyDryRun(manifests: readonly (Manifest | string)[], namespace: string): Promise<Outcome & { warnings: string[] }> {
  const outcome = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], { namespace, input: toManifestYaml(manifests) });
  return { ...outcome, warnings: warningsOf(outcome.stderr) };
}

/** `kubectl get KIND NAME -o json`, parsed. */
export async function getJson<T = Manifest>(kind: string, name: string, namespace?: string): Promise<T> {
  return JSON.parse(await kubectlOk(['get', kind, name, '-o', 'json'], { namespace })) as T;
}

/** `kubectl wait --for=CONDITION KIND/NAME`; on timeout the error carries `kubectl describe` of it. */
export async function waitFor(target: string, condition: string, namespace: string, timeoutSeconds = 120): Promise<void> {
  const outcome = await kubectl(['wait', `--for=${condition}`, `--timeout=${timeoutSeconds}s`, target], { namespace, timeoutMs: (timeoutSeconds + 30) * 1000 });
  if (outcome.exitCode !== 0) {
    const describe = await kubectl(['describe', target], { namespace });
    throw new Error(`${target} did not become ${condition} in ${timeoutSeconds} s: ${outcome.stderr.trim()}\n${describe.stdout}`);
  }
}

export const waitForPodReady = (pod: string, namespace: string, timeoutSeconds = 120): Promise<void> => waitFor(`pod/${pod}`, 'condition=Ready', namespace, timeoutSeconds);
export const waitForPodSucceeded = (pod: string, namespace: string, timeoutSeconds = 120): Promise<void> => waitFor(`pod/${pod}`, 'jsonpath={.status.phase}=Succeeded', namespace, timeoutSeconds);
export const waitForJobComplete = (job: string, namespace: string, timeoutSeconds = 180): Promise<void> => waitFor(`job/${job}`, 'condition=Complete', namespace, timeoutSeconds);
export const waitForDeploymentAvailable = (deployment: string, namespace: string, timeoutSeconds = 180): Promise<void> =>
  waitFor(`deployment/${deployment}`, 'condition=Available', namespace, timeoutSeconds);

/** `kubectl exec POD -c CONTAINER -- COMMAND...`; never throws on the command's exit code. */
export function exec(pod: string, container: string, command: readonly string[], namespace: string): Promise<Outcome> {
  return kubectl(['exec', pod, '-c', container, '--', ...command], { namespace });
}

/** A container's log (`--previous` for the last terminated instance). */
export function logs(pod: string, container: string, namespace: string, options: { previous?: boolean } = {}): Promise<string> {
  return kubectlOk(['logs', pod, '-c', container, ...(options.previous ? ['--previous'] : [])], { namespace });
}

export type PodSecurityLevel = 'privileged' | 'baseline' | 'restricted';

export interface NamespaceOptions {
  /** Pod Security `enforce` level (default restricted). */
  readonly enforce?: PodSecurityLevel;
  /** Pod Security `warn` and `audit` level (default restricted). */
  readonly warn?: PodSecurityLevel;
  /** More labels (they win over the Pod Security ones). */
  readonly labels?: Record<string, string>;
}

let namespaceCounter = 0;

/** Creates a namespace with Pod Security labels; returns its name. */
export async function createNamespace(prefix: string, options: NamespaceOptions = {}): Promise<string> {
  const name = `${prefix}-${process.pid}-${++namespaceCounter}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63);
  const warn = options.warn ?? 'restricted';
  const labels = { 'pod-security.kubernetes.io/enforce': options.enforce ?? 'restricted', 'pod-security.kubernetes.io/warn': warn, 'pod-security.kubernetes.io/audit': warn, ...options.labels };
  await kubectlOk(['apply', '-f', '-'], { input: toManifestYaml([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } }]) });
  // The ServiceAccount controller makes `default` shortly after; pods are refused until it exists.
  for (let i = 0; i < 100; i++) {
    if ((await kubectl(['get', 'serviceaccount', 'default'], { namespace: name })).exitCode === 0) return name;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`namespace ${name} got no default ServiceAccount`);
}

export async function deleteNamespace(name: string): Promise<void> {
  await kubectl(['delete', 'namespace', name, '--wait=false', '--ignore-not-found']);
}

/**
 * A namespace made before a test file's tests and deleted after them (`ns.name` inside tests and in the file's
 * own `before` hooks: it is made in a serial hook, which ava runs before the concurrent ones).
 */
export function clusterNamespace(suite: TestFn, prefix: string, options: NamespaceOptions = {}): { readonly name: string } {
  const fixture = { name: '' };
  suite.serial.before(async () => {
    fixture.name = await createNamespace(prefix, options);
  });
  suite.after.always(async () => {
    if (fixture.name) await deleteNamespace(fixture.name);
  });
  return {
    get name() {
      if (!fixture.name) throw new Error('clusterNamespace is used before its test.before hook ran');
      return fixture.name;
    },
  };
}

/** A fresh host directory for a hostPath PersistentVolume or a hostPath volume, writable by any pod UID. */
export function hostVolume(name: string, mode = 0o777): string {
  const dir = join(CLUSTER.volumesDir, `${name}-${process.pid}-${++namespaceCounter}`);
  mkdirSync(dir, { recursive: true, mode });
  execFileSync('chmod', [mode.toString(8), dir]);
  return dir;
}

/** A PersistentVolume backed by a host directory, pre-bound to the claim `claimName` in `namespace`. */
export function persistentVolume(options: {
  name: string;
  hostPath: string;
  claimName: string;
  namespace: string;
  size?: string;
  accessModes?: string[];
  storageClassName?: string;
}): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: options.name },
    spec: {
      capacity: { storage: options.size ?? '1Gi' },
      accessModes: options.accessModes ?? ['ReadWriteMany'],
      persistentVolumeReclaimPolicy: 'Retain',
      storageClassName: options.storageClassName ?? '',
      claimRef: { namespace: options.namespace, name: options.claimName },
      hostPath: { path: options.hostPath, type: 'Directory' },
    },
  };
}

/**
 * Runs the function (in-process: the same code as the bundle) over manifests with a GitCache config: the
 * rendered items, or an error with the function's results.
 */
export function renderWithFunction(manifests: readonly Manifest[], config: Manifest): Manifest[] {
  const { items, results, outcome } = inject(manifests, config);
  if (outcome.exitCode !== 0) throw new Error(`the function failed (${outcome.exitCode}): ${JSON.stringify(results)}`);
  // What kpt and kustomize do with the output: drop local-config items and the internal.config.kubernetes.io
  // bookkeeping annotations.
  return items
    .filter((item) => annotationsOf(item)?.['config.kubernetes.io/local-config'] !== 'true')
    .map((item) => {
      const annotations = annotationsOf(item);
      if (annotations) for (const key of Object.keys(annotations)) if (key.startsWith('internal.config.kubernetes.io/')) delete annotations[key];
      return item;
    });
}

function annotationsOf(item: Manifest): Record<string, string> | undefined {
  return (item.metadata as { annotations?: Record<string, string> } | undefined)?.annotations;
}

/** A pod's security context that Pod Security `restricted` admits, as the agent image's non-root user (65532). */
export const RESTRICTED_POD_SECURITY = { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } } as const;

/** What Pod Security `restricted` demands of a container, plus a read-only root filesystem. */
export const RESTRICTED_CONTAINER_SECURITY = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true } as const;

/**
 * A container of the agent image (it has sh, git and node) that runs a shell script: the suites' in-pod probes.
 * `env` in order; `securityContext` as given (none: the runtime's defaults).
 */
export function scriptContainer(name: string, script: string, options: { env?: Record<string, string>; securityContext?: Manifest; volumeMounts?: Manifest[] } = {}): Manifest {
  return {
    name,
    image: CLUSTER.agentImage,
    imagePullPolicy: 'Never',
    command: ['sh', '-c', script],
    env: Object.entries(options.env ?? {}).map(([envName, value]) => ({ name: envName, value })),
    ...(options.securityContext ? { securityContext: options.securityContext } : {}),
    ...(options.volumeMounts ? { volumeMounts: options.volumeMounts } : {}),
  };
}

/**
 * JavaScript for `node -e` in a pod (the agent image has node): one TCP connection to $UPSTREAM_HOST:$UPSTREAM_PORT,
 * printing `connected` or the error code: ENETUNREACH for a no-upstream UID (git and curl hide the errno, and
 * transparent mode would send git to the mirror instead).
 */
export const UPSTREAM_PROBE_JS = `const socket = require('node:net').connect(Number(process.env.UPSTREAM_PORT), process.env.UPSTREAM_HOST);
socket.on('connect', () => { console.log('connected'); socket.destroy(); });
socket.on('error', (error) => console.log(error.code));`;

/** The `key=value` lines of a container's log (what the suites' in-pod scripts print), as a record. */
export function logFacts(log: string): Record<string, string> {
  return Object.fromEntries(
    log
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

/** A connection probe's result for a target the policy refused (kube-router REJECTs: ECONNREFUSED; or a timeout). */
export const REFUSED = /^E[A-Z]+$/;

// One TCP connection attempt per target (NAME=HOST:PORT in $TARGETS), retried for $SECONDS seconds until one
// connects (a new pod's address reaches kube-router's peer sets a moment after it starts); prints NAME=connected
// or NAME=<the last error code>.
const CONNECTION_PROBE_JS = `const net = require('node:net');
const deadline = Date.now() + Number(process.env.SECONDS) * 1000;
const attempt = (host, port) => new Promise((resolve) => {
  const socket = net.connect({ host, port: Number(port), timeout: 2000 });
  socket.on('connect', () => { socket.destroy(); resolve('connected'); });
  socket.on('timeout', () => { socket.destroy(); resolve('ETIMEDOUT'); });
  socket.on('error', (error) => resolve(error.code));
});
const probe = async (target) => {
  const [name, address] = target.split('=');
  const [host, port] = address.split(':');
  for (;;) {
    const result = await attempt(host, port);
    if (result === 'connected' || Date.now() > deadline) return name + '=' + result;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
};
Promise.all(process.env.TARGETS.split(' ').map(probe)).then((lines) => console.log(lines.join('\\n')));`;

/**
 * For an agent that serves over the network (`name`: the keeper's or the node agents' Service and NetworkPolicy):
 * asserts that its policy admits readers to the refresh and git ports and the monitoring namespaces to the
 * metrics port, and that its Service has those three ports; returns `{ <port name>: <svc>.<namespace>.svc:<port> }`,
 * the targets of a connection probe.
 */
export async function agentServiceTargets(t: ExecutionContext, name: string, namespace: string): Promise<Record<string, string>> {
  const policy = await getJson<{ spec: { ingress: Array<{ ports: Manifest[] }> } }>('networkpolicy', name, namespace);
  const tcp = (...ports: string[]) => ports.map((port) => ({ protocol: 'TCP', port }));
  t.deepEqual(policy.spec.ingress.map((rule) => rule.ports), [tcp(REFRESH_PORT_NAME, GIT_DAEMON_PORT_NAME), tcp(METRICS_PORT_NAME)], 'readers: refresh and git; the monitoring namespaces: metrics');
  const { spec } = await getJson<{ spec: { ports: Array<{ name: string; port: number }> } }>('service', name, namespace);
  const targets = Object.fromEntries(spec.ports.map((port) => [port.name, `${name}.${namespace}.svc:${port.port}`]));
  t.deepEqual(Object.keys(targets).sort(), [METRICS_PORT_NAME, REFRESH_PORT_NAME, GIT_DAEMON_PORT_NAME].sort());
  return targets;
}

/**
 * A restricted, non-root pod (not injected: it carries only `labels`) that tries to connect to each of `targets`
 * for up to `seconds` and logs `<target>=connected` or the last error code. With `readUrl`, it then reads that
 * repository's refs/heads/main over the network and logs `read=<commit id>` or `read=failed`.
 */
export function connectionProbePod(options: {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  targets: Record<string, string>;
  seconds: number;
  readUrl?: string;
}): Manifest {
  const read = options.readUrl ? '; echo "read=$(git ls-remote "$READ_URL" refs/heads/main 2>/dev/null | cut -f1 | grep . || echo failed)"' : '';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: options.name, namespace: options.namespace, labels: options.labels },
    spec: {
      restartPolicy: 'Never',
      securityContext: RESTRICTED_POD_SECURITY,
      containers: [
        scriptContainer('probe', `node -e "$PROBE_JS"${read}`, {
          env: {
            PROBE_JS: CONNECTION_PROBE_JS,
            TARGETS: Object.entries(options.targets).map(([target, address]) => `${target}=${address}`).join(' '),
            SECONDS: String(options.seconds),
            HOME: '/tmp',
            ...(options.readUrl ? { READ_URL: options.readUrl } : {}),
          },
          securityContext: RESTRICTED_CONTAINER_SECURITY,
        }),
      ],
    },
  };
}

/** Runs a `connectionProbePod` to completion and returns what it logged (also in the test's log). */
export async function probeConnections(t: ExecutionContext, pod: Manifest): Promise<Record<string, string>> {
  const { name, namespace } = pod.metadata as { name: string; namespace: string };
  await apply([pod], namespace);
  await waitForPodSucceeded(name, namespace, 120);
  const facts = logFacts(await logs(name, 'probe', namespace));
  t.log(`${namespace}/${name}: ${JSON.stringify(facts)}`);
  return facts;
}

/** A pod's containers' restart counts and states, for assertion messages. */
export async function describePod(pod: string, namespace: string): Promise<string> {
  return (await kubectl(['describe', 'pod', pod], { namespace })).stdout;
}

export type { ExecutionContext };
