/**
 * Validates Kubernetes objects against the OpenAPI schema of Kubernetes v1.33.0, with the validators that the
 * npm package `kubernetes-models` 4.5.1 compiles (ajv) from the published OpenAPI document of that release
 * (its changelog: 4.5.0 "Update schema version to v1.33.0"; it carries 1.33 fields such as
 * `Lifecycle.stopSignal` and none of 1.34 such as `PodSpec.hostnameOverride`).
 *
 * What this does and does not prove: types, required fields, enums and formats of every field the schema
 * knows (including native sidecars, `restartPolicy: Always` on an init container, GA since 1.29/1.33). Like
 * the API server without `fieldValidation=Strict`, the OpenAPI schema lets unknown fields through, and the
 * API server's own semantic validation (name formats, unique container names) is not part of it.
 */
import { Pod } from 'kubernetes-models/v1/Pod';
import { ReplicationController } from 'kubernetes-models/v1/ReplicationController';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { Secret } from 'kubernetes-models/v1/Secret';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { ReplicaSet } from 'kubernetes-models/apps/v1/ReplicaSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';

/** The Kubernetes release whose OpenAPI schema the validators come from. */
export const KUBERNETES_SCHEMA_VERSION = 'v1.33.0';

interface Validatable {
  validate(): void;
}

type ModelFactory = (data: Record<string, unknown>) => Validatable;

// The models' constructors take the object without apiVersion/kind (they set those themselves).
function factory<T>(Model: new (data: T) => Validatable): ModelFactory {
  return (data) => {
    const { apiVersion: _apiVersion, kind: _kind, ...rest } = data;
    return new Model(rest as T);
  };
}

const MODELS: Readonly<Record<string, ModelFactory>> = {
  'v1/Pod': factory(Pod),
  'v1/ReplicationController': factory(ReplicationController),
  'v1/ConfigMap': factory(ConfigMap),
  'v1/Service': factory(Service),
  'v1/Secret': factory(Secret),
  'v1/PersistentVolumeClaim': factory(PersistentVolumeClaim),
  'apps/v1/Deployment': factory(Deployment),
  'apps/v1/StatefulSet': factory(StatefulSet),
  'apps/v1/DaemonSet': factory(DaemonSet),
  'apps/v1/ReplicaSet': factory(ReplicaSet),
  'batch/v1/Job': factory(Job),
  'batch/v1/CronJob': factory(CronJob),
  'networking.k8s.io/v1/NetworkPolicy': factory(NetworkPolicy),
};

export function hasKubernetesSchema(apiVersion: unknown, kind: unknown): boolean {
  return `${String(apiVersion)}/${String(kind)}` in MODELS;
}

/**
 * The schema violations of a Kubernetes object (empty when valid). Throws for a kind this helper has no
 * schema for, so a test can never pass by validating nothing.
 */
export function kubernetesSchemaErrors(object: unknown): string[] {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) return ['not an object'];
  const data = object as Record<string, unknown>;
  const model = MODELS[`${String(data.apiVersion)}/${String(data.kind)}`];
  if (!model) throw new Error(`no Kubernetes ${KUBERNETES_SCHEMA_VERSION} schema here for ${String(data.apiVersion)} ${String(data.kind)}`);
  return collect(() => model(data).validate());
}

/** The schema violations of a pod template (`metadata` + `spec`), e.g. the one a custom workload kind holds. */
export function podTemplateSchemaErrors(template: unknown): string[] {
  return collect(() => new PodTemplateSpec(template as ConstructorParameters<typeof PodTemplateSpec>[0]).validate());
}

function collect(validate: () => void): string[] {
  try {
    validate();
    return [];
  } catch (error) {
    return [(error as Error).message];
  }
}
