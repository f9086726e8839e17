/**
 * Helpers for the end-to-end suites (test/e2e): run the example packages (examples/*) through the real clients
 * (kpt, standalone kustomize, kubectl kustomize) on a throw-away copy, and compare with each example's
 * checked-in `.expected/`.
 *
 * A workspace mirrors the repository layout — `<ws>/examples/<name>` and a `<ws>/function` symlink to the built
 * function — so the paths the examples use work unchanged: kpt resolves a Kptfile `exec:` against the current
 * directory (run from `<ws>`), kustomize resolves `exec.path` against the kustomization's directory
 * (`../../function/...`).
 *
 * `UPDATE_EXPECTED=1 npm test -- test/e2e/...` writes the outputs into `.expected/` instead of comparing them
 * (config.yaml is hand-written and never rewritten); review the diff before committing.
 */
import { execa, type Result } from 'execa';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { isMap, parseDocument } from 'yaml';
import { z } from 'zod';
import { VERSION } from '../../src/shared/version.js';
import { REPO_ROOT, findTool } from './tools.js';

export const EXAMPLES_DIR = join(REPO_ROOT, 'examples');
export const FUNCTION_PATH = join(REPO_ROOT, 'function', 'inject-git-cache');
/** The function as a workspace-relative path, as the examples' Kptfiles name it. */
export const FUNCTION_EXEC = 'function/inject-git-cache';
/** `docker` for kustomize's container functions: podman under the name kustomize calls (test/support/docker-shim). */
export const DOCKER_SHIM_DIR = join(REPO_ROOT, 'test', 'support', 'docker-shim');
/** The function's container image (the Dockerfile's function target), as a container transformer names it. */
export const FUNCTION_IMAGE = `ghcr.io/git-cache/inject-git-cache:v${VERSION}`;
export const UPDATE_EXPECTED = process.env.UPDATE_EXPECTED === '1';

/** `.expected/config.yaml`: how the example runs, in the fields of kpt's own test harness. */
const runConfigSchema = z.strictObject({
  testType: z.enum(['render', 'eval']).default('render'),
  allowExec: z.boolean().default(false),
  exitCode: z.number().int().default(0),
  /** For the `kpt fn eval --exec` run; paths relative to `.expected/`, as in kpt's harness. */
  execPath: z.string().optional(),
  fnConfig: z.string().optional(),
  args: z.record(z.string(), z.string()).optional(),
});
export type RunConfig = z.infer<typeof runConfigSchema>;

/** Every example package: a directory under examples/ with a Kptfile (synchronous: tests are declared per example). */
export function listExamples(): string[] {
  return readdirSync(EXAMPLES_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(EXAMPLES_DIR, entry.name, 'Kptfile')))
    .map((entry) => entry.name)
    .sort();
}

export function expectedPath(example: string, file: string): string {
  return join(EXAMPLES_DIR, example, '.expected', file);
}

export async function readRunConfig(example: string): Promise<RunConfig> {
  const text = await readFile(expectedPath(example, 'config.yaml'), 'utf8');
  return runConfigSchema.parse(parseDocument(text).toJS() ?? {});
}

/** A path from `.expected/config.yaml` (relative to `.expected/`) as a path relative to the workspace root. */
export function workspacePathFromExpected(example: string, path: string): string {
  return relative(REPO_ROOT, resolve(EXAMPLES_DIR, example, '.expected', path));
}

export interface Workspace {
  readonly root: string;
  /** Relative to root: `examples/<name>`. */
  readonly packagePath: string;
  readonly packageDir: string;
  readonly cleanup: () => Promise<void>;
}

