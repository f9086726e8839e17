/**
 * A direct reader for the block-style YAML that KRM tools exchange (kyaml, go-yaml and `yaml` output, helm
 * templates, most hand-written manifests): block mappings and sequences, plain and one-line quoted scalars,
 * literal and folded block scalars, flow collections on one line (`[a, "b"]`, `{k: v}`), comments, streams of
 * documents. It builds the nodes yaml's Composer builds for the same text (same classes, values, styles and
 * ranges: everything the function reads from a node), in one pass over the characters, without yaml's tokens
 * and syntax tree, which are most of what reading with yaml costs.
 *
 * Anything else it declines (returns undefined), and the caller reads the input with yaml: anchors, aliases,
 * tags, directives, `...` and content on a `---` line, flow collections and quoted or plain scalars over
 * several lines, explicit keys, tabs, CR line ends, a byte order mark, and every input yaml would report an
 * error for. test/unit/krm/yaml-block-read.test.ts checks, on generated and real inputs, that whatever it
 * accepts yaml reads without error into the same nodes, and that it counts the same tokens.
 *
 * Comments matter to ranges, as yaml's parser attaches them: comment lines more indented than the collection
 * right after a scalar value belong to that value; comment lines after the last entry of an indented collection
 * belong to it when one is at least as indented as its entries, else to the collection around it.
 */
import { Pair, Scalar, YAMLMap, YAMLSeq, isMap, isPair, isScalar, isSeq, type Node } from 'yaml';

/** A document read from a stream: its root node and its range (start, end of contents, end with comments). */
export interface ParsedDocument {
  readonly contents: Node | null;
  readonly range: readonly [number, number, number];
}

export interface BlockReadResult {
  readonly docs: ParsedDocument[];
  /** How many tokens yaml's Lexer yields for the same text (what the token limit counts). */
  readonly tokens: number;
}

const NL = 10;
const SPACE = 32;
const DQUOTE = 34;
const HASH = 35;
const SQUOTE = 39;
const PLUS = 43;
const DASH = 45;
const DOT = 46;
const COLON = 58;
const GT = 62;
const QUESTION = 63;
const LBRACKET = 91;
const BACKSLASH = 92;
const RBRACKET = 93;
const LBRACE = 123;
const PIPE = 124;
const RBRACE = 125;
const COMMA = 44;

/** Thrown (one shared object: no stack trace to capture) when the input leaves the subset. */
const DECLINE = { declined: true };

// Characters this reader never handles: tab (indentation rules), CR (line ends), byte order mark.
const OUTSIDE_SUBSET = /[\t\r\uFEFF]/;

/**
 * Reads `text` as a stream of block-style documents, or returns undefined when it is not one this reader
 * handles (the caller then reads it with yaml, which also reports the errors). Nesting deeper than `maxDepth`
 * and more than `maxTokens` tokens are declined as soon as they are seen, so that yaml refuses them.
 */
export function readBlockYaml(text: string, maxDepth: number, maxTokens = Number.MAX_SAFE_INTEGER): BlockReadResult | undefined {
  if (OUTSIDE_SUBSET.test(text)) return undefined;
  try {
    const reader = new BlockReader(text, maxDepth, maxTokens);
    const docs = reader.read();
    if (reader.tokens > maxTokens) return undefined;
    return { docs, tokens: reader.tokens };
  } catch (error) {
    if (error === DECLINE) return undefined;
    throw error;
  }
}

/**
 * Makes nodes of yaml's classes without running their constructors: the same prototype (so `instanceof` and
 * yaml's node tests hold) and fields, without the Object.defineProperty each constructor runs per node (for a
 * collection one that leaves it a slow dictionary-mode object). Making nodes was about a third of reading.
 * Falls back to the constructor if yaml's node tests do not recognize the result.
 */
function nodeMaker<T extends object>(construct: () => T, test: (node: unknown) => boolean): () => T {
  const sample = construct();
  const prototype = Object.create(Object.getPrototypeOf(sample) as object) as object;
  for (const symbol of Object.getOwnPropertySymbols(sample)) {
    Object.defineProperty(prototype, symbol, Object.getOwnPropertyDescriptor(sample, symbol) as PropertyDescriptor);
  }
  return test(Object.create(prototype)) ? () => Object.create(prototype) as T : construct;
}

