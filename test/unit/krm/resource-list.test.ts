import test from 'ava';
import { WireFormatError, printInputWithResults, printResultsOnly, readConfigFile, readInput, type ItemBatch } from '../../../src/krm/resource-list.js';
import { YamlSyntaxError } from '../../../src/krm/yaml-read.js';
import { formatResult, hasErrors, type KrmResult } from '../../../src/krm/results.js';
import { readAsYaml12, readStreamAsYaml12 } from '../../support/yaml-readers.js';

const readResourceList = (text: string): ItemBatch => readInput(text, 'resource-list').batch;
const readResourceStream = (text: string): ItemBatch => {
  const { batch, plainStream } = readInput(text, 'resource-list-or-stream');
  if (!plainStream) throw new Error('read as a ResourceList');
  return batch;
};

const ITEMS = `items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: a # first
    annotations:
      config.kubernetes.io/index: '0'
      internal.config.kubernetes.io/path: 'a.yaml'
      config.k8s.io/id: '1'
      kustomize.config.k8s.io/id: |
        kind: ConfigMap
  data: {"on": "on", mode: 0644}
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: a # duplicate of the first
`;

for (const apiVersion of ['config.kubernetes.io/v1', 'config.kubernetes.io/v1beta1']) {
  test(`a ${apiVersion} ResourceList is read and printed back unchanged when there are no results`, (t) => {
    const text = `apiVersion: ${apiVersion}\nkind: ResourceList\n${ITEMS}functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  data:\n    repoUrl: https://example.com/r.git\n`;
    const batch = readResourceList(text);
    t.is(batch.items.length, 2);
    t.deepEqual(batch.functionConfig, { apiVersion: 'v1', kind: 'ConfigMap', data: { repoUrl: 'https://example.com/r.git' } });
    t.is(batch.print([]), text);
  });
}

test('results are written into the ResourceList, without undefined fields', (t) => {
  const batch = readResourceList(`apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n${ITEMS}`);
  const result: KrmResult = { severity: 'error', message: 'bad', resourceRef: { kind: 'ConfigMap', name: 'a', namespace: undefined }, field: { path: 'data' } };
  const printed = readAsYaml12(batch.print([result])) as { results: unknown[]; items: unknown[] };
  t.deepEqual(printed.results, [{ severity: 'error', message: 'bad', resourceRef: { kind: 'ConfigMap', name: 'a' }, field: { path: 'data' } }]);
  t.is(printed.items.length, 2);
});

test('stale results in the input are dropped when this run has none', (t) => {
  const batch = readResourceList('apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\nresults:\n- severity: info\n  message: old\n');
  t.false(batch.print([]).includes('results'));
});

test('a ResourceList without items has no items', (t) => {
  t.deepEqual(readResourceList('apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n').items, []);
});

