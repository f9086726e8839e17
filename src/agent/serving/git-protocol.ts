/**
 * Just enough of git's wire protocol (gitprotocol-pack, gitprotocol-v2) for the git port to see what a reader
 * asks for before upload-pack answers: pkt-lines, the git:// request line, and protocol v2 requests. Pure: bytes
 * in, packets and requests out. Anything it does not understand is left to git, byte for byte.
 */

/** The largest pkt-line git sends or accepts (4 length bytes + 65516 of payload). */
export const MAX_PKT_LENGTH = 65520;

export type Packet =
  | { readonly kind: 'data'; readonly raw: Buffer; readonly payload: Buffer }
  | { readonly kind: 'flush' | 'delim' | 'response-end'; readonly raw: Buffer };

/** Splits a byte stream into pkt-lines; bytes that are no pkt-line make it 'invalid' (and stay in `rest`). */
export class PacketReader {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
  }

  /** The next complete packet, 'incomplete' when more bytes are needed, 'invalid' when these are no pkt-line. */
  next(): Packet | 'incomplete' | 'invalid' {
    if (this.buffer.length < 4) return 'incomplete';
    const header = this.buffer.subarray(0, 4).toString('latin1');
    if (!/^[0-9a-f]{4}$/.test(header)) return 'invalid';
    const length = Number.parseInt(header, 16);
    if (length <= 2) {
      const raw = this.take(4);
      return { kind: length === 0 ? 'flush' : length === 1 ? 'delim' : 'response-end', raw };
    }
    if (length < 4 || length > MAX_PKT_LENGTH) return 'invalid';
    if (this.buffer.length < length) return 'incomplete';
    const raw = this.take(length);
    return { kind: 'data', raw, payload: raw.subarray(4) };
  }

  /** Everything not taken yet (for passing the rest of a stream through unread). */
  rest(): Buffer {
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    return rest;
  }

  private take(length: number): Buffer {
    const raw = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return raw;
  }
}

/** A packet's text without its trailing newline. */
export function packetText(packet: Packet): string | undefined {
  return packet.kind === 'data' ? packet.payload.toString('latin1').replace(/\n$/, '') : undefined;
}

export interface RequestLine {
  /** `git-upload-pack`, `git-receive-pack`, ... */
  readonly service: string;
  /** The repository path as the client sent it (`/<key>.git`). */
  readonly path: string;
  /** The client asked for protocol version 2 (`version=2` among the extra parameters). */
  readonly version2: boolean;
}

/**
 * The first packet of a git:// connection: `git-upload-pack /path\0host=HOST\0` optionally followed by
 * `\0version=2\0` (extra parameters, gitprotocol-pack "Git Transport").
 */
export function parseRequestLine(payload: Buffer): RequestLine | undefined {
  const text = payload.toString('latin1');
  const match = /^(git-[a-z-]+) ([^\0]*)\0/.exec(text);
  if (!match) return undefined;
  const extra = text.indexOf('\0\0');
  const parameters = extra === -1 ? [] : text.slice(extra + 2).split('\0');
  return { service: match[1] ?? '', path: match[2] ?? '', version2: parameters.includes('version=2') };
}

/** A protocol v2 request: `command=NAME`, capabilities, a delimiter, then arguments, ended by a flush. */
export interface V2Request {
  readonly command: string;
  readonly args: readonly string[];
}

/** Collects the packets of one v2 request; `complete` once its flush arrived. */
export class V2RequestCollector {
  private readonly packets: Buffer[] = [];
  private size = 0;
  private command = '';
  private readonly args: string[] = [];
  private inArgs = false;

  /** Adds a packet; returns the request when this packet (a flush) completes it. */
  add(packet: Packet): V2Request | undefined {
    this.packets.push(packet.raw);
    this.size += packet.raw.length;
    if (packet.kind === 'flush') return { command: this.command, args: this.args };
    if (packet.kind === 'delim') {
      this.inArgs = true;
      return undefined;
    }
    const text = packetText(packet);
    if (text === undefined) return undefined;
    if (this.inArgs) this.args.push(text);
    else if (text.startsWith('command=')) this.command = text.slice('command='.length);
    return undefined;
  }

  /** The request's bytes as received, to forward. */
  bytes(): Buffer {
    return Buffer.concat(this.packets, this.size);
  }

  byteLength(): number {
    return this.size;
  }
}

const OBJECT_ID = /^[0-9a-f]{40}$|^[0-9a-f]{64}$/;

/** What a request needs the mirror to have: commits it wants, refs it names in full. */
export interface Needs {
  readonly objects: readonly string[];
  readonly refs: readonly string[];
}

/**
 * `git fetch` asks `ls-refs` for the refs its refspecs may match, as prefixes: a short name `main` becomes
 * `main`, `refs/main`, `refs/tags/main`, `refs/heads/main`, `refs/remotes/main`, `refs/remotes/main/HEAD`
 * (git's ref_rev_parse_rules), a glob `refs/heads/feature*` becomes `refs/heads/feature`. A full ref outside
 * refs/heads/ and refs/tags/ that is no such expansion (GitLab's `refs/pipelines/N` and
 * `refs/merge-requests/N/head`, GitHub's `refs/pull/N/head`) names one ref the client expects to exist. Branch
 * and tag prefixes are left out: a glob's prefix (actions/checkout's `refs/tags/BRANCH*`) looks the same and
 * usually matches nothing, which must not cost a fetch per clone.
 */
function namedRefs(prefixes: readonly string[]): string[] {
  const given = new Set(prefixes);
  const expansions = new Set<string>();
  for (const name of prefixes) {
    for (const rule of ['refs/%s', 'refs/tags/%s', 'refs/heads/%s', 'refs/remotes/%s', 'refs/remotes/%s/HEAD']) expansions.add(rule.replace('%s', name));
  }
  return [...given].filter(
    (prefix) =>
      prefix.startsWith('refs/') &&
      !prefix.startsWith('refs/heads/') &&
      !prefix.startsWith('refs/tags/') &&
      !prefix.endsWith('/') &&
      !prefix.includes('*') &&
      !expansions.has(prefix) &&
      /^[A-Za-z0-9._/-]+$/.test(prefix),
  );
}

/** The commits a v2 `fetch` wants and the full refs a v2 `ls-refs` names (see namedRefs). */
export function requestNeeds(request: V2Request): Needs {
  if (request.command === 'fetch') {
    const objects = request.args.filter((arg) => arg.startsWith('want ')).map((arg) => arg.slice('want '.length)).filter((id) => OBJECT_ID.test(id));
    return { objects: [...new Set(objects)], refs: [] };
  }
  if (request.command === 'ls-refs') {
    return { objects: [], refs: namedRefs(request.args.filter((arg) => arg.startsWith('ref-prefix ')).map((arg) => arg.slice('ref-prefix '.length))) };
  }
  return { objects: [], refs: [] };
}
