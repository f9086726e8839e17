/**
 * Reading and editing a pod template in place, through the editing handles of src/krm/yaml-edit.ts, so that
 * every line of the item that injection does not touch (comments, key order, styles, tags) stays as it was, in
 * block, flow or JSON style alike. Injection and its undo live side by side here: `stripInjection` removes what
 * an `InjectionStatus` records (only names the function itself injects), `applyInjection` adds `Additions`.
 *
 * A field of the wrong type on the way (`containers` as a mapping, `env` as a string) throws an EditError
 * naming its path; nothing is replaced.
 */
import type { MapHandle } from '../krm/yaml-edit.js';
import { isRecord } from '../krm/yaml-read.js';
import { ANNOTATION_STATUS, isInjectedContainerName, isInjectedEnvName, isInjectedVolumeName } from '../shared/names.js';
import type { Additions, EnvVar } from './additions.js';
import type { InjectionStatus } from './status.js';

/** The plain value at a path of map keys (own keys only, so `__proto__` is a key like any other), or undefined. */
export function valueAt(data: unknown, path: readonly string[]): unknown {
  let value = data;
  for (const key of path) {
    if (!isRecord(value) || !Object.hasOwn(value, key)) return undefined;
    value = value[key];
  }
  return value === null ? undefined : value;
}

export function nameOf(value: unknown): string | undefined {
  if (!isRecord(value)) return undefined;
  const name = Object.hasOwn(value, 'name') ? value.name : undefined;
  return typeof name === 'string' ? name : undefined;
}

function namesOf(list: unknown): string[] {
  return Array.isArray(list) ? list.map(nameOf).filter((name): name is string => name !== undefined) : [];
}

/** A container of the pod spec, with what injection needs to know about it. */
export interface ContainerView {
  readonly handle: MapHandle;
  readonly name: string;
  readonly list: 'initContainers' | 'containers';
  /** Position in its list, for field paths (`containers[1].env`). */
  readonly index: number;
  readonly envNames: readonly string[];
  readonly mounts: readonly { name: string | undefined; mountPath: unknown }[];
}

export function containerViews(podSpec: MapHandle): ContainerView[] {
  const lists = ['initContainers', 'containers'] as const;
  return lists.flatMap((list) =>
    (podSpec.seq(list)?.entries() ?? []).flatMap((entry, index): ContainerView[] => {
      const handle = entry.map();
      if (!handle) return [];
      const container = entry.value as Record<string, unknown>;
      const mounts = valueAt(container, ['volumeMounts']);
      return [
        {
          handle,
          name: nameOf(container) ?? `${list}[${index}]`,
          list,
          index,
          envNames: namesOf(valueAt(container, ['env'])),
          mounts: (Array.isArray(mounts) ? mounts : []).filter(isRecord).map((mount) => ({ name: nameOf(mount), mountPath: valueAt(mount, ['mountPath']) })),
        },
      ];
    }),
  );
}

export function volumeNames(podSpec: MapHandle): string[] {
  return (podSpec.seq('volumes')?.entries() ?? []).map((entry) => nameOf(entry.value)).filter((name): name is string => name !== undefined);
}

function deleteIfEmpty(parent: MapHandle, key: string, kind: 'map' | 'seq'): void {
  const child = kind === 'map' ? parent.map(key) : parent.seq(key);
  if (child && child.size === 0) parent.delete(key);
}

/** The names a status annotation lists that the function would never inject: those are left alone. */
export function foreignNames(status: InjectionStatus): string[] {
  return [
    ...[...status.initContainers, ...status.containers].filter((name) => !isInjectedContainerName(name)),
    ...status.volumes.filter((name) => !isInjectedVolumeName(name)),
    ...status.env.filter((name) => !isInjectedEnvName(name)),
  ];
}

/**
 * Removes what `status` says injection added, leaving everything of the user's in place: only names the
 * function itself injects are removed, whatever the annotation claims. With `prune` false (before injecting
 * again) the lists and maps that became empty stay where they are, so that injecting refills them in place and
 * a second run equals the first.
 */
export function stripInjection(podTemplate: MapHandle, status: InjectionStatus, prune = true): void {
  const ours = (names: readonly string[], isInjected: (name: string) => boolean) => (value: unknown) => {
    const name = nameOf(value);
    return name !== undefined && names.includes(name) && isInjected(name);
  };
  const spec = podTemplate.map('spec');
  if (spec) {
    spec.seq('initContainers')?.removeWhere(ours(status.initContainers, isInjectedContainerName));
    spec.seq('containers')?.removeWhere(ours(status.containers, isInjectedContainerName));
    spec.seq('volumes')?.removeWhere(ours(status.volumes, isInjectedVolumeName));
    for (const container of containerViews(spec)) {
      const kept = status.userEnv?.[container.name] ?? [];
      container.handle.seq('volumeMounts')?.removeWhere(ours(status.volumes, isInjectedVolumeName));
      container.handle.seq('env')?.removeWhere(
        ours(
          status.env.filter((name) => !kept.includes(name)),
          isInjectedEnvName,
        ),
      );
      if (prune) {
        deleteIfEmpty(container.handle, 'volumeMounts', 'seq');
        deleteIfEmpty(container.handle, 'env', 'seq');
      }
    }
    if (prune) {
      deleteIfEmpty(spec, 'initContainers', 'seq');
      deleteIfEmpty(spec, 'volumes', 'seq');
    }
    const securityContext = spec.map('securityContext');
    if (securityContext && status.fsGroup !== undefined && securityContext.get('fsGroup') === status.fsGroup) {
      securityContext.delete('fsGroup');
      if (prune) deleteIfEmpty(spec, 'securityContext', 'map');
    }
  }
  const metadata = podTemplate.map('metadata');
  const annotations = metadata?.map('annotations');
  if (metadata && annotations?.has(ANNOTATION_STATUS)) {
    annotations.delete(ANNOTATION_STATUS);
    if (prune) {
      deleteIfEmpty(metadata, 'annotations', 'map');
      if (metadata.size === 0) podTemplate.delete('metadata');
    }
  }
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
export function applyInjection(podTemplate: MapHandle, plan: ApplyPlan): void {
  const { additions } = plan;
  const spec = podTemplate.map('spec', true) as MapHandle;
  const ownContainers = new Set([...additions.initContainers, ...additions.containers].map((container) => container.name));

  for (const container of containerViews(spec)) {
    if (ownContainers.has(container.name)) continue;
    const env = plan.envToAdd.get(container.name) ?? [];
    if (env.length > 0) container.handle.seq('env', true)?.push(...env);
    if (additions.appMount) container.handle.seq('volumeMounts', true)?.push(additions.appMount);
  }
  if (additions.initContainers.length > 0) spec.seq('initContainers', true, 'containers')?.unshift(...additions.initContainers);
  if (additions.containers.length > 0) spec.seq('containers', true)?.push(...additions.containers);
  if (additions.volumes.length > 0) spec.seq('volumes', true)?.push(...additions.volumes);
  if (plan.fsGroup !== undefined) spec.map('securityContext', true)?.set('fsGroup', plan.fsGroup);
  podTemplate.map('metadata', true, 'spec')?.map('annotations', true)?.set(ANNOTATION_STATUS, plan.statusAnnotation);
}
