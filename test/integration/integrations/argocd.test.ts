// Argo CD, both ways it runs the function, with the real kustomize and the shipped manifests:
//   A. Argo CD's kustomize with the buildOptions from integrations/argocd/kustomize-exec/argocd-cm.yaml and
//      inject-git-cache on the repo-server's PATH;
//   B. the Config Management Plugin: the exact `generate` command parsed from integrations/argocd/cmp/plugin.yaml.
// Both run on a copy of the example apps with every exec bit dropped (Argo CD's default for plugins) and with
// the environment Argo CD provides.
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { parse, parseAllDocuments } from 'yaml';
import { findTool, testWithTools } from '../../support/tools.js';
import { kubernetesSchemaErrors } from '../../support/k8s-schema.js';
import { makeTempDir, removeDir } from '../../support/servers/process.js';
import { FUNCTION_BUNDLE, INTEGRATIONS, anyExecutable, assertMatchesExpected, copyWithoutExecBits, runTool, type Ran } from './helpers.js';

const ARGOCD = join(INTEGRATIONS, 'argocd');
const APPS = join(ARGOCD, 'apps');

type Json = Record<string, unknown>;

const testKustomize = testWithTools(['kustomize']);

interface Sandbox {
  /** Argo CD's copy of the repository (exec bits dropped). */
  readonly repo: string;
  /** The PATH directory holding kustomize and inject-git-cache. */
  readonly bin: string;
  readonly env: Record<string, string>;
}

/**
 * A repo copy without exec bits, and a PATH like the repo-server's / the plugin sidecar's: kustomize and
 * inject-git-cache (node only for the bundle's shebang) plus the base system.
 */
function sandbox(t: ExecutionContext, sourcePath: string, extraEnv: Record<string, string> = {}): Sandbox {
  const dir = makeTempDir('argocd');
  t.teardown(() => removeDir(dir));
  const repo = join(dir, 'repo');
  copyWithoutExecBits(APPS, join(repo, 'apps'));
  t.false(anyExecutable(repo), 'the copy still has exec bits');
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  symlinkSync(findTool('kustomize') ?? 'kustomize', join(bin, 'kustomize'));
  symlinkSync(FUNCTION_BUNDLE, join(bin, 'inject-git-cache'));
  const home = join(dir, 'home');
  mkdirSync(home);
  return {
    repo,
    bin,
    env: {
      PATH: [bin, dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':'),
      HOME: home,
      // The build environment Argo CD gives tools and plugins.
      ARGOCD_APP_NAME: 'shop-web',
      ARGOCD_APP_NAMESPACE: 'shop',
      ARGOCD_APP_PROJECT_NAME: 'default',
      ARGOCD_APP_REVISION: '4f1c0a7d9e2b3c4d5e6f708192a3b4c5d6e7f809',
      ARGOCD_APP_REVISION_SHORT: '4f1c0a7',
      ARGOCD_APP_SOURCE_PATH: sourcePath,
      ARGOCD_APP_SOURCE_REPO_URL: 'https://git.example.com/platform/deploy.git',
      ARGOCD_APP_SOURCE_TARGET_REVISION: 'main',
      KUBE_VERSION: '1.31.0',
      KUBE_API_VERSIONS: 'v1,apps/v1,batch/v1,monitoring.coreos.com/v1',
      ...extraEnv,
    },
  };
}

/** spec.generate of the ConfigManagementPlugin shipped in the plugin's ConfigMap. */
function shippedGenerateCommand(): string[] {
  const configMap = parse(readFileSync(join(ARGOCD, 'cmp', 'plugin.yaml'), 'utf8')) as { data: Record<string, string> };
  const plugin = parse(configMap.data['plugin.yaml'] ?? '') as { kind: string; spec: { generate: { command: string[]; args?: string[] } } };
  if (plugin.kind !== 'ConfigManagementPlugin') throw new Error(`plugin.yaml holds a ${plugin.kind}`);
  return [...plugin.spec.generate.command, ...(plugin.spec.generate.args ?? [])];
}

async function runPlugin(box: Sandbox, appPath: string): Promise<Ran> {
  const [file, ...args] = shippedGenerateCommand();
  return runTool(file ?? 'sh', args, { cwd: join(box.repo, appPath), env: box.env });
}

/** Argo CD runs `kustomize build <app dir> <kustomize.buildOptions>`. */
async function runArgoKustomize(box: Sandbox, appPath: string): Promise<Ran> {
  const argocdCm = parse(readFileSync(join(ARGOCD, 'kustomize-exec', 'argocd-cm.yaml'), 'utf8')) as { data: Record<string, string> };
  const buildOptions = (argocdCm.data['kustomize.buildOptions'] ?? '').split(/\s+/).filter(Boolean);
  return runTool(findTool('kustomize') ?? 'kustomize', ['build', join(box.repo, appPath), ...buildOptions], { cwd: box.repo, env: box.env });
}

