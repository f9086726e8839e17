/**
 * On-demand refresh: `POST /v1/refresh?repo=NAME` (CONTRACT.md §2). A request joins the next sync of NAME that
 * starts after it arrived, so the 200 means "the mirror holds upstream's refs as of the request"; every request
 * waiting at that moment shares that one sync (coalescing), and the serve loop runs it (so it also coalesces
 * with the periodic refresh and, through the repo lock, with other agents on the volume).
 *
 * Bounds (floods): a repo's loop starts a requested sync at most once per `minIntervalMs`; at most
 * `maxWaitersPerRepo` requests wait per repo and `maxWaiters` in all, beyond which a request gets 429 at once.
 * The request names a configured repo and nothing else: no URL, no ref, no body.
 *
 * Who may ask: a client on loopback (the pod's own containers, in sidecar modes) or one that presents the
 * volume's refresh token (REFRESH_TOKEN_RELATIVE_PATH: only containers that mount the cache can read it; the
 * keeper's and node agents' refresh port is reached through a Service by other pods).
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REFRESH_PATH, REFRESH_TOKEN_HEADER, REFRESH_TOKEN_RELATIVE_PATH } from '../../shared/names.js';
import { REPO_NAME_PATTERN } from '../../shared/repo-url.js';
import type { Repo } from '../cli.js';
import type { Logger } from '../log.js';
import type { RepoOutcome } from '../mirror/sync.js';

export interface RefreshLimits {
  /** A requested sync of one repo starts at most this often. */
  readonly minIntervalMs: number;
  readonly maxWaitersPerRepo: number;
  readonly maxWaiters: number;
}

export const DEFAULT_REFRESH_LIMITS: RefreshLimits = { minIntervalMs: 5000, maxWaitersPerRepo: 64, maxWaiters: 256 };

export type RefreshAnswer = { readonly kind: 'done'; readonly outcome: RepoOutcome } | { readonly kind: 'stopped' };

type Waiter = (answer: RefreshAnswer) => void;

/** The waiting requests per repo, between the HTTP side and the repo's serve loop. */
export class RefreshQueue {
  private readonly waiting = new Map<string, Waiter[]>();
  private total = 0;

  constructor(
    readonly limits: RefreshLimits,
    /** Wakes the repo's loop when a request arrives while it sleeps. */
    private readonly wake: (key: string) => void,
  ) {}

  /** Queues a request for the next sync of `key`, or says it cannot wait now (429). */
  request(key: string): Promise<RefreshAnswer> | 'busy' {
    const list = this.waiting.get(key) ?? [];
    if (list.length >= this.limits.maxWaitersPerRepo || this.total >= this.limits.maxWaiters) return 'busy';
    const answer = new Promise<RefreshAnswer>((resolve) => list.push(resolve));
    this.waiting.set(key, list);
    this.total++;
    this.wake(key);
    return answer;
  }

  hasWaiters(key: string): boolean {
    return (this.waiting.get(key)?.length ?? 0) > 0;
  }

  /** The loop takes the requests waiting when its sync starts, and answers them with that sync's outcome. */
  take(key: string): Waiter[] {
    const list = this.waiting.get(key) ?? [];
    this.waiting.delete(key);
    this.total -= list.length;
    return list;
  }

  static answer(waiters: readonly Waiter[], answer: RefreshAnswer): void {
    for (const waiter of waiters) waiter(answer);
  }

  stopAll(): void {
    for (const key of [...this.waiting.keys()]) RefreshQueue.answer(this.take(key), { kind: 'stopped' });
  }
}

export interface RefreshAccess {
  /** The volume's refresh token, or undefined when none could be made (then only loopback may ask). */
  readonly token: string | undefined;
  readonly repos: readonly Repo[];
  readonly queue: RefreshQueue;
  readonly logger: Logger;
  readonly cacheDir: string;
}

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || /^127\./.test(address) || /^::ffff:127\./i.test(address);
}

function tokenMatches(presented: string | string[] | undefined, token: string | undefined): boolean {
  if (token === undefined || typeof presented !== 'string') return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function reply(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }).end(`${JSON.stringify(body)}\n`);
}

/** True when `url`'s path is the refresh endpoint (so the HTTP server routes it here, whatever the method). */
export function isRefreshRequest(url: string | undefined): boolean {
  return (url ?? '/').split('?')[0] === REFRESH_PATH;
}

/** Handles one request to REFRESH_PATH; everything is decided before anything is fetched. */
export async function handleRefresh(req: IncomingMessage, res: ServerResponse, access: RefreshAccess): Promise<void> {
  const { logger } = access;
  const peer = req.socket.remoteAddress;
  const refuse = (status: number, error: string, headers: Record<string, string> = {}): void => {
    logger.info('refresh_refused', { status, reason: error, peer });
    // A body is never used: discard what arrives (so the client reads the answer instead of a reset), at most
    // 64 KiB, then close the connection.
    let discarded = 0;
    req.on('data', (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > 65_536) req.socket.destroy();
    });
    req.resume();
    reply(res, status, { error }, { ...headers, connection: 'close' });
  };
  if (req.method !== 'POST') return refuse(405, `${REFRESH_PATH} takes POST`, { allow: 'POST' });
  const query = (req.url ?? '').slice(REFRESH_PATH.length);
  const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : '');
  const keys = [...params.keys()];
  if (keys.length !== 1 || keys[0] !== 'repo' || params.getAll('repo').length !== 1) {
    return refuse(400, `${REFRESH_PATH} takes exactly one parameter, repo=NAME (a configured repo's name); it never takes a URL or a ref`);
  }
  if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? '0') !== 0) {
    return refuse(400, `${REFRESH_PATH} takes no request body`);
  }
  if (!isLoopback(peer) && !tokenMatches(req.headers[REFRESH_TOKEN_HEADER], access.token)) {
    return refuse(
      403,
      `refresh requests come from this pod (loopback) or carry the ${REFRESH_TOKEN_HEADER} header with the token in <cache dir>/${REFRESH_TOKEN_RELATIVE_PATH}, which only pods that mount the cache can read`,
    );
  }
  const name = params.get('repo') ?? '';
  const repo = REPO_NAME_PATTERN.test(name) ? access.repos.find((candidate) => candidate.name === name) : undefined;
  if (!repo) return refuse(404, `this agent serves no repo named "${name.slice(0, 64)}"; it serves ${access.repos.map((r) => r.name).join(', ')}`);
  const queued = access.queue.request(repo.key);
  if (queued === 'busy') {
    return refuse(429, `too many refresh requests waiting; retry in ${Math.ceil(access.queue.limits.minIntervalMs / 1000)}s`, {
      'retry-after': String(Math.ceil(access.queue.limits.minIntervalMs / 1000)),
    });
  }
  const started = Date.now();
  const answer = await queued;
  if (answer.kind === 'stopped') return reply(res, 503, { repo: repo.name, error: 'the agent is stopping' });
  const { outcome } = answer;
  logger.info('refresh_answered', { repo: repo.name, ok: outcome.ok, waitedMs: Date.now() - started, peer });
  if (!outcome.ok) return reply(res, 502, { repo: repo.name, error: `fetch failed: ${outcome.reason}` });
  reply(res, 200, { repo: repo.name, result: outcome.result.action, seconds: Math.round((Date.now() - started) / 100) / 10 });
}
