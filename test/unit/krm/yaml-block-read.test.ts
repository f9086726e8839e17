/**
 * The direct block-YAML reader (src/krm/yaml-block-read.ts) against yaml's Lexer, Parser and Composer: whatever
 * it accepts, yaml reads without error into the same nodes (class, value, style, source, range, entries) and
 * the same number of tokens; whatever yaml refuses, it declines. Checked on hand-picked shapes (comments
 * where yaml's parser attaches them differently, empty values, block scalars), on generated texts in and
 * around the subset (valid or not), and on the repository's own manifests and the benchmark input.
 */
import test from 'ava';
import fc from 'fast-check';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { generateBenchInput } from '../../../bench/fn/generate.js';
import { DEFAULT_READ_LIMITS } from '../../../src/krm/limits.js';
import { readBlockYaml } from '../../../src/krm/yaml-block-read.js';
import { parseStream } from '../../../src/krm/yaml-read.js';
import { REPO_ROOT } from '../../support/tools.js';
import { checkBlockRead } from '../../support/yaml-trees.js';

function sameAsYaml(t: import('ava').ExecutionContext, ...texts: string[]): void {
  for (const text of texts) {
    const result = checkBlockRead(text);
    t.true(result.accepted, `declined: ${JSON.stringify(text)}`);
    if (result.accepted) t.is(result.difference, undefined, JSON.stringify(text));
  }
}

function declined(t: import('ava').ExecutionContext, ...texts: string[]): void {
  for (const text of texts) t.is(readBlockYaml(text, DEFAULT_READ_LIMITS.maxDepth), undefined, JSON.stringify(text));
}

test('block mappings and sequences in both layouts, scalars in every one-line style, flow collections on one line', (t) => {
  sameAsYaml(
    t,
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n',
    'items:\n- a: 1\n  b: "two"\n- c\n-   d: \'it\'\'s\'\n',
    'items:\n  - a: 1\n    b:\n      - x\n      - y\n  -\n    c: 3\n',
    'a: "tab\\there \\"q\\" \\u00e9 \\x41 \\U0001F600 \\\\ \\/ \\N"\nb: \'\'\nc: ""\nd: x:y\ne: a#b\nf: http://h:1/p?q=1#f\n',
    '"quoted key": 1\n\'single\': 2\n-dash: 3\n?q: 4\n:c: 5\na b c: 6\n<<: 7\n',
    'a: {}\nb: []\nc:\n- {}\n- []   # empty\n',
    'args: ["--port", "8080" , on ]\nlabels: {app: web, "tier": db,  empty: }\nnested: [[1, 2], {x: [y]}, {"a":1}, [ ]]\nempty: {k:  , q: 1, e:,f:}\n',
    'a: 1\nb:\nc: 3\nd:   \n',
    'a: 1',
    'a:\n  b:',
  );
});

test('comments and blank lines: trailing, between entries, deeper than their collection, after the last entry', (t) => {
  sameAsYaml(
    t,
    '# head\n\na: 1 # one\n# between\nb: 2\n',
    'a:\n  b: 1\n  # owned by the inner mapping\nc: 2\n',
    'a:\n  b: 1\n# belongs to c\nc: 2\n',
    'a:\n  b: 1\n    # deeper: part of the value 1\nc: 2\n',
    'a:\n  b: 1\n\n    # deeper after a blank line\n\n  # then at the column\n\nc: 2\n',
    'a:\n- b: 1\n  # c\n- d\n  # e\n\n',
    'a:\n  b:\n  - 1\n  # t\n  c: 2\n',
    'a:\n  # before the nested mapping\n      # deeper\n  b: 1\n',
    'list:\n  - x\n      # deeper than the list\n  - y\n',
    'a:\n  b: 1\n  # last\n',
    'a: 1\n\n\n# end\n\n',
  );
});

test('literal and folded block scalars with every chomping, blank and more-indented lines, at the end of input', (t) => {
  sameAsYaml(
    t,
    'a: |\n  line 1\n  line 2\nb: x\n',
    'a: |-\n  x\n\n\n  y\n\n\nb: >\n  f\n  g\n\n  h\nc: |+\n  k\n\n',
    'a: >\n  one\n    more indented\n  two\n\n\n  three\nb: 1\n',
    'a: >-\n\n\n  after empty lines\n',
    'a: | # comment\n    deep\n      deeper\n',
    'script: |\n  #!/bin/sh\n  echo "# not a comment"\n',
    'a:\n  - |\n    in a list\n  - b: |+\n      kept\n\n',
    'a: |\n  no final line break',
    'a: |+\n  kept at the end\n\n\n',
  );
});

