/**
 * Properties of the whole function (run(), ResourceList in and out) over generated workloads of every built-in
 * kind and generated valid configs.
 */
import test from 'ava';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { selectorMatches } from '../../../src/inject/selector.js';
import { gitCacheConfig, itemText, items as itemsArbitrary } from '../../support/arbitraries.js';
import { kubernetesSchemaErrors } from '../../support/k8s-schema.js';
import { at, itemTexts, readOutput, resourceList, runFunction, toYaml, type Json } from '../../support/krm.js';

const NUM_RUNS = Number(process.env.PROPERTY_RUNS ?? 120);

type GeneratedItem = { item: Json; commentEvery: number; flowLabels: boolean };

function inputOf(generated: readonly GeneratedItem[], config: Json): string {
  return resourceList(
    generated.map(({ item, commentEvery, flowLabels }) => itemText(item, commentEvery, flowLabels)),
    config,
  );
}


function withConfig(text: string, config: Json): string {
  const start = text.indexOf('\nfunctionConfig:\n');
  if (start < 0) throw new Error('no functionConfig');
  const rest = text.slice(start + 1);
  const end = rest.search(/\n(?=\S)/);
  return text.slice(0, start + 1) + toYaml({ functionConfig: config }) + (end < 0 ? '' : rest.slice(end + 1));
}

function templatePath(item: Json): (string | number)[] {
  if (item.kind === 'Pod') return [];
  if (item.kind === 'CronJob') return ['spec', 'jobTemplate', 'spec', 'template'];
  return ['spec', 'template'];
}

function record(value: unknown): Record<string, string> {
  return (value ?? {}) as Record<string, string>;
}

/** Whether the contract says this input item gets the injection under this config. */
function shouldInject(item: Json, config: Json): boolean {
  if (item.kind === 'ConfigMap') return false;
  const annotations = record(at(item, 'metadata', 'annotations'));
  if (annotations['config.kubernetes.io/local-config'] === 'true') return false;
  const template = at(item, ...templatePath(item));
  const podAnnotations = record(at(template, 'metadata', 'annotations'));
  if (annotations['git-cache.dev/inject'] === 'false' || podAnnotations['git-cache.dev/inject'] === 'false') return false;
  const selector = (at(config, 'spec', 'selector') as Parameters<typeof selectorMatches>[0] | undefined) ?? { matchLabels: { 'git-cache.enabled': 'true' } };
  return selectorMatches(selector, record(at(item, 'metadata', 'labels'))) || selectorMatches(selector, record(at(template, 'metadata', 'labels')));
}

function statusOf(item: Json): Json | undefined {
  const annotation = at(item, ...templatePath(item), 'metadata', 'annotations', 'git-cache.dev/status');
  return typeof annotation === 'string' ? (JSON.parse(annotation) as Json) : undefined;
}

/** How many items the function generated (they are appended after the input's items). */
function generatedCount(items: readonly Json[]): number {
  return items.filter((item) => at(item, 'metadata', 'annotations', 'git-cache.dev/generated-by') !== undefined).length;
}

const EMPTY_WHEN_STRIPPED = ['env', 'volumeMounts', 'initContainers', 'volumes', 'securityContext', 'annotations'];

/** Removes empty lists/maps under the keys injection may create, on a deep copy. */
function withoutEmpties(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutEmpties);
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Json)
    .map(([key, entry]) => [key, withoutEmpties(entry)] as const)
    .filter(([key, entry]) => !(EMPTY_WHEN_STRIPPED.includes(key) && entry !== null && typeof entry === 'object' && Object.keys(entry).length === 0));
  return Object.fromEntries(entries);
}

/** The output item with what its status annotation says was added taken out again (independently of src). */
function stripAdditions(item: Json): Json {
  const copy = structuredClone(item);
  const status = statusOf(copy);
  if (!status) return copy;
  const template = at(copy, ...templatePath(copy)) as Json;
  const spec = template.spec as Json;
  const names = (key: string) => status[key] as string[];
  const userEnv = (status.userEnv ?? {}) as Record<string, string[]>;
  spec.initContainers = ((spec.initContainers as Json[] | undefined) ?? []).filter((container) => !names('initContainers').includes(String(container.name)));
  spec.containers = ((spec.containers as Json[] | undefined) ?? []).filter((container) => !names('containers').includes(String(container.name)));
  spec.volumes = ((spec.volumes as Json[] | undefined) ?? []).filter((volume) => !names('volumes').includes(String(volume.name)));
  for (const container of [...(spec.initContainers as Json[]), ...(spec.containers as Json[])]) {
    if (container.volumeMounts) container.volumeMounts = (container.volumeMounts as Json[]).filter((mount) => !names('volumes').includes(String(mount.name)));
    const kept = userEnv[String(container.name)] ?? [];
    if (container.env) container.env = (container.env as Json[]).filter((variable) => !names('env').includes(String(variable.name)) || kept.includes(String(variable.name)));
  }
  if (status.fsGroup !== undefined) delete (spec.securityContext as Json).fsGroup;
  delete (template.metadata as { annotations: Json }).annotations['git-cache.dev/status'];
  return copy;
}

