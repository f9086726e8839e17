/**
 * Every example package (examples/*, found by listExamples: a new example is covered without touching this file),
 * rendered for real by `kpt fn render` and by `kustomize build --enable-exec`, is accepted by the real API server
 * with `kubectl apply --dry-run=server --validate=strict` (unknown or misplaced fields are errors) in a namespace
 * labelled `pod-security.kubernetes.io/warn: restricted`, and no Pod Security warning names a container the
 * function injected or generated (the examples' own app containers are not hardened, so they do warn).
 *
 * The generated node-mode DaemonSet (hostPath) is exempt: it needs `privileged` in its own namespace by design.
 * Kinds the cluster does not serve (ServiceMonitor, PodMonitor, Argo Rollout, ...) get a permissive CRD
 * (x-kubernetes-preserve-unknown-fields) first: their own fields are not validated here, everything else is.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { createNamespace, deleteNamespace, kubectl, kubectlOk, testWithCluster, toManifestYaml, warningsOf, type Manifest } from '../../support/cluster.js';
import { kptRender, kustomizeBuild, listExamples, makeWorkspace } from '../../support/e2e.js';

const test = testWithCluster(['kpt', 'kustomize']);

const STATUS_ANNOTATION = 'git-cache.dev/status';
const GENERATED_BY_ANNOTATION = 'git-cache.dev/generated-by';

function annotations(item: Manifest): Record<string, string> {
  return ((item.metadata as Manifest | undefined)?.annotations as Record<string, string> | undefined) ?? {};
}

/** Every pod spec in an item (Pod, workloads, CronJob's job template). */
function podSpecs(item: Manifest): Manifest[] {
  const spec = item.spec as Manifest | undefined;
  if (!spec) return [];
  if (item.kind === 'Pod') return [spec];
  const template = (spec.template as Manifest | undefined) ?? ((spec.jobTemplate as Manifest | undefined)?.spec as Manifest | undefined)?.template as Manifest | undefined;
  const podSpec = template?.spec as Manifest | undefined;
  return podSpec ? [podSpec] : [];
}

/** Names of the containers the function injected (from its status annotations) or generated (whole workloads). */
function injectedContainers(items: readonly Manifest[]): Set<string> {
  const names = new Set<string>();
  const add = (list: unknown): void => {
    if (Array.isArray(list)) for (const entry of list) if (typeof entry === 'string') names.add(entry);
  };
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (value !== null && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      const status = (record.annotations as Record<string, string> | undefined)?.[STATUS_ANNOTATION];
      if (status) {
        const parsed = JSON.parse(status) as { initContainers?: unknown; containers?: unknown };
        add(parsed.initContainers);
        add(parsed.containers);
      }
      Object.values(record).forEach(visit);
    }
  };
  for (const item of items) {
    visit(item);
    if (annotations(item)[GENERATED_BY_ANNOTATION]) {
      // The node-mode writer (a DaemonSet on a hostPath) needs the `privileged` level in its own namespace by
      // design (examples/node/README.md): hostPath alone breaks `restricted`, whatever its containers do.
      for (const spec of podSpecs(item).filter((candidate) => !((candidate.volumes as Manifest[] | undefined) ?? []).some((volume) => 'hostPath' in volume))) {
        for (const list of ['initContainers', 'containers']) add(((spec[list] as Manifest[] | undefined) ?? []).map((container) => container.name));
      }
    }
  }
  return names;
}

/** Container names a Pod Security warning blames: `container "a"`, `containers "a", "b"`, `pod or container "a"`. */
export function blamedContainers(warning: string): string[] {
  const names: string[] = [];
  for (const match of warning.matchAll(/containers? ((?:"[^"]+"(?:, | and )?)+)/g)) {
    for (const name of (match[1] ?? '').matchAll(/"([^"]+)"/g)) names.push(name[1] ?? '');
  }
  return names;
}

function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((doc): doc is Manifest => doc !== null && typeof doc === 'object' && typeof doc.kind === 'string')
    .filter((doc) => annotations(doc)['config.kubernetes.io/local-config'] !== 'true' && doc.kind !== 'Kustomization' && doc.kind !== 'Kptfile');
}

/** The resources of a rendered kpt package: every YAML file under it, without local config. */
async function packageResources(dir: string): Promise<Manifest[]> {
  const items: Manifest[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !/\.ya?ml$/.test(entry.name) || entry.name === 'Kptfile' || entry.name === 'kustomization.yaml') continue;
    const path = join(entry.parentPath, entry.name);
    if (path.includes('/.expected/')) continue;
    items.push(...parseManifests(await readFile(path, 'utf8')));
  }
  return items;
}

