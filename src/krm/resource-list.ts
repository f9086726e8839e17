/**
 * The KRM function wire format: a `config.kubernetes.io/v1` (or `v1beta1`) ResourceList in, the same out; or,
 * for Helm post-rendering, a plain multi-document stream in and out.
 *
 * The output is the input text with the function's changes edited in (yaml-edit.ts): every item it does not
 * change is its own source text, byte for byte, and so are the untouched lines of the items it changes.
 * Items of a `kind: List` (kubectl's output shape) are items too.
 */
import type { Node, YAMLMap, YAMLSeq } from 'yaml';
import { DEFAULT_READ_LIMITS, type ReadLimits } from './limits.js';
import type { KrmResult } from './results.js';
import { Prerendered, SourceDocument, TextEdits, type MapHandle } from './yaml-edit.js';
import { printYaml } from './yaml-io.js';
import { isMap, isNullScalar, isRecord, isScalar, isSeq, parseStream, type ParsedDocument, type StreamIndex } from './yaml-read.js';

export const RESOURCE_LIST_KIND = 'ResourceList';
export const RESOURCE_LIST_API_VERSIONS = ['config.kubernetes.io/v1', 'config.kubernetes.io/v1beta1'] as const;

/** One resource of the input: its data for reading, and a handle for editing it in place. */
export interface Item {
  /** The resource as plain data, aliases and merge keys resolved. Shared: never mutate it. */
  readonly data: Record<string, unknown>;
  readonly edit: MapHandle;
}

/** The items of a function call, whichever wire format they came in. */
export interface ItemBatch {
  readonly items: readonly Item[];
  /** The functionConfig as plain data (ResourceList mode), if any. */
  readonly functionConfig: unknown;
  /** Removes the items `isStale` picks and appends `fresh` ones (generated resources) at the end. */
  readonly replaceItems: (isStale: (item: Item) => boolean, fresh: readonly unknown[]) => void;
  /** The output with the given results: the items as edited, or exactly as they came when `unchanged`. */
  readonly print: (results: readonly KrmResult[], unchanged?: boolean) => string;
}

export class WireFormatError extends Error {}

function isEmptyDocument(doc: ParsedDocument): boolean {
  const contents = doc.contents as Node | null;
  return contents === null || isNullScalar(contents);
}

function describeResource(data: Record<string, unknown>): string {
  const metadata = isRecord(data.metadata) ? data.metadata : {};
  return `${String(data.kind ?? '?')} ${typeof metadata.name === 'string' ? metadata.name : '?'}`;
}

class ItemReader {
  readonly items: Item[] = [];

  constructor(
    private readonly source: SourceDocument,
    private readonly index: StreamIndex,
  ) {}

  add(node: YAMLMap, path: readonly (string | number)[]): Item {
    const index = this.index;
    let data: Record<string, unknown> | undefined;
    const item: Item = {
      get data() {
        data ??= index.lazyPlainMap(node);
        return data;
      },
      edit: this.source.mapHandle(node, path),
    };
    this.items.push(item);
    this.addListItems(item, node);
    return item;
  }

  /** `kind: List` (what `kubectl get -o yaml` prints for several objects): its items are resources too. */
  private addListItems(item: Item, node: YAMLMap): void {
    if (item.data.kind !== 'List' || item.data.apiVersion !== 'v1') return;
    const pair = node.items.find((candidate) => isScalar(candidate.key) && candidate.key.value === 'items');
    const seq = pair?.value as Node | null | undefined;
    if (!isSeq(seq)) return;
    (seq as YAMLSeq<Node>).items.forEach((entry, position) => {
      if (!isMap(entry)) throw new WireFormatError(`items[${position}] of the List ${describeResource(item.data)} is not a mapping (a Kubernetes resource)`);
      this.add(entry as YAMLMap, ['items', position]);
    });
  }
}

/**
 * Results (one per injected workload) are printed directly rather than through a YAML document: a JSON string
 * is a valid YAML double-quoted scalar, with the same escapes.
 */
function printResult(result: KrmResult): string {
  const lines = [`- severity: ${result.severity}`, `  message: ${JSON.stringify(result.message)}`];
  const ref = result.resourceRef;
  if (ref && Object.values(ref).some((value) => value !== undefined)) {
    lines.push('  resourceRef:');
    for (const key of ['apiVersion', 'kind', 'name', 'namespace'] as const) {
      if (ref[key] !== undefined) lines.push(`    ${key}: ${JSON.stringify(ref[key])}`);
    }
  }
  if (result.field) lines.push('  field:', `    path: ${JSON.stringify(result.field.path)}`);
  if (result.file) {
    lines.push('  file:', `    path: ${JSON.stringify(result.file.path)}`);
    if (result.file.index !== undefined) lines.push(`    index: ${result.file.index}`);
  }
  return `${lines.join('\n')}\n`;
}

