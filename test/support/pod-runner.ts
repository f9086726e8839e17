/**
 * Runs a pod spec rendered by the function the way the kubelet would, with processes instead of containers:
 *
 * - volumes: emptyDir and PVC as temp dirs (mode 0777, or group fsGroup + setgid when the pod has an fsGroup),
 *   Secrets from test fixtures as files with their `defaultMode` (group fsGroup, group-readable, as the
 *   kubelet does for fsGroup);
 * - each container in its own mount and PID namespace (`unshare --mount --pid --fork`, propagation private):
 *   its root filesystem is an overlay of the host's `/` (the "image") with a private writable layer, remounted
 *   read-only when `readOnlyRootFilesystem` is set; a private /tmp; each volumeMount bind-mounted at its real
 *   mountPath, remounted read-only when `readOnly` is set, so EROFS is the kernel's answer, not ours; only the
 *   volumes the container mounts are visible to it (the pod's state dir on the host lies under the private /tmp);
 * - the process runs as the securityContext's runAsUser/runAsGroup with the pod's fsGroup as supplementary
 *   group (setpriv), with no_new_privs when allowPrivilegeEscalation is false, and its capability bounding set
 *   cut to the container runtime's default set (or to nothing with `drop: [ALL]`), so a root app container
 *   cannot simply remount the cache read-write (it has no CAP_SYS_ADMIN, as under containerd);
 * - init containers in order, each to completion; a native sidecar (an init container with restartPolicy
 *   Always) is started and its startupProbe (httpGet on the named port, 127.0.0.1: all containers share the
 *   host's network namespace unless `netns` names a network namespace for the pod, as containers of a pod share
 *   one) polled before the next container starts; then
 *   the app containers, all at once, with env from the spec. The pod is done when its main containers have
 *   exited (by default every regular container except a legacy `git-cache` sidecar, which never exits on its
 *   own); then, as the kubelet does with native sidecars, the still-running containers get SIGTERM, and
 *   SIGKILL after the grace period.
 *
 * `command: [git-cache]` resolves to this repository's agent: the checkout is mounted read-only at
 * /opt/git-cache-checkout and its test/support/pod-runner/bin is first on PATH.
 * Not emulated: images (every container sees the host's / read-only or with a private writable layer),
 * seccomp, cgroup limits, restarts, probes other than the sidecar's startupProbe, subPath, projected volumes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { makeTempDir, removeDir, sleep } from './servers/process.js';
import { REPO_ROOT, findTool } from './tools.js';

export const POD_RUNNER_BIN = fileURLToPath(new URL('./pod-runner/bin', import.meta.url));
/** Where every container sees this checkout (read-only), so `git-cache` resolves to its agent. */
const CHECKOUT_IN_CONTAINER = '/opt/git-cache-checkout';

export interface EnvVar {
  name: string;
  value?: string;
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
}

export interface Probe {
  httpGet?: { path?: string; port: string | number };
  periodSeconds?: number;
  failureThreshold?: number;
}

export interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
}

export interface Container {
  name: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVar[];
  restartPolicy?: string;
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: Probe;
  securityContext?: SecurityContext;
  volumeMounts?: VolumeMount[];
}

export interface Volume {
  name: string;
  emptyDir?: Record<string, unknown>;
  persistentVolumeClaim?: { claimName: string };
  secret?: { secretName: string; defaultMode?: number; items?: { key: string; path: string; mode?: number }[] };
}

export interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
  volumes?: Volume[];
  securityContext?: { fsGroup?: number; runAsUser?: number; runAsGroup?: number; runAsNonRoot?: boolean; supplementalGroups?: number[] };
  terminationGracePeriodSeconds?: number;
}

export type ContainerRole = 'init' | 'sidecar' | 'app';

export interface ContainerResult {
  readonly name: string;
  readonly role: ContainerRole;
  /** Exit code (128 + n for a signal), or undefined when it was still running at the end. */
  readonly exitCode: number | undefined;
  /** Set when the runner stopped it (sidecars and legacy sidecars at pod end). */
  readonly terminatedByRunner: boolean;
  readonly stdout: string;
  readonly stderr: string;
  /** Milliseconds since the pod started. */
  readonly startedAt: number;
  readonly readyAt: number | undefined;
  readonly endedAt: number | undefined;
}

