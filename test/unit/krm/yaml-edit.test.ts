/**
 * Editing in place (src/krm/yaml-edit.ts): what is not changed keeps its bytes, changes are written in the
 * style of the collection they go into (block at its indentation, flow and JSON inside the brackets), what the
 * function writes stays a string for YAML 1.1 and 1.2 readers, and values read through aliases and merge keys
 * are written out where they are changed so that the anchored originals keep their meaning.
 */
import test from 'ava';
import { parse, type Node, type YAMLMap } from 'yaml';
import { DEFAULT_READ_LIMITS } from '../../../src/krm/limits.js';
import { EditError, SourceDocument, TextEdits, type MapHandle } from '../../../src/krm/yaml-edit.js';
import { parseStream } from '../../../src/krm/yaml-read.js';
import { TRICKY_STRINGS, readAsYaml11, readAsYaml12, readStreamAsYaml12 } from '../../support/yaml-readers.js';

/** Applies `change` to the first document's root mapping and returns the edited text. */
function edit(text: string, change: (root: MapHandle) => void): string {
  const { docs, index } = parseStream(text, DEFAULT_READ_LIMITS);
  const source = new SourceDocument(
    text,
    index,
    docs.map((doc) => doc.contents as Node | null),
  );
  change(source.mapHandle(docs[0]?.contents as YAMLMap));
  const edits = new TextEdits(text);
  source.collect(edits);
  return edits.apply();
}

test('without changes every byte stays: tags, anchors, directives, comments, odd spacing, a block scalar at the end without a line break', (t) => {
  const text = '%YAML 1.1\n---\n# head\na: !!int "abc"   # odd\nb: &x {k: v}\nc: *x\nd: on\ne: 0644\nf:\n  - one\n  -   two\ng: !!binary aGVsbG8=\nh: |\n  abc';
  t.is(edit(text, () => undefined), text);
});

test('a key added to a block mapping goes at its end, at its indentation, quoted as YAML 1.1 needs', (t) => {
  const text = 'metadata:\n    name: x # keep\n    labels:\n        a: b\nspec: {}\n';
  const out = edit(text, (root) => root.map('metadata')?.map('labels')?.set('added', 'on'));
  t.is(out, 'metadata:\n    name: x # keep\n    labels:\n        a: b\n        added: "on"\nspec: {}\n');
});

test('a key inserted before another goes above the comment lines that belong to that key', (t) => {
  const text = 'spec:\n  # the app\n  containers:\n  - name: app\n';
  const out = edit(text, (root) => root.map('spec')?.seq('initContainers', true, 'containers')?.push({ name: 'init' }));
  t.is(out, 'spec:\n  initContainers:\n  - name: init\n  # the app\n  containers:\n  - name: app\n');
});

test('block sequences: items added first and last at the dash column of the list, kyaml or indented style', (t) => {
  for (const [text, expected] of [
    ['list:\n- a\n- b\nnext: 1\n', 'list:\n- first\n- a\n- b\n- last\nnext: 1\n'],
    ['list:\n  - a\n  - b\nnext: 1\n', 'list:\n  - first\n  - a\n  - b\n  - last\nnext: 1\n'],
  ] as const) {
    t.is(
      edit(text, (root) => {
        root.seq('list')?.unshift('first');
        root.seq('list')?.push('last');
      }),
      expected,
    );
  }
});

test('new nested lists follow the indentation style of the input', (t) => {
  t.is(
    edit('a:\n  - x\nm: {}\nb:\n  c: 1\n', (root) => root.map('b')?.set('list', ['z'])),
    'a:\n  - x\nm: {}\nb:\n  c: 1\n  list:\n    - z\n',
  );
});

test('removing items keeps their neighbours and comments; a list emptied in place becomes []', (t) => {
  const text = 'list:\n- a # A\n# about b\n- b\n- c\nnext: 1\n';
  t.is(
    edit(text, (root) => root.seq('list')?.removeWhere((value) => value === 'b')),
    'list:\n- a # A\n# about b\n- c\nnext: 1\n',
  );
  t.is(
    edit(text, (root) => root.seq('list')?.removeWhere(() => true)),
    'list: []\nnext: 1\n',
  );
  t.is(
    edit(text, (root) => {
      root.seq('list')?.removeWhere(() => true);
      root.delete('list');
    }),
    'next: 1\n',
  );
});

test('flow collections get JSON entries inside their brackets; a second identical edit gives the same bytes', (t) => {
  const text = 'spec: {containers: [{name: app, image: x}]}\n';
  const change = (root: MapHandle) => {
    const spec = root.map('spec') as MapHandle;
    spec.seq('containers')?.removeWhere((value) => (value as { name: string }).name === 'cache');
    spec.seq('containers')?.unshift({ name: 'cache', args: ['on', '0755'] });
    spec.seq('containers')?.entries()[1]?.map()?.seq('env', true)?.push({ name: 'A', value: 'yes' });
  };
  const once = edit(text, change);
  t.is(once, 'spec: {containers: [{"name": "cache", "args": ["on", "0755"]}, {name: app, image: x, "env": [{"name": "A", "value": "yes"}]}]}\n');
  t.is(
    edit(once, (root) => {
      const spec = root.map('spec') as MapHandle;
      spec.seq('containers')?.removeWhere((value) => (value as { name: string }).name === 'cache');
      spec.seq('containers')?.unshift({ name: 'cache', args: ['on', '0755'] });
    }),
    once,
  );
  t.deepEqual(readAsYaml11(once), readAsYaml12(once));
});