function plainResults(results: readonly KrmResult[]): unknown[] {
  return results.map((result) => JSON.parse(JSON.stringify(result)) as unknown);
}

/** How the input is to be read: a ResourceList only, or (with --config) a ResourceList or a plain stream. */
export type InputMode = 'resource-list' | 'resource-list-or-stream';

/**
 * Reads the function's input. A ResourceList is one document whose root says so, in any style (block, JSON,
 * after a BOM); with --config, anything else is a plain stream of resources. Throws YamlSyntaxError or
 * WireFormatError with a one-line reason.
 */
export function readInput(text: string, mode: InputMode, limits: ReadLimits = DEFAULT_READ_LIMITS): { batch: ItemBatch; plainStream: boolean } {
  const { docs, index } = parseStream(text, limits);
  const source = new SourceDocument(
    text,
    index,
    docs.map((doc) => doc.contents as Node | null),
  );
  const documents = docs.filter((doc) => !isEmptyDocument(doc));
  const root = documents.length === 1 ? ((documents[0] as ParsedDocument).contents as Node) : undefined;
  const rootHandle = isMap(root) ? source.mapHandle(root) : undefined;
  const kind = rootHandle?.get('kind');
  const apiVersion = rootHandle?.get('apiVersion');
  const isResourceList = kind === RESOURCE_LIST_KIND && RESOURCE_LIST_API_VERSIONS.includes(apiVersion as (typeof RESOURCE_LIST_API_VERSIONS)[number]);
  if (mode === 'resource-list-or-stream' && !isResourceList) return { batch: streamBatch(text, docs, index, source), plainStream: true };
  if (documents.length !== 1) {
    throw new WireFormatError(
      documents.length === 0
        ? 'input is empty; expected a ResourceList'
        : `input holds ${documents.length} YAML documents, a ResourceList is one; to transform a plain YAML stream pass --config FILE`,
    );
  }
  if (!rootHandle || !isResourceList) {
    throw new WireFormatError(
      rootHandle
        ? `input is not a ResourceList (got apiVersion ${JSON.stringify(apiVersion ?? null)}, kind ${JSON.stringify(kind ?? null)}); to transform a plain YAML stream pass --config FILE`
        : 'input is not a ResourceList (expected a YAML mapping)',
    );
  }
  return { batch: resourceListBatch(text, root as YAMLMap, index, source, rootHandle), plainStream: false };
}

function resourceListBatch(text: string, root: YAMLMap, index: StreamIndex, source: SourceDocument, rootHandle: MapHandle): ItemBatch {
  const reader = new ItemReader(source, index);
  const itemsPair = (root as YAMLMap<Node, Node>).items.find((pair) => isScalar(pair.key) && pair.key.value === 'items');
  const itemsNode = itemsPair?.value ?? null;
  const positions = new Map<Item, number>();
  let appendsItems = false;
  if (itemsNode !== null && !isNullScalar(itemsNode)) {
    if (!isSeq(itemsNode)) throw new WireFormatError('ResourceList.items must be a list');
    (itemsNode as YAMLSeq<Node>).items.forEach((item, position) => {
      if (!isMap(item)) throw new WireFormatError(`ResourceList.items[${position}] is not a mapping (a Kubernetes resource)`);
      positions.set(reader.add(item as YAMLMap, []), position);
    });
  }
  return {
    items: reader.items,
    functionConfig: rootHandle.get('functionConfig'),
    replaceItems: (isStale, fresh) => {
      const stale = new Set([...positions].filter(([item]) => isStale(item)).map(([, position]) => position));
      const items = rootHandle.seq('items', stale.size > 0 || fresh.length > 0);
      if (!items) return;
      if (stale.size > 0) items.removeWhere((_value, position) => stale.has(position));
      items.push(...fresh);
      appendsItems = fresh.length > 0;
    },
    print: (results, unchanged = false) => {
      // Printing unchanged items: a fresh view of the same text, carrying only the results.
      const output = unchanged ? new SourceDocument(text, index, source.roots) : source;
      const outputRoot = unchanged ? output.mapHandle(root) : rootHandle;
      outputRoot.delete('results');
      if (results.length > 0) outputRoot.set('results', new Prerendered(`\n${results.map(printResult).join('')}`, () => plainResults(results)), appendsItems && !unchanged ? undefined : resultsBefore(text, root));
      const edits = new TextEdits(text);
      output.collect(edits);
      return edits.apply();
    },
  };
}

