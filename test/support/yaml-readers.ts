/**
 * How other programs read what the function prints: a YAML 1.1 reader (go-yaml v2 as the API server's
 * sigs.k8s.io/yaml uses, PyYAML) and a YAML 1.2 core-schema reader (kyaml, i.e. kpt and kustomize).
 */
import { parse, parseAllDocuments } from 'yaml';

/** Strings that one of the two YAML versions reads as something else when written as a plain scalar. */
export const TRICKY_STRINGS = [
  'on',
  'off',
  'yes',
  'no',
  'y',
  'n',
  'Y',
  'NO',
  'True',
  'false',
  '0755',
  '012',
  '12:30',
  '1:20:30',
  '1e3',
  '0o17',
  '0x1F',
  '0b101',
  '1_000',
  '.inf',
  '-.5',
  '+1',
  '~',
  'null',
  'Null',
  '2001-12-14',
  '<<',
  '',
] as const;

export function readAsYaml11(text: string): unknown {
  return parse(text, { version: '1.1', uniqueKeys: false });
}

export function readAsYaml12(text: string): unknown {
  return parse(text, { schema: 'core', uniqueKeys: false });
}

export function readStreamAsYaml12(text: string): unknown[] {
  return parseAllDocuments(text, { schema: 'core', uniqueKeys: false }).map((doc) => doc.toJS());
}