const makeScalar = nodeMaker((): Scalar<unknown> => new Scalar(null), isScalar);
const makePair = nodeMaker((): Pair<unknown, unknown> => new Pair(null), isPair);
const makeMap = nodeMaker(() => new YAMLMap(), isMap);
const makeSeq = nodeMaker(() => new YAMLSeq(), isSeq);

function newPair(key: Scalar, value: Node): Pair {
  const pair = makePair();
  pair.key = key;
  pair.value = value;
  return pair;
}

function newMap(): YAMLMap {
  const map = makeMap();
  map.items = [];
  return map;
}

function newSeq(): YAMLSeq {
  const seq = makeSeq();
  seq.items = [];
  return seq;
}

function scalar(value: string, type: Scalar.Type, start: number, end: number, nodeEnd: number): Scalar {
  const node = makeScalar();
  node.value = value;
  node.range = [start, end, nodeEnd];
  node.source = value;
  node.type = type;
  return node;
}

/** Escapes of a double-quoted scalar that stand for one character (as yaml resolves them). */
const ESCAPES: Record<string, string> = {
  '0': '\0',
  a: '\x07',
  b: '\b',
  e: '\x1b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  N: '\u0085',
  _: '\u00a0',
  L: '\u2028',
  P: '\u2029',
  ' ': ' ',
  '"': '"',
  '/': '/',
  '\\': '\\',
};
const HEX_LENGTHS: Record<string, number> = { x: 2, u: 4, U: 8 };
const HEX = /^[0-9a-fA-F]+$/;

function decodeDoubleQuoted(text: string, start: number, end: number): string {
  // Searches within the scalar only: a search of the rest of the text per scalar would be quadratic.
  const body = text.slice(start, end);
  let escape = body.indexOf('\\');
  if (escape < 0) return body;
  const parts: string[] = [];
  let from = 0;
  while (escape >= 0) {
    parts.push(body.slice(from, escape));
    const next = body[escape + 1] ?? '';
    const simple = ESCAPES[next];
    if (simple !== undefined) {
      parts.push(simple);
      from = escape + 2;
    } else {
      const length = HEX_LENGTHS[next];
      const digits = length === undefined ? '' : body.slice(escape + 2, escape + 2 + length);
      if (length === undefined || digits.length !== length || !HEX.test(digits)) throw DECLINE;
      const code = Number.parseInt(digits, 16);
      if (code > 0x10ffff) throw DECLINE;
      parts.push(String.fromCodePoint(code));
      from = escape + 2 + length;
    }
    escape = body.indexOf('\\', from);
  }
  parts.push(body.slice(from));
  return parts.join('');
}

/** True when the character at `offset` ends a token: space, line break or the end of the text. */
function isBlankAt(text: string, offset: number): boolean {
  const code = text.charCodeAt(offset);
  return code === SPACE || code === NL || Number.isNaN(code);
}

function isFlowIndicator(code: number): boolean {
  return code === COMMA || code === LBRACKET || code === RBRACKET || code === LBRACE || code === RBRACE;
}

/** `-`, `?` and `:` are indicators before a space or line break, and in a flow collection before `,[]{}`. */
function isIndicator(code: number): boolean {
  return code === DASH || code === QUESTION || code === COLON;
}

/** Whether a plain scalar may start here (not an indicator, not `- `, `? `, `: `). */
function plainStarts(text: string, offset: number): boolean {
  switch (text.charCodeAt(offset)) {
    case HASH:
    case LBRACE:
    case LBRACKET:
    case RBRACE:
    case RBRACKET:
    case 42: // *
    case 38: // &
    case 33: // !
    case PIPE:
    case GT:
    case SQUOTE:
    case DQUOTE:
    case 37: // %
    case 64: // @
    case 96: // `
    case COMMA:
    case SPACE:
    case NL:
      return false;
    case DASH:
    case QUESTION:
    case COLON:
      return !isBlankAt(text, offset + 1);
    default:
      return !Number.isNaN(text.charCodeAt(offset));
  }
}