/** A temporary copy of an example (without `.expected/`) in a tree shaped like the repository. */
export async function makeWorkspace(example: string, at: string = join('examples', example)): Promise<Workspace> {
  const root = await mkdtemp(join(tmpdir(), `git-cache-e2e-${example}-`));
  const packageDir = join(root, at);
  await mkdir(join(packageDir, '..'), { recursive: true });
  await cp(join(EXAMPLES_DIR, example), packageDir, {
    recursive: true,
    filter: (source) => !source.split(/[\\/]/).includes('.expected'),
  });
  await symlink(join(REPO_ROOT, 'function'), join(root, 'function'));
  return { root, packagePath: at, packageDir, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** Every file under a directory, path → content, for byte-for-byte comparisons between runs. */
export async function snapshotTree(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (current: string): Promise<void> => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) files.set(relative(dir, path), await readFile(path, 'utf8'));
    }
  };
  await walk(dir);
  return new Map([...files.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

/** Git with no user or system configuration, so diffs look the same on every machine. */
function git(args: readonly string[], gitDir: string, workTree: string): Promise<Result> {
  return execa('git', [`--git-dir=${gitDir}`, `--work-tree=${workTree}`, '-c', 'core.autocrlf=false', '-c', 'user.name=e2e', '-c', 'user.email=e2e@example.invalid', ...args], {
    env: { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
  });
}

/**
 * Records the package's current state (in a git directory beside it, not inside it: kpt would read it), and
 * returns a function giving the diff from that state, in the form of kpt's catalog `.expected/diff.patch`.
 */
export async function trackChanges(workspace: Workspace): Promise<() => Promise<string>> {
  const gitDir = join(workspace.root, '.snapshot.git');
  await execa('git', ['init', '-q', '--bare', gitDir], { env: { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' } });
  await git(['add', '-A'], gitDir, workspace.packageDir);
  await git(['commit', '-q', '--no-verify', '-m', 'before'], gitDir, workspace.packageDir);
  return async () => {
    await git(['add', '-A'], gitDir, workspace.packageDir);
    const { stdout } = await git(['diff', '--cached', '--no-color', '--no-ext-diff', '--no-renames'], gitDir, workspace.packageDir);
    return stdout === '' ? '' : `${stdout}\n`;
  };
}

/** An example's files as `.expected/diff.patch` says they are after rendering (the patch applied to a copy). */
export async function expectedAfterRender(example: string): Promise<Map<string, string>> {
  const workspace = await makeWorkspace(example);
  try {
    const patch = await readFile(expectedPath(example, 'diff.patch'), 'utf8');
    await execa('git', ['apply', '--whitespace=nowarn', '-'], { cwd: workspace.packageDir, input: patch, env: { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' } });
    return await snapshotTree(workspace.packageDir);
  } finally {
    await workspace.cleanup();
  }
}

export interface Outcome {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function runTool(file: string, args: readonly string[], options: { cwd: string; env?: Record<string, string> }): Promise<Outcome> {
  const result = await execa(file, args, { cwd: options.cwd, env: options.env, reject: false, stripFinalNewline: false });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

export function tool(name: string): string {
  const path = findTool(name);
  if (!path) throw new Error(`${name} is not installed`);
  return path;
}

/** `kpt fn render --allow-exec <pkg> --results-dir <dir>`, run from the workspace root. */
export function kptRender(workspace: Workspace, resultsDir: string): Promise<Outcome> {
  return runTool(tool('kpt'), ['fn', 'render', '--allow-exec', workspace.packagePath, '--results-dir', resultsDir], { cwd: workspace.root });
}

/** `kpt fn eval <pkg> --exec <fn> (--fn-config FILE | -- k=v ...) --results-dir <dir>`, run from the workspace root. */
export function kptEval(
  workspace: Workspace,
  resultsDir: string,
  config: { execPath: string; fnConfig?: string | undefined; args?: Record<string, string> | undefined },
): Promise<Outcome> {
  const args = ['fn', 'eval', workspace.packagePath, '--exec', config.execPath, '--results-dir', resultsDir];
  if (config.fnConfig) args.push('--fn-config', config.fnConfig);
  if (config.args) args.push('--', ...Object.entries(config.args).map(([key, value]) => `${key}=${value}`));
  return runTool(tool('kpt'), args, { cwd: workspace.root });
}

/** Standalone `kustomize build --enable-alpha-plugins --enable-exec DIR`. */
export function kustomizeBuild(dir: string): Promise<Outcome> {
  return runTool(tool('kustomize'), ['build', '--enable-alpha-plugins', '--enable-exec', dir], { cwd: dir });
}

/** `kubectl kustomize --enable-alpha-plugins DIR`, its container functions run by podman (the docker shim). */
export function kubectlKustomize(dir: string, dockerLog: string): Promise<Outcome> {
  return runTool(tool('kubectl'), ['kustomize', '--enable-alpha-plugins', dir], {
    cwd: dir,
    env: { PATH: `${DOCKER_SHIM_DIR}:${process.env.PATH ?? ''}`, DOCKER_SHIM_LOG: dockerLog },
  });
}

/** `kpt fn eval <pkg> --image IMAGE` with podman as kpt's container runtime, the image never pulled. */
export function kptEvalImage(
  workspace: Workspace,
  resultsDir: string,
  config: { image: string; fnConfig?: string | undefined; args?: Record<string, string> | undefined },
): Promise<Outcome> {
  const args = ['fn', 'eval', workspace.packagePath, '--image', config.image, '--image-pull-policy', 'never', '--results-dir', resultsDir];
  if (config.fnConfig) args.push('--fn-config', config.fnConfig);
  if (config.args) args.push('--', ...Object.entries(config.args).map(([key, value]) => `${key}=${value}`));
  return runTool(tool('kpt'), args, { cwd: workspace.root, env: { KPT_FN_RUNTIME: 'podman' } });
}

/** The files a kustomization lists under `transformers:`. */
export async function transformerFiles(kustomizationDir: string): Promise<string[]> {
  const doc = parseDocument(await readFile(join(kustomizationDir, 'kustomization.yaml'), 'utf8'));
  const list = doc.toJS()?.transformers;
  return Array.isArray(list) ? list.filter((entry): entry is string => typeof entry === 'string') : [];
}

const FUNCTION_ANNOTATION = 'config.kubernetes.io/function';

/** Rewrites a transformer config's `config.kubernetes.io/function` annotation to run the function's image. */
export async function useContainerTransformer(file: string, image: string = FUNCTION_IMAGE): Promise<void> {
  const doc = parseDocument(await readFile(file, 'utf8'));
  const annotations = doc.getIn(['metadata', 'annotations'], true);
  if (!isMap(annotations) || !annotations.has(FUNCTION_ANNOTATION)) throw new Error(`${file} has no ${FUNCTION_ANNOTATION} annotation`);
  annotations.set(FUNCTION_ANNOTATION, `container:\n  image: ${image}\n`);
  await writeFile(file, doc.toString());
}

/**
 * A kustomization that runs the same transformers again over a previous build's output: the idempotence run.
 * It sits at the same depth as the examples, so relative `exec.path`s still resolve.
 */
export async function makeRerunKustomization(workspace: Workspace, sourceDir: string, output: string, name: string): Promise<string> {
  const dir = join(workspace.root, 'rerun', name);
  await mkdir(dir, { recursive: true });
  const transformers = await transformerFiles(sourceDir);
  for (const file of transformers) await cp(join(sourceDir, file), join(dir, file));
  await writeFile(join(dir, 'previous-output.yaml'), output);
  await writeFile(
    join(dir, 'kustomization.yaml'),
    ['apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization', 'resources:', '- previous-output.yaml', 'transformers:', ...transformers.map((file) => `- ${file}`), ''].join('\n'),
  );
  return dir;
}

/** Compares with an expected file, or (UPDATE_EXPECTED=1) writes it. Returns the expected text. */
export async function expectedOrUpdate(path: string, actual: string): Promise<string> {
  if (UPDATE_EXPECTED) {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, actual);
    return actual;
  }
  return readFile(path, 'utf8');
}

/** kpt's results file, without what varies between machines (none today; kept as the one place to do it). */
export async function readResults(resultsDir: string): Promise<string> {
  return readFile(join(resultsDir, 'results.yaml'), 'utf8');
}
