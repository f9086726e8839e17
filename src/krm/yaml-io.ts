/**
 * Printing what the function writes itself (the additions to a workload, generated resources, results): in
 * kyaml's layout, and so that a string is always read back as a string by YAML 1.1 readers (go-yaml v2 as the
 * API server's sigs.k8s.io/yaml uses, PyYAML) and YAML 1.2 readers alike: `"on"`, `"yes"`, `"0755"`,
 * `"12:30"`, `"1e3"`, `"0o17"` stay quoted. What the function reads is never re-printed (see yaml-edit.ts).
 */
import { Document, type ToStringOptions } from 'yaml';

export { YamlSyntaxError } from './yaml-read.js';

// kyaml's layout (sequences not indented under their key), and no line folding of long strings.
export const PRINT_OPTIONS: ToStringOptions = { indentSeq: false, lineWidth: 0, minContentWidth: 0, flowCollectionPadding: false };

/** A new document of `value`, printed with the YAML 1.1-safe quoting described above. */
export function newYamlDocument(value?: unknown): Document {
  // `compat: 'yaml-1.1'` quotes any plain string that a YAML 1.1 reader would retype, on top of the YAML 1.2
  // core schema that kyaml (kpt, kustomize) reads with.
  // No anchors for repeated objects: a generated `&a1` could shadow an anchor of the input.
  return new Document(value, { version: '1.2', compat: 'yaml-1.1', aliasDuplicateObjects: false });
}

export function printYaml(value: unknown): string {
  return newYamlDocument(value).toString(PRINT_OPTIONS);
}
