/**
 * Building function input and reading its output in tests: ResourceLists from plain objects, the function run
 * in-process through run(), and its output read back with a YAML 1.2 reader.
 */
import { isSeq, parse, parseDocument, stringify } from 'yaml';
import { run, type Outcome } from '../../src/function/run.js';
import type { KrmResult } from '../../src/krm/results.js';

export type Json = Record<string, unknown>;

export const GIT_CACHE_API_VERSION = 'git-cache.dev/v1alpha1';

/** A GitCache functionConfig with the given spec. */
export function gitCache(spec: Json, name = 'git-cache'): Json {
  return { apiVersion: GIT_CACHE_API_VERSION, kind: 'GitCache', metadata: { name }, spec };
}

/** A ConfigMap functionConfig (`kpt fn eval -- key=value`). */
export function configMap(data: Record<string, string>): Json {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fn-config' }, data };
}

/** YAML text of a ResourceList; items given as text are inserted verbatim (to keep comments and quoting). */
export function resourceList(items: readonly (Json | string)[], functionConfig?: Json, apiVersion = 'config.kubernetes.io/v1'): string {
  const head = toYaml({ apiVersion, kind: 'ResourceList' });
  const itemText = items.length === 0 ? 'items: []\n' : `items:\n${items.map((item) => asSequenceEntry(typeof item === 'string' ? item : toYaml(item))).join('')}`;
  const config = functionConfig ? toYaml({ functionConfig }) : '';
  return head + itemText + config;
}

/** YAML in kyaml's layout, without anchors for objects used twice. */
export function toYaml(value: unknown): string {
  return stringify(value, { aliasDuplicateObjects: false, indentSeq: false });
}

function asSequenceEntry(text: string): string {
  const lines = text.replace(/\n$/, '').split('\n');
  return lines.map((line, index) => (index === 0 ? `- ${line}` : line === '' ? '' : `  ${line}`)).join('\n') + '\n';
}

export function runFunction(input: string, argv: readonly string[] = []): Outcome {
  return run(argv, () => input);
}

export interface ReadOutput {
  readonly apiVersion: unknown;
  readonly kind: unknown;
  readonly items: Json[];
  readonly results: KrmResult[];
  readonly functionConfig: unknown;
}

export function readOutput(stdout: string): ReadOutput {
  const parsed = parse(stdout, { uniqueKeys: false }) as Json;
  return {
    apiVersion: parsed.apiVersion,
    kind: parsed.kind,
    items: (parsed.items as Json[] | null) ?? [],
    results: (parsed.results as KrmResult[] | undefined) ?? [],
    functionConfig: parsed.functionConfig,
  };
}

/** Runs the function on items with a config and returns the output items and results. */
export function inject(items: readonly (Json | string)[], functionConfig: Json): ReadOutput & { outcome: Outcome } {
  const outcome = runFunction(resourceList(items, functionConfig));
  return { ...readOutput(outcome.stdout), outcome };
}

export function deployment(name: string, options: { labels?: Record<string, string>; podLabels?: Record<string, string>; annotations?: Record<string, string>; podAnnotations?: Record<string, string>; podSpec?: Json } = {}): Json {
  const podLabels = options.podLabels ?? { app: name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, ...(options.labels ? { labels: options.labels } : {}), ...(options.annotations ? { annotations: options.annotations } : {}) },
    spec: {
      selector: { matchLabels: podLabels },
      template: {
        metadata: { labels: podLabels, ...(options.podAnnotations ? { annotations: options.podAnnotations } : {}) },
        spec: options.podSpec ?? { containers: [{ name: 'app', image: 'registry.example/app:1.0' }] },
      },
    },
  };
}

export const SELECTED = { 'git-cache.enabled': 'true' } as const;

/** Walks a plain object along a path of keys. */
export function at(value: unknown, ...path: (string | number)[]): unknown {
  let current: unknown = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

export function podSpecOf(item: Json): Json {
  const kind = item.kind;
  if (kind === 'Pod') return item.spec as Json;
  if (kind === 'CronJob') return at(item, 'spec', 'jobTemplate', 'spec', 'template', 'spec') as Json;
  return at(item, 'spec', 'template', 'spec') as Json;
}

export function containersOf(podSpec: Json, list: 'containers' | 'initContainers'): Json[] {
  return (podSpec[list] as Json[] | undefined) ?? [];
}

/** The source text of each item of a ResourceList, byte for byte (to compare untouched items across runs). */
export function itemTexts(text: string): string[] {
  const items = parseDocument(text, { uniqueKeys: false }).get('items', true);
  if (!isSeq(items)) return [];
  return items.items.map((node) => {
    const range = (node as { range?: [number, number, number] }).range;
    return range ? text.slice(range[0], range[1]) : '';
  });
}
