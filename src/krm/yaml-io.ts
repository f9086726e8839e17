/**
 * Parsing and printing YAML so that documents round-trip: comments, key order, scalar styles and duplicates
 * survive, and a string is always printed so that YAML 1.1 readers (go-yaml v2, PyYAML) and YAML 1.2 readers
 * alike read a string back (`"on"`, `"yes"`, `"0755"`, `"12:30"`, `"1e3"`, `"0o17"` stay quoted).
 */
import { randomBytes } from 'node:crypto';
import {
  Document,
  visit,
  Scalar,
  YAMLSeq,
  isScalar,
  type Node,
  parseAllDocuments,
  parseDocument,
  type DocumentOptions,
  type ParseOptions,
  type ScalarTag,
  type SchemaOptions,
  type Tags,
  type ToStringOptions,
} from 'yaml';

type Options = DocumentOptions & ParseOptions & SchemaOptions;

const NUMBER_TAGS = new Set(['tag:yaml.org,2002:int', 'tag:yaml.org,2002:float']);

// yaml prints a number from its value, so `defaultMode: 0644` would come out as `644`; kyaml (go-yaml v3) and
// the API server (YAML 1.1) read `0644` as octal 420, so that would change what an untouched item means. A parsed
// number is printed as written for as long as that text still means the node's value.
function keepNumberText(tags: Tags): Tags {
  return tags.map((tag) => {
    if (typeof tag === 'string' || tag.collection || !NUMBER_TAGS.has(tag.tag)) return tag;
    const numberTag = tag as ScalarTag;
    const stringify: NonNullable<ScalarTag['stringify']> = (item, ctx, onComment, onChompKeep) => {
      const source = item.source;
      if (typeof source === 'string' && (numberTag.test?.test(source) ?? false)) {
        const resolved = numberTag.resolve(source, () => undefined, {});
        if (Object.is(isScalar(resolved) ? resolved.value : resolved, item.value)) return source;
      }
      return numberTag.stringify ? numberTag.stringify(item, ctx, onComment, onChompKeep) : String(item.value);
    };
    return { ...numberTag, stringify };
  });
}

// `compat: 'yaml-1.1'` makes the printer quote any plain string that a YAML 1.1 reader would retype, on top of
// the YAML 1.2 core schema that parsing uses (the schema kyaml, and so kpt and kustomize, use).
const PRINT_SCHEMA: SchemaOptions = { compat: 'yaml-1.1', customTags: keepNumberText };
// Parsing itself leaves compat out: there it only adds a warning (an Error, with a captured stack) for every
// ambiguous plain scalar, which costs much time on large inputs. The printing schema is set after parsing.
const PARSE_OPTIONS: Options = { customTags: keepNumberText, uniqueKeys: false, strict: false, prettyErrors: false };

function withPrintSchema(doc: Document): Document {
  doc.setSchema('1.2', PRINT_SCHEMA);
  return doc;
}

// kyaml's layout (sequences not indented under their key), and no line folding of long strings: folding
// keeps the meaning but not the bytes, and untouched items should not move.
export const PRINT_OPTIONS: ToStringOptions = { indentSeq: false, lineWidth: 0, minContentWidth: 0, flowCollectionPadding: false };

export class YamlSyntaxError extends Error {}

// With prettyErrors off (their message spans several lines), yaml gives an offset only: say where in lines.
function firstError(doc: Document, text: string): string | undefined {
  const error = doc.errors[0];
  if (!error) return undefined;
  const offset = Math.min(error.pos[0], text.length);
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const col = offset - before.lastIndexOf('\n');
  return `${error.message.split('\n')[0]} at line ${line}, column ${col}`;
}

export function parseYamlDocument(text: string): Document {
  const doc = parseDocument(text, PARSE_OPTIONS);
  const error = firstError(doc, text);
  if (error) throw new YamlSyntaxError(error);
  return withPrintSchema(doc);
}

