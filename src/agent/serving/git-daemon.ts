/**
 * The agent's git port (`--git-daemon-port`), for pods that fetch over the network instead of mounting the
 * volume (node mode's network readers, the keeper's git daemon, a tier). URL: git://HOST:PORT/<key>.git.
 *
 * Each connection is served by `git daemon --inetd`: upload-pack only, exporting exactly this agent's mirror
 * directories (--strict-paths with one whitelist entry per mirror, so neither staging dirs nor anything else
 * under the cache dir is reachable), with the base environment (no credential). The agent sits in front and
 * reads what the client sends (git-protocol.ts), forwarding it unchanged, to keep these readers as fresh as
 * the ones that mount the volume (whose upload-pack wrapper does the same on their side):
 *
 * - a protocol v2 `fetch` that wants a commit the mirror lacks (actions/checkout, Tekton and Argo CD fetch a
 *   commit id pushed after the last refresh), or an `ls-refs` naming a full ref it lacks outside refs/heads/
 *   and refs/tags/ (GitLab's refs/pipelines/N), first gets a refresh of that repo: the same request as
 *   `POST /v1/refresh` (coalesced with running fetches, at most one per --refresh-min-interval, bounded
 *   waiters), waited for at most REFRESH_WAIT_MS, then upload-pack answers from the refreshed mirror;
 * - the request names nothing else: the repo is the one its path names, the objects and refs only decide
 *   whether to refresh. Who may connect is the NetworkPolicy's business (node and keeper policies admit
 *   selected pods only), exactly as for reading the mirror itself;
 * - protocol v0/v1 clients are passed through unread (upload-pack v0 checks wants against the refs it
 *   advertised before any refresh could happen), as is anything that is not a well-formed request.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import type { Repo } from '../cli.js';
import { runGit } from '../git/run.js';
import type { Logger } from '../log.js';
import { mirrorDir } from '../mirror/mirror.js';
import { PacketReader, V2RequestCollector, parseRequestLine, requestNeeds, type Needs } from './git-protocol.js';

export interface GitDaemonOptions {
  readonly cacheDir: string;
  readonly repos: readonly Repo[];
  readonly address: string;
  readonly port: number;
  readonly env: Readonly<Record<string, string>>;
  /** Asks the repo's serve loop for a refresh and resolves with what happened ('busy' when too many wait). */
  readonly refresh: (repo: Repo) => Promise<string>;
}

/** How long a fetch waits for the refresh it triggered before upload-pack answers anyway. */
export const REFRESH_WAIT_MS = 60_000;
/** A request larger than this is forwarded without looking (a fetch of ~15,000 refs is about 1 MiB). */
export const MAX_INSPECTED_REQUEST = 1 << 20;
/** Connections at once; more are closed at once (as `git daemon --max-connections`). */
export const MAX_CONNECTIONS = 64;
/**
 * A connection with no traffic either way for this long is closed (git's own --timeout covers v0 only); longer
 * than a refresh wait, during which the client rightly sends nothing (upload-pack's keepalives cover packing).
 */
export const IDLE_TIMEOUT_MS = 2 * REFRESH_WAIT_MS;
/** At most this many full refs of one ls-refs are looked up (the rest decide nothing). */
const MAX_CHECKED_REFS = 64;
/** Bound of the git commands that look into a mirror. */
const CHECK_TIMEOUT_MS = 10_000;

/** `git daemon --inetd` serving one connection on stdin/stdout. */
export function gitDaemonArgs(options: Pick<GitDaemonOptions, 'cacheDir' | 'repos'>): string[] {
  return [
    '-c', 'core.hooksPath=/dev/null',
    'daemon',
    '--inetd',
    `--base-path=${options.cacheDir}`,
    '--strict-paths',
    '--export-all',
    '--disable=receive-pack',
    '--disable=upload-archive',
    '--forbid-override=receive-pack',
    '--forbid-override=upload-archive',
    '--forbid-override=upload-pack',
    '--timeout=60',
    '--init-timeout=10',
    '--log-destination=stderr',
    '--',
    ...options.repos.map((repo) => mirrorDir(options.cacheDir, repo)),
  ];
}

/** The configured repo a request path names (`/<key>.git`, with or without `.git` or a trailing slash). */
export function repoForPath(repos: readonly Repo[], path: string): Repo | undefined {
  const key = /^\/([0-9a-f]{20})(?:\.git)?\/?$/.exec(path)?.[1];
  return key === undefined ? undefined : repos.find((repo) => repo.key === key);
}

/** Which of `needs` the mirror lacks (empty when it has them all, or when it cannot tell). */
async function missingFrom(mirror: string, needs: Needs, env: Readonly<Record<string, string>>): Promise<Needs> {
  const signal = AbortSignal.timeout(CHECK_TIMEOUT_MS);
  let objects: string[] = [];
  if (needs.objects.length > 0) {
    const result = await runGit({ args: ['--git-dir', mirror, 'cat-file', '--batch-check=%(objectname)'], env, signal, stdin: `${needs.objects.join('\n')}\n` });
    if (result.code === 0) objects = result.stdout.split('\n').filter((line) => line.endsWith(' missing')).map((line) => line.slice(0, -' missing'.length));
  }
  let refs: string[] = [];
  const named = needs.refs.slice(0, MAX_CHECKED_REFS);
  if (named.length > 0) {
    const result = await runGit({ args: ['--git-dir', mirror, 'for-each-ref', '--format=%(refname)', '--', ...named], env, signal });
    if (result.code === 0) {
      const present = result.stdout.split('\n').filter(Boolean);
      refs = named.filter((ref) => !present.some((name) => name === ref || name.startsWith(`${ref}/`)));
    }
  }
  return { objects, refs };
}

