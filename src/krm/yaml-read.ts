/**
 * Strict, bounded YAML reading, compatible with kyaml (go-yaml v3), which kpt and kustomize read with:
 * invalid UTF-8, control characters and duplicate mapping keys are errors with line and column; aliases must
 * name an anchor defined before them and not the node they are in; merge keys (`<<`) are honoured when reading
 * values; tags are kept in the text (the function never re-prints what it did not change). Every limit of
 * `ReadLimits` is enforced in one linear pass: an alias costs O(1), however large the node it names.
 */
import * as YAML from 'yaml';
import { Composer, Lexer, Parser, type Alias, type Document, type Node, type Pair, type Scalar, type YAMLMap, type YAMLSeq } from 'yaml';
import type { ReadLimits } from './limits.js';
import { readBlockYaml, type ParsedDocument } from './yaml-block-read.js';

// yaml's node tests, bound once: the bundle reaches a CommonJS dependency's exports through a getter on every
// call, and these run for every node.
export const isAlias: typeof YAML.isAlias = YAML.isAlias;
export const isMap: typeof YAML.isMap = YAML.isMap;
export const isScalar: typeof YAML.isScalar = YAML.isScalar;
export const isSeq: typeof YAML.isSeq = YAML.isSeq;

/** Input that is not YAML this function can read: the message is one line and says where. */
export class YamlSyntaxError extends Error {}

export type { ParsedDocument } from './yaml-block-read.js';

/** Line and column (1-based) of a character offset, for messages. */
export function lineAndColumn(text: string, offset: number): string {
  const clamped = Math.max(0, Math.min(offset, text.length));
  let line = 1;
  let lineStart = 0;
  for (let index = text.indexOf('\n'); index >= 0 && index < clamped; index = text.indexOf('\n', index + 1)) {
    line++;
    lineStart = index + 1;
  }
  return `line ${line}, column ${clamped - lineStart + 1}`;
}

/** Offset of the first byte that is not part of a well-formed UTF-8 sequence, or -1. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let index = 0; index < bytes.length; ) {
    const byte = bytes[index] as number;
    if (byte < 0x80) {
      index++;
      continue;
    }
    let length: number;
    let min: number;
    if (byte >= 0xc2 && byte <= 0xdf) [length, min] = [2, 0x80];
    else if (byte >= 0xe0 && byte <= 0xef) [length, min] = [3, 0x800];
    else if (byte >= 0xf0 && byte <= 0xf4) [length, min] = [4, 0x10000];
    else return index;
    let codePoint = byte & (0xff >> (length + 1));
    for (let next = 1; next < length; next++) {
      const continuation = bytes[index + next];
      if (continuation === undefined || (continuation & 0xc0) !== 0x80) return index;
      codePoint = (codePoint << 6) | (continuation & 0x3f);
    }
    if (codePoint < min || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return index;
    index += length;
  }
  return -1;
}

// go-yaml's reader accepts only #x9 | #xA | #xD | [#x20-#x7E] | #x85 | [#xA0-#xD7FF] | [#xE000-#xFFFD] |
// [#x10000-#x10FFFF]; this is the complement within well-formed UTF-16 text.
const CONTROL_CHARACTER = /[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x84\x86-\x9F\uFFFE\uFFFF]/;

/** Decodes input bytes strictly: a size limit, well-formed UTF-8 and no control characters. */
export function decodeInput(bytes: Uint8Array, limits: ReadLimits, what = 'input'): string {
  if (bytes.length > limits.maxInputBytes) {
    throw new YamlSyntaxError(`${what} is ${bytes.length} bytes, more than the limit of ${limits.maxInputBytes} (raise it with --max-input-bytes)`);
  }
  const invalid = firstInvalidUtf8(bytes);
  if (invalid >= 0) {
    const before = Buffer.from(bytes.buffer, bytes.byteOffset, invalid).toString('utf8');
    throw new YamlSyntaxError(`${what} is not valid UTF-8: byte 0x${(bytes[invalid] as number).toString(16).padStart(2, '0')} at ${lineAndColumn(before, before.length)}`);
  }
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8');
  checkCharacters(text, what);
  return text;
}