test('streams: documents after --- lines, empty and comment-only documents, comments between documents', (t) => {
  sameAsYaml(
    t,
    '---\n# Source: chart/a.yaml\napiVersion: v1\nkind: A\n# trailing\n---\n# Source: chart/empty.yaml\n---\n# Source: chart/b.yaml\nkind: B\n\n',
    'kind: A\n---\nkind: B\n---   \nkind: C\n---\n',
    '---\n---\n',
    '# before\n---\na:\n  b:\n---\nc: 1',
    'a:\n  b: 1\n  # owned by b\'s mapping\n---\n',
    'a: |\n  x\n---\nb: 2\n---',
  );
});

test('outside the subset, or not valid YAML: declined, so that yaml reads it (and reports its errors)', (t) => {
  declined(
    t,
    'a: &x 1\nb: *x\n',
    'a: !!str 1\n',
    'a: 1\n--- # comment on the marker\nb: 2\n',
    'a: 1\n...\n',
    '%YAML 1.2\n---\na: 1\n',
    'a: [1,\n  2]\n',
    'a: [x: 1]\n',
    'a: {b}\n',
    'a: [x,,y]\n',
    'a: [-, 2]\n',
    'a: [?]\n',
    'a: {k: -}\n',
    'a: "multi\n  line"\n',
    'a: plain\n  continued\n',
    'a:\n  value on its own line\n',
    '? explicit\n: key\n',
    'a:\tb\n',
    'a: 1\r\nb: 2\r\n',
    '\uFEFFa: 1\n',
    'a: b: c\n',
    'a: 1\n  b: 2\n',
    'a:\n  b: 1\n c: 2\n',
    'a: "unclosed\n',
    'a: "bad \\q escape"\n',
    'a: |2\n   x\n',
    'a: | text after the header\n  x\n',
    'a: |\n  x\n   \n',
    'a: # comment\nb: 1\n',
    'list:\n-\n- x\n',
    'key : value\n',
    '- - a\n',
    '  indented: root\n',
    '# only a comment\n',
    '',
    `${'k'.repeat(1100)}: v\n`,
  );
});

/**
 * Keys and values: mostly what the reader takes, some it declines (anchors, tags, flow content, indicators),
 * some that are not valid YAML at all.
 */
const COMMON_KEYS = ['a', 'key', 'app.kubernetes.io/name', 'a b', 'a:b', 'a#b', '-x', '?x', ':x', '<<', '"q"', '"q\\"x"', "'s''t'", '"\\u00e9"', 'ä'];
const ODD_KEYS = ['a #b', '- x', 'x:', '"\\q"', '"open', '&an a', '!t a', '*al', '[a]', '{a: 1}', '%a', '@a', ',a', 'a ', '---', '...'];
const COMMON_SCALARS = ['v', 'on', '0755', '12:30', '~', 'null', 'a b', 'x:y', 'a#b', '-1', '"dq"', '"d\\"q \\n \\t"', "'sq'", "'it''s'", '""', "''", '{}', '[]', 'trailing   ', 'é ☃', 'http://h/p#f', '[a, "b" , c ]', '{k: v, "q":1, e: }', '[[1, 2], {x: [y]}]', '[ ]', '[a,]'];
const ODD_SCALARS = ['x: y', 'x:', 'a #b', '- x', '-', '?', ':', '"\\x4"', '"bad\\q"', "'open", '[a: b]', '{a}', '[x,,y]', '[x', '{k : v}', '["q":1]', '[a #c]', '[-, 2]', '[?]', '{k: -}', '[a, :]', '*x', '&x v', '!!str 1', '|x', '@at', '`bt', ',c', '%p'];
const BLOCK_HEADERS = ['|', '|-', '|+', '>', '>-', '>+', '| # c', '|2', '|#c', '>x'];
const BLOCK_LINES = ['text', 'text', '  more indented', '', '#not a comment', 'x: y', '- z', '   ', ' less?'];
const pick = (common: readonly string[], odd: readonly string[]) => fc.oneof({ arbitrary: fc.constantFrom(...common), weight: 12 }, { arbitrary: fc.constantFrom(...odd), weight: 1 });
const KEY = pick(COMMON_KEYS, ODD_KEYS);

