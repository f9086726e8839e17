/**
 * Parsing and printing YAML so that documents round-trip: comments, key order, scalar styles and duplicates
 * survive, and a string is always printed so that YAML 1.1 readers (go-yaml v2, PyYAML) and YAML 1.2 readers
 * alike read a string back (`"on"`, `"yes"`, `"0755"`, `"12:30"`, `"1e3"`, `"0o17"` stay quoted).
 */
import { Document, parseAllDocuments, parseDocument, type DocumentOptions, type ParseOptions, type SchemaOptions, type ToStringOptions } from 'yaml';

type Options = DocumentOptions & ParseOptions & SchemaOptions;

// `compat: 'yaml-1.1'` makes the printer quote any plain string that a YAML 1.1 reader would retype, on top of
// the YAML 1.2 core schema that parsing uses (the schema kyaml, and so kpt and kustomize, use).
const PARSE_OPTIONS: Options = { compat: 'yaml-1.1', uniqueKeys: false, strict: false, prettyErrors: false };

// kyaml's layout (sequences not indented under their key), and no line folding of long strings: folding
// keeps the meaning but not the bytes, and untouched items should not move.
export const PRINT_OPTIONS: ToStringOptions = { indentSeq: false, lineWidth: 0, minContentWidth: 0, flowCollectionPadding: false };

export class YamlSyntaxError extends Error {}

function firstError(doc: Document): string | undefined {
  const error = doc.errors[0];
  if (!error) return undefined;
  const position = error.linePos?.[0];
  const where = position ? ` at line ${position.line}, column ${position.col}` : '';
  return `${error.message.split('\n')[0]}${where}`;
}

export function parseYamlDocument(text: string): Document {
  const doc = parseDocument(text, PARSE_OPTIONS);
  const error = firstError(doc);
  if (error) throw new YamlSyntaxError(error);
  return doc;
}

/** A multi-document stream; empty documents (`---` with nothing after it) are dropped. */
export function parseYamlStream(text: string): Document[] {
  const docs = parseAllDocuments(text, PARSE_OPTIONS);
  if (!Array.isArray(docs)) return [];
  for (const doc of docs) {
    const error = firstError(doc);
    if (error) throw new YamlSyntaxError(error);
  }
  return docs.filter((doc) => doc.contents !== null);
}

export function printYamlDocument(doc: Document): string {
  return doc.toString(PRINT_OPTIONS);
}

export function printYamlStream(docs: readonly Document[]): string {
  return docs.map((doc) => printYamlDocument(doc).replace(/^---\n/, '')).join('---\n');
}

/** A new, empty document using the same schema options (for building output from scratch). */
export function newYamlDocument(value?: unknown): Document {
  return new Document(value, PARSE_OPTIONS);
}
