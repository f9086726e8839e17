// `npm run demo`: runs the built function on the bundled example package examples/sidecar, exactly as kpt
// would hand it over (a ResourceList of the package's resources, each as written in its file, with the
// GitCache as functionConfig), and shows what it injected: the results, and the first injected workload as
// the function printed it (not re-serialized, so quoting and comments are what the function wrote).
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isSeq, parseAllDocuments, parseDocument } from 'yaml';

const root = fileURLToPath(new URL('..', import.meta.url));
const exampleDir = join(root, 'examples', process.argv[2] ?? 'sidecar');
const fn = join(root, 'function', 'inject-git-cache');

/** A document's text as a ResourceList item: `- ` before its first line, two spaces before the others. */
function asItem(text) {
  return text
    .replace(/\n+$/, '')
    .split('\n')
    .map((line, index) => (index === 0 ? `- ${line}` : line === '' ? '' : `  ${line}`))
    .join('\n');
}

const files = readdirSync(exampleDir).filter((name) => /\.ya?ml$/.test(name) && !['Kptfile', 'kustomization.yaml'].includes(name));
let functionConfig;
const items = [];
for (const file of files.sort()) {
  const text = readFileSync(join(exampleDir, file), 'utf8');
  parseAllDocuments(text).forEach((doc, index) => {
    if (!isMap(doc.contents)) return;
    const [start, end] = doc.contents.range;
    const annotations = `config.kubernetes.io/path: ${JSON.stringify(file)}\nconfig.kubernetes.io/index: "${index}"`;
    if (doc.get('kind') === 'GitCache') functionConfig = doc.contents.toJSON();
    // kpt adds the path and index annotations; a document without metadata gets them in a new metadata map.
    const body = text.slice(start, end).replace(/\n?$/, '\n');
    const withAnnotations = doc.hasIn(['metadata', 'annotations'])
      ? body.replace(/^( *)annotations:\n/m, (line, indent) => `${line}${annotations.replace(/^/gm, `${indent}  `)}\n`)
      : doc.has('metadata')
        ? body.replace(/^metadata:\n/m, `metadata:\n  annotations:\n${annotations.replace(/^/gm, '    ')}\n`)
        : `${body}metadata:\n  annotations:\n${annotations.replace(/^/gm, '    ')}\n`;
    items.push(asItem(withAnnotations));
  });
}
const input = `apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n${items.join('\n')}\nfunctionConfig: ${JSON.stringify(functionConfig ?? null)}\n`;
const run = spawnSync(fn, [], { input, encoding: 'utf8' });
if (run.error || run.status !== 0) {
  console.error(run.error?.message ?? run.stderr);
  console.error(run.stdout);
  process.exit(1);
}
const output = parseDocument(run.stdout);
console.log(`inject-git-cache on ${relative(root, exampleDir)} (config: ${functionConfig?.metadata?.name ?? 'none'})\n`);
for (const result of output.toJS().results ?? []) {
  const ref = result.resourceRef ? `${result.resourceRef.kind}/${result.resourceRef.name}` : '';
  console.log(`  ${result.severity.padEnd(7)} ${ref}: ${result.message}`);
}
const outputItems = output.get('items', true);
const injected = isSeq(outputItems) ? outputItems.items.filter((item) => JSON.stringify(item.toJSON()).includes('git-cache.dev/status')) : [];
console.log(`\n${injected.length} workload(s) injected; the first one in full, as the function printed it:\n`);
if (injected[0]) {
  const [start, end] = injected[0].range;
  const lineStart = run.stdout.lastIndexOf('\n', start) + 1;
  const indent = start - lineStart;
  // The item's own lines, dedented from the ResourceList's `- ` to the column it starts at.
  console.log(`${' '.repeat(indent)}${run.stdout.slice(start, end)}`.replace(new RegExp(`^ {${indent}}`, 'gm'), '').trimEnd());
}