function waitAtMost<T>(promise: Promise<T>, ms: number, timedOut: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<T>((resolve) => (timer = setTimeout(() => resolve(timedOut), ms)))]).finally(() => clearTimeout(timer));
}

/** One reader's connection: `git daemon --inetd` behind a reader of the client's requests. */
function serveConnection(socket: Socket, options: GitDaemonOptions, logger: Logger): void {
  const daemon: ChildProcess = spawn('git', gitDaemonArgs(options), { env: options.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const killDaemon = (): void => {
    if (daemon.pid === undefined || daemon.exitCode !== null || daemon.signalCode !== null) return;
    try {
      process.kill(-daemon.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  const input = daemon.stdin;
  const output = daemon.stdout;
  if (!input || !output) {
    socket.destroy();
    killDaemon();
    return;
  }
  output.pipe(socket);
  daemon.stderr?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logger.debug('git_daemon', { line });
  });
  daemon.on('error', (error) => {
    logger.error('git_daemon_failed', { reason: error.message });
    socket.destroy();
  });
  daemon.on('close', () => {
    // Nothing more to say: end, and close once the last bytes are flushed, so a client that never closes its
    // side does not hold a connection slot until the idle timeout.
    if (socket.destroyed) return;
    socket.end();
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  });
  input.on('error', () => undefined);
  socket.on('error', () => undefined);
  socket.on('close', killDaemon);
  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());

  // Reading is paused while a request waits for its refresh or git's stdin is full.
  let waitingForRefresh = false;
  let waitingForDrain = false;
  const updateFlow = (): void => {
    if (waitingForRefresh || waitingForDrain) socket.pause();
    else socket.resume();
  };
  const forward = (bytes: Buffer): void => {
    if (bytes.length === 0 || input.destroyed) return;
    if (!input.write(bytes) && !waitingForDrain) {
      // One listener however many packets are forwarded before git's stdin drains.
      waitingForDrain = true;
      updateFlow();
      input.once('drain', () => {
        waitingForDrain = false;
        updateFlow();
      });
    }
  };

  const reader = new PacketReader();
  let state: 'request-line' | 'v2' | 'pass' = 'request-line';
  let repo: Repo | undefined;
  let request = new V2RequestCollector();
  let pumping = false;
  let clientEnded = false;

  const ensureFresh = async (needs: Needs): Promise<void> => {
    if (!repo || (needs.objects.length === 0 && needs.refs.length === 0)) return;
    const missing = await missingFrom(mirrorDir(options.cacheDir, repo), needs, options.env);
    if (missing.objects.length === 0 && missing.refs.length === 0) return;
    const started = Date.now();
    const outcome = await waitAtMost(options.refresh(repo), REFRESH_WAIT_MS, 'timeout');
    logger.info('git_fetch_refreshed', { repo: repo.name, missingObjects: missing.objects.length, missingRefs: missing.refs, outcome, waitedMs: Date.now() - started });
  };

  const pump = async (): Promise<void> => {
    if (pumping) return;
    pumping = true;
    try {
      for (;;) {
        if (state === 'pass') {
          forward(reader.rest());
          if (clientEnded) input.end();
          return;
        }
        const packet = reader.next();
        if (packet === 'incomplete') {
          // The client sent everything it will: git's stdin ends after what was forwarded (an incomplete
          // packet left over goes too, for git to refuse).
          if (clientEnded) {
            forward(request.bytes());
            forward(reader.rest());
            input.end();
          }
          return;
        }
        if (packet === 'invalid') {
          forward(request.bytes());
          state = 'pass';
          continue;
        }
        if (state === 'request-line') {
          const line = packet.kind === 'data' ? parseRequestLine(packet.payload) : undefined;
          forward(packet.raw);
          repo = line?.service === 'git-upload-pack' ? repoForPath(options.repos, line.path) : undefined;
          state = repo && line?.version2 ? 'v2' : 'pass';
          continue;
        }
        const complete = request.add(packet);
        if (request.byteLength() > MAX_INSPECTED_REQUEST) {
          // Too large to hold: forward it unread, and whatever follows.
          forward(request.bytes());
          state = 'pass';
          continue;
        }
        if (!complete) continue;
        const bytes = request.bytes();
        request = new V2RequestCollector();
        waitingForRefresh = true;
        updateFlow();
        try {
          await ensureFresh(requestNeeds(complete));
        } catch (error) {
          logger.warn('git_fetch_refresh_failed', { repo: repo?.name, reason: error instanceof Error ? error.message : String(error) });
        }
        waitingForRefresh = false;
        updateFlow();
        if (socket.destroyed) return;
        forward(bytes);
      }
    } finally {
      pumping = false;
    }
  };

  socket.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    void pump();
  });
  socket.on('end', () => {
    clientEnded = true;
    void pump();
  });
}

export interface RunningDaemon {
  readonly port: number;
  stop(): Promise<void>;
}

/** Listens on the git port; every connection gets its own `git daemon --inetd`. */
export async function startGitDaemon(options: GitDaemonOptions, logger: Logger): Promise<RunningDaemon> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ pauseOnConnect: false }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serveConnection(socket, options, logger);
  });
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  logger.info('git_daemon_started', { address: options.address, port });
  return {
    port,
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
