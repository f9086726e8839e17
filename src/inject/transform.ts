/**
 * The transformer: items and a resolved config in, results out. It plans every item first and changes nothing
 * unless the whole batch is valid, so bad input leaves every item exactly as it came.
 */
import type { ResolvedConfig, ResolvedRepo } from '../config/load.js';
import type { Item } from '../krm/resource-list.js';
import type { KrmResult, ResourceRef } from '../krm/results.js';
import { EditError, type MapHandle } from '../krm/yaml-edit.js';
import { isRecord } from '../krm/yaml-read.js';
import { hasErrors } from '../krm/results.js';
import {
  ANNOTATION_GENERATED_BY,
  ANNOTATION_INJECT,
  ANNOTATION_LOCAL_CONFIG,
  ANNOTATION_REPOS,
  ANNOTATION_STATUS,
  ANNOTATION_TRANSPARENT,
  AGENT_GID,
  CONFIG_API_GROUP,
  CONFIG_KIND,
  VERSION,
} from '../shared/names.js';
import { addedNames, buildAdditions, injectionMode, type Additions, type EnvVar, type InjectionMode } from './additions.js';
import { applyInjection, containerViews, foreignNames, stripInjection, valueAt, volumeNames, type ApplyPlan } from './pod-template.js';
import { conflictsWithTransparentEnv } from './transparent.js';
import { selectorMatches, type Labels } from './selector.js';
import { generatedResources, type Resource } from './generated.js';
import { formatStatus, readStatus, type InjectionStatus } from './status.js';
import { workloadShape } from './workloads.js';

/** Workloads whose pods run to completion: each run is a new pod, with a new per-pod volume. */
function runsToCompletion(kind: string, podTemplate: unknown): boolean {
  if (kind === 'Job' || kind === 'CronJob') return true;
  const restartPolicy = valueAt(podTemplate, ['spec', 'restartPolicy']);
  return kind === 'Pod' && (restartPolicy === 'Never' || restartPolicy === 'OnFailure');
}

/** What to do with one item, decided before anything changes. */
type ItemPlan =
  | { action: 'inject'; context: ItemContext; podTemplate: MapHandle; previous: InjectionStatus | undefined; plan: ApplyPlan; summary: string; namespace: string | undefined }
  | { action: 'remove'; context: ItemContext; podTemplate: MapHandle; previous: InjectionStatus };

interface ItemContext {
  readonly item: Item;
  readonly ref: ResourceRef;
  readonly file: KrmResult['file'];
  readonly templatePath: readonly string[];
}

// Label and annotation maps are read several times per item; the plain data is shared, so convert each once.
const stringRecords = new WeakMap<object, Record<string, string>>();

/** A string map (labels, annotations) as plain own properties: `__proto__` is a key like any other. */
function stringRecord(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  let record = stringRecords.get(value);
  if (!record) {
    record = Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, entry === null ? '' : typeof entry === 'object' ? JSON.stringify(entry) : String(entry)]));
    stringRecords.set(value, record);
  }
  return record;
}

function describeItem(item: Item): { ref: ResourceRef; file: KrmResult['file'] } {
  const text = (path: string[]) => {
    const value = valueAt(item.data, path);
    return typeof value === 'string' ? value : undefined;
  };
  const ref: ResourceRef = {};
  const apiVersion = text(['apiVersion']);
  const kind = text(['kind']);
  const name = text(['metadata', 'name']);
  const namespace = text(['metadata', 'namespace']);
  if (apiVersion) ref.apiVersion = apiVersion;
  if (kind) ref.kind = kind;
  if (name) ref.name = name;
  if (namespace) ref.namespace = namespace;
  const annotations = stringRecord(valueAt(item.data, ['metadata', 'annotations']));
  const path = annotations['internal.config.kubernetes.io/path'] ?? annotations['config.kubernetes.io/path'];
  const index = annotations['internal.config.kubernetes.io/index'] ?? annotations['config.kubernetes.io/index'];
  const file = path ? { path, ...(index !== undefined && /^\d+$/.test(index) ? { index: Number(index) } : {}) } : undefined;
  return { ref, file };
}

function result(context: ItemContext, severity: KrmResult['severity'], message: string, field?: string[]): KrmResult {
  return {
    severity,
    message,
    resourceRef: context.ref,
    ...(field ? { field: { path: field.join('.') } } : {}),
    ...(context.file ? { file: context.file } : {}),
  };
}

