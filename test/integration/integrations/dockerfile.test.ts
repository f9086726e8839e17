// The function image ships the single executable where the Argo CD recipes copy it from: the Dockerfile's function
// target holds /usr/local/bin/inject-git-cache-linux-x64, built by scripts/build-sea.mjs in a stage it copies from,
// and every repo-server patch's init container copies that path out of that image. (No container engine here:
// this checks the Dockerfile as text; the SEA itself is exercised by sea.test.ts.)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../../support/tools.js';
import { FUNCTION_IMAGE } from '../../support/e2e.js';
import { INTEGRATIONS } from './helpers.js';

const SEA_PATH = '/usr/local/bin/inject-git-cache-linux-x64';

interface Stage {
  readonly name: string;
  readonly base: string;
  readonly lines: string[];
}

/** Dockerfile stages with their instructions (continuation lines joined, comments dropped). */
function stages(): Stage[] {
  const text = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const result: Stage[] = [];
  for (const line of text.split('\n').map((entry) => entry.trim())) {
    if (line === '' || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) result.push({ base: from[1] ?? '', name: from[2] ?? String(result.length), lines: [] });
    else result.at(-1)?.lines.push(line);
  }
  return result;
}

/** The stage and its ancestors within the Dockerfile, nearest first. */
function lineage(all: readonly Stage[], name: string): Stage[] {
  const stage = all.find((candidate) => candidate.name === name);
  return stage ? [stage, ...lineage(all, stage.base)] : [];
}

test('the function target copies the SEA to /usr/local/bin/inject-git-cache-linux-x64 from a stage that builds it after the bundle', (t) => {
  const all = stages();
  const fn = all.find((stage) => stage.name === 'function');
  if (!fn) return t.fail('no function stage');
  const copy = fn.lines.map((line) => /^COPY\s+--from=(\S+)\s+(\S+)\s+(\S+)$/.exec(line)).find((match) => match?.[3] === SEA_PATH);
  if (!copy) return t.fail(`the function stage does not COPY anything to ${SEA_PATH}`);
  const [, fromStage = '', source = ''] = copy;
  const builders = lineage(all, fromStage);
  const runs = [...builders].reverse().flatMap((stage) => stage.lines.filter((line) => line.startsWith('RUN ')));
  const bundleAt = runs.findIndex((line) => line.includes('node scripts/build.mjs'));
  const seaAt = runs.findIndex((line) => line.includes('node scripts/build-sea.mjs'));
  t.true(bundleAt >= 0 && seaAt > bundleAt, `stage ${fromStage} must run build.mjs, then build-sea.mjs: ${runs.join(' | ')}`);
  const workdir = builders.flatMap((stage) => stage.lines.filter((line) => line.startsWith('WORKDIR '))).at(0)?.slice('WORKDIR '.length);
  // build-sea.mjs writes dist/inject-git-cache-linux-x64 under the repository root, the build stage's WORKDIR.
  t.is(source, `${workdir}/dist/inject-git-cache-linux-x64`);
  t.true(readFileSync(join(REPO_ROOT, 'scripts', 'build-sea.mjs'), 'utf8').includes("join(root, 'dist', 'inject-git-cache-linux-x64')"));
  t.true(builders.flatMap((stage) => stage.lines).some((line) => /^COPY\s+scripts\/build-sea\.mjs\s/.test(line)), 'build-sea.mjs is copied into the build');
});

test('every Argo CD repo-server patch copies the SEA out of the function image at the path the Dockerfile ships it', (t) => {
  for (const patch of ['kustomize-exec/repo-server-patch.yaml', 'cmp/repo-server-patch.yaml']) {
    const [doc] = parseAllDocuments(readFileSync(join(INTEGRATIONS, 'argocd', patch), 'utf8')).map((entry) => entry.toJS() as { spec: { template: { spec: { initContainers: Array<{ name: string; image: string; command: string[] }> } } } });
    const installer = doc?.spec.template.spec.initContainers.find((container) => container.name === 'install-inject-git-cache');
    t.is(installer?.image, FUNCTION_IMAGE, patch);
    t.is(installer?.command[0], 'cp', patch);
    t.is(installer?.command[1], SEA_PATH, patch);
  }
});