export interface PodResult {
  /** Every init container exited 0, every sidecar became ready, every main container exited 0. */
  readonly succeeded: boolean;
  /** Why not, when it did not. */
  readonly failure: string | undefined;
  readonly containers: readonly ContainerResult[];
  /** Host directory behind each emptyDir/PVC volume (kept until `cleanup`). */
  readonly volumeDirs: ReadonlyMap<string, string>;
  container(name: string): ContainerResult;
  cleanup(): void;
}

export interface RunPodOptions {
  /** secretName -> key -> value: the Secrets the pod's secret volumes refer to. */
  readonly secrets?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Regular containers whose exit ends the pod (default: all but a legacy-sidecar `git-cache`). */
  readonly mainContainers?: readonly string[];
  /** Overall deadline (default 120 s). */
  readonly timeoutMs?: number;
  /** How often a startupProbe is polled (the spec's periodSeconds is kept as a bound, not as the pace). */
  readonly probeEveryMs?: number;
  /**
   * A network namespace (`ip netns` name) all the pod's containers share, like a pod's own network: the caller
   * sets up its links, addresses, routes and rules. Default: the host's.
   */
  readonly netns?: string;
  /** Called once the init containers are done and the sidecars ready, before the app containers start. */
  readonly beforeApps?: () => Promise<void> | void;
}

/** Why the pod runner cannot run here, or undefined. */
export function podRunnerUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'the pod runner needs root (mount namespaces, bind mounts, setpriv)';
  for (const tool of ['unshare', 'setpriv', 'chroot', 'mount']) if (!findTool(tool)) return `${tool} (util-linux/coreutils) not found`;
  return undefined;
}

/** The container runtime's default capability set (containerd/Docker): no SYS_ADMIN, so no (re)mounting. */
const DEFAULT_CAPABILITIES = [
  'chown', 'dac_override', 'fsetid', 'fowner', 'mknod', 'net_raw', 'setgid', 'setuid', 'setfcap', 'setpcap', 'net_bind_service', 'sys_chroot', 'kill', 'audit_write',
];

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const OUTPUT_LIMIT = 1 << 20;

const quote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

function capabilitySet(context: SecurityContext | undefined): string {
  const drop = (context?.capabilities?.drop ?? []).map((cap) => cap.toLowerCase().replace(/^cap_/, ''));
  const add = (context?.capabilities?.add ?? []).map((cap) => cap.toLowerCase().replace(/^cap_/, ''));
  const base = drop.includes('all') ? [] : DEFAULT_CAPABILITIES.filter((cap) => !drop.includes(cap));
  const caps = [...new Set([...base, ...add])];
  return ['-all', ...caps.map((cap) => `+${cap}`)].join(',');
}

interface Identity {
  uid: number;
  gid: number;
  groups: number[];
}

function identity(pod: PodSpec, container: Container): Identity {
  const uid = container.securityContext?.runAsUser ?? pod.securityContext?.runAsUser ?? 0;
  const gid = container.securityContext?.runAsGroup ?? pod.securityContext?.runAsGroup ?? 0;
  const groups = [...(pod.securityContext?.fsGroup !== undefined ? [pod.securityContext.fsGroup] : []), ...(pod.securityContext?.supplementalGroups ?? [])];
  const nonRoot = container.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
  if (nonRoot && uid === 0) throw new Error(`container ${container.name}: runAsNonRoot but it would run as root (the kubelet refuses to start it)`);
  return { uid, gid, groups };
}