/** The workload's subset of repos (annotation `git-cache.dev/repos: "a,b"`), or an error message. */
function reposFor(config: ResolvedConfig, annotation: string | undefined): ResolvedRepo[] | string {
  if (annotation === undefined) return [...config.repos];
  const names = annotation
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  if (names.length === 0) return `${ANNOTATION_REPOS} is empty; list repo names from spec.repos (${config.repos.map((repo) => repo.name).join(', ')})`;
  const unknown = names.filter((name) => !config.repos.some((repo) => repo.name === name));
  if (unknown.length > 0) {
    return `${ANNOTATION_REPOS} names unknown repo(s) ${unknown.join(', ')}; known: ${config.repos.map((repo) => repo.name).join(', ')}`;
  }
  return [...new Set(names)].map((name) => config.repos.find((repo) => repo.name === name) as ResolvedRepo);
}

// What a repo set gets is the same for every workload: build it once per config and repo set.
const additionsCache = new WeakMap<ResolvedConfig, Map<string, Additions>>();

function additionsFor(config: ResolvedConfig, repos: readonly ResolvedRepo[], mode: InjectionMode): Additions {
  let byRepos = additionsCache.get(config);
  if (!byRepos) {
    byRepos = new Map();
    additionsCache.set(config, byRepos);
  }
  const key = `${mode}:${repos.map((repo) => repo.name).join(',')}`;
  let additions = byRepos.get(key);
  if (!additions) {
    additions = buildAdditions(config, repos, mode);
    byRepos.set(key, additions);
  }
  return additions;
}

