/**
 * The benchmark's upstream link. Preferred: the upstream `git daemon` inside its own network namespace, behind
 * a veth pair addressed from the benchmarking range 198.18.0.0/15 (a /30 per process; RFC 2544; nothing is routed anywhere else),
 * shaped on both ends to 50 Mbit/s and 20 ms RTT; bytes over the wire are the veth's interface counters.
 * Fallback (not root, or no `ip netns`): a loopback-only variant where a userspace relay on 127.0.0.1 adds the
 * latency and the rate limit and counts the bytes it relays (payload only, no TCP/IP headers).
 *
 * Kernels built without sch_netem (as on the machine the published figures come from) get `tbf` for the rate
 * on both veth ends and the userspace delay relay (relay.mjs) inside the namespace for the latency.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createConnection } from 'node:net';

export interface LinkShape {
  /** One-way delay added on each direction (RTT = 2x). */
  readonly delayMs: number;
  readonly rateMbit: number;
}

export interface UpstreamLink {
  readonly kind: 'netns' | 'loopback';
  /** How the link is built and shaped, for the report. */
  readonly description: string;
  /** What the byte counter counts. */
  readonly bytesMeaning: string;
  url(relativePath: string): string;
  /** Bytes in both directions so far (monotonic). */
  bytes(): Promise<number>;
  /** Number of upload-pack requests the daemon has logged so far (how many fetches reached upstream). */
  uploadPacks(): number;
  teardown(): void;
}

const RELAY = fileURLToPath(new URL('./relay.mjs', import.meta.url));
// A /30 per process, so two benchmarks running at once (bench:clone and bench:pods) get links of their own:
// two veths with one address would make the host route one benchmark's traffic into the other's namespace.
const SUBNET = `198.18.${(process.pid >> 6) % 256}.${(process.pid % 64) * 4}`;
const HOST_ADDR = SUBNET.replace(/\d+$/, (last) => String(Number(last) + 1));
const NS_ADDR = SUBNET.replace(/\d+$/, (last) => String(Number(last) + 2));
const PREFIX = 30;
const GIT_PORT = 9418;
const INNER_PORT = 9419;

const ipTool = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((path) => existsSync(path));
const tcTool = ['/usr/sbin/tc', '/sbin/tc', '/usr/bin/tc', '/bin/tc'].find((path) => existsSync(path));

function run(command: string, args: readonly string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryRun(command: string, args: readonly string[]): boolean {
  try {
    run(command, args);
    return true;
  } catch {
    return false;
  }
}

/** Why the netns variant cannot run here, or undefined when it can. */
export function netnsUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!ipTool) return '`ip` (iproute2) not found';
  if (!tcTool) return '`tc` (iproute2) not found';
  const probe = `gcbench-probe-${process.pid}`;
  if (!tryRun(ipTool, ['netns', 'add', probe])) return '`ip netns add` failed (no network namespaces?)';
  tryRun(ipTool, ['netns', 'del', probe]);
  return undefined;
}

