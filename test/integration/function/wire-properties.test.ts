/**
 * Properties of the wire layer over generated ResourceLists whose items are written in block style (with
 * comments and flow labels), flow style and JSON (compact and pretty), with anchors, aliases, merge keys,
 * tags and YAML 1.1/1.2-ambiguous strings:
 * - untouched items come out byte for byte;
 * - a changed item means its input plus the additions: the same injection run on plain data (yaml-edit's
 *   plainDataHandle, no text editing) is the reference, read back with a YAML 1.2 reader (merge keys on);
 * - a second run gives the same bytes;
 * - go-yaml (standalone kustomize's kyaml, `kustomize cfg cat`) and PyYAML read every output; PyYAML's reading
 *   of a changed item equals the reference injection run on PyYAML's reading of the input item, and of an
 *   untouched one equals its reading of the input item;
 * - differential: `kustomize cfg cat` prints every untouched item of the output exactly as it prints the
 *   same item of the input.
 */
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { isSeq, parseDocument } from 'yaml';
import { loadConfig } from '../../../src/config/load.js';
import { injectGitCache } from '../../../src/inject/transform.js';
import { plainDataHandle } from '../../../src/krm/yaml-edit.js';
import { gitCacheConfig, nonWorkload, workload } from '../../support/arbitraries.js';
import { runFunction, toYaml, type Json } from '../../support/krm.js';
import { findTool, testWithTools } from '../../support/tools.js';
import { TRICKY_STRINGS } from '../../support/yaml-readers.js';

const NUM_RUNS = Number(process.env.PROPERTY_RUNS ?? 60);
const hasPyYaml = (() => {
  try {
    execFileSync('python3', ['-c', 'import yaml'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const test = testWithTools(['kustomize', ...(hasPyYaml ? [] : ['python3-yaml'])], 'install the test tools with: bash scripts/install-test-tools.sh (PyYAML: apt-get install python3-yaml)');

type Style = 'block' | 'flow' | 'json' | 'pretty-json';

const PLAIN_SAFE = /^[a-z][a-z0-9._/-]*$/;
const AMBIGUOUS = new Set<string>([...TRICKY_STRINGS, 'true', 'false', 'null']);

/** Flow YAML as people write it: plain keys and strings where that is unambiguous, JSON strings otherwise. */
function flowYaml(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(flowYaml).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value)
      .map(([key, entry]) => `${PLAIN_SAFE.test(key) && !AMBIGUOUS.has(key) ? key : JSON.stringify(key)}: ${flowYaml(entry)}`)
      .join(', ')}}`;
  }
  if (typeof value === 'string') return PLAIN_SAFE.test(value) && !AMBIGUOUS.has(value) && !/^\d/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value);
}

interface GeneratedItem {
  item: Json;
  style: Style;
  comments: boolean;
}

/** The text of one item as a sequence entry of `items:`. */
function itemEntry({ item, style, comments }: GeneratedItem, position: number, anchors: { labels?: string; data?: string }): string {
  let body: string;
  if (style === 'json') body = JSON.stringify(item);
  else if (style === 'pretty-json') body = JSON.stringify(item, null, position % 2 === 0 ? 2 : 4);
  else if (style === 'flow') body = flowYaml(item);
  else {
    // A plain `<<` value is a merge key to YAML 1.1 readers and go-yaml: write it quoted, as a person would.
    body = toYaml(item).replace(/: <<$/gm, ': "<<"').replace(/^(\s*)- <<$/gm, '$1- "<<"');
    // An anchor on the first labels map, and aliases or merges of it in later block items.
    const labels = /^( {2})labels:\n((?: {4}.*\n)+)/m;
    if (anchors.labels === undefined && labels.test(body)) {
      body = body.replace(labels, (_all, indent: string, content: string) => `${indent}labels: &labels\n${content}`);
      anchors.labels = 'labels';
    } else if (anchors.labels !== undefined && labels.test(body)) {
      body = body.replace(labels, (_all, indent: string, content: string) => (position % 2 === 0 ? `${indent}labels: *labels\n` : `${indent}labels:\n    <<: *labels\n${content}`));
    }
    // ConfigMap data: anchored once, merged into later ones under their own keys; a tagged value.
    if (item.kind === 'ConfigMap') {
      if (anchors.data === undefined) {
        body = body.replace(/^data:\n/m, 'data: &data\n');
        anchors.data = 'data';
      } else body = body.replace(/^data:\n/m, 'data:\n  <<: *data\n  tagged: !!str 0755\n');
    }
    if (comments) body = body.replace(/^( *)(spec|metadata|containers):(.*)$/gm, '$1# about $2\n$1$2:$3 # $2');
  }
  const lines = body.replace(/\n$/, '').split('\n');
  return `${lines.map((line, index) => (index === 0 ? `- ${line}` : line === '' ? '' : `  ${line}`)).join('\n')}\n`;
}

function unique(generated: GeneratedItem[]): GeneratedItem[] {
  // Unique kind/name pairs: kustomize refuses two resources with one id.
  const seen = new Set<string>();
  return generated.filter(({ item }) => {
    const id = `${String(item.kind)}/${String((item.metadata as Json).name)}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

const itemsArbitrary = fc
  .array(
    fc.record({
      item: fc.oneof({ weight: 4, arbitrary: workload }, { weight: 1, arbitrary: nonWorkload }),
      style: fc.constantFrom<Style>('block', 'block', 'flow', 'json', 'pretty-json'),
      comments: fc.boolean(),
    }),
    { minLength: 1, maxLength: 6 },
  )
  .map(unique);

function inputOf(generated: GeneratedItem[], config: Json, endsWithBlockScalar: boolean): string {
  const anchors = {};
  const items = generated.map((entry, position) => itemEntry(entry, position, anchors)).join('');
  // A Secret whose block scalar ends the input without a final line break (a value without a trailing \n).
  const tail = endsWithBlockScalar ? '- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: tail\n  stringData:\n    key: |\n      abc' : '';
  return `apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nfunctionConfig: ${JSON.stringify(config)}\nitems:\n${items}${tail}`;
}

/** Source text of each item of a ResourceList, and each item read with a YAML 1.2 reader honouring merge keys. */
function itemsOf(text: string): { text: string; value: unknown }[] {
  const doc = parseDocument(text, { merge: true, uniqueKeys: false });
  const items = doc.get('items', true);
  if (!isSeq(items)) return [];
  return items.items.map((node) => {
    const range = (node as { range: [number, number] }).range;
    return { text: text.slice(range[0], range[1]), value: (node as { toJS: (doc: unknown) => unknown }).toJS(doc) };
  });
}

/** The reference: the same injection on plain data, no text involved; generated resources are appended. */
function injectedData(items: readonly unknown[], config: Json): { items: unknown[]; generated: unknown[] } {
  const loaded = loadConfig(config);
  if (!loaded.ok) throw new Error('generated config is invalid');
  const copies = items.map((item) => structuredClone(item) as Record<string, unknown>);
  const handles = copies.map((data) => ({ data: structuredClone(data), edit: plainDataHandle(data) }));
  const outcome = injectGitCache(handles, loaded.config);
  return { items: copies, generated: outcome.generated.map(asJson) };
}

/** As JSON would carry it (PyYAML's side comes through JSON). */
function asJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null)) as unknown;
}

