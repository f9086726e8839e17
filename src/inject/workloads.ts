/**
 * Which resources are workloads, and where their pod template lives.
 */
import type { WorkloadKind } from '../config/schema.js';

export interface WorkloadShape {
  /** Path from the resource to its pod template (`metadata` + `spec`); empty for a Pod, which is its own. */
  readonly podTemplatePath: readonly string[];
}

interface BuiltinWorkload {
  readonly kind: string;
  /** API groups the kind is served from (`''` is the core group). */
  readonly groups: readonly string[];
  readonly podTemplatePath: readonly string[];
}

const TEMPLATE = ['spec', 'template'];

export const BUILTIN_WORKLOADS: readonly BuiltinWorkload[] = [
  { kind: 'Pod', groups: [''], podTemplatePath: [] },
  { kind: 'Deployment', groups: ['apps', 'extensions'], podTemplatePath: TEMPLATE },
  { kind: 'StatefulSet', groups: ['apps'], podTemplatePath: TEMPLATE },
  { kind: 'DaemonSet', groups: ['apps', 'extensions'], podTemplatePath: TEMPLATE },
  { kind: 'ReplicaSet', groups: ['apps', 'extensions'], podTemplatePath: TEMPLATE },
  { kind: 'ReplicationController', groups: [''], podTemplatePath: TEMPLATE },
  { kind: 'Job', groups: ['batch'], podTemplatePath: TEMPLATE },
  { kind: 'CronJob', groups: ['batch'], podTemplatePath: ['spec', 'jobTemplate', 'spec', 'template'] },
];

export function apiGroup(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** The workload shape of a resource, or undefined when it is not a workload this function knows. */
export function workloadShape(apiVersion: string, kind: string, customKinds: readonly WorkloadKind[]): WorkloadShape | undefined {
  const custom = customKinds.find((entry) => entry.kind === kind && (entry.apiVersion === undefined || entry.apiVersion === apiVersion));
  if (custom) return { podTemplatePath: custom.podTemplatePath.split('/') };
  const group = apiGroup(apiVersion);
  const builtin = BUILTIN_WORKLOADS.find((entry) => entry.kind === kind && entry.groups.includes(group));
  return builtin ? { podTemplatePath: builtin.podTemplatePath } : undefined;
}
