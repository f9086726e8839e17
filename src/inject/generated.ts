/**
 * Resources the function generates besides injecting: with `keeper`, the shared ReadWriteMany PVC, the keeper
 * Deployment (the only writer and credential holder) and its Service; with `monitoring`, a PodMonitor and/or a
 * ServiceMonitor. Pure: config in, resources out. Each carries `git-cache.dev/generated-by: <config name>`, so
 * a later run replaces exactly these and removes them when the config no longer asks for them.
 */
import type { ResolvedConfig } from '../config/load.js';
import {
  AGENT_GID,
  ANNOTATION_GENERATED_BY,
  CACHE_CONTAINER_NAME,
  DEFAULT_GIT_DAEMON_PORT,
  DEFAULT_PVC_SIZE,
  DEFAULT_REFRESH_PORT,
  REFRESH_PORT_NAME,
  GIT_DAEMON_PORT_NAME,
  MANAGED_BY,
  METRICS_PORT_NAME,
  VERSION,
} from '../shared/names.js';
import { cacheContainer, cacheVolumes } from './additions.js';

export type Resource = Record<string, unknown>;

/** Where kpt writes generated resources in the package: one file, one document each (kustomize ignores these). */
const KPT_PATH_ANNOTATION = 'internal.config.kubernetes.io/path';
const KPT_INDEX_ANNOTATION = 'internal.config.kubernetes.io/index';

function labels(config: ResolvedConfig, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'git-cache',
    'app.kubernetes.io/instance': config.name,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/version': VERSION,
    'app.kubernetes.io/managed-by': MANAGED_BY,
  };
}

function selectorLabels(config: ResolvedConfig, component: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'git-cache', 'app.kubernetes.io/instance': config.name, 'app.kubernetes.io/component': component };
}

function metadata(config: ResolvedConfig, name: string, component: string): Resource {
  return {
    name,
    ...(config.namespace ? { namespace: config.namespace } : {}),
    labels: labels(config, component),
    annotations: { [ANNOTATION_GENERATED_BY]: config.name, [KPT_PATH_ANNOTATION]: `${config.name}-generated.yaml` },
  };
}

function keeperResources(config: ResolvedConfig): Resource[] {
  const keeper = config.spec.keeper;
  if (!keeper?.enabled) return [];
  const { volume } = config.spec;
  const gitDaemonPort = keeper.gitDaemon ? DEFAULT_GIT_DAEMON_PORT : undefined;
  const container = cacheContainer(config, config.repos, {
    name: CACHE_CONTAINER_NAME,
    command: 'serve',
    longRunning: true,
    gitDaemonPort,
    refreshPort: DEFAULT_REFRESH_PORT,
  });
  const pvc: Resource = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: metadata(config, volume.claimName, 'cache'),
    spec: {
      accessModes: ['ReadWriteMany'],
      ...(volume.storageClassName ? { storageClassName: volume.storageClassName } : {}),
      resources: { requests: { storage: volume.size ?? DEFAULT_PVC_SIZE } },
    },
  };
  const deployment: Resource = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(config, keeper.name, 'keeper'),
    spec: {
      replicas: 1,
      // Never two keepers at once during a rollout: one writer per volume is the design.
      strategy: { type: 'Recreate' },
      selector: { matchLabels: selectorLabels(config, 'keeper') },
      template: {
        metadata: { labels: labels(config, 'keeper') },
        spec: {
          automountServiceAccountToken: false,
          securityContext: { fsGroup: AGENT_GID, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [container],
          volumes: cacheVolumes(config, config.repos),
        },
      },
    },
  };
  const service: Resource = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(config, keeper.name, 'keeper'),
    spec: {
      selector: selectorLabels(config, 'keeper'),
      ports: [
        { name: METRICS_PORT_NAME, port: config.spec.metricsPort, targetPort: METRICS_PORT_NAME, protocol: 'TCP' },
        // Selected pods ask the keeper for a refresh here (GIT_CACHE_ENDPOINT); it serves only requests that
        // carry the token on the cache volume, which only pods that mount the volume can read.
        { name: REFRESH_PORT_NAME, port: DEFAULT_REFRESH_PORT, targetPort: REFRESH_PORT_NAME, protocol: 'TCP' },
        ...(gitDaemonPort !== undefined ? [{ name: GIT_DAEMON_PORT_NAME, port: gitDaemonPort, targetPort: GIT_DAEMON_PORT_NAME, protocol: 'TCP' }] : []),
      ],
    },
  };
  return [pvc, deployment, service];
}

function monitoringResources(config: ResolvedConfig): Resource[] {
  const monitoring = config.spec.monitoring;
  const resources: Resource[] = [];
  const endpoint = { port: METRICS_PORT_NAME, path: '/metrics', interval: '30s' };
  if (monitoring?.podMonitor && !config.spec.keeper?.enabled) {
    // Selects pods by the same selector as injection; pods selected only through their workload's own labels
    // (not the pod template's) carry no such label and are not scraped: label the pod template too.
    resources.push({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PodMonitor',
      metadata: metadata(config, config.name, 'monitoring'),
      spec: { selector: config.selector, podMetricsEndpoints: [endpoint], ...(config.namespace ? {} : { namespaceSelector: { any: true } }) },
    });
  }
  if (monitoring?.serviceMonitor && config.spec.keeper?.enabled) {
    resources.push({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: metadata(config, config.spec.keeper.name, 'monitoring'),
      spec: { selector: { matchLabels: selectorLabels(config, 'keeper') }, endpoints: [endpoint] },
    });
  }
  return resources;
}

export function generatedResources(config: ResolvedConfig): Resource[] {
  const resources = [...keeperResources(config), ...monitoringResources(config)];
  resources.forEach((resource, index) => {
    ((resource.metadata as Resource).annotations as Record<string, string>)[KPT_INDEX_ANNOTATION] = String(index);
  });
  return resources;
}
