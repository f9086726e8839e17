/**
 * Editing YAML where it stands: changes to a parsed stream are recorded on its nodes and written into the
 * source text as edits, so that everything the function does not change (whole items, and every other line of
 * a changed item: comments, styles, tags, anchors, block scalars) comes out byte for byte as it came in.
 *
 * Handles give the editing code one interface over three kinds of values:
 * - real mappings and sequences of the source, in block or flow (JSON) style: changes become text edits in
 *   the style of the collection (block lines at its indentation, or JSON inside its brackets);
 * - new values the function adds (a `volumes:` list that did not exist), held as plain data and rendered once;
 * - values read through an alias or a merge key (`<<: *defaults`): read as the data they resolve to, and
 *   written out in place (the alias replaced by its value, a merged key given explicitly) only when changed,
 *   so the anchored original and its other aliases keep their meaning.
 */
import type { Node, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import { isAlias, isMap, isMergeKey, isRecord, isScalar, isSeq, keyString, lineAndColumn, setOwn, type StreamIndex } from './yaml-read.js';
import { PRINT_OPTIONS, newYamlDocument } from './yaml-io.js';

/** A change that cannot be written (wrong type in the source, or a layout that cannot be edited safely). */
export class EditError extends Error {
  constructor(
    readonly path: readonly (string | number)[],
    message: string,
  ) {
    super(message);
  }
}

/**
 * A mapping value already rendered for block context (the text after `key:`), with its data for flow (JSON)
 * context, made only if a flow collection needs it.
 */
export class Prerendered {
  private made = false;
  private value: unknown;

  constructor(
    readonly block: string,
    private readonly makeData: () => unknown,
  ) {}

  get data(): unknown {
    if (!this.made) {
      this.value = this.makeData();
      this.made = true;
    }
    return this.value;
  }
}

type Path = readonly (string | number)[];

export interface MapHandle {
  readonly kind: 'map';
  readonly path: Path;
  /** The value at `key` as plain data (aliases and merge keys resolved); never mutate it. */
  get(key: string): unknown;
  has(key: string): boolean;
  keys(): string[];
  /** The mapping at `key`; undefined when absent or null unless `create`. Throws EditError for another type. */
  map(key: string, create?: boolean, before?: string): MapHandle | undefined;
  /** The sequence at `key`; undefined when absent or null unless `create`. Throws EditError for another type. */
  seq(key: string, create?: boolean, before?: string): SeqHandle | undefined;
  /** Sets `key` (a new key goes before `before` when that key exists, else at the end). */
  set(key: string, value: unknown, before?: string): void;
  delete(key: string): void;
  readonly size: number;
}

export interface SeqEntry {
  readonly value: unknown;
  /** The entry as a mapping handle, when it is a mapping. */
  map(): MapHandle | undefined;
}

export interface SeqHandle {
  readonly kind: 'seq';
  readonly path: Path;
  entries(): SeqEntry[];
  /** Removes the entries `shouldRemove` picks (`position` is the index in the source, -1 for added ones). */
  removeWhere(shouldRemove: (value: unknown, position: number) => boolean): void;
  push(...values: unknown[]): void;
  unshift(...values: unknown[]): void;
  readonly size: number;
}

function typeName(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `a ${typeof value} (${JSON.stringify(value)})`;
}

function wrongType(path: Path, expected: 'a mapping' | 'a list', value: unknown): EditError {
  return new EditError(path, `expected ${expected} at ${path.join('.')}, found ${typeName(value)}`);
}

// ---------------------------------------------------------------------------------------------------------
// Plain data handles: new values, and values materialized from an alias or a merge key.

/** The root of a plain-data value: its data, and how it gets written into the source on the first change. */
class DataRoot {
  private written = false;

  constructor(
    public data: unknown,
    private readonly write: (root: DataRoot) => void,
    /** Data read through an alias is shared: copy it before the first change. */
    private readonly shared: boolean,
  ) {}

  materialize(): void {
    if (this.written) return;
    if (this.shared) this.data = structuredClone(this.data);
    this.written = true;
    this.write(this);
  }
}

function dataAt(root: DataRoot, steps: readonly (string | number)[]): unknown {
  let value = root.data;
  for (const step of steps) value = (value as Record<string | number, unknown>)[step];
  return value;
}

class DataMap implements MapHandle {
  readonly kind = 'map';
  constructor(
    private readonly root: DataRoot,
    private readonly steps: readonly (string | number)[],
    readonly path: Path,
  ) {}

  private data(): Record<string, unknown> {
    return dataAt(this.root, this.steps) as Record<string, unknown>;
  }

  private writable(): Record<string, unknown> {
    this.root.materialize();
    return this.data();
  }

  get(key: string): unknown {
    return Object.hasOwn(this.data(), key) ? this.data()[key] : undefined;
  }

  has(key: string): boolean {
    return Object.hasOwn(this.data(), key);
  }

  keys(): string[] {
    return Object.keys(this.data());
  }

  get size(): number {
    return this.keys().length;
  }

  private child(key: string, create: boolean, before: string | undefined, expected: 'a mapping' | 'a list'): DataMap | DataSeq | undefined {
    const value = this.get(key);
    const path = [...this.path, key];
    if (value === null || value === undefined) {
      if (!create) return undefined;
      const data = this.writable();
      const fresh = expected === 'a list' ? [] : {};
      if (before !== undefined && Object.hasOwn(data, before) && !Object.hasOwn(data, key)) {
        const entries = Object.entries(data);
        for (const entryKey of Object.keys(data)) delete data[entryKey];
        for (const [entryKey, entryValue] of entries) {
          if (entryKey === before) setOwn(data, key, fresh);
          setOwn(data, entryKey, entryValue);
        }
      } else setOwn(data, key, fresh);
    } else if ((expected === 'a list') !== Array.isArray(value) || !isRecord(value) !== Array.isArray(value)) {
      throw wrongType(path, expected, value);
    }
    return expected === 'a list' ? new DataSeq(this.root, [...this.steps, key], path) : new DataMap(this.root, [...this.steps, key], path);
  }

  map(key: string, create = false, before?: string): MapHandle | undefined {
    return this.child(key, create, before, 'a mapping') as DataMap | undefined;
  }

  seq(key: string, create = false, before?: string): SeqHandle | undefined {
    return this.child(key, create, before, 'a list') as DataSeq | undefined;
  }

  set(key: string, value: unknown): void {
    setOwn(this.writable(), key, value);
  }

  delete(key: string): void {
    if (this.has(key)) delete this.writable()[key];
  }
}

class DataSeq implements SeqHandle {
  readonly kind = 'seq';
  constructor(
    private readonly root: DataRoot,
    private readonly steps: readonly (string | number)[],
    readonly path: Path,
  ) {}

  private data(): unknown[] {
    return dataAt(this.root, this.steps) as unknown[];
  }

  private writable(): unknown[] {
    this.root.materialize();
    return this.data();
  }

  get size(): number {
    return this.data().length;
  }

  entries(): SeqEntry[] {
    return this.data().map((value, index) => ({
      value,
      map: () => (isRecord(value) ? new DataMap(this.root, [...this.steps, index], [...this.path, index]) : undefined),
    }));
  }

  removeWhere(shouldRemove: (value: unknown, position: number) => boolean): void {
    if (!this.data().some((value) => shouldRemove(value, -1))) return;
    const data = this.writable();
    const kept = data.filter((value) => !shouldRemove(value, -1));
    data.splice(0, data.length, ...kept);
  }

  push(...values: unknown[]): void {
    if (values.length > 0) this.writable().push(...values);
  }

  unshift(...values: unknown[]): void {
    if (values.length > 0) this.writable().unshift(...values);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Real nodes of the source.

/** A value written by an edit: plain data, a DataRoot's data at render time, or pre-rendered block text. */
type Written = { root: DataRoot } | { prerendered: Prerendered } | { plain: unknown };

function writtenData(value: Written): unknown {
  if ('root' in value) return value.root.data;
  if ('prerendered' in value) return value.prerendered.data;
  return value.plain;
}

interface Parent {
  readonly state: NodeState;
  /** The pair (of a mapping) or item index (of a sequence) holding this node. */
  readonly slot: Pair<Node, Node> | number;
}

abstract class NodeState {
  constructor(
    readonly source: SourceDocument,
    readonly parent: Parent | undefined,
  ) {}

  abstract readonly node: Node;
  abstract changes(): boolean;

  /** The anchored nodes, this one and its ancestors, that an alias elsewhere also names. */
  sharedAncestors(): Node[] {
    if (this.source.index.aliased.size === 0) return [];
    const nodes = [this.node];
    for (let parent = this.parent; parent; parent = parent.state.parent) nodes.push(parent.state.node);
    return nodes.filter((node) => this.source.index.aliased.has(node));
  }

  /** True when an ancestor's edit replaces or removes this node (its own edits are then moot). */
  detached(): boolean {
    for (let parent = this.parent; parent; parent = parent.state.parent) {
      if (parent.state.drops(parent.slot)) return true;
    }
    return false;
  }

  abstract drops(slot: Pair<Node, Node> | number): boolean;
  abstract render(edits: TextEdits): void;
}

class MapState extends NodeState {
  readonly deleted = new Set<Pair<Node, Node>>();
  readonly replaced = new Map<Pair<Node, Node>, Written>();
  readonly added: { key: string; value: Written; before?: string }[] = [];

  constructor(
    source: SourceDocument,
    parent: Parent | undefined,
    readonly node: YAMLMap<Node, Node>,
  ) {
    super(source, parent);
  }

  drops(slot: Pair<Node, Node> | number): boolean {
    return typeof slot !== 'number' && (this.deleted.has(slot) || this.replaced.has(slot));
  }

  changes(): boolean {
    return this.deleted.size + this.replaced.size + this.added.length > 0;
  }

  render(edits: TextEdits): void {
    if (this.node.flow) renderFlowMap(this, edits);
    else renderBlockMap(this, edits);
  }
}

class SeqState extends NodeState {
  readonly removed = new Set<number>();
  readonly replaced = new Map<number, Written>();
  readonly front: Written[] = [];
  readonly back: Written[] = [];

  constructor(
    source: SourceDocument,
    parent: Parent | undefined,
    readonly node: YAMLSeq<Node>,
  ) {
    super(source, parent);
  }

  drops(slot: Pair<Node, Node> | number): boolean {
    return typeof slot === 'number' && (this.removed.has(slot) || this.replaced.has(slot));
  }

  changes(): boolean {
    return this.removed.size + this.replaced.size + this.front.length + this.back.length > 0;
  }

  render(edits: TextEdits): void {
    if (this.node.flow) renderFlowSeq(this, edits);
    else renderBlockSeq(this, edits);
  }
}

/**
 * Before an anchored node is changed, every alias that names it is written out as the node's original value,
 * so that those places keep their meaning (the anchor itself stays, now with the change).
 */
function unshare<T extends NodeState>(state: T): T {
  for (const node of state.sharedAncestors()) state.source.writeOutAliases(node);
  return state;
}

function keyText(pair: Pair<Node, Node>, index: StreamIndex): string {
  return keyString(pair.key, index);
}

/** A mapping's own pairs (not merged ones) by key, built once per node: the source's nodes never change. */
const PAIRS_BY_KEY = Symbol('pairs by key');
type IndexedMap = YAMLMap<Node, Node> & { [PAIRS_BY_KEY]?: Map<string, Pair<Node, Node>> };

function pairsByKey(node: YAMLMap<Node, Node>, index: StreamIndex): Map<string, Pair<Node, Node>> {
  const indexed = node as IndexedMap;
  let pairs = indexed[PAIRS_BY_KEY];
  if (!pairs) {
    pairs = new Map();
    for (const pair of node.items) if (!isMergeKey(pair.key)) pairs.set(keyText(pair, index), pair);
    indexed[PAIRS_BY_KEY] = pairs;
  }
  return pairs;
}

class RealMap implements MapHandle {
  readonly kind = 'map';
  private state: MapState | undefined;

  constructor(
    private readonly source: SourceDocument,
    readonly node: YAMLMap<Node, Node>,
    private readonly parent: Parent | undefined,
    readonly path: Path,
  ) {}

  private edits(): MapState {
    this.state ??= unshare(this.source.stateOf(this.node, () => new MapState(this.source, this.parent, this.node)) as MapState);
    return this.state;
  }

  private existing(): MapState | undefined {
    return this.state ?? (this.source.existingState(this.node) as MapState | undefined);
  }

  private plain(): Record<string, unknown> {
    return this.source.index.plainValue(this.node) as Record<string, unknown>;
  }

  /** The own pair for `key` (not one merged in), deleted or not. */
  private ownPair(key: string): Pair<Node, Node> | undefined {
    return pairsByKey(this.node, this.source.index).get(key);
  }

  /** The own pair for `key`, unless deleted. */
  private pair(key: string): Pair<Node, Node> | undefined {
    const pair = this.ownPair(key);
    return pair && !this.existing()?.deleted.has(pair) ? pair : undefined;
  }

  private addedEntry(key: string) {
    return this.existing()?.added.find((entry) => entry.key === key);
  }

  private currentWritten(key: string): Written | undefined {
    const pair = this.pair(key);
    if (pair) return this.existing()?.replaced.get(pair);
    return this.addedEntry(key)?.value;
  }

  get(key: string): unknown {
    const written = this.currentWritten(key);
    if (written) return writtenData(written);
    const own = this.ownPair(key);
    if (own) return this.existing()?.deleted.has(own) ? undefined : this.source.index.plainValue(own.value);
    const plain = this.plain();
    return Object.hasOwn(plain, key) ? plain[key] : undefined;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  keys(): string[] {
    const keys = new Set(Object.keys(this.plain()));
    for (const pair of this.existing()?.deleted ?? []) keys.delete(keyText(pair, this.source.index));
    for (const entry of this.existing()?.added ?? []) keys.add(entry.key);
    return [...keys];
  }

  get size(): number {
    return this.keys().length;
  }

  private child(key: string, create: boolean, before: string | undefined, expected: 'a mapping' | 'a list'): MapHandle | SeqHandle | undefined {
    const path = [...this.path, key];
    const written = this.currentWritten(key);
    if (written && 'root' in written) return dataHandle(written.root, expected, path);
    const pair = this.pair(key);
    const value = pair ? pair.value : undefined;
    const resolved = isAlias(value) ? this.source.index.aliasTargets.get(value) : value;
    const wantList = expected === 'a list';
    if (pair && resolved && (isMap(resolved) || isSeq(resolved))) {
      if (isSeq(resolved) !== wantList) throw wrongType(path, expected, this.source.index.plainValue(resolved));
      if (!isAlias(value)) {
        return isSeq(resolved)
          ? new RealSeq(this.source, resolved as YAMLSeq<Node>, { state: this.editsLazily(), slot: pair }, path)
          : new RealMap(this.source, resolved as YAMLMap<Node, Node>, { state: this.editsLazily(), slot: pair }, path);
      }
      // Through an alias: read the data it names; write the alias out as that data on the first change.
      const root = new DataRoot(this.source.index.plainValue(resolved), (self) => this.edits().replaced.set(pair, { root: self }), true);
      return dataHandle(root, expected, path);
    }
    const plainValue = pair ? this.source.index.plainValue(value) : this.get(key);
    if (plainValue !== null && plainValue !== undefined) {
      if (Array.isArray(plainValue) !== wantList || (!wantList && !isRecord(plainValue))) throw wrongType(path, expected, plainValue);
      // Provided by a merge key: give the key explicitly (it overrides the merged one) on the first change.
      const root = new DataRoot(plainValue, (self) => this.edits().added.push({ key, value: { root: self } }), true);
      return dataHandle(root, expected, path);
    }
    if (!create) return undefined;
    const root = new DataRoot(wantList ? [] : {}, () => undefined, false);
    root.materialize();
    if (pair) this.edits().replaced.set(pair, { root });
    else this.edits().added.push({ key, value: { root }, ...(before !== undefined && this.pair(before) ? { before } : {}) });
    return dataHandle(root, expected, path);
  }

  /** The state, created without the aliased-anchor check (children check their own). */
  private editsLazily(): NodeState {
    return this.source.stateOf(this.node, () => new MapState(this.source, this.parent, this.node));
  }

  map(key: string, create = false, before?: string): MapHandle | undefined {
    return this.child(key, create, before, 'a mapping') as MapHandle | undefined;
  }

  seq(key: string, create = false, before?: string): SeqHandle | undefined {
    return this.child(key, create, before, 'a list') as SeqHandle | undefined;
  }

  set(key: string, value: unknown, before?: string): void {
    const written: Written = value instanceof Prerendered ? { prerendered: value } : { plain: value };
    const pair = this.pair(key);
    if (pair) {
      this.edits().replaced.set(pair, written);
      return;
    }
    const added = this.addedEntry(key);
    if (added) added.value = written;
    else this.edits().added.push({ key, value: written, ...(before !== undefined && this.pair(before) ? { before } : {}) });
  }

  delete(key: string): void {
    const pair = this.pair(key);
    if (pair) this.edits().deleted.add(pair);
    const state = this.existing();
    if (state) {
      const index = state.added.findIndex((entry) => entry.key === key);
      if (index >= 0) state.added.splice(index, 1);
    }
  }
}

function dataHandle(root: DataRoot, expected: 'a mapping' | 'a list', path: Path): MapHandle | SeqHandle {
  return expected === 'a list' ? new DataSeq(root, [], path) : new DataMap(root, [], path);
}

class RealSeq implements SeqHandle {
  readonly kind = 'seq';
  private state: SeqState | undefined;

  constructor(
    private readonly source: SourceDocument,
    readonly node: YAMLSeq<Node>,
    private readonly parent: Parent | undefined,
    readonly path: Path,
  ) {}

  private edits(): SeqState {
    this.state ??= unshare(this.source.stateOf(this.node, () => new SeqState(this.source, this.parent, this.node)) as SeqState);
    return this.state;
  }

  private existing(): SeqState | undefined {
    return this.state ?? (this.source.existingState(this.node) as SeqState | undefined);
  }

  get size(): number {
    const state = this.existing();
    return this.node.items.length - (state?.removed.size ?? 0) + (state?.front.length ?? 0) + (state?.back.length ?? 0);
  }

  entries(): SeqEntry[] {
    const state = this.existing();
    const written = (values: readonly Written[]) =>
      values.map((value): SeqEntry => ({ value: writtenData(value), map: () => ('root' in value && isRecord(value.root.data) ? new DataMap(value.root, [], this.path) : undefined) }));
    const own = this.node.items.flatMap((item, index): SeqEntry[] => {
      if (state?.removed.has(index)) return [];
      const replaced = state?.replaced.get(index);
      if (replaced) return written([replaced]);
      const value = this.source.index.plainValue(item);
      const path = [...this.path, index];
      return [
        {
          value,
          map: () => {
            if (isMap(item)) return new RealMap(this.source, item as YAMLMap<Node, Node>, { state: this.stateLazily(), slot: index }, path);
            if (!isAlias(item) || !isRecord(value)) return undefined;
            const root = new DataRoot(value, (self) => this.edits().replaced.set(index, { root: self }), true);
            return new DataMap(root, [], path);
          },
        },
      ];
    });
    return [...written(state?.front ?? []), ...own, ...written(state?.back ?? [])];
  }

  private stateLazily(): NodeState {
    return this.source.stateOf(this.node, () => new SeqState(this.source, this.parent, this.node));
  }

  removeWhere(shouldRemove: (value: unknown, position: number) => boolean): void {
    this.node.items.forEach((item, index) => {
      if (!this.existing()?.removed.has(index) && shouldRemove(this.source.index.plainValue(item), index)) this.edits().removed.add(index);
    });
    const state = this.existing();
    if (state) {
      for (const list of [state.front, state.back]) {
        const kept = list.filter((value) => !shouldRemove(writtenData(value), -1));
        list.splice(0, list.length, ...kept);
      }
    }
  }

  push(...values: unknown[]): void {
    if (values.length > 0) this.edits().back.push(...values.map(writtenValue));
  }

  unshift(...values: unknown[]): void {
    if (values.length > 0) this.edits().front.unshift(...values.map(writtenValue));
  }
}

function writtenValue(value: unknown): Written {
  return value instanceof Prerendered ? { prerendered: value } : { plain: value };
}

// ---------------------------------------------------------------------------------------------------------
// A parsed document (or a whole stream's text) being edited.

export class SourceDocument {
  private readonly states = new Map<Node, NodeState>();
  private readonly order: NodeState[] = [];
  /** kyaml writes `key:\n- item`; many hand-written files indent the dash. Follow the input. */
  readonly indentSeq: boolean;

  constructor(
    readonly text: string,
    readonly index: StreamIndex,
    /** Each document's root node, for finding what ends the input. */
    readonly roots: readonly (Node | null)[],
  ) {
    const match = /^( *)[^\s#-][^\n]*:[ \t]*\n( *)- /m.exec(text);
    this.indentSeq = match !== null && (match[2]?.length ?? 0) > (match[1]?.length ?? 0);
  }

  stateOf(node: Node, create: () => NodeState): NodeState {
    let state = this.states.get(node);
    if (!state) {
      state = create();
      this.states.set(node, state);
      this.order.push(state);
    }
    return state;
  }

  existingState(node: Node): NodeState | undefined {
    return this.states.get(node);
  }

  private readonly writtenOut = new Set<Node>();

  /** Replaces each alias of `node` by the node's value as read (unless that alias is already replaced). */
  writeOutAliases(node: Node): void {
    if (this.writtenOut.has(node)) return;
    this.writtenOut.add(node);
    const value = { plain: this.index.plainValue(node) };
    for (const { parent, slot } of this.index.aliasSites.get(node) ?? []) {
      if (typeof slot === 'number') {
        const state = this.stateOf(parent, () => new SeqState(this, undefined, parent as YAMLSeq<Node>)) as SeqState;
        if (!state.replaced.has(slot)) state.replaced.set(slot, value);
      } else {
        const state = this.stateOf(parent, () => new MapState(this, undefined, parent as YAMLMap<Node, Node>)) as MapState;
        if (!state.replaced.has(slot)) state.replaced.set(slot, value);
      }
    }
  }

  /** A handle on a mapping of the source (an item, or a ResourceList's root). */
  mapHandle(node: YAMLMap, path: Path = []): MapHandle {
    return new RealMap(this, node as YAMLMap<Node, Node>, undefined, path);
  }

  seqHandle(node: YAMLSeq, path: Path = []): SeqHandle {
    return new RealSeq(this, node as YAMLSeq<Node>, undefined, path);
  }

  get changed(): boolean {
    return this.order.some((state) => state.changes());
  }

  /** Records every change as a text edit. */
  collect(edits: TextEdits): void {
    for (const state of this.order) if (state.changes() && !state.detached()) state.render(edits);
  }
}


// ---------------------------------------------------------------------------------------------------------
// Text edits.

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  /** The column inserted block lines start at: at one offset, what belongs to a deeper node goes first. */
  readonly depth: number;
  readonly order: number;
}

export class TextEdits {
  private readonly list: Edit[] = [];
  /** Set when text is appended after input that ends without a line break: `apply` adds one first. */
  lineBreakAdded = false;

  constructor(readonly text: string) {}

  replace(start: number, end: number, text: string, depth = 0): void {
    this.list.push({ start, end, text, depth, order: this.list.length });
  }

  insert(at: number, text: string, depth = 0): void {
    this.replace(at, at, text, depth);
  }

  get size(): number {
    return this.list.length;
  }

  /** The text with every edit applied; an edit inside a range that another edit replaces is dropped. */
  apply(): string {
    // Insertions at an offset go before a replacement starting there (inserting before a removed line).
    if (this.lineBreakAdded) this.list.push({ start: this.text.length, end: this.text.length, text: '\n', depth: Number.POSITIVE_INFINITY, order: -1 });
    const sorted = [...this.list].sort(
      (a, b) => a.start - b.start || (a.end === a.start ? 0 : 1) - (b.end === b.start ? 0 : 1) || b.depth - a.depth || a.order - b.order,
    );
    const parts: string[] = [];
    let position = 0;
    for (const edit of sorted) {
      if (edit.start < position) continue;
      parts.push(this.text.slice(position, edit.start), edit.text);
      position = edit.end;
    }
    parts.push(this.text.slice(position));
    return parts.join('');
  }
}

// ---------------------------------------------------------------------------------------------------------
// Rendering.

function lineStart(text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1;
}

/** The offset just after the line holding `offset - 1` (or `offset` itself when it starts a line). */
function lineEnd(text: string, offset: number): number {
  if (offset > 0 && text[offset - 1] === '\n') return offset;
  const newline = text.indexOf('\n', offset);
  return newline < 0 ? text.length : newline + 1;
}

function column(text: string, offset: number): number {
  return offset - lineStart(text, offset);
}

function onlySpacesBefore(text: string, offset: number): boolean {
  return /^[ \t]*$/.test(text.slice(lineStart(text, offset), offset));
}

function range(node: Node | null | undefined): [number, number, number] {
  return (node?.range ?? [0, 0, 0]) as [number, number, number];
}

/** Where a node's text starts, with its anchor and tag (yaml's range starts after them). */
function startWithProps(text: string, node: Node): number {
  let start = range(node)[0];
  if (!node.anchor && !node.tag) return start;
  // Props precede the value on the same line or lines before, separated by whitespace.
  for (let props = (node.anchor ? 1 : 0) + (node.tag ? 1 : 0); props > 0; props--) {
    let cursor = start;
    while (cursor > 0 && /\s/.test(text[cursor - 1] as string)) cursor--;
    const tokenStart = Math.max(text.lastIndexOf(' ', cursor - 1), text.lastIndexOf('\n', cursor - 1), text.lastIndexOf('\t', cursor - 1)) + 1;
    if (!/^[&!]/.test(text.slice(tokenStart, cursor))) break;
    start = tokenStart;
  }
  return start;
}

function valueEnd(pair: Pair<Node, Node>): number {
  return pair.value ? range(pair.value)[1] : range(pair.key)[1];
}

/** The offset just after the `:` of a block mapping pair. */
function colonEnd(text: string, pair: Pair<Node, Node>): number {
  const colon = text.indexOf(':', range(pair.key)[1]);
  return colon < 0 ? range(pair.key)[1] : colon + 1;
}

function indentLines(text: string, indent: string): string {
  return indent === '' ? text : text.replace(/^(?=.)/gm, indent);
}

function renderDocument(value: unknown, indentSeq: boolean): string {
  const doc = newYamlDocument(value);
  // Secret modes are written in decimal (octal literals differ between YAML 1.1 and 1.2): say the octal.
  markFileModes(doc.contents as Node);
  return doc.toString({ ...PRINT_OPTIONS, indentSeq });
}

/*
 * What injection adds is the same few objects for thousands of workloads (built once per repo set): each is
 * rendered once per place it goes (key, indentation, layout) and the text reused; the lists and maps injection
 * creates around them (`env:`, `volumes:`, `annotations:`) are put together from those texts. Rendering happens
 * when the edits are collected, after every change, so the data no longer changes.
 */
const renderedByValue = new WeakMap<object, Map<string, string>>();
const renderedScalars = new Map<string, string>();

function rendered(data: unknown, variant: string, render: () => string): string {
  if (typeof data !== 'object' || data === null) {
    const key = `${variant}\u0000${typeof data}:${String(data)}`;
    let text = renderedScalars.get(key);
    if (text === undefined) {
      text = render();
      if (renderedScalars.size > 100_000) renderedScalars.clear();
      renderedScalars.set(key, text);
    }
    return text;
  }
  let byVariant = renderedByValue.get(data);
  if (!byVariant) {
    byVariant = new Map();
    renderedByValue.set(data, byVariant);
  }
  let text = byVariant.get(variant);
  if (text === undefined) {
    text = render();
    byVariant.set(variant, text);
  }
  return text;
}

function pairDocument(key: string, data: unknown, indentSeq: boolean): string {
  return renderDocument(Object.defineProperty({}, key, { value: data, enumerable: true }), indentSeq);
}

/** `key:` on its own line (quoted if it must be), at `indent` columns. */
function keyLine(key: string, indent: number): string {
  return rendered(key, `k${indent}`, () => indentLines(pairDocument(key, null, false).replace(/: null\n$/, ':\n'), ' '.repeat(indent)));
}

/** `key: value` lines for a block mapping at `indent` columns. */
function pairText(key: string, data: unknown, indent: number, indentSeq: boolean): string {
  const variant = `${indentSeq ? 'P' : 'p'}${indent}:${key}`;
  const known = typeof data === 'object' && data !== null && renderedByValue.get(data)?.has(variant);
  if (!known && Array.isArray(data) && data.length > 0) {
    return keyLine(key, indent) + data.map((element) => itemText(element, indentSeq ? indent + 2 : indent, indentSeq)).join('');
  }
  if (!known && isRecord(data) && Object.keys(data).length > 0) {
    return keyLine(key, indent) + Object.keys(data).map((entryKey) => pairText(entryKey, data[entryKey], indent + 2, indentSeq)).join('');
  }
  return rendered(data, variant, () => indentLines(pairDocument(key, data, indentSeq), ' '.repeat(indent)));
}

/** `- value` lines for a block sequence whose dashes stand at `indent` columns. */
function itemText(data: unknown, indent: number, indentSeq: boolean): string {
  return rendered(data, `${indentSeq ? 'I' : 'i'}${indent}`, () => indentLines(renderDocument([data], indentSeq), ' '.repeat(indent)));
}

function markFileModes(node: Node | null): void {
  if (isMap(node)) {
    for (const pair of (node as YAMLMap<Node, Node>).items) {
      const value = pair.value;
      if (isScalar(pair.key) && pair.key.value === 'defaultMode' && isScalar(value) && typeof value.value === 'number') {
        (value as Scalar).comment = ` 0${value.value.toString(8)}`;
      } else markFileModes(value);
    }
  } else if (isSeq(node)) for (const item of (node as YAMLSeq<Node>).items) markFileModes(item);
}

function blockPair(key: string, value: Written, indent: number, indentSeq: boolean): string {
  if ('prerendered' in value) return `${keyLine(key, indent).replace(/\n$/, '')}${indentLines(value.prerendered.block, ' '.repeat(indent))}`;
  return pairText(key, writtenData(value), indent, indentSeq);
}

function blockItem(value: Written, indent: number, indentSeq: boolean): string {
  return itemText(writtenData(value), indent, indentSeq);
}

/** The value part of a block pair (`: value` follows the key), for replacing a value in place. */
function blockValue(value: Written, indent: number, indentSeq: boolean): string {
  const lines = blockPair('k', value, indent, indentSeq);
  const afterKey = lines.slice(lines.indexOf(':') + 1);
  return afterKey.replace(/\n$/, '');
}

/** Where text appended at `at` must start on a fresh line, and what that takes. */
function ensureLineStart(source: SourceDocument, edits: TextEdits, at: number): string {
  const { text } = source;
  if (at === 0 || text[at - 1] === '\n') return '';
  if (at < text.length) return '\n';
  if (!edits.lineBreakAdded) {
    edits.lineBreakAdded = true;
    fixFinalBlockScalar(source, edits);
  }
  return '';
}

/**
 * A block scalar at the very end of the input without a final line break (`key: |` then `abc` at EOF) has the
 * value "abc"; once text follows it, the same lines mean "abc\n". Strip chomping (`|-`) keeps the value.
 */
function fixFinalBlockScalar(source: SourceDocument, edits: TextEdits): void {
  const last = lastNode(source, source.text.length);
  if (!isScalar(last) || (last.type !== 'BLOCK_LITERAL' && last.type !== 'BLOCK_FOLDED')) return;
  const start = range(last)[0];
  const header = /^[|>]([1-9]?)([-+]?)/.exec(source.text.slice(start, start + 3));
  if (header && header[2] === '') edits.insert(start + 1, '-');
}

function lastNode(source: SourceDocument, end: number): Node | undefined {
  let found: Node | undefined;
  for (const root of source.roots) {
    let node: Node | null | undefined = root;
    while (node && range(node)[1] >= end - 1) {
      found = node;
      if (isMap(node)) node = ((node as YAMLMap<Node, Node>).items.at(-1)?.value ?? null) as Node | null;
      else if (isSeq(node)) node = ((node as YAMLSeq<Node>).items.at(-1) ?? null) as Node | null;
      else break;
    }
  }
  return found;
}


function renderBlockMap(state: MapState, edits: TextEdits): void {
  const { text, indentSeq } = state.source;
  const { node } = state;
  const pairs = node.items;
  const first = pairs[0];
  if (!first) return;
  const indent = column(text, startWithProps(text, first.key));
  for (const pair of state.deleted) {
    const keyStart = startWithProps(text, pair.key);
    const end = lineEnd(text, valueEnd(pair));
    if (onlySpacesBefore(text, keyStart)) edits.replace(lineStart(text, keyStart), end, '');
    else edits.replace(keyStart, end, pairs.length > 1 ? '' : '{}\n');
  }
  for (const [pair, value] of state.replaced) {
    const start = colonEnd(text, pair);
    const end = pair.value ? range(pair.value)[1] : start;
    // A block collection's range ends at the start of the line after it; keep that line break.
    const keepBreak = end > start && text[end - 1] === '\n' ? '\n' : '';
    edits.replace(start, end, blockValue(value, indent, indentSeq) + keepBreak);
  }
  const appendAt = lineEnd(text, valueEnd(pairs[pairs.length - 1] as Pair<Node, Node>));
  for (const entry of state.added) {
    const beforePair = entry.before === undefined ? undefined : pairs.find((pair) => keyText(pair, state.source.index) === entry.before && !state.deleted.has(pair));
    const lines = blockPair(entry.key, entry.value, indent, indentSeq);
    if (beforePair) edits.insert(commentedLineStart(text, startWithProps(text, beforePair.key), indent), lines, indent);
    else edits.insert(appendAt, ensureLineStart(state.source, edits, appendAt) + lines, indent);
  }
}

/** The start of the line at `offset`, moved up over comment lines directly above it at the same indentation. */
function commentedLineStart(text: string, offset: number, indent: number): number {
  let start = lineStart(text, offset);
  if (!onlySpacesBefore(text, offset)) return offset;
  const marker = `${' '.repeat(indent)}#`;
  for (;;) {
    if (start === 0) return start;
    const previous = lineStart(text, start - 1);
    if (!text.startsWith(marker, previous)) return start;
    start = previous;
  }
}

function renderBlockSeq(state: SeqState, edits: TextEdits): void {
  const { text, indentSeq } = state.source;
  const { node } = state;
  const items = node.items;
  const dashes = items.map((item) => text.lastIndexOf('-', startWithProps(text, item) - 1));
  const firstDash = dashes[0] ?? range(node)[0];
  const indent = column(text, firstDash);
  const itemEnd = (index: number) => lineEnd(text, Math.max(range(items[index])[1], (dashes[index] ?? 0) + 1));
  const remaining = items.length - state.removed.size + state.front.length + state.back.length;
  if (remaining === 0) {
    const parent = state.parent;
    if (parent && typeof parent.slot !== 'number' && parent.state instanceof MapState) {
      const start = colonEnd(text, parent.slot);
      edits.replace(start, itemEnd(items.length - 1), ' []\n');
      return;
    }
    throw new EditError([], 'cannot empty a block sequence that is not the value of a key');
  }
  for (const index of state.removed) {
    const dash = dashes[index] ?? 0;
    if (!onlySpacesBefore(text, dash)) throw new EditError([], `cannot remove a list item at ${lineAndColumn(text, dash)} that shares its line with another node`);
    edits.replace(lineStart(text, dash), itemEnd(index), '');
  }
  for (const [index, value] of state.replaced) {
    const item = items[index] as Node;
    const rendered = blockItem(value, indent, indentSeq);
    edits.replace((dashes[index] ?? 0), range(item)[1], rendered.slice(indent).replace(/\n$/, ''));
  }
  if (state.front.length > 0) {
    if (!onlySpacesBefore(text, firstDash)) throw new EditError([], `cannot insert before a list item at ${lineAndColumn(text, firstDash)} that shares its line with another node`);
    edits.insert(lineStart(text, firstDash), state.front.map((value) => blockItem(value, indent, indentSeq)).join(''), indent);
  }
  if (state.back.length > 0) {
    const at = itemEnd(items.length - 1);
    edits.insert(at, ensureLineStart(state.source, edits, at) + state.back.map((value) => blockItem(value, indent, indentSeq)).join(''), indent + 1);
  }
}

/** One entry of a flow collection after its edits: kept where it stands in the source, or new text. */
type FlowEntry = { keep: [number, number] } | { text: string };

/** Compact JSON with a space after `:` and `,` (as people write flow YAML), the same at every level. */
function compactJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(compactJson).join(', ')}]`;
  if (isRecord(value)) return `{${Object.keys(value).map((key) => `${JSON.stringify(key)}: ${compactJson(value[key])}`).join(', ')}}`;
  return JSON.stringify(value) ?? 'null';
}

/**
 * Flow collections (`[a, b]`, `{a: 1}`, JSON) get new entries as JSON (valid YAML, and JSON stays JSON), one per
 * line when the collection spans lines. Kept entries stay where they stand (their own edits apply inside
 * them); only the separators around changed places are rewritten.
 */
function renderFlow(source: SourceDocument, edits: TextEdits, node: Node, firstEntryStart: number | undefined, entries: (json: (value: unknown) => string) => FlowEntry[]): void {
  const { text } = source;
  const [open, end] = range(node);
  const close = end - 1;
  const lead = firstEntryStart === undefined ? '' : text.slice(open + 1, firstEntryStart);
  const multiline = lead.includes('\n');
  const itemIndent = multiline ? (/[ \t]*$/.exec(lead)?.[0] ?? '') : '';
  const closeIndent = multiline ? ' '.repeat(column(text, close)) : '';
  const unit = itemIndent.length > closeIndent.length ? itemIndent.length - closeIndent.length : 2;
  const json = (value: unknown) => (multiline ? JSON.stringify(value, null, unit).replace(/\n/g, `\n${itemIndent}`) : compactJson(value));
  const all = entries(json);
  const separator = multiline ? `,\n${itemIndent}` : ', ';
  const opening = all.length === 0 ? '' : multiline ? `\n${itemIndent}` : lead.startsWith(' ') ? ' ' : '';
  const closing = all.length === 0 ? '' : multiline ? `\n${closeIndent}` : lead.startsWith(' ') ? ' ' : '';
  // Rewrite each gap between kept entries (and the brackets) with the new text that belongs there.
  let gapStart = open + 1;
  let pending = opening;
  all.forEach((entry, position) => {
    if ('text' in entry) {
      pending += entry.text;
    } else {
      edits.replace(gapStart, entry.keep[0], pending);
      gapStart = entry.keep[1];
      pending = '';
    }
    if (position < all.length - 1) pending += separator;
  });
  edits.replace(gapStart, close, pending + closing);
}

function renderFlowSeq(state: SeqState, edits: TextEdits): void {
  const { text } = state.source;
  const items = state.node.items;
  renderFlow(state.source, edits, state.node, items[0] ? startWithProps(text, items[0]) : undefined, (json) => [
    ...state.front.map((value): FlowEntry => ({ text: json(writtenData(value)) })),
    ...items.flatMap((item, index): FlowEntry[] => {
      if (state.removed.has(index)) return [];
      const replaced = state.replaced.get(index);
      return [replaced ? { text: json(writtenData(replaced)) } : { keep: [startWithProps(text, item), range(item)[1]] }];
    }),
    ...state.back.map((value): FlowEntry => ({ text: json(writtenData(value)) })),
  ]);
}

function renderFlowMap(state: MapState, edits: TextEdits): void {
  const { text } = state.source;
  const pairs = state.node.items;
  renderFlow(state.source, edits, state.node, pairs[0] ? startWithProps(text, pairs[0].key) : undefined, (json) => [
    ...pairs.flatMap((pair): FlowEntry[] => {
      if (state.deleted.has(pair)) return [];
      const start = startWithProps(text, pair.key);
      const replaced = state.replaced.get(pair);
      return [replaced ? { text: `${text.slice(start, range(pair.key)[1])}: ${json(writtenData(replaced))}` } : { keep: [start, valueEnd(pair)] }];
    }),
    ...state.added.map((entry): FlowEntry => ({ text: `${JSON.stringify(entry.key)}: ${json(writtenData(entry.value))}` })),
  ]);
}

/**
 * A handle that edits plain data in place (no source text): the same editing code run on data, as a
 * reference for what an edit of the text must mean.
 */
export function plainDataHandle(data: Record<string, unknown>, path: Path = []): MapHandle {
  const root = new DataRoot(data, () => undefined, false);
  root.materialize();
  return new DataMap(root, [], path);
}