/** Host directories for the pod's volumes, prepared as the kubelet would. */
function prepareVolumes(pod: PodSpec, stateDir: string, secrets: RunPodOptions['secrets']): Map<string, string> {
  const fsGroup = pod.securityContext?.fsGroup;
  const dirs = new Map<string, string>();
  for (const volume of pod.volumes ?? []) {
    const dir = join(stateDir, 'volumes', volume.name);
    mkdirSync(dir, { recursive: true });
    if (volume.emptyDir || volume.persistentVolumeClaim) {
      // emptyDir is world-writable; with fsGroup the kubelet also gives it to the group with setgid.
      if (fsGroup !== undefined) {
        chownSync(dir, 0, fsGroup);
        chmodSync(dir, 0o2777);
      } else {
        chmodSync(dir, 0o777);
      }
    } else if (volume.secret) {
      const data = secrets?.[volume.secret.secretName];
      if (!data) throw new Error(`volume ${volume.name}: Secret ${volume.secret.secretName} is not among the fixtures (the kubelet would wait for it)`);
      const items: { key: string; path: string; mode?: number }[] = volume.secret.items ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const item of items) {
        const value = data[item.key];
        if (value === undefined) throw new Error(`Secret ${volume.secret.secretName} has no key ${item.key}`);
        const file = join(dir, item.path);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, value);
        // The kubelet's fsGroup handling: group ownership to fsGroup, group read added to the file mode.
        let mode = item.mode ?? volume.secret.defaultMode ?? 0o644;
        if (fsGroup !== undefined) {
          chownSync(file, 0, fsGroup);
          mode |= 0o440;
        }
        chmodSync(file, mode);
      }
      chmodSync(dir, fsGroup !== undefined ? 0o2755 : 0o755);
      if (fsGroup !== undefined) chownSync(dir, 0, fsGroup);
    } else {
      throw new Error(`volume ${volume.name}: only emptyDir, persistentVolumeClaim and secret volumes are emulated`);
    }
    dirs.set(volume.name, dir);
  }
  return dirs;
}

/** The shell script run as PID 1 of the container's namespaces: builds its filesystem view, then execs it. */
function containerScript(pod: PodSpec, container: Container, volumeDirs: ReadonlyMap<string, string>, nsDir: string): string {
  const who = identity(pod, container);
  const lines = [
    'set -eu',
    `S=${quote(nsDir)}`,
    'mount -t tmpfs -o mode=0755 gc-container "$S"',
    'mkdir -p "$S/upper" "$S/work" "$S/root"',
    // The "image": the host's root filesystem, with a private writable layer on top.
    'mount -t overlay gc-rootfs -o "lowerdir=/,upperdir=$S/upper,workdir=$S/work" "$S/root"',
    'R="$S/root"',
    'mount --rbind /dev "$R/dev"',
    'mount -t proc proc "$R/proc"',
    'mount --rbind /sys "$R/sys"',
    // A private /tmp: the pod runner's state (every volume's host dir, the Secret fixtures) lives under the
    // host's /tmp and must not show through the overlay.
    'mount -t tmpfs -o mode=1777 gc-tmp "$R/tmp"',
  ];
  // The agent runs from this checkout (test/support/pod-runner/bin/git-cache), mounted read-only at a fixed
  // path: where the checkout really is (a fresh clone under /tmp in CI, say) may be hidden by the private /tmp
  // or by a volume mounted at /tmp.
  const checkout = `"$R"${quote(CHECKOUT_IN_CONTAINER)}`;
  lines.push(`mkdir -p ${checkout}`, `mount --bind ${quote(REPO_ROOT)} ${checkout}`, `mount -o remount,bind,ro ${checkout}`);
  const mounts = [...(container.volumeMounts ?? [])].sort((a, b) => a.mountPath.split('/').length - b.mountPath.split('/').length);
  for (const mount of mounts) {
    if (mount.subPath) throw new Error(`container ${container.name}: subPath is not emulated`);
    const source = volumeDirs.get(mount.name);
    if (!source) throw new Error(`container ${container.name}: volumeMount ${mount.name} has no volume`);
    if (!posix.isAbsolute(mount.mountPath)) throw new Error(`container ${container.name}: mountPath ${mount.mountPath} is not absolute`);
    const target = `"$R"${quote(mount.mountPath)}`;
    lines.push(`mkdir -p ${target}`, `mount --bind ${quote(source)} ${target}`);
    if (mount.readOnly) lines.push(`mount -o remount,bind,ro ${target}`);
  }
  if (container.securityContext?.readOnlyRootFilesystem) lines.push('mount -o remount,ro "$R"');
  const env = [
    `PATH=${posix.join(CHECKOUT_IN_CONTAINER, relative(REPO_ROOT, POD_RUNNER_BIN))}:${dirname(process.execPath)}:${DEFAULT_PATH}`,
    `HOSTNAME=pod-runner`,
    `HOME=${who.uid === 0 ? '/root' : '/'}`,
    ...(container.env ?? []).map((variable) => `${variable.name}=${variable.value ?? ''}`),
  ];
  const argv = [...(container.command ?? []), ...(container.args ?? [])];
  if (argv.length === 0) throw new Error(`container ${container.name}: no command (images are not emulated, so the spec must say what to run)`);
  const setpriv = [
    'setpriv',
    `--reuid=${who.uid}`,
    `--regid=${who.gid}`,
    ...(who.groups.length > 0 ? [`--groups=${who.groups.join(',')}`] : ['--clear-groups']),
    `--bounding-set=${capabilitySet(container.securityContext)}`,
    '--inh-caps=-all',
    ...(container.securityContext?.allowPrivilegeEscalation === false ? ['--no-new-privs'] : []),
    '--',
  ];
  const command = ['env', '-i', ...env, ...argv].map(quote).join(' ');
  lines.push(`cd "$R"`, `exec chroot "$R" ${setpriv.map(quote).join(' ')} sh -c ${quote(`cd ${quote(container.workingDir ?? '/')} && exec "$@"`)} sh ${command}`);
  return `${lines.join('\n')}\n`;
}