class BlockReader {
  tokens = 0;
  private readonly length: number;
  /** Indentation of the next content line after what was read last (-1 at the end of the input). */
  private nextIndent = -1;
  /** Where the next content line's content starts (after its indentation), or the end of the input. */
  private nextPos = 0;
  /** The line at `nextPos` is a document start marker (`---`): what was read ends there, as at the end of the input. */
  private atDocumentStart = false;
  /** The deepest comment line between the last value and the next content line that no value took (-1: none). */
  private trailComment = -1;
  /** The last value read was empty (`key:`): what follows it is yaml's separator, not a trailing comment. */
  private lastValueEmpty = false;
  /** Offset just after the `:` of the key read last. */
  private afterColon = 0;

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
    private readonly maxTokens: number,
  ) {
    this.length = text.length;
  }

  read(): ParsedDocument[] {
    const docs: ParsedDocument[] = [];
    this.scanGap(0, -1);
    // Nothing but comments: left to yaml.
    if (this.nextIndent < 0 && !this.atDocumentStart) throw DECLINE;
    this.tokens++; // the document start yaml's lexer marks
    for (;;) {
      const docStart = this.nextPos;
      if (this.atDocumentStart) {
        // `---` and its line: a document follows, or the document is empty.
        this.tokens++;
        let end = docStart + 3;
        while (this.text.charCodeAt(end) === SPACE) end++;
        if (end > docStart + 3) this.tokens++;
        this.scanGap(this.endLine(end), -1);
        if (this.nextIndent < 0) {
          // An empty document: an empty scalar after the marker, whose range takes the comments after it.
          const contentEnd = this.trailComment >= 0 ? this.nextPos : end;
          docs.push({ contents: scalar('', 'PLAIN', end, end, contentEnd), range: [docStart, contentEnd, contentEnd] });
          if (this.atDocumentStart) continue;
          return docs;
        }
      }
      // A root indented or in another shape: left to yaml.
      if (this.nextIndent !== 0) throw DECLINE;
      const root = this.isDashAt(this.nextPos) ? this.readSeq(0, this.nextPos, 1) : this.readMap(0, this.nextPos, 1);
      if (this.nextIndent >= 0) throw DECLINE;
      const contentEnd = (root.range as [number, number, number])[2];
      // What follows the root up to the next document belongs to the document, unless the root ends in an empty value.
      docs.push({ contents: root, range: [docStart, contentEnd, this.lastValueEmpty ? contentEnd : this.nextPos] });
      if (!this.atDocumentStart) return docs;
    }
  }

  private isDashAt(offset: number): boolean {
    return this.text.charCodeAt(offset) === DASH && isBlankAt(this.text, offset + 1);
  }

  /** After a line's last token, at `offset` (a line break or the end): the offset after the line break. */
  private endLine(offset: number): number {
    if (offset >= this.length) return this.length;
    this.tokens++;
    return offset + 1;
  }

  /**
   * Reads blank and comment lines from `from` (a line start) to the next content line, and sets `next*` and
   * `trailComment`. Comment lines deeper than `absorbAbove` right after a value (blank lines between them
   * included) belong to that value, as yaml's parser puts them in its end tokens: returns where they end, or -1.
   */
  private scanGap(from: number, absorbAbove: number): number {
    const { text, length } = this;
    let line = from;
    let absorbing = absorbAbove >= 0;
    let absorbedEnd = -1;
    let trail = -1;
    while (line < length) {
      let content = line;
      while (text.charCodeAt(content) === SPACE) content++;
      if (content > line) this.tokens++;
      if (content >= length) break;
      const code = text.charCodeAt(content);
      if (code === HASH) {
        let end = text.indexOf('\n', content);
        this.tokens += end < 0 ? 1 : 2;
        end = end < 0 ? length : end + 1;
        const indent = content - line;
        if (absorbing && indent > absorbAbove) absorbedEnd = end;
        else {
          absorbing = false;
          if (indent > trail) trail = indent;
        }
        line = end;
      } else if (code === NL) {
        this.tokens++;
        line = content + 1;
      } else {
        // Past the token limit: yaml counts exactly and refuses; nodes built so far are bounded by the limit.
        if (this.tokens > this.maxTokens) throw DECLINE;
        this.trailComment = trail;
        this.nextPos = content;
        this.atDocumentStart = content === line && (code === DASH || code === DOT) && this.isDocumentMarker(content);
        this.nextIndent = this.atDocumentStart ? -1 : content - line;
        return absorbedEnd;
      }
    }
    this.nextIndent = -1;
    this.nextPos = length;
    this.atDocumentStart = false;
    this.trailComment = trail;
    return absorbedEnd;
  }

  /**
   * Whether a line starting at `start` with `-` or `.` is a document marker: `---` alone on its line (a
   * document start) is; `...`, and `---` with content after it, are declined.
   */
  private isDocumentMarker(start: number): boolean {
    const { text } = this;
    const marker = text.slice(start, start + 3);
    if ((marker !== '---' && marker !== '...') || !isBlankAt(text, start + 3)) return false;
    let end = start + 3;
    while (text.charCodeAt(end) === SPACE) end++;
    if (marker === '...' || (end < this.length && text.charCodeAt(end) !== NL)) throw DECLINE;
    return true;
  }

  /** The range end of a collection at `column` whose last entry ends at `lastEnd`, taking trailing comments it owns. */
  private collectionEnd(column: number, lastEnd: number): number {
    if (column > 0 && this.trailComment >= column) {
      this.trailComment = -1;
      return this.nextPos;
    }
    return lastEnd;
  }

  private readMap(column: number, first: number, depth: number): YAMLMap {
    if (depth > this.maxDepth) throw DECLINE;
    const map = newMap();
    let keyStart = first;
    let lastEnd: number;
    for (;;) {
      const key = this.readKey(keyStart);
      if (!key) throw DECLINE;
      const value = this.readValue(this.afterColon, column, depth, true);
      map.items.push(newPair(key, value));
      lastEnd = (value.range as [number, number, number])[2];
      if (this.nextIndent !== column) break;
      // A list item at the column of a mapping after a complete value: not valid YAML.
      if (this.isDashAt(this.nextPos)) throw DECLINE;
      keyStart = this.nextPos;
    }
    if (this.nextIndent > column) throw DECLINE;
    map.range = [first, lastEnd, this.collectionEnd(column, lastEnd)];
    return map;
  }

  private readSeq(column: number, first: number, depth: number): YAMLSeq {
    if (depth > this.maxDepth) throw DECLINE;
    const { text } = this;
    const seq = newSeq();
    let dash = first;
    let lastEnd: number;
    for (;;) {
      this.tokens++;
      let valueStart = dash + 1;
      while (text.charCodeAt(valueStart) === SPACE) valueStart++;
      if (valueStart > dash + 1) this.tokens++;
      let value: Node;
      const code = text.charCodeAt(valueStart);
      // `- - a` (a list in a list on one line): rare, left to yaml.
      if (this.isDashAt(valueStart)) throw DECLINE;
      if (code !== NL && code !== HASH && !Number.isNaN(code) && this.isKeyLine(valueStart)) {
        value = this.readMap(column + (valueStart - dash), valueStart, depth + 1);
      } else value = this.readValue(valueStart, column, depth, false);
      seq.items.push(value);
      lastEnd = (value.range as [number, number, number])[2];
      if (this.nextIndent !== column || !this.isDashAt(this.nextPos)) break;
      dash = this.nextPos;
    }
    if (this.nextIndent > column) throw DECLINE;
    seq.range = [first, lastEnd, this.collectionEnd(column, lastEnd)];
    return seq;
  }

  /** Whether the content at `start` is `key: ...` (a plain or quoted key followed by `: ` or `:` at the line end). */
  private isKeyLine(start: number): boolean {
    const { text } = this;
    const code = text.charCodeAt(start);
    if (code === DQUOTE || code === SQUOTE) {
      const close = code === DQUOTE ? this.closingDoubleQuote(start) : this.closingSingleQuote(start);
      return close >= 0 && text.charCodeAt(close + 1) === COLON && isBlankAt(text, close + 2);
    }
    return plainStarts(text, start) && this.plainKeyEnd(start) >= 0;
  }

  /** Offset of the `:` ending a plain key that starts at `start`, or -1 when the line holds no key. */
  private plainKeyEnd(start: number): number {
    const { text, length } = this;
    for (let index = start; index < length; index++) {
      const code = text.charCodeAt(index);
      if (code === COLON) {
        if (isBlankAt(text, index + 1)) return index;
      } else if (code === NL) return -1;
      else if (code === SPACE && text.charCodeAt(index + 1) === HASH) return -1;
    }
    return -1;
  }

  /** The key at `start`, setting `afterColon`; undefined when the line is not `key: ...`. */
  private readKey(start: number): Scalar | undefined {
    const { text } = this;
    const code = text.charCodeAt(start);
    if (code === DQUOTE || code === SQUOTE) {
      const close = code === DQUOTE ? this.closingDoubleQuote(start) : this.closingSingleQuote(start);
      if (close < 0 || text.charCodeAt(close + 1) !== COLON || !isBlankAt(text, close + 2)) return undefined;
      const value = code === DQUOTE ? decodeDoubleQuoted(text, start + 1, close) : text.slice(start + 1, close).replaceAll("''", "'");
      this.tokens += 2;
      this.afterColon = close + 2;
      return scalar(value, code === DQUOTE ? 'QUOTE_DOUBLE' : 'QUOTE_SINGLE', start, close + 1, close + 1);
    }
    if (!plainStarts(text, start)) return undefined;
    const colon = this.plainKeyEnd(start);
    if (colon < 0) return undefined;
    // `key :` (space before the colon) and keys longer than yaml allows in strict mode: left to yaml.
    if (text.charCodeAt(colon - 1) === SPACE || colon - start > 1000) throw DECLINE;
    this.tokens += 3;
    this.afterColon = colon + 1;
    const value = text.slice(start, colon);
    return scalar(value, 'PLAIN', start, colon, colon);
  }

  /** The closing quote of a double-quoted scalar on the line of `start`, or -1. */
  private closingDoubleQuote(start: number): number {
    const { text } = this;
    let end = text.indexOf('"', start + 1);
    while (end >= 0) {
      let backslashes = 0;
      while (text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes++;
      if (backslashes % 2 === 0) break;
      end = text.indexOf('"', end + 1);
    }
    return end < 0 || this.breaksBefore(start, end) ? -1 : end;
  }

  private closingSingleQuote(start: number): number {
    const { text } = this;
    let end = text.indexOf("'", start + 1);
    while (end >= 0 && text.charCodeAt(end + 1) === SQUOTE) end = text.indexOf("'", end + 2);
    return end < 0 || this.breaksBefore(start, end) ? -1 : end;
  }

  /** Whether a line break stands between `start` and `end` (a scan of that span only: linear over a long line). */
  private breaksBefore(start: number, end: number): boolean {
    const { text } = this;
    for (let index = start; index < end; index++) if (text.charCodeAt(index) === NL) return true;
    return false;
  }

  /**
   * The value after `key:` or `-` (from `from`, just after the indicator) of an entry of the collection at
   * `column`; sets `next*` to the content line after it.
   */
  private readValue(from: number, column: number, depth: number, inMap: boolean): Node {
    const { text, length } = this;
    let start = from;
    while (text.charCodeAt(start) === SPACE) start++;
    if (start > from) this.tokens++;
    const code = start < length ? text.charCodeAt(start) : NL;
    this.lastValueEmpty = false;
    if (code === NL || code === HASH) return this.readValueBelow(start, code === HASH, column, depth, inMap);
    let node: Node;
    let end: number;
    switch (code) {
      case PIPE:
      case GT:
        return this.readBlockScalar(start, column);
      case DQUOTE: {
        end = this.closingDoubleQuote(start);
        if (end < 0) throw DECLINE;
        node = scalar(decodeDoubleQuoted(text, start + 1, end), 'QUOTE_DOUBLE', start, ++end, 0);
        this.tokens++;
        break;
      }
      case SQUOTE: {
        end = this.closingSingleQuote(start);
        if (end < 0) throw DECLINE;
        node = scalar(text.slice(start + 1, end).replaceAll("''", "'"), 'QUOTE_SINGLE', start, ++end, 0);
        this.tokens++;
        break;
      }
      case LBRACE:
      case LBRACKET: {
        node = this.readFlowCollection(start, depth + 1);
        end = this.flowEnd;
        break;
      }
      default: {
        if (!plainStarts(text, start)) throw DECLINE;
        end = this.plainValueEnd(start);
        node = scalar(text.slice(start, end), 'PLAIN', start, end, 0);
        this.tokens += 2;
      }
    }
    // The rest of the line: spaces, a comment after a space, the line break.
    let rest = end;
    while (text.charCodeAt(rest) === SPACE) rest++;
    if (rest > end) this.tokens++;
    if (rest < length && text.charCodeAt(rest) !== NL) {
      if (text.charCodeAt(rest) !== HASH || rest === end) throw DECLINE;
      this.tokens++;
      rest = text.indexOf('\n', rest);
      if (rest < 0) rest = length;
    }
    const lineEnd = this.endLine(rest);
    const absorbed = this.scanGap(lineEnd, column);
    (node.range as [number, number, number]) = [start, end, absorbed >= 0 ? absorbed : lineEnd];
    // A deeper line after a complete value: a scalar continued over lines, or an error; left to yaml.
    if (this.nextIndent > column) throw DECLINE;
    return node;
  }

  /** Offset just after the closing bracket of the flow collection read last. */
  private flowEnd = 0;

  /**
   * A flow collection (`[a, "b"]`, `{k: v}`, nested ones) that opens at `start` and closes on the same line;
   * sets `flowEnd`. Entries are scalars or flow collections; a pair in a list, a key without a value, an empty
   * entry, a comment or a line break inside: left to yaml.
   */
  private readFlowCollection(start: number, depth: number): YAMLMap | YAMLSeq {
    if (depth > this.maxDepth) throw DECLINE;
    const { text } = this;
    const mapping = text.charCodeAt(start) === LBRACE;
    const close = mapping ? RBRACE : RBRACKET;
    const collection = mapping ? newMap() : newSeq();
    collection.flow = true;
    this.tokens++;
    let at = this.skipFlowSpaces(start + 1);
    while (text.charCodeAt(at) !== close) {
      if (mapping) {
        const key = this.readFlowScalar(at, true);
        at = this.skipFlowSpaces(this.flowEnd);
        // `key :`, or a key without a value: left to yaml.
        if (text.charCodeAt(at) !== COLON || at !== (key.range as number[])[1]) throw DECLINE;
        this.tokens++;
        const afterColon = at + 1;
        at = this.skipFlowSpaces(afterColon);
        const code = text.charCodeAt(at);
        let value: Node;
        if (code === COMMA || code === close) {
          // yaml's lexer yields an empty scalar before the comma (not before the closing bracket).
          if (code === COMMA) this.tokens += 2;
          value = scalar('', 'PLAIN', at, at, at);
        } else {
          value = this.readFlowEntry(at, depth);
          at = this.skipFlowSpaces(this.flowEnd);
          (value.range as [number, number, number])[2] = at;
        }
        (collection as YAMLMap).items.push(newPair(key, value));
      } else {
        const item = this.readFlowEntry(at, depth);
        at = this.skipFlowSpaces(this.flowEnd);
        (item.range as [number, number, number])[2] = at;
        (collection as YAMLSeq).items.push(item);
      }
      const code = text.charCodeAt(at);
      if (this.tokens > this.maxTokens) throw DECLINE;
      if (code === COMMA) {
        this.tokens++;
        at = this.skipFlowSpaces(at + 1);
      } else if (code !== close) throw DECLINE;
    }
    this.tokens++;
    this.flowEnd = at + 1;
    return collection;
  }

  private skipFlowSpaces(from: number): number {
    let at = from;
    while (this.text.charCodeAt(at) === SPACE) at++;
    if (at > from) this.tokens++;
    return at;
  }

  /** An entry of a flow collection at `start`: a scalar or a flow collection; sets `flowEnd`. */
  private readFlowEntry(start: number, depth: number): Node {
    const code = this.text.charCodeAt(start);
    if (code === LBRACE || code === LBRACKET) {
      const node = this.readFlowCollection(start, depth + 1);
      node.range = [start, this.flowEnd, this.flowEnd];
      return node;
    }
    return this.readFlowScalar(start, false);
  }

  /** A quoted or plain scalar in a flow collection, as a key or a value; sets `flowEnd`. */
  private readFlowScalar(start: number, isKey: boolean): Scalar {
    const { text, length } = this;
    const code = text.charCodeAt(start);
    if (code === DQUOTE || code === SQUOTE) {
      const close = code === DQUOTE ? this.closingDoubleQuote(start) : this.closingSingleQuote(start);
      if (close < 0) throw DECLINE;
      this.tokens++;
      this.flowEnd = close + 1;
      // A `:` right after a quoted entry of a list makes a pair: left to yaml.
      if (!isKey && text.charCodeAt(close + 1) === COLON) throw DECLINE;
      const value = code === DQUOTE ? decodeDoubleQuoted(text, start + 1, close) : text.slice(start + 1, close).replaceAll("''", "'");
      return scalar(value, code === DQUOTE ? 'QUOTE_DOUBLE' : 'QUOTE_SINGLE', start, close + 1, close + 1);
    }
    if (!plainStarts(text, start) || (isIndicator(code) && isFlowIndicator(text.charCodeAt(start + 1)))) throw DECLINE;
    let last = start;
    let index = start;
    for (; index < length; index++) {
      const char = text.charCodeAt(index);
      if (isFlowIndicator(char) || char === NL) break;
      if (char === SPACE) {
        if (text.charCodeAt(index + 1) === HASH) throw DECLINE;
        continue;
      }
      if (char === COLON) {
        const next = text.charCodeAt(index + 1);
        if (isBlankAt(text, index + 1) || isFlowIndicator(next)) {
          // The end of a key; in a list, a pair: left to yaml.
          if (!isKey) throw DECLINE;
          break;
        }
      }
      last = index;
    }
    // A line break (or the end) inside the collection: left to yaml.
    if (index >= length || text.charCodeAt(index) === NL) throw DECLINE;
    this.tokens += 2;
    this.flowEnd = last + 1;
    return scalar(text.slice(start, last + 1), 'PLAIN', start, last + 1, last + 1);
  }

  /** The end of a plain value starting at `start` (before a comment and trailing spaces). */
  private plainValueEnd(start: number): number {
    const { text, length } = this;
    let last = start;
    for (let index = start; index < length; index++) {
      const code = text.charCodeAt(index);
      if (code === NL) break;
      if (code === SPACE) {
        if (text.charCodeAt(index + 1) === HASH) break;
        continue;
      }
      // `key: a: b` (a mapping in a value) is an error; `a:b` is text.
      if (code === COLON && isBlankAt(text, index + 1)) throw DECLINE;
      last = index;
    }
    return last + 1;
  }

  /**
   * A value that is not on the line of its key or dash (`at` is the line break or the comment after them): a
   * collection on the lines below, or an empty (null) scalar.
   */
  private readValueBelow(at: number, comment: boolean, column: number, depth: number, inMap: boolean): Node {
    const { text } = this;
    let lineBreak = at;
    if (comment) {
      this.tokens++;
      lineBreak = text.indexOf('\n', at);
      if (lineBreak < 0) lineBreak = this.length;
    }
    this.scanGap(this.endLine(lineBreak), -1);
    const commented = comment || this.trailComment >= 0;
    if (this.nextIndent > column) {
      const start = this.nextPos;
      return this.isDashAt(start) ? this.readSeq(this.nextIndent, start, depth + 1) : this.readMap(this.nextIndent, start, depth + 1);
    }
    // kyaml's layout: a list as a mapping value at the key's own column.
    if (inMap && this.nextIndent === column && this.isDashAt(this.nextPos)) return this.readSeq(column, this.nextPos, depth + 1);
    // An empty value: yaml places comments after it in its range, and an empty list item differently: left to yaml.
    if (commented || !inMap) throw DECLINE;
    this.lastValueEmpty = true;
    return scalar('', 'PLAIN', at, at, at);
  }

  /** A literal (`|`) or folded (`>`) block scalar whose header is at `start`, in a collection at `column`. */
  private readBlockScalar(start: number, column: number): Scalar {
    const { text, length } = this;
    const folded = text.charCodeAt(start) === GT;
    let headerEnd = start + 1;
    let chomp: 'clip' | 'strip' | 'keep' = 'clip';
    if (text.charCodeAt(headerEnd) === DASH) [chomp, headerEnd] = ['strip', headerEnd + 1];
    else if (text.charCodeAt(headerEnd) === PLUS) [chomp, headerEnd] = ['keep', headerEnd + 1];
    // An indentation indicator, or anything else in the header: left to yaml.
    if (!isBlankAt(text, headerEnd)) throw DECLINE;
    this.tokens++;
    let rest = headerEnd;
    while (text.charCodeAt(rest) === SPACE) rest++;
    if (rest > headerEnd) this.tokens++;
    if (text.charCodeAt(rest) === HASH) {
      this.tokens++;
      rest = text.indexOf('\n', rest);
      if (rest < 0) rest = length;
    }
    // Text after the header other than a comment, or no line after it: left to yaml.
    if (text.charCodeAt(rest) !== NL) throw DECLINE;
    const contentStart = this.endLine(rest);
    // Leading empty lines, then the first line with content sets the indentation.
    let line = contentStart;
    let leading = 0;
    while (text.charCodeAt(line) === NL) {
      line++;
      leading++;
    }
    let indent = 0;
    while (text.charCodeAt(line + indent) === SPACE) indent++;
    // Only empty lines to the end, a line of spaces, or no line indented enough (empty content): left to yaml.
    if (line + indent >= length || text.charCodeAt(line + indent) === NL || indent <= column) throw DECLINE;
    const lines: string[] = [];
    let contentEnd = line;
    let trailing = 0;
    while (line < length) {
      if (text.charCodeAt(line) === NL) {
        trailing++;
        line++;
        continue;
      }
      let spaces = 0;
      while (spaces < indent && text.charCodeAt(line + spaces) === SPACE) spaces++;
      if (spaces < indent) {
        // A line of spaces only (yaml's rules for those depend on its length): left to yaml.
        let blank = line + spaces;
        while (text.charCodeAt(blank) === SPACE) blank++;
        if (blank >= length || text.charCodeAt(blank) === NL) throw DECLINE;
        break;
      }
      let lineEnd = text.indexOf('\n', line);
      if (lineEnd < 0) lineEnd = length;
      let first = line + spaces;
      while (text.charCodeAt(first) === SPACE) first++;
      if (first === lineEnd) throw DECLINE;
      for (; trailing > 0; trailing--) lines.push('');
      lines.push(text.slice(line + indent, lineEnd));
      contentEnd = lineEnd < length ? lineEnd + 1 : length;
      line = contentEnd;
    }
    // Trailing empty lines are the block scalar's only with `+`; otherwise they are blank lines after it.
    const end = chomp === 'keep' ? line : contentEnd;
    let value = '\n'.repeat(leading) + (folded ? foldLines(lines) : lines.join('\n'));
    if (chomp === 'clip') value += '\n';
    else if (chomp === 'keep') value += '\n'.repeat(trailing + 1);
    this.tokens += 2;
    const node = scalar(value, folded ? 'BLOCK_FOLDED' : 'BLOCK_LITERAL', start, end, end);
    this.scanGap(end, -1);
    if (this.nextIndent > column) throw DECLINE;
    return node;
  }
}

/** Folding of a `>` block scalar's lines (indentation removed; '' for an empty line), as yaml resolves it. */
function foldLines(lines: readonly string[]): string {
  let value = '';
  let separator = '';
  let previousMoreIndented = false;
  for (const line of lines) {
    if (line.startsWith(' ')) {
      // More indented than the block: kept on its own line.
      if (separator === ' ') separator = '\n';
      else if (!previousMoreIndented && separator === '\n') separator = '\n\n';
      value += separator + line;
      separator = '\n';
      previousMoreIndented = true;
    } else if (line === '') {
      if (separator === '\n') value += '\n';
      else separator = '\n';
    } else {
      value += separator + line;
      separator = ' ';
      previousMoreIndented = false;
    }
  }
  return value;
}