export function checkCharacters(text: string, what = 'input'): void {
  const match = CONTROL_CHARACTER.exec(text);
  if (match) {
    const code = (match[0].codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0');
    throw new YamlSyntaxError(`${what} holds the control character U+${code} at ${lineAndColumn(text, match.index)}; YAML allows it only escaped in a double-quoted string`);
  }
}

// Scalars are composed as strings (the failsafe schema) and typed by `scalarValue` with the YAML 1.2 core
// schema, as kyaml reads, only when read: most scalars of an input never are, and typing each costs. `<<`
// stays a plain key here and is merged by `plainValue`. Keys are checked for uniqueness below, in linear time
// (yaml's own check compares every pair of keys).
const COMPOSE_OPTIONS = { schema: 'failsafe', uniqueKeys: false, merge: false, strict: true, prettyErrors: false, intAsBigInt: false } as const;

const CORE_NULL = /^(?:~|null|Null|NULL|)$/;
const CORE_BOOL = /^(?:true|True|TRUE|false|False|FALSE)$/;
const CORE_INT = /^[-+]?[0-9]+$/;
const CORE_OCTAL = /^0o[0-7]+$/;
const CORE_HEX = /^0x[0-9a-fA-F]+$/;
const CORE_FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const CORE_INFINITY = /^[-+]?\.(?:inf|Inf|INF)$/;
const CORE_NAN = /^\.(?:nan|NaN|NAN)$/;

/** A plain scalar's value under the YAML 1.2 core schema (kyaml's), or undefined when it is a string. */
function coreValue(text: string, only?: 'null' | 'bool' | 'int' | 'float'): unknown {
  // Most scalars are words: only these first characters can start a null, a boolean or a number.
  if (!only && text.length > 0 && !/[~nNtTfF0-9+\-.]/.test(text[0] as string)) return undefined;
  if ((!only || only === 'null') && CORE_NULL.test(text)) return null;
  if ((!only || only === 'bool') && CORE_BOOL.test(text)) return text[0] === 't' || text[0] === 'T';
  if (!only || only === 'int' || only === 'float') {
    if (CORE_INT.test(text)) return Number(text);
    if (CORE_OCTAL.test(text)) return Number.parseInt(text.slice(2), 8);
    if (CORE_HEX.test(text)) return Number.parseInt(text.slice(2), 16);
  }
  if (!only || only === 'float') {
    if (CORE_FLOAT.test(text)) return Number(text);
    if (CORE_INFINITY.test(text)) return text.startsWith('-') ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
    if (CORE_NAN.test(text)) return Number.NaN;
  }
  return undefined;
}

const CORE_TAGS: Record<string, 'null' | 'bool' | 'int' | 'float'> = {
  'tag:yaml.org,2002:null': 'null',
  'tag:yaml.org,2002:bool': 'bool',
  'tag:yaml.org,2002:int': 'int',
  'tag:yaml.org,2002:float': 'float',
};

/** A scalar node with no value: an empty or `~`/`null` plain scalar without a tag. */
export function isNullScalar(node: unknown): boolean {
  return isScalar(node) && !node.tag && node.type === 'PLAIN' && typeof node.value === 'string' && CORE_NULL.test(node.value);
}

/** Plain values of collections already built are kept on their node (shared: never mutate a plain value). */
const PLAIN = Symbol('plain value');
type MemoNode = Node & { [PLAIN]?: unknown };

/** What reading found out about a stream, shared by every document of it. */
export class StreamIndex {
  /** Each alias's target node. */
  readonly aliasTargets = new Map<Alias, Node>();
  /** Anchored nodes in document order (see `plainValue`). */
  readonly anchored: Node[] = [];
  private readonly anchorOrder = new Map<Node, number>();
  /** Anchored nodes that some alias names. */
  readonly aliased = new Set<Node>();
  /** Where each aliased node's aliases stand: the collection holding the alias and its pair or index. */
  readonly aliasSites = new Map<Node, { parent: YAMLMap | YAMLSeq; slot: Pair<Node, Node> | number }[]>();
  private converted = 0;
  aliasCount = 0;
  expansion = 0;

  constructor(
    readonly text: string,
    readonly limits: ReadLimits,
  ) {}

  addAnchor(node: Node): void {
    this.anchorOrder.set(node, this.anchored.length);
    this.anchored.push(node);
  }

  /**
   * The node as plain data (objects, arrays, strings, numbers, booleans, null), aliases resolved and merge keys
   * merged. Anchored nodes are converted in document order before any alias to them is, so that recursion
   * never follows a chain of aliases: it is bounded by the nesting depth.
   */
  plainValue(node: Node | null | undefined): unknown {
    if (node === null || node === undefined) return null;
    if (isScalar(node) && !node.anchor) return scalarValue(node);
    const memo = node as MemoNode;
    if (PLAIN in memo) return memo[PLAIN];
    if (isAlias(node)) {
      const target = this.aliasTargets.get(node);
      if (!target) return null;
      const order = this.anchorOrder.get(target) ?? -1;
      while (this.converted <= order) this.plainValue(this.anchored[this.converted++]);
      return this.plainValue(target);
    }
    // Collections are read several times (selection, conflicts, editing): convert each once.
    const value = this.convert(node);
    memo[PLAIN] = value;
    return value;
  }

  /**
   * A mapping as plain data whose values are converted when first read: an item's `kind` and `metadata` are
   * read for every item, its `spec` only for workloads. (With a merge key, the whole mapping at once.)
   */
  lazyPlainMap(node: YAMLMap): Record<string, unknown> {
    const pairs = (node as YAMLMap<Node, Node>).items;
    if (node.anchor || pairs.some((pair) => isMergeKey(pair.key))) return this.plainValue(node) as Record<string, unknown>;
    const data: Record<string, unknown> = {};
    for (const pair of pairs) {
      let value: unknown;
      let converted = false;
      Object.defineProperty(data, keyString(pair.key, this), {
        enumerable: true,
        configurable: true,
        get: () => {
          if (!converted) {
            value = this.plainValue(pair.value);
            converted = true;
          }
          return value;
        },
      });
    }
    return data;
  }

  private convert(node: Node): unknown {
    if (isScalar(node)) return scalarValue(node);
    if (isSeq(node)) return (node as YAMLSeq<Node>).items.map((item) => this.plainValue(item));
    if (!isMap(node)) return null;
    const result: Record<string, unknown> = {};
    let merged: Record<string, unknown>[] | undefined;
    for (const pair of (node as YAMLMap<Node, Node>).items) {
      if (isMergeKey(pair.key)) {
        const source = this.plainValue(pair.value);
        // `<<: *a` or `<<: [*a, *b]`; an earlier source wins over a later one, an explicit key over all.
        merged ??= [];
        for (const entry of Array.isArray(source) ? source : [source]) if (isRecord(entry)) merged.push(entry);
        continue;
      }
      setOwn(result, keyString(pair.key, this), this.plainValue(pair.value));
    }
    if (!merged) return result;
    const withMerged: Record<string, unknown> = {};
    for (const source of [...merged].reverse()) for (const key of Object.keys(source)) setOwn(withMerged, key, source[key]);
    for (const key of Object.keys(result)) setOwn(withMerged, key, result[key]);
    return withMerged;

  }
}

function scalarValue(node: Scalar): unknown {
  const value = node.value;
  // !!binary (and a custom tag yaml knows) come as objects: keep their text.
  if (typeof value !== 'string') return value === null || typeof value === 'number' || typeof value === 'boolean' ? value : (node.source ?? String(value));
  if (node.tag) {
    const only = CORE_TAGS[node.tag];
    const typed = only ? coreValue(value, only) : undefined;
    return typed === undefined ? value : typed;
  }
  if (node.type !== 'PLAIN') return value;
  const typed = coreValue(value);
  return typed === undefined ? value : typed;
}

/** A mapping key as the string it stands for (a scalar's value; JSON for anything else). */
export function keyString(key: unknown, index: StreamIndex): string {
  if (isScalar(key) && !key.anchor) {
    const value = key.value;
    return typeof value === 'string' ? value : String(scalarValue(key));
  }
  return plainKey(index.plainValue(key as Node));
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Sets an own property, also for `__proto__` (an assignment would set the object's prototype instead). */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

function plainKey(key: unknown): string {
  if (typeof key === 'string') return key;
  if (key === null || typeof key !== 'object') return String(key);
  return JSON.stringify(key);
}

/** `<<` as a plain (unquoted) key is a YAML merge key; a quoted "<<" is an ordinary string key. */
export function isMergeKey(key: unknown): boolean {
  return isScalar(key) && key.type === 'PLAIN' && key.source === '<<';
}

/**
 * Parses a stream into documents, enforcing the limits, strictness and alias rules. Block-style YAML (what KRM
 * tools write) is read directly (yaml-block-read.ts); anything else with yaml's Lexer, Parser and Composer.
 */
export function parseStream(text: string, limits: ReadLimits): { docs: ParsedDocument[]; index: StreamIndex } {
  // Half the depth limit: nesting the direct reader accepts is within the limit as yaml's parser counts it.
  const direct = readBlockYaml(text, Math.floor(limits.maxDepth / 2), limits.maxTokens);
  const index = new StreamIndex(text, limits);
  const check = (doc: ParsedDocument) => new Checker(index).walk(doc.contents);
  if (!direct) return { docs: composeWithYaml(text, limits, check), index };
  for (const doc of direct.docs) check(doc);
  return { docs: direct.docs, index };
}

/**
 * Any YAML stream composed with yaml, the limits enforced while lexing; throws YamlSyntaxError for what yaml
 * reports in a document before `check` sees it.
 */
export function composeWithYaml(text: string, limits: ReadLimits, check: (doc: ParsedDocument) => void = () => undefined): ParsedDocument[] {
  const lexer = new Lexer();
  const parser = new Parser();
  const composer = new Composer(COMPOSE_OPTIONS);
  const docs: Document.Parsed[] = [];
  let offset = 0;
  let tokens = 0;
  for (const lexeme of lexer.lex(text)) {
    if (++tokens > limits.maxTokens) {
      throw new YamlSyntaxError(`more than ${limits.maxTokens} YAML tokens in the input (the limit, a quarter of --max-input-bytes) at ${lineAndColumn(text, offset)}; split the input or raise --max-input-bytes`);
    }
    for (const token of parser.next(lexeme)) for (const doc of composer.next(token)) docs.push(doc);
    offset += lexeme.length;
    // The parser's stack holds one entry per open collection: the nesting depth, known before anything recursive.
    if (parser.stack.length > limits.maxDepth + 1) {
      throw new YamlSyntaxError(`nesting deeper than ${limits.maxDepth} levels of mappings and sequences at ${lineAndColumn(text, offset)}`);
    }
  }
  for (const token of parser.end()) for (const doc of composer.next(token)) docs.push(doc);
  for (const doc of composer.end()) docs.push(doc);
  return docs.map((doc) => {
    const error = doc.errors[0];
    if (error) throw new YamlSyntaxError(`${error.message.split('\n')[0]} at ${lineAndColumn(text, error.pos[0])}`);
    const parsed: ParsedDocument = { contents: doc.contents as Node | null, range: doc.range };
    check(parsed);
    return parsed;
  });
}

/** One linear walk of a document: duplicate keys, anchors and aliases, merge keys, alias limits. */
class Checker {
  private readonly open = new Set<Node>();
  private readonly sizes = new Map<Node, number>();
  private readonly anchors = new Map<string, Node>();

  constructor(private readonly index: StreamIndex) {}

  private fail(node: Node, message: string): never {
    throw new YamlSyntaxError(`${message} at ${lineAndColumn(this.index.text, node.range?.[0] ?? 0)}`);
  }

  /** Returns the node's size in nodes, with aliases counted as the size of what they name. */
  walk(node: Node | null | undefined, parent?: YAMLMap | YAMLSeq, slot?: Pair<Node, Node> | number): number {
    if (node === null || node === undefined) return 0;
    const { index } = this;
    if (isAlias(node)) {
      index.aliasCount++;
      if (index.aliasCount > index.limits.maxAliases) this.fail(node, `more than ${index.limits.maxAliases} aliases in the input (the limit)`);
      const target = this.anchors.get(node.source);
      if (!target) this.fail(node, `the alias *${node.source} names no anchor defined before it`);
      if (this.open.has(target)) this.fail(node, `the alias *${node.source} is inside the node it names (a recursive alias)`);
      index.aliasTargets.set(node, target);
      index.aliased.add(target);
      if (parent && slot !== undefined) {
        const sites = index.aliasSites.get(target) ?? [];
        sites.push({ parent, slot });
        index.aliasSites.set(target, sites);
      }
      const size = this.sizes.get(target) ?? 1;
      index.expansion += size;
      if (index.expansion > index.limits.maxAliasExpansion) {
        this.fail(node, `aliases expand to more than ${index.limits.maxAliasExpansion} nodes (the limit), e.g. the alias *${node.source}`);
      }
      return size;
    }
    if (node.anchor) {
      this.anchors.set(node.anchor, node);
      index.addAnchor(node);
      this.open.add(node);
    }
    let size = 1;
    if (isSeq(node)) {
      (node as YAMLSeq<Node>).items.forEach((item, position) => {
        size += this.walk(item, node as YAMLSeq, position);
      });
    } else if (isMap(node)) {
      const pairs = (node as YAMLMap<Node, Node>).items;
      // Most mappings are small: compare keys pairwise there, use a Map beyond that (linear either way).
      const seen = pairs.length > 8 ? new Map<string, Node>() : undefined;
      const ids: (string | undefined)[] = [];
      for (const pair of pairs) {
        size += this.walk(pair.key);
        const key = pair.key;
        if (isScalar(key)) {
          const id = typeof key.source === 'string' ? key.source : String(key.value);
          const firstIndex = seen ? -1 : ids.indexOf(id);
          const first = seen ? seen.get(id) : firstIndex >= 0 ? (pairs[firstIndex]?.key as Node) : undefined;
          if (first) this.fail(key, `duplicate key ${JSON.stringify(id)} (first at ${lineAndColumn(this.index.text, first.range?.[0] ?? 0)})`);
          if (seen) seen.set(id, key);
          ids.push(id);
        } else ids.push(undefined);
        size += this.walk(pair.value, node as YAMLMap, pair);
        if (isMergeKey(key) && !this.isMergeSource(pair.value)) {
          this.fail(pair.value ?? key, 'a merge key (<<) takes a mapping, an alias of one, or a list of those');
        }
      }
    }
    if (node.anchor) {
      this.open.delete(node);
      this.sizes.set(node, size);
    }
    return size;
  }

  private isMergeSource(value: Node | null | undefined): boolean {
    const resolve = (node: Node | null | undefined) => (isAlias(node) ? this.index.aliasTargets.get(node) : node);
    const target = resolve(value);
    if (isMap(target)) return true;
    return isSeq(target) && (target as YAMLSeq<Node>).items.every((item) => isMap(resolve(item)));
  }
}