/** A multi-document stream; empty documents (`---` with nothing after it) are dropped. */
export function parseYamlStream(text: string): Document[] {
  const docs = parseAllDocuments(text, PARSE_OPTIONS);
  if (!Array.isArray(docs)) return [];
  for (const doc of docs) {
    const error = firstError(doc, text);
    if (error) throw new YamlSyntaxError(error);
  }
  // An empty document (`---` followed by nothing or only a comment, as Helm prints for a template that renders
  // nothing, or a trailing `---`) parses as a null scalar, not as null contents.
  return docs.filter((doc) => doc.contents !== null && !(isScalar(doc.contents) && doc.contents.value === null)).map(withPrintSchema);
}

export function printYamlDocument(doc: Document): string {
  return expandPrerendered(doc.toString(PRINT_OPTIONS));
}

/*
 * Pre-rendered sequence items. What injection adds to each workload (the cache container, its volumes) is the
 * same few hundred bytes for thousands of workloads; building it as YAML nodes and printing it once per
 * workload was most of the function's time on large inputs. Such an item is printed once, stands in the tree
 * as a unique placeholder scalar, and is spliced into the output text, indented where the placeholder stands.
 * The bytes are exactly what printing the nodes in place gives (sequences are printed kyaml-style, `- ` at
 * the key's indentation, and every nested line is indented relative to the item).
 */
const PRERENDERED_PREFIX = `gc-prerendered-${randomBytes(8).toString('hex')}-`;
const prerenderedText = new Map<string, string>();
const prerenderedIdByKey = new Map<string, string>();

/**
 * A placeholder for a block sequence item whose printed form is `build()`'s node, printed once per `key`
 * (callers pass a key that identifies the content, e.g. its JSON). The sequence must print in block style.
 */
export function prerenderedSeqItem(key: string, build: () => Node): Scalar {
  let id = prerenderedIdByKey.get(key);
  if (id === undefined) {
    id = `${PRERENDERED_PREFIX}${prerenderedIdByKey.size}`;
    const doc = newYamlDocument();
    doc.contents = new YAMLSeq();
    (doc.contents as YAMLSeq).items.push(build());
    prerenderedText.set(id, doc.toString(PRINT_OPTIONS).replace(/\n$/, ''));
    prerenderedIdByKey.set(key, id);
  }
  return new Scalar(id);
}

const PRERENDERED_LINE = new RegExp(`^( *)- (${PRERENDERED_PREFIX}\\d+)$`, 'gm');

function expandPrerendered(text: string): string {
  if (prerenderedText.size === 0 || !text.includes(PRERENDERED_PREFIX)) return text;
  return text.replace(PRERENDERED_LINE, (_line, indent: string, id: string) => {
    const item = prerenderedText.get(id) ?? '';
    return indent === '' ? item : item.replace(/^(?=.)/gm, indent);
  });
}

export function printYamlStream(docs: readonly Document[]): string {
  return docs.map((doc) => printYamlDocument(doc).replace(/^---\n/, '')).join('---\n');
}

/** A new, empty document using the same schema options (for building output from scratch). */
export function newYamlDocument(value?: unknown): Document {
  return new Document(value, { ...PARSE_OPTIONS, ...PRINT_SCHEMA });
}

// An alias (`*name`) anywhere in the text, as opposed to a `*` inside a scalar such as a cron schedule.
const ALIAS_SYNTAX = /(?:^|[\s[{,])\*[^\s,\]}]/m;

/**
 * Replaces every alias (`*name`) in `doc` by a copy of the node it names, so code reading an item sees plain
 * values (labels given as `*common-labels` select a workload like written-out ones). The meaning is the same;
 * such items print with the aliases written out.
 */
export function expandAliases(doc: Document, text: string): void {
  if (!ALIAS_SYNTAX.test(text)) return;
  visit(doc, {
    Alias(_key, alias) {
      const target = alias.resolve(doc);
      if (!target) return undefined;
      const copy = target.clone() as Node;
      copy.anchor = undefined;
      return copy;
    },
  });
}