/**
 * Results go at the end, except after items that end the input without a line break: text after a block
 * scalar there would change its value ("abc" would become "abc\n"), so they go before `items` instead (unless
 * items are appended anyway: the scalar then becomes `|-`, and the output ends with a line break).
 */
function resultsBefore(text: string, root: YAMLMap): string | undefined {
  if (text.endsWith('\n') || root.flow) return undefined;
  const last = (root as YAMLMap<Node, Node>).items.at(-1);
  return isScalar(last?.key) && last.key.value === 'items' ? 'items' : undefined;
}

function streamBatch(text: string, docs: ParsedDocument[], index: StreamIndex, source: SourceDocument): ItemBatch {
  const reader = new ItemReader(source, index);
  const documentOf = new Map<Item, ParsedDocument>();
  docs.forEach((doc, position) => {
    if (isEmptyDocument(doc)) return;
    const contents = doc.contents as Node;
    if (!isMap(contents)) throw new WireFormatError(`document ${position + 1} of the stream is not a mapping (a Kubernetes resource)`);
    documentOf.set(reader.add(contents as YAMLMap, []), doc);
  });
  const streamEdits: { stale: ParsedDocument[]; fresh: unknown[] } = { stale: [], fresh: [] };
  return {
    items: reader.items,
    functionConfig: undefined,
    replaceItems: (isStale, fresh) => {
      streamEdits.stale = [...documentOf].filter(([item]) => isStale(item)).map(([, doc]) => doc);
      streamEdits.fresh = [...fresh];
    },
    print: (_results, unchanged = false) => {
      if (unchanged) return text;
      const edits = new TextEdits(text);
      source.collect(edits);
      for (const doc of streamEdits.stale) {
        const [start, , end] = doc.range;
        edits.replace(start, end, '');
      }
      if (streamEdits.fresh.length > 0) {
        const separator = text.length === 0 || text.endsWith('\n') ? '' : '\n';
        const hasDocuments = docs.some((doc) => !isEmptyDocument(doc) && !streamEdits.stale.includes(doc));
        const documents = streamEdits.fresh.map((resource) => printYaml(resource));
        edits.insert(text.length, `${separator}${hasDocuments || /---\s*$/.test(text) ? '---\n' : ''}${documents.join('---\n')}`);
      }
      return edits.apply();
    },
  };
}

/** Reads a standalone config file (`--config FILE`): one YAML document, as plain data. */
export function readConfigFile(text: string, limits: ReadLimits = DEFAULT_READ_LIMITS): unknown {
  const { docs, index } = parseStream(text, limits);
  const documents = docs.filter((doc) => !isEmptyDocument(doc));
  if (documents.length !== 1) throw new WireFormatError(`the config file must hold exactly one YAML document, found ${documents.length}`);
  return index.plainValue((documents[0] as ParsedDocument).contents as Node);
}

/**
 * The input exactly as it came with `results` set, for a failure before any change: when the input is a
 * ResourceList (a mapping) it keeps its items; when it cannot be read at all, a ResourceList of the results.
 */
export function printInputWithResults(text: string, results: readonly KrmResult[], limits: ReadLimits = DEFAULT_READ_LIMITS): string {
  try {
    const { docs, index } = parseStream(text, limits);
    const documents = docs.filter((doc) => !isEmptyDocument(doc));
    const root = documents.length === 1 ? ((documents[0] as ParsedDocument).contents as Node) : undefined;
    if (isMap(root)) {
      const source = new SourceDocument(
        text,
        index,
        docs.map((doc) => doc.contents as Node | null),
      );
      const handle = source.mapHandle(root);
      handle.delete('results');
      handle.set('results', new Prerendered(`\n${results.map(printResult).join('')}`, () => plainResults(results)));
      const edits = new TextEdits(text);
      source.collect(edits);
      return edits.apply();
    }
  } catch {
    // Not readable as YAML: fall through to a ResourceList of the results alone.
  }
  return printResultsOnly(results);
}

/** A ResourceList carrying only results, for input that could not be read as items at all. */
export function printResultsOnly(results: readonly KrmResult[]): string {
  return `apiVersion: ${RESOURCE_LIST_API_VERSIONS[0]}\nkind: ${RESOURCE_LIST_KIND}\nresults:\n${results.map(printResult).join('')}`;
}