/** Flow collections on one line, spaces and separators varied: `[a , "b",]`, `{k:  , "q":1, e: [x]}`. */
const SPACES = fc.constantFrom('', '', ' ', '  ');
const FLOW_SCALARS = ['a', 'b c', '-1', 'x:y', 'a#b', '"q"', '"q:"', "'s'", '""', '-', '?', ':', 'a:', '#c', '*x', '&x', '!t'];
const flowText: fc.Arbitrary<string> = fc.letrec<{ flow: string; entry: string }>((tie) => ({
  entry: fc.oneof({ depthSize: 'small', maxDepth: 3 }, pick(FLOW_SCALARS.slice(0, 10), FLOW_SCALARS.slice(10)), tie('flow')),
  flow: fc.oneof(
    fc
      .tuple(SPACES, fc.array(fc.tuple(tie('entry'), SPACES, SPACES), { maxLength: 3 }), fc.boolean(), SPACES)
      .map(([open, entries, trailingComma, close]) => {
        const body = entries.map(([entry, before, after], index) => `${index > 0 ? after : ''}${entry}${before}`).join(',');
        return `[${open}${body}${trailingComma && entries.length > 0 ? ',' : ''}${close}]`;
      }),
    fc
      .tuple(SPACES, fc.array(fc.tuple(pick(FLOW_SCALARS.slice(0, 7), FLOW_SCALARS.slice(7)), fc.constantFrom(':', ': ', ' :'), fc.option(tie('entry')), SPACES), { maxLength: 3 }), fc.boolean(), SPACES)
      .map(([open, pairs, trailingComma, close]) => {
        const body = pairs.map(([key, colon, value, after]) => `${key}${colon}${value ?? ''}${after}`).join(', ');
        return `{${open}${body}${trailingComma && pairs.length > 0 ? ',' : ''}${close}}`;
      }),
  ),
})).flow;

const SCALAR = fc.oneof({ arbitrary: pick(COMMON_SCALARS, ODD_SCALARS), weight: 5 }, { arbitrary: flowText, weight: 1 });
const BLOCK_HEADER = pick(BLOCK_HEADERS.slice(0, 7), BLOCK_HEADERS.slice(7));
const BLOCK_LINE = pick(BLOCK_LINES.slice(0, 7), BLOCK_LINES.slice(7));

interface Layout {
  step: number;
  dashSpaces: number;
  sameColumnLists: boolean;
  compact: boolean;
}

type Tree = { map: [string, Tree][] } | { seq: Tree[] } | { scalar: string } | { block: [string, string[]] };

const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
  node: fc.oneof(
    { maxDepth: 4, depthIdentifier: 'tree' },
    { arbitrary: SCALAR.map((scalar): Tree => ({ scalar })), weight: 4 },
    { arbitrary: fc.tuple(BLOCK_HEADER, fc.array(BLOCK_LINE, { minLength: 1, maxLength: 4 })).map((block): Tree => ({ block })), weight: 1 },
    { arbitrary: fc.array(fc.tuple(KEY, tie('node')), { minLength: 1, maxLength: 4 }).map((map): Tree => ({ map })), weight: 2 },
    { arbitrary: fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((seq): Tree => ({ seq })), weight: 2 },
  ),
})).node;

/** Lines of `node` as the value after `key:` or `-` at column `column` (`inline`: the text after the indicator). */
function render(node: Tree, column: number, layout: Layout, random: () => number): { inline: string; lines: string[] } {
  if ('scalar' in node) return { inline: ` ${node.scalar}`, lines: [] };
  if ('block' in node) {
    const [header, body] = node.block;
    return { inline: ` ${header}`, lines: body.map((line) => (line === '' ? '' : ' '.repeat(column + layout.step) + line)) };
  }
  const inner = column + layout.step;
  if ('seq' in node) {
    const dashColumn = layout.sameColumnLists && random() < 0.7 ? column : inner;
    return { inline: '', lines: node.seq.flatMap((item) => entry(`${' '.repeat(dashColumn)}-`, item, dashColumn, layout, random, true)) };
  }
  return { inline: '', lines: node.map.flatMap(([key, value]) => entry(`${' '.repeat(inner)}${key}:`, value, inner, layout, random, false)) };
}

function entry(head: string, value: Tree, column: number, layout: Layout, random: () => number, dash: boolean): string[] {
  if (dash && 'map' in value && layout.compact) {
    // `- key: value` with the rest of the mapping at the key's column.
    const keyColumn = column + 1 + layout.dashSpaces;
    const pairs = value.map.flatMap(([key, item]) => entry(`${' '.repeat(keyColumn)}${key}:`, item, keyColumn, layout, random, false));
    const first = pairs[0] ?? '';
    return [`${head}${' '.repeat(layout.dashSpaces)}${first.slice(keyColumn)}`, ...pairs.slice(1)];
  }
  const { inline, lines } = render(value, column, layout, random);
  const comment = random() < 0.15 ? ' # trailing' : '';
  const gap: string[] = [];
  if (random() < 0.3) gap.push(random() < 0.5 ? '' : ' '.repeat(Math.floor(random() * 4)));
  if (random() < 0.3) gap.push(`${' '.repeat(Math.floor(random() * (column + 6)))}# comment`);
  return [`${head}${inline}${comment}`, ...lines, ...gap];
}