for (const [description, text] of [
  ['another kind', 'apiVersion: v1\nkind: List\nitems: []\n'],
  ['another apiVersion', 'apiVersion: config.kubernetes.io/v2\nkind: ResourceList\nitems: []\n'],
  ['a plain resource', 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n'],
  ['a scalar', 'hello\n'],
  ['a list', '- a\n- b\n'],
] as const) {
  test(`${description} is refused as a ResourceList with a one-line reason`, (t) => {
    const error = t.throws(() => readResourceList(text), { instanceOf: WireFormatError });
    t.regex(error?.message ?? '', /ResourceList/);
    t.false(error?.message.includes('\n'));
  });
}

test('items that are not mappings, or items that are not a list, are refused with their index', (t) => {
  const notMap = t.throws(() => readResourceList('apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- {a: 1}\n- just text\n'), { instanceOf: WireFormatError });
  t.regex(notMap?.message ?? '', /items\[1\]/);
  t.throws(() => readResourceList('apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: {a: 1}\n'), { instanceOf: WireFormatError });
});

test('malformed YAML is a YamlSyntaxError with a one-line reason', (t) => {
  const error = t.throws(() => readResourceList('apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: [\n'), { instanceOf: YamlSyntaxError });
  t.false(error?.message.includes('\n'));
});

test('a plain stream keeps order, duplicates and comments, and prints as a stream', (t) => {
  const text = '# first\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n';
  const batch = readResourceStream(text);
  t.deepEqual(
    batch.items.map((item) => (item.data.metadata as { name: string }).name),
    ['b', 'a', 'b'],
  );
  t.is(batch.functionConfig, undefined);
  t.is(batch.print([]), text);
});

test('a plain stream document that is not a mapping is refused with its position', (t) => {
  const error = t.throws(() => readResourceStream('a: 1\n---\n- x\n'), { instanceOf: WireFormatError });
  t.regex(error?.message ?? '', /document 2/);
});

test('a config file must hold exactly one document', (t) => {
  t.deepEqual(readConfigFile('---\nkind: GitCache\n'), { kind: 'GitCache' });
  t.throws(() => readConfigFile('a: 1\n---\nb: 2\n'), { instanceOf: WireFormatError, message: /exactly one/ });
  t.throws(() => readConfigFile(''), { instanceOf: WireFormatError });
});

test('printResultsOnly writes a ResourceList carrying the results and no items (it never claims the input had none)', (t) => {
  t.deepEqual(readAsYaml12(printResultsOnly([{ severity: 'error', message: 'm' }])), {
    apiVersion: 'config.kubernetes.io/v1',
    kind: 'ResourceList',
    results: [{ severity: 'error', message: 'm' }],
  });
});

test('printInputWithResults keeps a readable input byte for byte and only sets its results', (t) => {
  const text = `apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n${ITEMS}results:\n- severity: info\n  message: old\n`;
  const printed = printInputWithResults(text, [{ severity: 'error', message: 'bad' }]);
  t.is(printed, `apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n${ITEMS}results:\n- severity: error\n  message: "bad"\n`);
  t.regex(printInputWithResults('a: [\n', [{ severity: 'error', message: 'bad' }]), /^apiVersion: config.kubernetes.io\/v1\nkind: ResourceList\nresults:/);
});

test('a JSON ResourceList (or one after a BOM) is a ResourceList also when --config allows a plain stream', (t) => {
  const json = JSON.stringify({ apiVersion: 'config.kubernetes.io/v1', kind: 'ResourceList', items: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } }] }, null, 2);
  for (const text of [json, `\uFEFF${json}`, `\uFEFFapiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\n`]) {
    t.false(readInput(text, 'resource-list-or-stream').plainStream);
  }
  t.true(readInput('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n', 'resource-list-or-stream').plainStream);
});

test('several documents on stdin are refused as a ResourceList with the count and the way out', (t) => {
  t.throws(() => readResourceList('apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n---\na: 1\n'), { instanceOf: WireFormatError, message: /2 YAML documents.*--config/ });
  t.throws(() => readResourceList(''), { instanceOf: WireFormatError, message: /empty/ });
});

test('items: null (or ~) is an empty list; results are written after it', (t) => {
  for (const items of ['null', '~', '']) {
    const batch = readResourceList(`apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: ${items}\n`);
    t.deepEqual(batch.items, []);
  }
});

test('the items of a kind: List item are items too, edited where they stand', (t) => {
  const text = 'apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: inner}\n';
  const batch = readResourceList(text);
  t.deepEqual(
    batch.items.map((item) => item.data.kind),
    ['List', 'ConfigMap'],
  );
  batch.items[1]?.edit.map('metadata')?.set('namespace', 'ns');
  t.is(batch.print([]), text.replace('{name: inner}', '{name: inner, "namespace": "ns"}'));
});

test('stale generated items are removed and fresh ones appended, in a ResourceList and in a stream', (t) => {
  const list = readResourceList('apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- {kind: A}\n- {kind: Old}\n- {kind: B}\n');
  list.replaceItems((item) => item.data.kind === 'Old', [{ kind: 'New' }]);
  t.is(list.print([]), 'apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- {kind: A}\n- {kind: B}\n- kind: New\n');
  const stream = readResourceStream('kind: A\n---\nkind: Old\n');
  stream.replaceItems((item) => item.data.kind === 'Old', [{ kind: 'New' }]);
  t.deepEqual(readStreamAsYaml12(stream.print([])), [{ kind: 'A' }, { kind: 'New' }]);
});

test('hasErrors is true only with an error result, and formatResult is one line naming kind, name and field', (t) => {
  t.false(hasErrors([{ severity: 'warning', message: 'w' }, { severity: 'info', message: 'i' }]));
  t.true(hasErrors([{ severity: 'info', message: 'i' }, { severity: 'error', message: 'e' }]));
  t.is(
    formatResult({ severity: 'error', message: 'bad', resourceRef: { kind: 'Deployment', namespace: 'ns', name: 'web' }, field: { path: 'spec.template' } }),
    'error [Deployment ns/web] (spec.template): bad',
  );
  t.is(formatResult({ severity: 'warning', message: 'w' }), 'warning: w');
});