function documents(stream: string): Json[] {
  return parseAllDocuments(stream)
    .map((doc) => doc.toJS() as Json | null)
    .filter((doc): doc is Json => doc !== null)
    .sort((a, b) => identity(a).localeCompare(identity(b)));
}

function identity(doc: Json): string {
  const metadata = (doc.metadata ?? {}) as Json;
  return `${String(doc.kind)}/${String(metadata.namespace)}/${String(metadata.name)}`;
}

testKustomize('Argo CD kustomize with the shipped buildOptions runs inject-git-cache from PATH on an app without exec bits, as expected', async (t) => {
  const box = sandbox(t, 'apps/kustomize-exec');
  const rendered = await runArgoKustomize(box, 'apps/kustomize-exec');
  t.is(rendered.code, 0, rendered.stderr);
  t.regex(rendered.stdout, /GIT_CACHE_REF/);
  assertMatchesExpected(t, rendered.stdout, join(APPS, 'kustomize-exec', '.expected', 'rendered.yaml'));
});

testKustomize('without inject-git-cache on the repo-server PATH the kustomize recipe fails loudly instead of rendering without the cache', async (t) => {
  const box = sandbox(t, 'apps/kustomize-exec');
  rmSync(join(box.bin, 'inject-git-cache'));
  const rendered = await runArgoKustomize(box, 'apps/kustomize-exec');
  t.not(rendered.code, 0);
  t.regex(rendered.stderr, /inject-git-cache.*not found/);
});

testKustomize('the CMP generate command from the shipped plugin.yaml renders an app without exec bits, as expected, and idempotently', async (t) => {
  const box = sandbox(t, 'apps/cmp');
  const rendered = await runPlugin(box, 'apps/cmp');
  t.is(rendered.code, 0, rendered.stderr);
  t.regex(rendered.stdout, /GIT_CACHE_REF/);
  assertMatchesExpected(t, rendered.stdout, join(APPS, 'cmp', '.expected', 'rendered.yaml'));
  const again = await runTool(join(box.bin, 'inject-git-cache'), ['--config', join(box.repo, 'apps', 'cmp', 'gitcache.yaml')], {
    input: rendered.stdout,
    env: box.env,
  });
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, rendered.stdout);
});

testKustomize('the plugin and the kustomize recipe deploy the same objects', async (t) => {
  const viaPlugin = await runPlugin(sandbox(t, 'apps/cmp'), 'apps/cmp');
  const viaKustomize = await runArgoKustomize(sandbox(t, 'apps/kustomize-exec'), 'apps/kustomize-exec');
  t.is(viaPlugin.code, 0, viaPlugin.stderr);
  t.is(viaKustomize.code, 0, viaKustomize.stderr);
  t.deepEqual(documents(viaPlugin.stdout), documents(viaKustomize.stdout));
});

testKustomize('the CMP reads the config named by the Application\'s plugin env GIT_CACHE_CONFIG', async (t) => {
  const box = sandbox(t, 'apps/cmp', { ARGOCD_ENV_GIT_CACHE_CONFIG: 'config/other-gitcache.yaml' });
  const appDir = join(box.repo, 'apps', 'cmp');
  mkdirSync(join(appDir, 'config'));
  writeFileSync(
    join(appDir, 'config', 'other-gitcache.yaml'),
    readFileSync(join(appDir, 'gitcache.yaml'), 'utf8').replace('https://github.com/example-org/platform.git', 'https://github.com/example-org/other.git'),
  );
  const rendered = await runPlugin(box, 'apps/cmp');
  t.is(rendered.code, 0, rendered.stderr);
  t.regex(rendered.stdout, /GIT_CACHE_REF_OTHER/);
  t.notRegex(rendered.stdout, /GIT_CACHE_REF_PLATFORM/);
});

testKustomize('the CMP fails with a clear message when the app has no git-cache config', async (t) => {
  const box = sandbox(t, 'apps/cmp');
  rmSync(join(box.repo, 'apps', 'cmp', 'gitcache.yaml'));
  const rendered = await runPlugin(box, 'apps/cmp');
  t.is(rendered.code, 1);
  t.regex(rendered.stderr, /git-cache plugin: no gitcache\.yaml in apps\/cmp of app shop-web/);
  t.is(rendered.stdout, '');
});

testKustomize('the CMP fails, and prints no manifests, when kustomize build fails (never an empty render Argo CD would prune by)', async (t) => {
  const box = sandbox(t, 'apps/cmp');
  rmSync(join(box.repo, 'apps', 'base'), { recursive: true });
  const rendered = await runPlugin(box, 'apps/cmp');
  t.not(rendered.code, 0);
  t.regex(rendered.stderr, /base/);
  t.is(rendered.stdout, '');
});