const blockYamlText = fc
  .record({
    root: fc.array(fc.tuple(KEY, tree), { minLength: 1, maxLength: 4 }),
    layout: fc.record({ step: fc.integer({ min: 1, max: 4 }), dashSpaces: fc.integer({ min: 1, max: 3 }), sameColumnLists: fc.boolean(), compact: fc.boolean() }),
    seed: fc.integer(),
    prefix: fc.constantFrom('', '', '', '', '# head\n\n', '\n', '---\n'),
    finalLineBreak: fc.boolean(),
    // Now and then one character inserted or replaced anywhere.
    mutation: fc.oneof({ arbitrary: fc.constant(undefined), weight: 4 }, { arbitrary: fc.tuple(fc.nat(), fc.constantFrom(' ', '\n', ':', '-', '#', '"', "'", '|', '>', '{', '[', '\t', ''), fc.boolean()), weight: 1 }),
  })
  .map(({ root, layout, seed, prefix, finalLineBreak, mutation }) => {
    let state = seed;
    const random = () => {
      state = (Math.imul(state, 1103515245) + 12345) | 0;
      return ((state >>> 8) & 0xffff) / 0x10000;
    };
    // Now and then a document marker between two entries of the root.
    const lines = root.flatMap(([key, value], index) => [...(index > 0 && random() < 0.2 ? ['---'] : []), ...entry(`${key}:`, value, 0, layout, random, false)]);
    let text = prefix + lines.join('\n') + (finalLineBreak ? '\n' : '');
    if (mutation) {
      const [position, character, replace] = mutation;
      const at = position % (text.length + 1);
      text = text.slice(0, at) + character + text.slice(replace ? at + 1 : at);
    }
    return text;
  });

test('generated texts in and around the subset: whatever the reader accepts, yaml reads into the same nodes and tokens', (t) => {
  let accepted = 0;
  let runs = 0;
  fc.assert(
    fc.property(blockYamlText, (text) => {
      runs++;
      const result = checkBlockRead(text);
      if (!result.accepted) return true;
      accepted++;
      if (result.difference !== undefined) throw new Error(`${result.difference}\n${JSON.stringify(text)}`);
      return true;
    }),
    { numRuns: Number(process.env.BLOCK_READ_RUNS ?? 3000) },
  );
  t.log(`${accepted} of ${runs} generated texts accepted by the direct reader, all read as yaml reads them`);
  // The generator must exercise the reader, not only its declining.
  t.true(accepted > runs / 5);
});

function yamlFiles(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' || name.startsWith('.') && name !== '.expected' ? [] : yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

test("the repository's manifests, examples and expected outputs, and the benchmark input: read as yaml reads them", (t) => {
  const files = ['examples', 'integrations', 'monitoring', 'function'].flatMap((directory) => yamlFiles(join(REPO_ROOT, directory)));
  t.true(files.length > 20);
  let accepted = 0;
  for (const file of files) {
    const result = checkBlockRead(readFileSync(file, 'utf8'));
    if (result.accepted) {
      accepted++;
      t.is(result.difference, undefined, file);
    }
  }
  t.log(`${accepted} of ${files.length} files read directly`);
  const bench = generateBenchInput(200, 100).resourceList;
  sameAsYaml(t, bench);
});

test('limits hold as yaml counts them: too many tokens or too deep nesting goes to yaml, which refuses it', (t) => {
  const text = generateBenchInput(20, 10).resourceList;
  const direct = readBlockYaml(text, DEFAULT_READ_LIMITS.maxDepth);
  t.truthy(direct);
  const limits = { ...DEFAULT_READ_LIMITS, maxTokens: (direct?.tokens ?? 0) - 1 };
  t.throws(() => parseStream(text, limits), { message: /more than \d+ YAML tokens/ });
  t.notThrows(() => parseStream(text, { ...DEFAULT_READ_LIMITS, maxTokens: direct?.tokens ?? 0 }));
  t.is(readBlockYaml(text, DEFAULT_READ_LIMITS.maxDepth, (direct?.tokens ?? 0) - 1), undefined);
  t.truthy(readBlockYaml(text, DEFAULT_READ_LIMITS.maxDepth, direct?.tokens ?? 0));
  const deep = `${Array.from({ length: 40 }, (_, level) => `${' '.repeat(level)}k:`).join('\n')} v\n`;
  t.is(readBlockYaml(deep, 10), undefined);
  t.throws(() => parseStream(deep, { ...DEFAULT_READ_LIMITS, maxDepth: 20 }), { message: /nesting deeper than 20 levels/ });
  t.notThrows(() => parseStream(deep, { ...DEFAULT_READ_LIMITS, maxDepth: 100 }));
});
