/**
 * Parsing and printing YAML so that documents round-trip: comments, key order, scalar styles and duplicates
 * survive, and a string is always printed so that YAML 1.1 readers (go-yaml v2, PyYAML) and YAML 1.2 readers
 * alike read a string back (`"on"`, `"yes"`, `"0755"`, `"12:30"`, `"1e3"`, `"0o17"` stay quoted).
 */
import {
  Document,
  isScalar,
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
  return doc.toString(PRINT_OPTIONS);
}

export function printYamlStream(docs: readonly Document[]): string {
  return docs.map((doc) => printYamlDocument(doc).replace(/^---\n/, '')).join('---\n');
}

/** A new, empty document using the same schema options (for building output from scratch). */
export function newYamlDocument(value?: unknown): Document {
  return new Document(value, { ...PARSE_OPTIONS, ...PRINT_SCHEMA });
}
