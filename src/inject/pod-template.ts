/**
 * Reading and editing a pod template in place, on the YAML nodes of the parsed document, so that comments,
 * key order and scalar styles of everything else in the item survive. Injection and its undo live side by side
 * here: `stripInjection` removes exactly what an `InjectionStatus` records, `applyInjection` adds `Additions`.
 */
import { Pair, Scalar, YAMLMap, YAMLSeq, isMap, isScalar, isSeq, type Node } from 'yaml';
import { newYamlDocument, prerenderedSeqItem } from '../krm/yaml-io.js';
import { ANNOTATION_STATUS } from '../shared/names.js';
import type { Additions, CacheContainer, EnvVar, Volume, VolumeMount } from './additions.js';
import type { InjectionStatus } from './status.js';

const nodeFactory = newYamlDocument();

function toNode(value: unknown): Node {
  return nodeFactory.createNode(value) as Node;
}

/** The map at `key`, optionally creating it (before `before`, when that key exists, for readable output). */
export function mapAt(parent: YAMLMap, key: string, create = false, before?: string): YAMLMap | undefined {
  const node = parent.get(key, true);
  if (isMap(node)) return node as YAMLMap;
  if (!create) return undefined;
  return insertBefore(parent, key, node, new YAMLMap(), before);
}

/** The sequence at `key`, optionally creating it (before `before`, when that key exists, for readable output). */
export function seqAt(parent: YAMLMap, key: string, create = false, before?: string): YAMLSeq | undefined {
  const node = parent.get(key, true);
  if (isSeq(node)) return node as YAMLSeq;
  if (!create) return undefined;
  return insertBefore(parent, key, node, new YAMLSeq(), before);
}

function insertBefore<T extends YAMLMap | YAMLSeq>(parent: YAMLMap, key: string, existing: unknown, created: T, before: string | undefined): T {
  const index = before === undefined ? -1 : parent.items.findIndex((pair) => scalarValue(pair.key) === before);
  if (existing === undefined && index >= 0) {
    // A comment above a map's first key belongs to the map in yaml's tree; keep it with that key, not above the
    // key inserted before it.
    const firstKey = parent.items[0]?.key;
    if (index === 0 && parent.commentBefore && isScalar(firstKey)) {
      firstKey.commentBefore = firstKey.commentBefore ? `${parent.commentBefore}\n${firstKey.commentBefore}` : parent.commentBefore;
      parent.commentBefore = undefined;
    }
    parent.items.splice(index, 0, new Pair(new Scalar(key), created));
  } else parent.set(key, created);
  return created;
}

function scalarValue(node: unknown): unknown {
  return isScalar(node) ? node.value : node;
}

/** The plain value at a path of map keys, or undefined. */
export function valueAt(node: YAMLMap, path: readonly string[]): unknown {
  const value = node.getIn(path, true);
  if (value === undefined || value === null) return undefined;
  if (isScalar(value)) return value.value;
  return (value as Node).toJSON();
}

export function nameOf(node: unknown): string | undefined {
  if (!isMap(node)) return undefined;
  const name = scalarValue(node.get('name', true));
  return typeof name === 'string' ? name : undefined;
}

/** A container of the pod spec, with what injection needs to know about it. */
export interface ContainerView {
  readonly node: YAMLMap;
  readonly name: string;
  readonly list: 'initContainers' | 'containers';
  readonly envNames: readonly string[];
  readonly mounts: readonly { name: string | undefined; mountPath: unknown }[];
}

export function containerViews(podSpec: YAMLMap): ContainerView[] {
  const lists = ['initContainers', 'containers'] as const;
  return lists.flatMap((list) =>
    (seqAt(podSpec, list)?.items ?? []).filter(isMap).map((node) => {
      const container = node as YAMLMap;
      return {
        node: container,
        name: nameOf(container) ?? '',
        list,
        envNames: (seqAt(container, 'env')?.items ?? []).map(nameOf).filter((name): name is string => name !== undefined),
        mounts: (seqAt(container, 'volumeMounts')?.items ?? [])
          .filter(isMap)
          .map((mount) => ({ name: nameOf(mount), mountPath: scalarValue((mount as YAMLMap).get('mountPath', true)) })),
      };
    }),
  );
}

export function volumeNames(podSpec: YAMLMap): string[] {
  return (seqAt(podSpec, 'volumes')?.items ?? []).map(nameOf).filter((name): name is string => name !== undefined);
}

function removeNamed(seq: YAMLSeq | undefined, shouldRemove: (name: string) => boolean): void {
  if (!seq) return;
  seq.items = seq.items.filter((item) => {
    const name = nameOf(item);
    return name === undefined || !shouldRemove(name);
  });
}

function deleteEmpty(parent: YAMLMap, key: string): void {
  const node = parent.get(key, true);
  if ((isSeq(node) || isMap(node)) && node.items.length === 0) parent.delete(key);
}

/**
 * Removes exactly what `status` says injection added, leaving everything of the user's in place. With `prune`
 * false (before injecting again) the lists and maps that became empty stay where they are, so that injecting
 * refills them in place: pruning would move `securityContext: {}` or `annotations: {}` that the user wrote (as
 * Helm charts do) to the end of their map, and a second run would no longer equal the first.
 */