/** A permissive CRD for each apiVersion/kind the API server does not serve. */
async function ensureKinds(items: readonly Manifest[]): Promise<void> {
  const seen = new Set<string>();
  for (const item of items) {
    const apiVersion = String(item.apiVersion);
    const kind = String(item.kind);
    if (seen.has(`${apiVersion}/${kind}`)) continue;
    seen.add(`${apiVersion}/${kind}`);
    const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const discovery = await kubectl(['get', '--raw', path]);
    if (discovery.exitCode === 0 && (JSON.parse(discovery.stdout) as { resources: Array<{ kind: string }> }).resources.some((resource) => resource.kind === kind)) continue;
    const [group, version] = apiVersion.split('/');
    const plural = `${kind.toLowerCase()}s`;
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `${plural}.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
        versions: [{ name: version, served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    };
    await kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(crd) });
    await kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', `crd/${plural}.${group}`]);
    // Discovery of a new group takes a moment to reach the apply path.
    for (let i = 0; i < 50 && (await kubectl(['get', '--raw', `/apis/${apiVersion}`])).exitCode !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function assertServerAccepts(t: import('ava').ExecutionContext, items: Manifest[]): Promise<void> {
  t.true(items.length > 0, 'nothing was rendered');
  const injected = injectedContainers(items);
  t.true(injected.size > 0, 'nothing was injected');
  await ensureKinds(items);
  const namespaces = await testNamespaces(items);
  try {
    const placed = items
      .filter((item) => item.kind !== 'Namespace')
      .map((item) => ({ ...item, metadata: { ...(item.metadata as Manifest), namespace: namespaces.get(namespaceOf(item)) } }));
    // Every item names its namespace, so no --namespace (kubectl refuses items of another namespace with it).
    const outcome = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], { input: toManifestYaml(placed) });
    t.is(outcome.exitCode, 0, outcome.stderr);
    const warnings = warningsOf(outcome.stderr);
    const blamed = warnings.flatMap((warning) => blamedContainers(warning).filter((name) => injected.has(name)).map((name) => `${name}: ${warning}`));
    t.deepEqual(blamed, [], 'Pod Security warnings about injected containers');
    t.log(`${items.length} resources accepted; ${warnings.length} warning(s), none about ${[...injected].join(', ')}`);
  } finally {
    for (const namespace of namespaces.values()) await deleteNamespace(namespace);
  }
}

function namespaceOf(item: Manifest): string {
  return String((item.metadata as Manifest | undefined)?.namespace ?? '');
}

/**
 * A fresh namespace for each namespace the example uses ('' for none), labelled warn: restricted; an example's
 * own Namespace keeps its labels (its Pod Security enforce level among them), others enforce privileged.
 */
async function testNamespaces(items: readonly Manifest[]): Promise<Map<string, string>> {
  const own = new Map(items.filter((item) => item.kind === 'Namespace').map((item) => [String((item.metadata as Manifest).name), ((item.metadata as Manifest).labels as Record<string, string> | undefined) ?? {}]));
  const names = new Set(['', ...own.keys(), ...items.filter((item) => item.kind !== 'Namespace').map(namespaceOf)]);
  const created = new Map<string, string>();
  for (const name of names) {
    const labels = Object.fromEntries(Object.entries(own.get(name) ?? {}).filter(([key]) => key !== 'kubernetes.io/metadata.name'));
    created.set(name, await createNamespace(`ex-${name || 'default'}`, { enforce: 'privileged', warn: 'restricted', labels }));
  }
  return created;
}

test('blamedContainers reads the container names of Pod Security warnings', (t) => {
  t.deepEqual(
    blamedContainers('would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (containers "app", "git-cache" must set securityContext.allowPrivilegeEscalation=false), runAsNonRoot != true (pod or container "web" must set securityContext.runAsNonRoot=true)'),
    ['app', 'git-cache', 'web'],
  );
});

for (const example of listExamples()) {
  test.serial(`examples/${example}: kpt fn render output passes server-side strict validation; no Pod Security warning about injected containers`, async (t) => {
    const workspace = await makeWorkspace(example);
    try {
      const rendered = await kptRender(workspace, join(workspace.root, 'results'));
      t.is(rendered.exitCode, 0, rendered.stderr);
      await assertServerAccepts(t, await packageResources(workspace.packageDir));
    } finally {
      await workspace.cleanup();
    }
  });

  test.serial(`examples/${example}: kustomize build output passes server-side strict validation; no Pod Security warning about injected containers`, async (t) => {
    const workspace = await makeWorkspace(example);
    try {
      const built = await kustomizeBuild(workspace.packageDir);
      t.is(built.exitCode, 0, built.stderr);
      await assertServerAccepts(t, parseManifests(built.stdout));
    } finally {
      await workspace.cleanup();
    }
  });
}