test('(a) idempotence: running on its own output is byte-identical', (t) => {
  fc.assert(
    fc.property(itemsArbitrary, gitCacheConfig, (generated, config) => {
      const once = runFunction(inputOf(generated, config));
      const twice = runFunction(once.stdout);
      t.is(once.exitCode, 0, once.stdout);
      return twice.stdout === once.stdout && twice.exitCode === once.exitCode;
    }),
    { numRuns: NUM_RUNS },
  );
  t.pass();
});

test('(b) items that are not injected come out byte-identical (each printed alone), and exactly the selected ones are injected', (t) => {
  fc.assert(
    fc.property(itemsArbitrary, gitCacheConfig, (generated, config) => {
      const input = inputOf(generated, config);
      const outcome = runFunction(input);
      const before = itemTexts(input);
      const output = readOutput(outcome.stdout).items;
      // Generated resources (node DaemonSet, Service, NetworkPolicy) come after the input's items.
      if (output.length - generatedCount(output) !== before.length) return false;
      const after = itemTexts(outcome.stdout).slice(0, before.length);
      return generated.every(({ item }, index) => {
        const injected = statusOf(output[index] as Json) !== undefined;
        if (injected !== shouldInject(item, config)) return false;
        return injected || after[index] === before[index];
      });
    }),
    { numRuns: NUM_RUNS },
  );
  t.pass();
});

test('(c) injected items are unchanged except for the additions their status annotation records', (t) => {
  fc.assert(
    fc.property(itemsArbitrary, gitCacheConfig, (generated, config) => {
      const input = inputOf(generated, config);
      const inputItems = readOutput(input).items;
      const all = readOutput(runFunction(input).stdout).items;
      const output = all.slice(0, all.length - generatedCount(all));
      return output.length === inputItems.length && output.every((item, index) => isDeepStrictEqual(withoutEmpties(stripAdditions(item)), withoutEmpties(inputItems[index])));
    }),
    { numRuns: NUM_RUNS },
  );
  t.pass();
});

test('(d) every output workload validates against the Kubernetes v1.33.0 OpenAPI schema', (t) => {
  fc.assert(
    fc.property(itemsArbitrary, gitCacheConfig, (generated, config) => {
      const output = readOutput(runFunction(inputOf(generated, config)).stdout).items;
      return output.every((item) => kubernetesSchemaErrors(item).length === 0);
    }),
    { numRuns: NUM_RUNS },
  );
  t.pass();
});

test('(e) re-running with a changed config equals running the new config on the original input', (t) => {
  fc.assert(
    fc.property(itemsArbitrary, gitCacheConfig, gitCacheConfig, (generated, first, second) => {
      const input = inputOf(generated, first);
      const once = runFunction(input).stdout;
      const rerun = runFunction(withConfig(once, second));
      const direct = runFunction(withConfig(input, second));
      if (rerun.exitCode !== direct.exitCode) return false;
      const rerunItems = itemTexts(rerun.stdout);
      const directItems = itemTexts(direct.stdout);
      const rerunJson = readOutput(rerun.stdout).items;
      const directJson = readOutput(direct.stdout).items;
      return generated.every(({ item }, index) => {
        // Removing an injection cannot know which now-empty lists and maps the user wrote empty
        // (`securityContext: {}`); it prunes them, which Kubernetes reads the same. Everything else: bytes.
        const removed = shouldInject(item, first) && !shouldInject(item, second);
        return removed ? isDeepStrictEqual(withoutEmpties(rerunJson[index]), withoutEmpties(directJson[index])) : rerunItems[index] === directItems[index];
      });
    }),
    { numRuns: NUM_RUNS },
  );
  t.pass();
});

test('the generators cover every built-in kind, every mode and volume type, and both outcomes (selected and not)', (t) => {
  const kinds = new Set<string>();
  const modes = new Set<string>();
  const volumeTypes = new Set<string>();
  let selected = 0;
  let unselected = 0;
  fc.assert(
    fc.property(itemsArbitrary, gitCacheConfig, (generated, config) => {
      modes.add(String(at(config, 'spec', 'mode') ?? 'sidecar'));
      volumeTypes.add(String(at(config, 'spec', 'volume', 'type') ?? 'emptyDir'));
      for (const { item } of generated) {
        kinds.add(String(item.kind));
        if (shouldInject(item, config)) selected++;
        else unselected++;
      }
    }),
    { numRuns: 300 },
  );
  t.deepEqual([...kinds].sort(), ['ConfigMap', 'CronJob', 'DaemonSet', 'Deployment', 'Job', 'Pod', 'ReplicaSet', 'ReplicationController', 'StatefulSet']);
  t.deepEqual([...modes].sort(), ['init', 'legacy-sidecar', 'sidecar']);
  t.deepEqual([...volumeTypes].sort(), ['emptyDir', 'node', 'pvc']);
  t.true(selected > 50 && unselected > 50, `${selected} selected, ${unselected} not`);
});