/** The path of the first place two plain values differ, with both sides, or undefined. */
function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (isDeepStrictEqual(a, b)) return undefined;
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && Array.isArray(a) === Array.isArray(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const found = firstDifference((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], `${path}.${key}`);
      if (found) return found;
    }
  }
  return `${path || '.'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
}

interface Case {
  input: string;
  output: string;
  config: Json;
  changed: boolean[];
  generated: number;
  tailRewritten: boolean;
}

test('block, flow and JSON items with anchors, merge keys and tags: untouched items keep their bytes, changed ones mean input plus additions, runs are idempotent, go-yaml and PyYAML read the output', (t) => {
  const cases: Case[] = [];
  fc.assert(
    fc.property(itemsArbitrary, gitCacheConfig, fc.boolean(), (generated, config, endsWithBlockScalar) => {
      const input = inputOf(generated, config, endsWithBlockScalar);
      const outcome = runFunction(input);
      if (outcome.exitCode !== 0) throw new Error(`exit ${outcome.exitCode}: ${outcome.stderr.join('; ')}\n${input}`);
      const before = itemsOf(input);
      const after = itemsOf(outcome.stdout);
      const reference = injectedData(
        before.map((item) => item.value),
        config,
      );
      const expected = reference.items;
      if (after.length !== before.length + reference.generated.length) throw new Error(`${after.length} items out, expected ${before.length} + ${reference.generated.length} generated`);
      const changed = before.map((item, index) => !isDeepStrictEqual(item.value, expected[index]));
      // Generated items follow the tail Secret whose `|` scalar ended the input without a line break: its value
      // stays "abc" only as `|-` (kyaml and PyYAML read both so; yaml, the reader here, reads the input as "abc\n").
      const tailRewritten = endsWithBlockScalar && reference.generated.length > 0;
      for (let index = 0; index < before.length; index++) {
        if (tailRewritten && index === before.length - 1) {
          if (after[index]?.text.replace(/\n$/, '') !== before[index]?.text.replace('key: |\n', 'key: |-\n')) throw new Error(`tail item:\n${after[index]?.text}`);
          continue;
        }
        if (!changed[index] && after[index]?.text !== before[index]?.text) throw new Error(`untouched item ${index} changed:\n${before[index]?.text}\n---\n${after[index]?.text}`);
        if (!isDeepStrictEqual(after[index]?.value, expected[index])) throw new Error(`item ${index} does not mean input plus additions:\n${input}\n=====\n${outcome.stdout}`);
      }
      reference.generated.forEach((resource, index) => {
        const difference = firstDifference(asJson(after[before.length + index]?.value), resource);
        if (difference) throw new Error(`generated item ${index}: ${difference}`);
      });
      if (runFunction(outcome.stdout).stdout !== outcome.stdout) throw new Error(`second run differs:\n${outcome.stdout}`);
      cases.push({ input, output: outcome.stdout, config, changed, generated: reference.generated.length, tailRewritten });
      return true;
    }),
    { numRuns: NUM_RUNS },
  );
  t.true(cases.some((entry) => entry.changed.some(Boolean)) && cases.some((entry) => entry.changed.some((changed) => !changed)), 'both changed and untouched items were generated');

  const work = mkdtempSync(join(tmpdir(), 'gc-wire-properties-'));
  let unreadableInputs = 0;
  // Changed items whose input a YAML 1.1 reader reads differently (`app: on` is true there): not compared.
  let ambiguousChanged = 0;
  try {
    // PyYAML (YAML 1.1, merge keys) reads every input and output: one process for all cases.
    cases.forEach((entry, index) => {
      writeFileSync(join(work, `${index}-in.yaml`), entry.input);
      writeFileSync(join(work, `${index}-out.yaml`), entry.output);
    });
    const script = `import json, sys, yaml, glob, os
out = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], '*.yaml'))):
    with open(path, 'rb') as f:
        try:
            out[os.path.basename(path)] = yaml.safe_load(f)
        except yaml.YAMLError as error:
            out[os.path.basename(path)] = {'error': str(error)}
json.dump(out, sys.stdout, default=str)`;
    const pyyaml = JSON.parse(execFileSync('python3', ['-c', script, work], { maxBuffer: 1 << 28 }).toString()) as Record<string, { items: unknown[] }>;
    cases.forEach((entry, index) => {
      // PyYAML reads a plain `<<` anywhere as a merge key (the generator may write `value: <<`, valid YAML 1.2):
      // an input it cannot read says nothing about the output.
      if ((pyyaml[`${index}-in.yaml`] as { error?: string } | undefined)?.error) {
        unreadableInputs++;
        return;
      }
      const error = (pyyaml[`${index}-out.yaml`] as { error?: string } | undefined)?.error;
      if (error) {
        const line = Number(/line (\d+)/.exec(error)?.[1] ?? 1);
        t.fail(`PyYAML reads case ${index}'s input but not its output: ${error}\nnear:\n${entry.output.split('\n').slice(Math.max(0, line - 12), line + 3).join('\n')}`);
        return;
      }
      const input = pyyaml[`${index}-in.yaml`]?.items ?? [];
      const output = pyyaml[`${index}-out.yaml`]?.items ?? [];
      const yaml12 = itemsOf(entry.input).map((item) => asJson(item.value));
      const expected = injectedData(yaml12, entry.config).items.map(asJson);
      t.is(output.length, input.length + entry.generated);
      input.forEach((item, position) => {
        if (!entry.changed[position]) {
          t.deepEqual(output[position], item, `case ${index}, untouched item ${position} as PyYAML reads it`);
        } else if (isDeepStrictEqual(item, yaml12[position])) {
          // An input item both YAML versions read alike: PyYAML must read the additions as written, too.
          t.deepEqual(output[position], expected[position], `case ${index}, changed item ${position} as PyYAML reads it`);
        } else ambiguousChanged++;
      });
    });

    // go-yaml: kustomize's kyaml reads each output (the whole ResourceList as one resource) and the input; the
    // untouched items print the same, and what it prints of the output means what we read.
    const kustomize = findTool('kustomize') as string;
    cases.forEach((entry, index) => {
      const printed: Record<'in' | 'out', string> = { in: '', out: '' };
      for (const side of ['in', 'out'] as const) {
        const dir = join(work, `cat-${index}-${side}`);
        mkdirSync(dir);
        writeFileSync(join(dir, 'resource-list.yaml'), side === 'in' ? entry.input : entry.output);
        printed[side] = execFileSync(kustomize, ['cfg', 'cat', dir], { maxBuffer: 1 << 26 }).toString();
      }
      const catIn = itemsOf(printed.in);
      const catOut = itemsOf(printed.out);
      t.is(catOut.length, catIn.length + entry.generated);
      const ours = itemsOf(entry.output);
      catOut.forEach((item, position) => {
        // Untouched items are compared as kyaml prints them, below (yaml, our reader here, reads a `|` scalar
        // that ends the input without a line break differently from kyaml and the spec).
        if (!entry.changed[position]) return;
        const difference = firstDifference(item.value, ours[position]?.value);
        t.is(difference, undefined, `case ${index}, item ${position}: kyaml reads the output as a YAML 1.2 reader does\n${catOut[position]?.text}\n=====\n${ours[position]?.text}`);
      });
      entry.changed.forEach((changed, position) => {
        if (!changed) t.is(catOut[position]?.text, catIn[position]?.text, `case ${index}, untouched item ${position} as kustomize cfg cat prints it`);
      });
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  t.log(`${cases.length} generated ResourceLists, ${cases.reduce((sum, entry) => sum + entry.changed.length, 0)} items; PyYAML could not read ${unreadableInputs} inputs and read ${ambiguousChanged} changed input items differently from YAML 1.2`);
});