interface Running {
  readonly name: string;
  readonly role: ContainerRole;
  readonly child: ChildProcess;
  readonly exited: Promise<number>;
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  startedAt: number;
  readyAt: number | undefined;
  endedAt: number | undefined;
  terminatedByRunner: boolean;
}

/** The PID of the container's PID 1 (the child of `unshare --fork`), which gets SIGTERM at pod end. */
function containerPid(child: ChildProcess): number | undefined {
  if (child.pid === undefined) return undefined;
  try {
    const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return children.length > 0 ? Number(children[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** `nsenter --net=...` before a command, when the pod has a network namespace of its own. */
function inNetns(netns: string | undefined, argv: readonly string[]): string[] {
  return netns === undefined ? [...argv] : [findTool('nsenter') ?? 'nsenter', `--net=/run/netns/${netns}`, ...argv];
}

function startContainer(
  pod: PodSpec,
  container: Container,
  role: ContainerRole,
  volumeDirs: ReadonlyMap<string, string>,
  stateDir: string,
  t0: number,
  netns: string | undefined,
): Running {
  const nsDir = join(stateDir, 'containers', container.name);
  mkdirSync(nsDir, { recursive: true });
  const scriptFile = join(stateDir, 'containers', `${container.name}.sh`);
  writeFileSync(scriptFile, containerScript(pod, container, volumeDirs, nsDir), { mode: 0o700 });
  const [command = 'unshare', ...args] = inNetns(netns, [findTool('unshare') ?? 'unshare', '--mount', '--pid', '--fork', '--kill-child', '--propagation', 'private', '/bin/sh', scriptFile]);
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const running: Running = {
    name: container.name,
    role,
    child,
    exited: Promise.resolve(0),
    exitCode: undefined,
    stdout: '',
    stderr: '',
    startedAt: performance.now() - t0,
    readyAt: undefined,
    endedAt: undefined,
    terminatedByRunner: false,
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    if (running.stdout.length < OUTPUT_LIMIT) running.stdout += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    if (running.stderr.length < OUTPUT_LIMIT) running.stderr += chunk.toString('utf8');
  });
  (running as { exited: Promise<number> }).exited = new Promise<number>((resolve) => {
    child.once('close', (code, signal) => {
      running.exitCode = code ?? (signal ? 128 + (signal === 'SIGKILL' ? 9 : 15) : 1);
      running.endedAt = performance.now() - t0;
      resolve(running.exitCode);
    });
    child.once('error', (error) => {
      running.stderr += `spawn error: ${error.message}\n`;
      running.exitCode = 127;
      running.endedAt = performance.now() - t0;
      resolve(127);
    });
  });
  return running;
}

function probePort(container: Container, probe: Probe): number {
  const port = probe.httpGet?.port;
  if (typeof port === 'number') return port;
  const named = container.ports?.find((candidate) => candidate.name === port);
  if (!named) throw new Error(`container ${container.name}: startupProbe port ${String(port)} is not one of its named ports`);
  return named.containerPort;
}

/** An HTTP GET's status from inside the pod's network namespace (curl there), or from here. */
async function probeStatus(url: string, netns: string | undefined): Promise<number> {
  if (netns === undefined) return (await fetch(url, { signal: AbortSignal.timeout(2000) })).status;
  const [command = 'curl', ...args] = inNetns(netns, [findTool('curl') ?? 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', url]);
  const out = await new Promise<string>((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.once('close', () => resolve(text));
    child.once('error', () => resolve('000'));
  });
  return Number(out) || 0;
}

async function waitForStartup(container: Container, running: Running, deadline: number, everyMs: number, netns: string | undefined): Promise<void> {
  const probe = container.startupProbe;
  if (!probe?.httpGet) return;
  const url = `http://127.0.0.1:${probePort(container, probe)}${probe.httpGet.path ?? '/'}`;
  const probeDeadline = Math.min(deadline, Date.now() + (probe.periodSeconds ?? 10) * (probe.failureThreshold ?? 3) * 1000);
  for (;;) {
    if (running.exitCode !== undefined) throw new Error(`sidecar ${container.name} exited with ${running.exitCode} before its startupProbe passed`);
    try {
      const status = await probeStatus(url, netns);
      if (status >= 200 && status < 400) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > probeDeadline) throw new Error(`sidecar ${container.name}: startupProbe ${url} did not pass in time`);
    await sleep(everyMs);
  }
}

async function terminate(running: Running, graceMs: number): Promise<void> {
  if (running.exitCode !== undefined) return;
  running.terminatedByRunner = true;
  const pid = containerPid(running.child);
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const timer = setTimeout(() => running.child.kill('SIGKILL'), graceMs);
  await running.exited;
  clearTimeout(timer);
}

/** Runs the pod to completion (see the module comment); never throws for a failing container. */
export async function runPod(pod: PodSpec, options: RunPodOptions = {}): Promise<PodResult> {
  const unavailable = podRunnerUnavailableReason();
  if (unavailable) throw new Error(unavailable);
  const stateDir = makeTempDir('pod');
  const t0 = performance.now();
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  const graceMs = Math.min(10, pod.terminationGracePeriodSeconds ?? 30) * 1000;
  const probeEveryMs = options.probeEveryMs ?? 200;
  const started: Running[] = [];
  let failure: string | undefined;
  let volumeDirs = new Map<string, string>();
  const remaining = (): number => Math.max(0, deadline - Date.now());
  const withDeadline = async <T>(promise: Promise<T>, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), remaining())))]);
    } finally {
      clearTimeout(timer);
    }
  };
  try {
    volumeDirs = prepareVolumes(pod, stateDir, options.secrets);
    for (const container of pod.initContainers ?? []) {
      const sidecar = container.restartPolicy === 'Always';
      const running = startContainer(pod, container, sidecar ? 'sidecar' : 'init', volumeDirs, stateDir, t0, options.netns);
      started.push(running);
      if (sidecar) {
        await waitForStartup(container, running, deadline, probeEveryMs, options.netns);
        running.readyAt = performance.now() - t0;
      } else {
        const code = await withDeadline(running.exited, `init container ${container.name}`);
        if (code !== 0) throw new Error(`init container ${container.name} exited with ${code}`);
      }
    }
    const mainNames = options.mainContainers ?? pod.containers.map((container) => container.name).filter((name) => name !== 'git-cache' || pod.containers.length === 1);
    await options.beforeApps?.();
    const apps = pod.containers.map((container) => startContainer(pod, container, 'app', volumeDirs, stateDir, t0, options.netns));
    started.push(...apps);
    const mains = apps.filter((running) => mainNames.includes(running.name));
    await withDeadline(Promise.all(mains.map((running) => running.exited)), `containers ${mainNames.join(', ')}`);
    const failed = mains.filter((running) => running.exitCode !== 0);
    if (failed.length > 0) failure = failed.map((running) => `container ${running.name} exited with ${running.exitCode}`).join('; ');
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
  } finally {
    // Pod end: the rest get SIGTERM in reverse start order (the kubelet stops sidecars after the app).
    for (const running of [...started].reverse()) await terminate(running, graceMs);
  }
  const containers: ContainerResult[] = started.map((running) => ({
    name: running.name,
    role: running.role,
    exitCode: running.exitCode,
    terminatedByRunner: running.terminatedByRunner,
    stdout: running.stdout,
    stderr: running.stderr,
    startedAt: running.startedAt,
    readyAt: running.readyAt,
    endedAt: running.endedAt,
  }));
  return {
    succeeded: failure === undefined,
    failure,
    containers,
    volumeDirs,
    container(name) {
      const found = containers.find((container) => container.name === name);
      if (!found) throw new Error(`no container ${name} ran (ran: ${containers.map((container) => container.name).join(', ')})`);
      return found;
    },
    cleanup: () => {
      if (existsSync(stateDir)) removeDir(stateDir);
    },
  };
}