function planInjection(
  context: ItemContext,
  config: ResolvedConfig,
  podTemplate: MapHandle,
  previous: InjectionStatus | undefined,
  repos: ResolvedRepo[],
  mode: InjectionMode,
  transparent: boolean,
  results: KrmResult[],
): ItemPlan | undefined {
  const specPath = [...context.templatePath, 'spec'];
  const podSpec = podTemplate.map('spec');
  if (!podSpec) {
    results.push(result(context, 'warning', 'selected but its pod template has no spec; left unchanged', specPath));
    return undefined;
  }
  const additions = additionsFor(config, repos, mode);
  const appMountPath = additions.appMount?.mountPath;
  const ours = addedNames(additions);
  const previousContainers = new Set([...(previous?.initContainers ?? []), ...(previous?.containers ?? [])]);
  const previousVolumes = new Set(previous?.volumes ?? []);
  const containers = containerViews(podSpec);
  let conflict = false;

  for (const container of containers) {
    if (ours.containers.includes(container.name) && !previousContainers.has(container.name)) {
      results.push(
        result(context, 'error', `the pod already has a container named "${container.name}", a name git-cache reserves for its own container; rename yours`, [...specPath, container.list]),
      );
      conflict = true;
    }
  }
  for (const name of volumeNames(podSpec)) {
    if (ours.volumes.includes(name) && !previousVolumes.has(name)) {
      results.push(result(context, 'error', `the pod already has a volume named "${name}" that git-cache did not add; rename it`, [...specPath, 'volumes']));
      conflict = true;
    }
  }
  const appContainers = containers.filter((container) => !ours.containers.includes(container.name) && !previousContainers.has(container.name));
  for (const container of appContainers) {
    const clash = appMountPath === undefined ? undefined : container.mounts.find((mount) => mount.mountPath === appMountPath && !previousVolumes.has(mount.name ?? ''));
    if (clash) {
      results.push(
        result(context, 'error', `container "${container.name}" already mounts volume "${clash.name ?? '?'}" at ${appMountPath}; choose another spec.mountPath`, [
          ...specPath,
          container.list,
        ]),
      );
      conflict = true;
    }
  }
  if (conflict) return undefined;

  const appEnv = transparent ? additions.appEnvTransparent : additions.appEnv;
  const envToAdd = new Map<string, EnvVar[]>();
  const userEnv: Record<string, string[]> = {};
  for (const container of appContainers) {
    const previouslyOurs = new Set((previous?.env ?? []).filter((name) => !(previous?.userEnv?.[container.name] ?? []).includes(name)));
    const ownNames = new Set(container.envNames.filter((name) => !previouslyOurs.has(name)));
    const containerPath = [...specPath, `${container.list}[${container.index}]`, 'env'];
    const clashing = transparent ? [...ownNames].filter(conflictsWithTransparentEnv) : [];
    if (clashing.length > 0 && appEnv.some((variable) => conflictsWithTransparentEnv(variable.name))) {
      // git reads one GIT_CONFIG_COUNT list: adding ours would silently drop the container's own entries or ours.
      results.push(
        result(
          context,
          'error',
          `container "${container.name}" sets ${clashing.join(', ')} itself, which transparent mode needs to configure git; ` +
            `move that configuration into a git config file, or turn transparent mode off for this workload (annotation ${ANNOTATION_TRANSPARENT}: "false") or for all (spec.transparent: false)`,
          containerPath,
        ),
      );
      conflict = true;
      continue;
    }
    if (transparent && ownNames.has('GIT_CONFIG_NOSYSTEM') && appEnv.some((variable) => variable.name === 'GIT_CONFIG_SYSTEM')) {
      results.push(
        result(
          context,
          'warning',
          `container "${container.name}" sets GIT_CONFIG_NOSYSTEM: git then skips the system config that lets it read mirrors owned by the cache container's user (safe.directory); clones from the mirror work only if the container runs as UID ${AGENT_GID}`,
          containerPath,
        ),
      );
    }
    const kept = appEnv.filter((variable) => ownNames.has(variable.name)).map((variable) => variable.name);
    if (kept.length > 0) userEnv[container.name] = kept;
    envToAdd.set(container.name, appEnv.filter((variable) => !ownNames.has(variable.name)));
  }
  if (conflict) return undefined;

  const currentFsGroup = podSpec.map('securityContext')?.get('fsGroup') ?? undefined;
  const userHasFsGroup = currentFsGroup !== undefined && !(previous?.fsGroup !== undefined && currentFsGroup === previous.fsGroup);
  const fsGroup = userHasFsGroup ? undefined : AGENT_GID;

  const status: InjectionStatus = {
    version: VERSION,
    mode,
    repos: repos.map((repo) => repo.name),
    initContainers: additions.initContainers.map((container) => container.name),
    containers: additions.containers.map((container) => container.name),
    volumes: ours.volumes,
    env: appEnv.map((variable) => variable.name),
    userEnv,
    ...(fsGroup !== undefined ? { fsGroup } : {}),
  };
  const added = [
    ...status.initContainers.map((name) => `init container ${name}`),
    ...status.containers.map((name) => `container ${name}`),
    ...(status.volumes.length > 0 ? [`volumes ${status.volumes.join(', ')}`] : []),
  ];
  const network = 'no volume: mirrors are read over the network from the node Service';
  const forApps = additions.appMount ? 'read-only mount and env' : appEnv.length > 0 ? `env (${network})` : `nothing (${network})`;
  const summary =
    `injected git-cache (${status.mode}; repos ${status.repos.join(', ')}): ` +
    `${added.length > 0 ? `added ${added.join(', ')}; ` : ''}${forApps} in ${appContainers.map((container) => container.name).join(', ') || 'no other container'}`;
  return {
    action: 'inject',
    context,
    namespace: context.ref.namespace ?? config.namespace,
    podTemplate,
    previous,
    plan: { additions, statusAnnotation: formatStatus(status), envToAdd, fsGroup },
    summary,
  };
}