test('pretty JSON stays pretty JSON: new entries one per line at the indentation of their siblings', (t) => {
  const text = JSON.stringify({ spec: { volumes: [{ name: 'a' }], labels: {} } }, null, 4);
  const out = edit(text, (root) => {
    root.map('spec')?.seq('volumes')?.push({ name: 'b', emptyDir: {} });
    root.map('spec')?.map('labels')?.set('x', 'y');
  });
  t.deepEqual(JSON.parse(out), { spec: { volumes: [{ name: 'a' }, { name: 'b', emptyDir: {} }], labels: { x: 'y' } } });
  t.true(out.includes('\n            {\n                "name": "b",\n                "emptyDir": {}\n            }\n'), out);
});

for (const value of TRICKY_STRINGS) {
  test(`the string ${JSON.stringify(value)} the function writes stays a string for YAML 1.1 and 1.2 readers, in block and flow style`, (t) => {
    for (const text of ['m:\n  k: v\n', 'm: {k: v}\n']) {
      const out = edit(text, (root) => {
        root.map('m')?.set('written', value);
        root.map('m')?.set('list', [value]);
      });
      const expected = { m: { k: 'v', written: value, list: [value] } };
      t.deepEqual(readAsYaml11(out), expected, out);
      t.deepEqual(readAsYaml12(out), expected, out);
    }
  });
}

test('scalars the function does not write keep their style: plain stays plain, quoted stays quoted', (t) => {
  const text = 'data:\n  enabled: on\n  quoted: "on"\n  mode: 0644\n';
  t.is(
    edit(text, (root) => root.map('data')?.set('new', 'x')),
    'data:\n  enabled: on\n  quoted: "on"\n  mode: 0644\n  new: x\n',
  );
});

test('text appended after a block scalar that ends the input without a line break keeps the scalar value', (t) => {
  const out = edit('a:\n  s: |\n    abc', (root) => root.set('b', 1));
  t.is(out, 'a:\n  s: |-\n    abc\nb: 1\n');
  t.deepEqual(readAsYaml12(out), { a: { s: 'abc' }, b: 1 });
});

test('a changed anchored node: its aliases elsewhere are written out with the original value', (t) => {
  const text = 'a: &shared\n  list:\n  - x\nb: *shared\nc: [*shared]\n';
  const out = edit(text, (root) => root.map('a')?.seq('list')?.push('z'));
  t.deepEqual(readAsYaml12(out), { a: { list: ['x', 'z'] }, b: { list: ['x'] }, c: [{ list: ['x'] }] });
  t.true(out.startsWith('a: &shared\n  list:\n  - x\n  - z\n'), out);
});

test('a value read through an alias or a merge key is written out where it is changed; untouched aliases stay', (t) => {
  const text = 'base: &b {env: [{name: A}]}\nthrough: *b\nmerged:\n  <<: *b\n  name: m\nuntouched: *b\n';
  const out = edit(text, (root) => {
    root.map('through')?.seq('env')?.push({ name: 'B' });
    root.map('merged')?.seq('env')?.push({ name: 'C' });
  });
  t.deepEqual(parse(out, { merge: true }), {
    base: { env: [{ name: 'A' }] },
    through: { env: [{ name: 'A' }, { name: 'B' }] },
    merged: { name: 'm', env: [{ name: 'A' }, { name: 'C' }] },
    untouched: { env: [{ name: 'A' }] },
  });
  t.true(out.includes('untouched: *b\n'));
  t.true(out.includes('  <<: *b\n'), 'the merge key stays; the explicit key overrides it');
});

test('a field of the wrong type is an EditError naming its path, never replaced', (t) => {
  for (const [text, expected] of [
    ['spec:\n  containers: {name: a}\n', /expected a list at spec.containers, found a mapping/],
    ['spec:\n  containers: "x"\n', /expected a list at spec.containers, found a string/],
    ['spec: 3\n', /expected a mapping at spec, found a number/],
  ] as const) {
    const error = t.throws(() => edit(text, (root) => root.map('spec', true)?.seq('containers', true)?.push({ name: 'c' })), { instanceOf: EditError });
    t.regex(error?.message ?? '', expected);
  }
});

test('a multi-document stream: edits land in their own document; markers, comment-only documents and directives survive', (t) => {
  const text = '%YAML 1.1\n---\n# Source: a\nkind: A\n---\n# Source: only a comment\n---\nkind: B\n...\n';
  const { docs, index } = parseStream(text, DEFAULT_READ_LIMITS);
  const source = new SourceDocument(
    text,
    index,
    docs.map((doc) => doc.contents as Node | null),
  );
  source.mapHandle(docs[2]?.contents as YAMLMap).set('added', true);
  const edits = new TextEdits(text);
  source.collect(edits);
  const out = edits.apply();
  t.is(out, '%YAML 1.1\n---\n# Source: a\nkind: A\n---\n# Source: only a comment\n---\nkind: B\nadded: true\n...\n');
  t.deepEqual(readStreamAsYaml12(out.replace('%YAML 1.1\n', '')), [{ kind: 'A' }, null, { kind: 'B', added: true }]);
});
