/**
 * The KRM function wire format: a `config.kubernetes.io/v1` (or `v1beta1`) ResourceList in, the same out; or,
 * for Helm post-rendering, a plain multi-document stream in and out.
 *
 * Items stay YAML nodes of the parsed document the whole way through, so everything this function does not
 * change (comments, key order, scalar styles, duplicates, every annotation) is printed back as it came.
 */
import { Document, YAMLMap, YAMLSeq, isMap, isNode, isSeq } from 'yaml';
import type { KrmResult } from './results.js';
import { expandAliases, newYamlDocument, parseYamlDocument, parseYamlStream, printYamlDocument, printYamlStream } from './yaml-io.js';

export const RESOURCE_LIST_KIND = 'ResourceList';
export const RESOURCE_LIST_API_VERSIONS = ['config.kubernetes.io/v1', 'config.kubernetes.io/v1beta1'] as const;

/** The items of a function call, whichever wire format they came in. */
export interface ItemBatch {
  readonly items: YAMLMap[];
  /** The functionConfig as plain data (ResourceList mode), if any. */
  readonly functionConfig: unknown;
  /** Removes the items `isStale` picks and appends `fresh` ones (generated resources) at the end. */
  readonly replaceItems: (isStale: (item: YAMLMap) => boolean, fresh: readonly unknown[]) => void;
  /** Serializes the (possibly changed) items with the given results. */
  readonly print: (results: readonly KrmResult[]) => string;
}

export class WireFormatError extends Error {}

function asItemMaps(seq: unknown, describe: (index: number) => string): YAMLMap[] {
  if (seq === undefined || seq === null) return [];
  if (!isSeq(seq)) throw new WireFormatError('ResourceList.items must be a list');
  return (seq as YAMLSeq).items.map((item, index) => {
    if (!isMap(item)) throw new WireFormatError(`${describe(index)} is not a mapping (a Kubernetes resource)`);
    return item as YAMLMap;
  });
}

/** Reads a ResourceList. Throws YamlSyntaxError or WireFormatError with a one-line reason. */
export function readResourceList(text: string): ItemBatch {
  const doc = parseYamlDocument(text);
  if (!isMap(doc.contents)) throw new WireFormatError('input is not a ResourceList (expected a YAML mapping)');
  const kind = doc.get('kind');
  const apiVersion = doc.get('apiVersion');
  if (kind !== RESOURCE_LIST_KIND || !RESOURCE_LIST_API_VERSIONS.includes(apiVersion as (typeof RESOURCE_LIST_API_VERSIONS)[number])) {
    throw new WireFormatError(
      `input is not a ResourceList (got apiVersion ${JSON.stringify(apiVersion)}, kind ${JSON.stringify(kind)}); ` +
        'to transform a plain YAML stream pass --config FILE',
    );
  }
  expandAliases(doc, text);
  const items = asItemMaps(doc.get('items', true), (index) => `ResourceList.items[${index}]`);
  const functionConfigNode = doc.get('functionConfig', true);
  const functionConfig: unknown = isNode(functionConfigNode) ? functionConfigNode.toJS(doc) : functionConfigNode;
  return {
    items,
    functionConfig,
    replaceItems: (isStale, fresh) => {
      const seq = doc.get('items', true);
      const kept = isSeq(seq) ? seq.items.filter((item) => !(isMap(item) && isStale(item))) : [];
      if (kept.length === (isSeq(seq) ? seq.items.length : 0) && fresh.length === 0) return;
      const replaced = isSeq(seq) ? seq : new YAMLSeq();
      replaced.items = [...kept, ...fresh.map((resource) => doc.createNode(resource))];
      doc.set('items', replaced);
    },
    print: (results) => printResourceList(doc, results),
  };
}

/**
 * A comment above an item (`# c` before `- apiVersion: ...`) belongs to the map, and yaml prints it before the
 * `-`. kpt then writes it once from the item and once more from its own copy, so every render doubles it.
 * Moving it onto the item's first key prints it after the `-` (`- # c`), where kpt keeps exactly one.
 */
function attachItemCommentsToFirstKey(items: unknown): void {
  if (!isSeq(items)) return;
  for (const item of items.items) {
    const firstKey = isMap(item) ? item.items[0]?.key : undefined;
    if (!isMap(item) || !item.commentBefore || !isNode(firstKey)) continue;
    firstKey.commentBefore = firstKey.commentBefore ? `${item.commentBefore}\n${firstKey.commentBefore}` : item.commentBefore;
    item.commentBefore = undefined;
  }
}

function printResourceList(doc: Document, results: readonly KrmResult[]): string {
  attachItemCommentsToFirstKey(doc.get('items', true));
  doc.delete('results');
  const printed = printYamlDocument(doc);
  if (results.length === 0) return printed;
  return `${printed.endsWith('\n') ? printed : `${printed}\n`}results:\n${results.map(printResult).join('')}`;
}

/**
 * Results are many (one per injected workload) and of one small shape, so they are printed directly rather than
 * built as YAML nodes: a JSON string is a valid YAML double-quoted scalar, with the same escapes.
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

function withoutUndefined(result: KrmResult): KrmResult {
  return JSON.parse(JSON.stringify(result)) as KrmResult;
}

/** Reads a plain stream of resources (`---`-separated), as Helm hands a post-renderer. */
export function readResourceStream(text: string): ItemBatch {
  const docs = parseYamlStream(text);
  for (const doc of docs) expandAliases(doc, text);
  const items = docs.map((doc, index) => {
    if (!isMap(doc.contents)) throw new WireFormatError(`document ${index + 1} of the stream is not a mapping (a Kubernetes resource)`);
    return doc.contents as YAMLMap;
  });
  let output = docs;
  return {
    items,
    functionConfig: undefined,
    replaceItems: (isStale, fresh) => {
      output = [...output.filter((doc) => !(isMap(doc.contents) && isStale(doc.contents as YAMLMap))), ...fresh.map((resource) => newYamlDocument(resource))];
    },
    print: () => printYamlStream(output),
  };
}

/** Reads a standalone config file (`--config FILE`): one YAML document, as plain data. */
export function readConfigFile(text: string): unknown {
  const docs = parseYamlStream(text);
  if (docs.length !== 1) throw new WireFormatError(`the config file must hold exactly one YAML document, found ${docs.length}`);
  return docs[0]?.toJS();
}

/** An empty ResourceList carrying only results, for input that could not be read as items at all. */
export function printResultsOnly(results: readonly KrmResult[]): string {
  return printYamlDocument(
    newYamlDocument({ apiVersion: RESOURCE_LIST_API_VERSIONS[0], kind: RESOURCE_LIST_KIND, items: [], results: results.map(withoutUndefined) }),
  );
}