function planItem(item: Item, config: ResolvedConfig, results: KrmResult[]): ItemPlan | undefined {
  const annotations = stringRecord(valueAt(item.data, ['metadata', 'annotations']));
  if (annotations[ANNOTATION_LOCAL_CONFIG] === 'true') return undefined;
  const apiVersion = valueAt(item.data, ['apiVersion']);
  const kind = valueAt(item.data, ['kind']);
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return undefined;
  if (kind === CONFIG_KIND && apiVersion.startsWith(`${CONFIG_API_GROUP}/`)) return undefined;

  const { ref, file } = describeItem(item);
  const shape = workloadShape(apiVersion, kind, config.spec.workloadKinds);
  const labels: Labels = stringRecord(valueAt(item.data, ['metadata', 'labels']));
  if (!shape) {
    if (selectorMatches(config.selector, labels)) {
      results.push(
        result({ item, ref, file, templatePath: [] }, 'warning', `selected by the git-cache selector but ${kind} is not a workload; left unchanged (name its pod template in spec.workloadKinds to inject it)`),
      );
    }
    return undefined;
  }
  const context: ItemContext = { item, ref, file, templatePath: shape.podTemplatePath };
  const templateLabels: Labels = shape.podTemplatePath.length === 0 ? labels : stringRecord(valueAt(item.data, [...shape.podTemplatePath, 'metadata', 'labels']));
  const selected = selectorMatches(config.selector, labels) || selectorMatches(config.selector, templateLabels);
  const templateData = shape.podTemplatePath.length === 0 ? item.data : valueAt(item.data, shape.podTemplatePath);
  if (!selected && !isRecord(templateData)) return undefined;
  let template: MapHandle | undefined = item.edit;
  for (const step of shape.podTemplatePath) template = template?.map(step);
  if (!template) {
    if (selected) results.push(result(context, 'warning', `selected but has no pod template at ${shape.podTemplatePath.join('.')}; left unchanged`));
    return undefined;
  }
  const templateAnnotations = shape.podTemplatePath.length === 0 ? annotations : stringRecord(valueAt(templateData, ['metadata', 'annotations']));
  const status = readStatus(templateAnnotations[ANNOTATION_STATUS]);
  if (!status.ok) {
    results.push(result(context, 'error', status.message, [...shape.podTemplatePath, 'metadata', 'annotations', ANNOTATION_STATUS]));
    return undefined;
  }
  const foreign = status.status ? foreignNames(status.status) : [];
  if (foreign.length > 0) {
    results.push(
      result(
        context,
        'warning',
        `the ${ANNOTATION_STATUS} annotation lists ${foreign.join(', ')}, which git-cache never injects; left in place (the annotation is stale or was not written by this function)`,
        [...shape.podTemplatePath, 'metadata', 'annotations', ANNOTATION_STATUS],
      ),
    );
  }
  const optedOut = annotations[ANNOTATION_INJECT] === 'false' || templateAnnotations[ANNOTATION_INJECT] === 'false';
  if (!selected || optedOut) {
    if (!status.status) return undefined;
    results.push(result(context, 'info', `removed the git-cache injection: the workload is ${optedOut ? 'opted out' : 'no longer selected'}`, [...shape.podTemplatePath]));
    return { action: 'remove', context, podTemplate: template, previous: status.status };
  }
  const reposAnnotation = templateAnnotations[ANNOTATION_REPOS] ?? annotations[ANNOTATION_REPOS];
  const repos = reposFor(config, reposAnnotation);
  if (typeof repos === 'string') {
    const where = templateAnnotations[ANNOTATION_REPOS] !== undefined ? [...shape.podTemplatePath, 'metadata'] : ['metadata'];
    results.push(result(context, 'error', repos, [...where, 'annotations', ANNOTATION_REPOS]));
    return undefined;
  }
  // A workload without a namespace is taken to go where the config's generated resources go (kpt and kustomize
  // set both, or neither and `kubectl apply -n` puts both in one namespace).
  const mode = injectionMode(config, ref.namespace ?? config.namespace);
  const transparentAnnotation = templateAnnotations[ANNOTATION_TRANSPARENT] ?? annotations[ANNOTATION_TRANSPARENT];
  if (transparentAnnotation !== undefined && transparentAnnotation !== 'true' && transparentAnnotation !== 'false') {
    const where = templateAnnotations[ANNOTATION_TRANSPARENT] !== undefined ? [...shape.podTemplatePath, 'metadata'] : ['metadata'];
    results.push(result(context, 'error', `${ANNOTATION_TRANSPARENT} must be "true" or "false", not "${transparentAnnotation}"`, [...where, 'annotations', ANNOTATION_TRANSPARENT]));
    return undefined;
  }
  // The workload's annotation wins over spec.transparent either way: one workload can opt out, or opt in alone.
  const transparent = transparentAnnotation === undefined ? config.spec.transparent : transparentAnnotation === 'true';
  const plan = planInjection(context, config, template, status.status, repos, mode, transparent, results);
  if (plan?.action !== 'inject') return plan;
  results.push(result(context, 'info', plan.summary, [...shape.podTemplatePath]));
  const oneShot = runsToCompletion(kind, templateData);
  if (mode === 'legacy-sidecar' && oneShot) {
    results.push(
      result(
        context,
        'warning',
        `legacy-sidecar adds a regular git-cache container that keeps running, so this ${kind}'s pods never complete; use mode init, or sidecar on Kubernetes 1.29+`,
        [...shape.podTemplatePath, 'spec', 'containers'],
      ),
    );
  }
  if (mode === 'node-network' && config.spec.networkPolicy.enabled && !selectorMatches(config.selector, templateLabels)) {
    results.push(
      result(
        context,
        'warning',
        `selected through the ${kind}'s own labels, which its pods do not carry: the generated NetworkPolicy admits pods by the selector, so these pods cannot reach the node Service; put the labels on the pod template`,
        [...shape.podTemplatePath, 'metadata', 'labels'],
      ),
    );
  }
  if (oneShot && config.spec.volume.type === 'emptyDir' && !mode.startsWith('node') && mode !== 'keeper') {
    results.push(
      result(
        context,
        'warning',
        `each run of this ${kind} starts with an empty per-pod cache (emptyDir), so every pod mirrors the full history of ${repos.map((repo) => repo.name).join(', ')} before it starts: ` +
          'more time and upstream bytes than a shallow clone. Share one cache: volume.type node (one per node, hostPath) or volume.type pvc with keeper (one per cluster)',
        [...shape.podTemplatePath, 'spec', 'volumes'],
      ),
    );
  }
  return plan;
}