/** A readable account of a pod run, for assertion messages. */
export function describePodRun(result: PodResult): string {
  return [
    `pod ${result.succeeded ? 'succeeded' : `failed: ${result.failure ?? ''}`}`,
    ...result.containers.map(
      (container) =>
        `--- ${container.role} ${container.name}: exit ${container.exitCode ?? 'running'}${container.terminatedByRunner ? ' (stopped at pod end)' : ''}, ` +
        `started ${container.startedAt.toFixed(0)} ms${container.readyAt !== undefined ? `, ready ${container.readyAt.toFixed(0)} ms` : ''}` +
        `${container.endedAt !== undefined ? `, ended ${container.endedAt.toFixed(0)} ms` : ''}\n[stdout]\n${container.stdout.slice(-6000)}\n[stderr]\n${container.stderr.slice(-6000)}`,
    ),
  ].join('\n');
}

/**
 * The pod spec the real function gives `job` (a Job manifest) under `gitCacheSpec`, through
 * `kpt fn eval --exec function/inject-git-cache`: what the tests then run.
 */
export async function renderJobPodSpec(job: Record<string, unknown>, gitCacheSpec: Record<string, unknown>): Promise<PodSpec> {
  const packageDir = makeTempDir('render-package');
  const configDir = makeTempDir('render-config');
  try {
    writeFileSync(join(packageDir, 'job.yaml'), stringify(job));
    const fnConfig = join(configDir, 'gitcache.yaml');
    writeFileSync(fnConfig, stringify({ apiVersion: 'git-cache.dev/v1alpha1', kind: 'GitCache', metadata: { name: 'git-cache' }, spec: gitCacheSpec }));
    const functionPath = join(REPO_ROOT, 'function', 'inject-git-cache');
    const rendered = await execa(findTool('kpt') ?? 'kpt', ['fn', 'eval', packageDir, '--exec', functionPath, '--fn-config', fnConfig, '-o', 'stdout'], { reject: false });
    if (rendered.exitCode !== 0) throw new Error(`kpt fn eval failed: ${rendered.stderr}`);
    const list = parse(rendered.stdout) as { items: Array<{ kind: string; spec: { template: { spec: PodSpec } } }> };
    const renderedJob = list.items.find((item) => item.kind === 'Job');
    if (!renderedJob) throw new Error(`no Job in kpt output:\n${rendered.stdout}`);
    return renderedJob.spec.template.spec;
  } finally {
    removeDir(packageDir);
    removeDir(configDir);
  }
}
