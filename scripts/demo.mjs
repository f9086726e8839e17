// `npm run demo`: runs the built function on the bundled example package examples/sidecar, exactly as kpt
// would hand it over (a ResourceList with the GitCache as functionConfig), and shows what it injected.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parseDocument, stringify } from 'yaml';

const root = fileURLToPath(new URL('..', import.meta.url));
const exampleDir = join(root, 'examples', process.argv[2] ?? 'sidecar');
const fn = join(root, 'function', 'inject-git-cache');

const files = readdirSync(exampleDir).filter((name) => /\.ya?ml$/.test(name) && !['Kptfile', 'kustomization.yaml'].includes(name));
let functionConfig;
const items = [];
for (const file of files.sort()) {
  parseAllDocuments(readFileSync(join(exampleDir, file), 'utf8')).forEach((doc, index) => {
    const resource = doc.toJS();
    if (!resource || typeof resource !== 'object') return;
    if (resource.kind === 'GitCache') functionConfig = resource;
    resource.metadata ??= {};
    resource.metadata.annotations = { ...resource.metadata.annotations, 'config.kubernetes.io/path': file, 'config.kubernetes.io/index': String(index) };
    items.push(resource);
  });
}
const input = stringify({ apiVersion: 'config.kubernetes.io/v1', kind: 'ResourceList', items, functionConfig });
const run = spawnSync(fn, [], { input, encoding: 'utf8' });
if (run.error || run.status !== 0) {
  console.error(run.error?.message ?? run.stderr);
  console.error(run.stdout);
  process.exit(1);
}
const output = parseDocument(run.stdout).toJS();
console.log(`inject-git-cache on ${relative(root, exampleDir)} (config: ${functionConfig?.metadata?.name ?? 'none'})\n`);
for (const result of output.results ?? []) {
  const ref = result.resourceRef ? `${result.resourceRef.kind}/${result.resourceRef.name}` : '';
  console.log(`  ${result.severity.padEnd(7)} ${ref}: ${result.message}`);
}
const injected = output.items.filter((item) => JSON.stringify(item).includes('git-cache.dev/status'));
console.log(`\n${injected.length} workload(s) injected; the first one in full:\n`);
if (injected[0]) console.log(stringify(injected[0]));