testKustomize('the CMP fails with the function\'s message for a bad config', async (t) => {
  const box = sandbox(t, 'apps/cmp');
  writeFileSync(join(box.repo, 'apps', 'cmp', 'gitcache.yaml'), 'apiVersion: git-cache.dev/v1alpha1\nkind: GitCache\nmetadata:\n  name: git-cache\nspec:\n  repos: []\n');
  const rendered = await runPlugin(box, 'apps/cmp');
  t.is(rendered.code, 1);
  t.regex(rendered.stderr, /inject-git-cache: error \(spec\.repos\)/);
});

// A cut-down argocd-repo-server as Argo CD's install manifest ships it (the volumes the patches rely on).
const REPO_SERVER_STUB = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: argocd-repo-server
  namespace: argocd
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: argocd-repo-server
  template:
    metadata:
      labels:
        app.kubernetes.io/name: argocd-repo-server
    spec:
      containers:
      - name: argocd-repo-server
        image: quay.io/argoproj/argocd:v2.14.0
        volumeMounts:
        - name: var-files
          mountPath: /var/run/argocd
        - name: plugins
          mountPath: /home/argocd/cmp-server/plugins
      volumes:
      - name: var-files
        emptyDir: {}
      - name: plugins
        emptyDir: {}
`;

interface Container {
  name: string;
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string }>;
}

testKustomize('the repo-server patches apply to Argo CD\'s repo-server, validate, and wire the executable and plugin.yaml to real volumes', async (t) => {
  const dir = makeTempDir('argocd-patches');
  t.teardown(() => removeDir(dir));
  writeFileSync(join(dir, 'repo-server.yaml'), REPO_SERVER_STUB);
  for (const [file, from] of [
    ['argocd-cm.yaml', 'kustomize-exec/argocd-cm.yaml'],
    ['exec-patch.yaml', 'kustomize-exec/repo-server-patch.yaml'],
    ['cmp-patch.yaml', 'cmp/repo-server-patch.yaml'],
    ['plugin.yaml', 'cmp/plugin.yaml'],
  ] as const) {
    writeFileSync(join(dir, file), readFileSync(join(ARGOCD, from), 'utf8'));
  }
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    'resources:\n- repo-server.yaml\n- plugin.yaml\n- argocd-cm.yaml\npatches:\n- path: exec-patch.yaml\n- path: cmp-patch.yaml\n',
  );
  const built = await runTool(findTool('kustomize') ?? 'kustomize', ['build', dir], { env: { PATH: process.env.PATH ?? '' } });
  t.is(built.code, 0, built.stderr);
  const docs = documents(built.stdout);
  const deployment = docs.find((doc) => doc.kind === 'Deployment') as Json;
  t.deepEqual(kubernetesSchemaErrors(deployment), []);
  const podSpec = ((deployment.spec as Json).template as Json).spec as { containers: Container[]; initContainers: Container[]; volumes: Array<{ name: string; configMap?: { name: string } }> };
  const volumeNames = new Set(podSpec.volumes.map((volume) => volume.name));
  for (const container of [...podSpec.containers, ...podSpec.initContainers]) {
    for (const mount of container.volumeMounts ?? []) t.true(volumeNames.has(mount.name), `${container.name} mounts missing volume ${mount.name}`);
  }
  const installer = podSpec.initContainers.find((container) => container.name === 'install-inject-git-cache');
  const toolsVolume = installer?.volumeMounts?.[0]?.name;
  t.truthy(toolsVolume);
  for (const name of ['argocd-repo-server', 'cmp-git-cache']) {
    const container = podSpec.containers.find((candidate) => candidate.name === name);
    t.truthy(
      container?.volumeMounts?.find((mount) => mount.name === toolsVolume && mount.mountPath === '/usr/local/bin/inject-git-cache' && mount.subPath === 'inject-git-cache'),
      `${name} has no inject-git-cache on its PATH`,
    );
  }
  const sidecar = podSpec.containers.find((container) => container.name === 'cmp-git-cache');
  const pluginMount = sidecar?.volumeMounts?.find((mount) => mount.mountPath === '/home/argocd/cmp-server/config/plugin.yaml');
  t.is(pluginMount?.subPath, 'plugin.yaml');
  const pluginVolume = podSpec.volumes.find((volume) => volume.name === pluginMount?.name);
  const pluginConfigMap = docs.find((doc) => doc.kind === 'ConfigMap' && (doc.metadata as Json).name === pluginVolume?.configMap?.name);
  t.truthy(pluginConfigMap, 'the sidecar mounts a ConfigMap the plugin manifest does not define');
  t.deepEqual(kubernetesSchemaErrors(pluginConfigMap), []);
  t.truthy(((pluginConfigMap as Json).data as Json)['plugin.yaml']);
  for (const mount of ['/var/run/argocd', '/home/argocd/cmp-server/plugins']) {
    t.truthy(sidecar?.volumeMounts?.find((candidate) => candidate.mountPath === mount), `sidecar lacks ${mount}`);
  }
});
