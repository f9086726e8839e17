import test from 'ava';
import { isMap, type YAMLMap } from 'yaml';
import { YamlSyntaxError, newYamlDocument, parseYamlDocument, parseYamlStream, printYamlDocument, printYamlStream } from '../../../src/krm/yaml-io.js';
import { TRICKY_STRINGS, readAsYaml11, readAsYaml12 } from '../../support/yaml-readers.js';

const roundTrip = (text: string): string => printYamlDocument(parseYamlDocument(text));

test('a kyaml-formatted document round-trips byte for byte: comments, key order, flow style, block scalars', (t) => {
  const text = `# head comment
apiVersion: v1 # trailing comment
kind: ConfigMap
metadata:
  name: settings
  labels: {b: "2", a: '1'}
  annotations:
    zeta: z
    alpha: a
    config.kubernetes.io/index: '0'
    internal.config.kubernetes.io/path: 'cm.yaml'
data:
  # a comment before a key
  script: |
    #!/bin/sh
    echo "hi"
  list: [a, b, c]
  empty: ""
  emptyMap: {}
  emptySeq: []
items:
- a
- b # after b
`;
  t.is(roundTrip(text), text);
});

test('a folded block scalar keeps its meaning', (t) => {
  const printed = roundTrip('folded: >-\n  one\n  two\nkept: |\n  a\n  b\n');
  t.deepEqual(readAsYaml12(printed), { folded: 'one two', kept: 'a\nb\n' });
});

test('duplicate keys are kept, not merged or refused', (t) => {
  const text = 'a: 1\nb: 2\na: 3\n';
  t.is(roundTrip(text), text);
});

test('a malformed document throws YamlSyntaxError with a one-line reason that says where', (t) => {
  for (const text of ['a: [1, 2\nb: c\n', 'a: b\n  c: d\n', 'key: "unterminated\n', '\tfoo: bar\n']) {
    const error = t.throws(() => parseYamlDocument(text), { instanceOf: YamlSyntaxError });
    t.false(error?.message.includes('\n'), error?.message);
    t.regex(error?.message ?? '', /at line \d+, column \d+/);
  }
});

test('a malformed document anywhere in a stream throws YamlSyntaxError', (t) => {
  t.throws(() => parseYamlStream('a: 1\n---\nb: [\n'), { instanceOf: YamlSyntaxError });
});

test('a stream keeps order and duplicates and drops empty documents', (t) => {
  const docs = parseYamlStream('---\nname: b\n---\nname: a\n---\n---\nname: b\n');
  t.deepEqual(
    docs.map((doc) => doc.toJS()),
    [{ name: 'b' }, { name: 'a' }, { name: 'b' }],
  );
  t.is(printYamlStream(docs), 'name: b\n---\nname: a\n---\nname: b\n');
});

test('a stream with empty documents as Helm prints them (comment only, trailing ---) reads only the resources', (t) => {
  const docs = parseYamlStream('---\n# Source: chart/templates/empty.yaml\n---\n# Source: chart/templates/cm.yaml\nkind: ConfigMap\n---\n');
  t.deepEqual(
    docs.map((doc) => doc.toJS()),
    [{ kind: 'ConfigMap' }],
  );
});

for (const value of TRICKY_STRINGS) {
  test(`the quoted string ${JSON.stringify(value)} stays a string for YAML 1.1 and 1.2 readers when untouched`, (t) => {
    for (const quoted of [`"${value}"`, `'${value}'`]) {
      const printed = roundTrip(`key: ${quoted}\n`);
      t.is(printed, `key: ${quoted}\n`);
      t.deepEqual(readAsYaml11(printed), { key: value });
      t.deepEqual(readAsYaml12(printed), { key: value });
    }
  });

  test(`the string ${JSON.stringify(value)} is quoted when newly created, for YAML 1.1 and 1.2 readers`, (t) => {
    const doc = parseYamlDocument('metadata:\n  name: x\n');
    (doc.get('metadata') as YAMLMap).set('annotations', doc.createNode({ created: value }));
    doc.set('fresh', value);
    const printed = printYamlDocument(doc);
    t.deepEqual(readAsYaml11(printed), { metadata: { name: 'x', annotations: { created: value } }, fresh: value });
    t.deepEqual(readAsYaml12(printed), { metadata: { name: 'x', annotations: { created: value } }, fresh: value });

    const standalone = printYamlDocument(newYamlDocument({ list: [value] }));
    t.deepEqual(readAsYaml11(standalone), { list: [value] });
    t.deepEqual(readAsYaml12(standalone), { list: [value] });
  });
}

test('a plain scalar that YAML 1.2 reads as a string but YAML 1.1 would retype comes out quoted', (t) => {
  const printed = roundTrip('a: on\nb: yes\nc: 12:30\nd: y\ne: 2001-12-14\n');
  const expected = { a: 'on', b: 'yes', c: '12:30', d: 'y', e: '2001-12-14' };
  t.deepEqual(readAsYaml12(printed), expected);
  t.deepEqual(readAsYaml11(printed), expected);
});

test('numbers keep their text: 0644 stays 0644 (kyaml and YAML 1.1 read it as octal), 1e3, 0x1F, 1.50, +1, 0o17 unchanged', (t) => {
  const text = 'defaultMode: 0644\nexp: 1e3\nhex: 0x1F\nfraction: 1.50\nsigned: +1\noctal: 0o17\nplain: 42\nnegative: -7\nfloat: 0.25\n';
  t.is(roundTrip(text), text);
});

test('a number whose value injection changes is printed from its new value, not its old text', (t) => {
  const doc = parseYamlDocument('spec:\n  fsGroup: 0100\n');
  (doc.get('spec') as YAMLMap).set('fsGroup', 65532);
  t.is(printYamlDocument(doc), 'spec:\n  fsGroup: 65532\n');
});

test('booleans and nulls keep their spelling', (t) => {
  const text = 'a: True\nb: FALSE\nc: ~\nd: null\ne:\n';
  t.is(roundTrip(text), text);
});

test('sequences are not indented under their key (kyaml layout) and long strings are never folded', (t) => {
  const long = 'x'.repeat(300);
  const doc = newYamlDocument({ list: [{ name: 'a' }], long });
  t.is(printYamlDocument(doc), `list:\n- name: a\nlong: ${long}\n`);
  t.true(isMap(doc.contents));
});
