/**
 * The direct block-YAML reader (src/krm/yaml-block-read.ts) on real YAML that nobody here wrote: the Go modules
 * that scripts/install-test-tools.sh builds from (kustomize and kyaml, Kubernetes and their dependencies) carry
 * thousands of YAML files in the Go module cache: manifests, CRDs, helm charts, test data, CI configurations.
 * Each is either declined (left to yaml) or read into exactly the nodes and token count yaml gives.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { testWithTools } from '../../support/tools.js';
import { checkBlockRead } from '../../support/yaml-trees.js';

const test = testWithTools(['go', 'kustomize']);

/** At most this many files, evenly spread over the sorted list (the whole cache takes minutes to compare). */
const MAX_FILES = 6000;

function yamlFiles(directory: string, found: string[]): string[] {
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return found;
  }
  for (const name of names.sort()) {
    if (name === 'cache') continue;
    const path = join(directory, name);
    const stats = statSync(path, { throwIfNoEntry: false });
    if (stats?.isDirectory()) yamlFiles(path, found);
    else if (stats?.isFile() && /\.ya?ml$/.test(name) && stats.size < 1 << 20) found.push(path);
  }
  return found;
}

test('YAML files of the Go module cache: read directly into the nodes yaml gives, or declined', (t) => {
  const cache = execFileSync('go', ['env', 'GOMODCACHE']).toString().trim();
  const all = yamlFiles(cache, []);
  t.true(all.length >= 200, `only ${all.length} YAML files under ${cache}: run bash scripts/install-test-tools.sh`);
  const step = Math.max(1, all.length / MAX_FILES);
  const files = Array.from({ length: Math.min(all.length, MAX_FILES) }, (_, index) => all[Math.floor(index * step)] as string);
  let accepted = 0;
  const differences: string[] = [];
  for (const file of files) {
    const result = checkBlockRead(readFileSync(file, 'utf8'));
    if (!result.accepted) continue;
    accepted++;
    if (result.difference !== undefined) differences.push(`${file}: ${result.difference}`);
  }
  t.log(`${files.length} of ${all.length} files compared: ${accepted} read directly, ${files.length - accepted} declined`);
  t.deepEqual(differences, []);
  t.true(accepted >= files.length / 3, 'most real manifests are in the subset the direct reader takes');
});