async function waitForTcp(host: string, port: number, child: ChildProcess, what: string, inNetns?: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const ok = inNetns
      ? tryRun(ipTool ?? 'ip', ['netns', 'exec', inNetns, 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`])
      : await new Promise<boolean>((resolve) => {
          const socket = createConnection({ host, port });
          socket.once('connect', () => {
            socket.destroy();
            resolve(true);
          });
          socket.once('error', () => resolve(false));
        });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${what} did not listen on ${host}:${port}`);
}

function startLogged(command: string, args: readonly string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return child;
}

function countUploadPacks(logFile: string): number {
  if (!existsSync(logFile)) return 0;
  return readFileSync(logFile, 'utf8').split('\n').filter((line) => line.includes('Request upload-pack')).length;
}

function daemonArgs(listen: string, port: number, basePath: string): string[] {
  return ['daemon', '--reuseaddr', `--listen=${listen}`, `--port=${port}`, `--base-path=${basePath}`, '--export-all', '--verbose', '--max-connections=64', basePath];
}

/** Upstream in network namespace `gcbench-up-<pid>` behind a shaped veth pair. */
export async function startNetnsLink(basePath: string, workDir: string, shape: LinkShape): Promise<UpstreamLink> {
  if (!ipTool || !tcTool) throw new Error('ip/tc not found');
  const ip = ipTool;
  const tc = tcTool;
  const ns = `gcbench-up-${process.pid}`;
  const hostIf = `gcbh${process.pid}`.slice(0, 15);
  const nsIf = `gcbn${process.pid}`.slice(0, 15);
  const children: ChildProcess[] = [];
  let tornDown = false;
  const teardown = (): void => {
    if (tornDown) return;
    tornDown = true;
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    // Anything else still running in the namespace (a stray upload-pack) would keep it alive.
    try {
      for (const pid of run(ip, ['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) tryRun('kill', ['-9', pid]);
    } catch {
      // namespace already gone
    }
    tryRun(ip, ['link', 'del', hostIf]);
    tryRun(ip, ['netns', 'del', ns]);
  };
  registerCleanup(teardown);
  try {
    run(ip, ['netns', 'add', ns]);
    run(ip, ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', ns]);
    run(ip, ['addr', 'add', `${HOST_ADDR}/${PREFIX}`, 'dev', hostIf]);
    run(ip, ['link', 'set', hostIf, 'up']);
    run(ip, ['-n', ns, 'addr', 'add', `${NS_ADDR}/${PREFIX}`, 'dev', nsIf]);
    run(ip, ['-n', ns, 'link', 'set', nsIf, 'up']);
    run(ip, ['-n', ns, 'link', 'set', 'lo', 'up']);
    const netem = ['qdisc', 'add', 'dev', hostIf, 'root', 'netem', 'delay', `${shape.delayMs}ms`, 'rate', `${shape.rateMbit}mbit`, 'limit', '10000'];
    const haveNetem = tryRun(tc, netem);
    const daemonLog = join(workDir, 'git-daemon.log');
    let description: string;
    if (haveNetem) {
      run(ip, ['netns', 'exec', ns, tc, ...netem.map((word) => (word === hostIf ? nsIf : word))]);
      children.push(startLogged(ip, ['netns', 'exec', ns, 'git', ...daemonArgs(NS_ADDR, GIT_PORT, basePath)], daemonLog));
      await waitForTcp(NS_ADDR, GIT_PORT, children[0] as ChildProcess, 'git daemon', ns);
      description = `netns + veth ${HOST_ADDR}/${PREFIX} <-> ${NS_ADDR}/${PREFIX}, tc netem delay ${shape.delayMs}ms rate ${shape.rateMbit}mbit on both ends (RTT ${2 * shape.delayMs} ms)`;
    } else {
      // No sch_netem in this kernel: tbf limits the rate on both veth ends (queue of up to 100 ms), and the
      // relay inside the namespace holds every chunk for delayMs in each direction.
      const tbf = (dev: string): string[] => ['qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', `${shape.rateMbit}mbit`, 'burst', '64kb', 'latency', '100ms'];
      run(tc, tbf(hostIf));
      run(ip, ['netns', 'exec', ns, tc, ...tbf(nsIf)]);
      children.push(startLogged(ip, ['netns', 'exec', ns, 'git', ...daemonArgs('127.0.0.1', INNER_PORT, basePath)], daemonLog));
      await waitForTcp('127.0.0.1', INNER_PORT, children[0] as ChildProcess, 'git daemon', ns);
      children.push(
        startLogged(
          ip,
          ['netns', 'exec', ns, process.execPath, RELAY, '--listen', `${NS_ADDR}:${GIT_PORT}`, '--target', `127.0.0.1:${INNER_PORT}`, '--delay-ms', String(shape.delayMs)],
          join(workDir, 'relay.log'),
        ),
      );
      await waitForTcp(NS_ADDR, GIT_PORT, children[1] as ChildProcess, 'delay relay', ns);
      description =
        `netns + veth ${HOST_ADDR}/${PREFIX} <-> ${NS_ADDR}/${PREFIX}; this kernel has no sch_netem, so: tc tbf rate ${shape.rateMbit}mbit on both veth ends, ` +
        `and a userspace relay in the namespace delaying each direction by ${shape.delayMs} ms (RTT ${2 * shape.delayMs} ms at the git protocol level)`;
    }
    const counter = (name: string): number => Number(readFileSync(`/sys/class/net/${hostIf}/statistics/${name}`, 'utf8'));
    return {
      kind: 'netns',
      description,
      bytesMeaning: `rx_bytes + tx_bytes of ${hostIf} (the root-namespace end of the veth): everything on the wire, TCP/IP headers included`,
      url: (relativePath) => `git://${NS_ADDR}/${relativePath}`,
      bytes: async () => counter('rx_bytes') + counter('tx_bytes'),
      uploadPacks: () => countUploadPacks(daemonLog),
      teardown,
    };
  } catch (error) {
    teardown();
    throw error;
  }
}

/** The labelled fallback: daemon and relay on 127.0.0.1; bytes are the relay's payload counters. */
export async function startLoopbackLink(basePath: string, workDir: string, shape: LinkShape, ports: { daemon: number; relay: number; stats: number }): Promise<UpstreamLink> {
  const children: ChildProcess[] = [];
  const teardown = (): void => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  };
  registerCleanup(teardown);
  const daemonLog = join(workDir, 'git-daemon.log');
  mkdirSync(workDir, { recursive: true });
  try {
    children.push(startLogged('git', daemonArgs('127.0.0.1', ports.daemon, basePath), daemonLog));
    await waitForTcp('127.0.0.1', ports.daemon, children[0] as ChildProcess, 'git daemon');
    children.push(
      startLogged(
        process.execPath,
        [RELAY, '--listen', `127.0.0.1:${ports.relay}`, '--target', `127.0.0.1:${ports.daemon}`, '--delay-ms', String(shape.delayMs), '--rate-mbit', String(shape.rateMbit), '--stats-port', String(ports.stats)],
        join(workDir, 'relay.log'),
      ),
    );
    await waitForTcp('127.0.0.1', ports.relay, children[1] as ChildProcess, 'relay');
    await waitForTcp('127.0.0.1', ports.stats, children[1] as ChildProcess, 'relay stats');
  } catch (error) {
    teardown();
    throw error;
  }
  return {
    kind: 'loopback',
    description: `LOOPBACK-ONLY VARIANT: git daemon and a userspace relay on 127.0.0.1; the relay adds ${shape.delayMs} ms each way and limits to ${shape.rateMbit} Mbit/s`,
    bytesMeaning: 'payload bytes the relay forwarded in both directions (no TCP/IP headers)',
    url: (relativePath) => `git://127.0.0.1:${ports.relay}/${relativePath}`,
    bytes: async () => {
      const stats = (await (await fetch(`http://127.0.0.1:${ports.stats}/stats`)).json()) as { toServer: number; toClient: number };
      return stats.toServer + stats.toClient;
    },
    uploadPacks: () => countUploadPacks(daemonLog),
    teardown,
  };
}

const cleanups: Array<() => void> = [];
let handlersInstalled = false;

/** Runs `cleanup` on exit, Ctrl-C, SIGTERM and crashes: the namespace and veth never outlive the benchmark. */
export function registerCleanup(cleanup: () => void): void {
  cleanups.push(cleanup);
  if (handlersInstalled) return;
  handlersInstalled = true;
  const runAll = (): void => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        fn();
      } catch {
        // keep cleaning
      }
    }
  };
  process.on('exit', runAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      runAll();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (error) => {
    runAll();
    console.error(error);
    process.exit(1);
  });
}

export function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}