/**
 * Injects the git cache into every selected workload of `items` (in place, on their YAML nodes) and returns
 * the results. When any result is an error, no item has been changed.
 */
export interface InjectionOutcome {
  readonly results: KrmResult[];
  /** Resources to generate (keeper, PVC, monitors); they replace the items `isGenerated` picks. */
  readonly generated: Resource[];
  readonly isGenerated: (item: Item) => boolean;
}

/** A field of the wrong type (or a layout that cannot be edited) as an error result naming its path. */
function editErrorResult(item: Item, error: EditError): KrmResult {
  const { ref, file } = describeItem(item);
  return {
    severity: 'error',
    message: `${error.message}; the item is left unchanged`,
    resourceRef: ref,
    ...(error.path.length > 0 ? { field: { path: error.path.join('.') } } : {}),
    ...(file ? { file } : {}),
  };
}

function guarded<T>(item: Item, results: KrmResult[], step: () => T): T | undefined {
  try {
    return step();
  } catch (error) {
    if (!(error instanceof EditError)) throw error;
    results.push(editErrorResult(item, error));
    return undefined;
  }
}

/**
 * Injects the git cache into every selected workload of `items` (recorded as edits on their handles) and
 * returns the results. When any result is an error, the caller prints every item unchanged.
 */
export function injectGitCache(items: readonly Item[], config: ResolvedConfig): InjectionOutcome {
  const results: KrmResult[] = [];
  const isGenerated = (item: Item) => valueAt(item.data, ['metadata', 'annotations', ANNOTATION_GENERATED_BY]) === config.name;
  const plans = items
    .filter((item) => !isGenerated(item))
    .map((item) => guarded(item, results, () => planItem(item, config, results)))
    .filter((plan): plan is ItemPlan => plan !== undefined);
  const failed = () => ({ results: results.filter((entry) => entry.severity !== 'info'), generated: [], isGenerated: () => false });
  if (hasErrors(results)) return failed();
  for (const plan of plans) {
    guarded(plan.context.item, results, () => {
      if (plan.previous) stripInjection(plan.podTemplate, plan.previous, plan.action === 'remove');
      if (plan.action === 'inject') applyInjection(plan.podTemplate, plan.plan);
    });
  }
  if (hasErrors(results)) return failed();
  const readerNamespaces = new Set(plans.flatMap((plan) => (plan.action === 'inject' ? [plan.namespace] : [])));
  const generated = generatedResources(config, { readerNamespaces });
  for (const resource of generated) {
    const meta = resource.metadata as { name: string; namespace?: string };
    results.push({
      severity: 'info',
      message: `generated ${String(resource.kind)} ${meta.name} for ${config.source}`,
      resourceRef: { apiVersion: String(resource.apiVersion), kind: String(resource.kind), name: meta.name, ...(meta.namespace ? { namespace: meta.namespace } : {}) },
    });
  }
  return { results, generated, isGenerated };
}