export function stripInjection(podTemplate: YAMLMap, status: InjectionStatus, prune = true): void {
  const deleteIfEmpty = (parent: YAMLMap, key: string) => {
    if (prune) deleteEmpty(parent, key);
  };
  const spec = mapAt(podTemplate, 'spec');
  if (spec) {
    removeNamed(seqAt(spec, 'initContainers'), (name) => status.initContainers.includes(name));
    removeNamed(seqAt(spec, 'containers'), (name) => status.containers.includes(name));
    removeNamed(seqAt(spec, 'volumes'), (name) => status.volumes.includes(name));
    for (const container of containerViews(spec)) {
      const kept = status.userEnv?.[container.name] ?? [];
      removeNamed(seqAt(container.node, 'volumeMounts'), (name) => status.volumes.includes(name));
      removeNamed(seqAt(container.node, 'env'), (name) => status.env.includes(name) && !kept.includes(name));
      deleteIfEmpty(container.node, 'volumeMounts');
      deleteIfEmpty(container.node, 'env');
    }
    deleteIfEmpty(spec, 'initContainers');
    deleteIfEmpty(spec, 'volumes');
    const securityContext = mapAt(spec, 'securityContext');
    if (securityContext && status.fsGroup !== undefined && scalarValue(securityContext.get('fsGroup', true)) === status.fsGroup) {
      securityContext.delete('fsGroup');
      deleteIfEmpty(spec, 'securityContext');
    }
  }
  const metadata = mapAt(podTemplate, 'metadata');
  const annotations = metadata && mapAt(metadata, 'annotations');
  if (metadata && annotations) {
    annotations.delete(ANNOTATION_STATUS);
    deleteIfEmpty(metadata, 'annotations');
    deleteIfEmpty(podTemplate, 'metadata');
  }
}

/** Secret modes are decimal in YAML (octal literals differ between YAML 1.1 and 1.2); say the octal beside it. */
// Additions are built once per repo set and shared by every workload that gets them (see transform.ts), so
// their JSON, the key of their pre-rendered text, is computed once per object too.
const contentKeys = new WeakMap<object, string>();

function contentKey(value: object): string {
  let key = contentKeys.get(value);
  if (key === undefined) {
    key = JSON.stringify(value);
    contentKeys.set(value, key);
  }
  return key;
}

function volumeNode(volume: Volume): Node {
  return prerenderedSeqItem(contentKey(volume), () => {
    const node = toNode(volume) as YAMLMap;
    const mode = node.getIn(['secret', 'defaultMode'], true);
    if (isScalar(mode) && typeof mode.value === 'number') mode.comment = ` 0${mode.value.toString(8)}`;
    return node;
  });
}

function containerNode(container: CacheContainer): Node {
  return prerenderedSeqItem(contentKey(container), () => toNode(container));
}

/** Pre-rendered items print only in block sequences (`- item` lines), so a flow `[]` becomes block. */
function blockSeq(seq: YAMLSeq): YAMLSeq {
  seq.flow = false;
  return seq;
}

export interface ApplyPlan {
  readonly additions: Additions;
  /** The formatted git-cache.dev/status annotation. */
  readonly statusAnnotation: string;
  /** Per container name, env var names to add (those the container does not define itself). */
  readonly envToAdd: ReadonlyMap<string, readonly EnvVar[]>;
  readonly fsGroup: number | undefined;
}

/** Adds the cache container(s), volumes, read-only mounts, env vars and the status annotation. */
export function applyInjection(podTemplate: YAMLMap, plan: ApplyPlan): void {
  const { additions } = plan;
  const spec = mapAt(podTemplate, 'spec', true) as YAMLMap;
  const ownContainers = new Set([...additions.initContainers, ...additions.containers].map((container) => container.name));

  for (const container of containerViews(spec)) {
    if (ownContainers.has(container.name)) continue;
    const env = plan.envToAdd.get(container.name) ?? [];
    if (env.length > 0) {
      const envSeq = seqAt(container.node, 'env', true) as YAMLSeq;
      for (const variable of env) blockSeq(envSeq).items.push(prerenderedSeqItem(contentKey(variable), () => toNode(variable)));
    }
    const mount: VolumeMount | undefined = additions.appMount;
    if (mount) blockSeq(seqAt(container.node, 'volumeMounts', true) as YAMLSeq).items.push(prerenderedSeqItem(contentKey(mount), () => toNode(mount)));
  }

  if (additions.initContainers.length > 0) {
    const initContainers = seqAt(spec, 'initContainers', true, 'containers') as YAMLSeq;
    blockSeq(initContainers).items.unshift(...additions.initContainers.map(containerNode));
  }
  if (additions.containers.length > 0) {
    blockSeq(seqAt(spec, 'containers', true) as YAMLSeq).items.push(...additions.containers.map(containerNode));
  }
  if (additions.volumes.length > 0) blockSeq(seqAt(spec, 'volumes', true) as YAMLSeq).items.push(...additions.volumes.map(volumeNode));

  if (plan.fsGroup !== undefined) (mapAt(spec, 'securityContext', true) as YAMLMap).set('fsGroup', plan.fsGroup);

  const metadata = mapAt(podTemplate, 'metadata', true, 'spec') as YAMLMap;
  (mapAt(metadata, 'annotations', true) as YAMLMap).set(ANNOTATION_STATUS, plan.statusAnnotation);
}
