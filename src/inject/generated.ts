/**
 * Resources the function generates besides injecting:
 * - with `keeper`, the keeper's PVC (ReadWriteMany when pods share it; ReadWriteOnce when it is the tier of node
 *   mode), the keeper Deployment (the only writer and credential holder) and its Service;
 * - with `volume.type: node`, the node DaemonSet (one writer per node, on a hostPath) and its Service
 *   (`internalTrafficPolicy: Local`: a pod reaches its own node's agent);
 * - NetworkPolicies for both: only selected pods of the reader namespaces reach the mirrors, the monitoring
 *   namespaces reach the metrics port;
 * - with `monitoring`, a PodMonitor and/or a ServiceMonitor.
 * Pure: config and reader namespaces in, resources out. Each carries `git-cache.dev/generated-by: <config
 * name>`, so a later run replaces exactly these and removes them when the config no longer asks for them.
 */
import type { ResolvedConfig } from '../config/load.js';
import type { LabelSelector } from '../config/schema.js';
import {
  AGENT_GID,
  AGENT_UID,
  ANNOTATION_GENERATED_BY,
  CACHE_CONTAINER_NAME,
  DEFAULT_GIT_DAEMON_PORT,
  DEFAULT_PVC_SIZE,
  DEFAULT_REFRESH_PORT,
  REFRESH_PORT_NAME,
  GIT_DAEMON_PORT_NAME,
  MANAGED_BY,
  METRICS_PORT_NAME,
  NAMESPACE_NAME_LABEL,
  VERSION,
  VOLUME_NAME,
  VOLUME_OWNER_CONTAINER_NAME,
  gitDaemonBaseUrl,
  serviceHost,
} from '../shared/names.js';
import { CACHE_CONTAINER_SECURITY_CONTEXT, cacheContainer, nodeAgentVolumes, writerVolumes } from './additions.js';

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

/** What the generated NetworkPolicies need to know besides the config: where the readers are. */
export interface GenerationInput {
  /**
   * Namespaces of the workloads this run injected (undefined: no namespace is known for some of them, so they
   * are taken to be in the namespace the policies go to).
   */
  readonly readerNamespaces: ReadonlySet<string | undefined>;
}

/** The keeper serves the node agents as their tier in node mode: always with its git daemon there. */
function keeperGitDaemonPort(config: ResolvedConfig): number | undefined {
  return config.spec.keeper?.gitDaemon || config.node ? DEFAULT_GIT_DAEMON_PORT : undefined;
}

/** `git://<keeper>.<namespace>.svc`: the tier node agents fetch from when the config has a keeper. */
export function keeperTierUrl(config: ResolvedConfig): string | undefined {
  const keeper = config.spec.keeper;
  if (!keeper?.enabled || !config.node || config.namespace === undefined) return undefined;
  return gitDaemonBaseUrl(serviceHost(keeper.name, config.namespace));
}

function servicePorts(config: ResolvedConfig, gitDaemonPort: number | undefined): Resource[] {
  return [
    { name: METRICS_PORT_NAME, port: config.spec.metricsPort, targetPort: METRICS_PORT_NAME, protocol: 'TCP' },
    // Selected pods that mount the cache ask for a refresh here (GIT_CACHE_ENDPOINT); the agent serves only
    // requests that carry the token on the cache volume, which only pods that mount the volume can read.
    { name: REFRESH_PORT_NAME, port: DEFAULT_REFRESH_PORT, targetPort: REFRESH_PORT_NAME, protocol: 'TCP' },
    ...(gitDaemonPort !== undefined ? [{ name: GIT_DAEMON_PORT_NAME, port: gitDaemonPort, targetPort: GIT_DAEMON_PORT_NAME, protocol: 'TCP' }] : []),
  ];
}

function keeperResources(config: ResolvedConfig): Resource[] {
  const keeper = config.spec.keeper;
  if (!keeper?.enabled) return [];
  const { volume } = config.spec;
  const gitDaemonPort = keeperGitDaemonPort(config);
  const container = cacheContainer(config, config.repos, {
    name: CACHE_CONTAINER_NAME,
    command: 'serve',
    longRunning: true,
    gitDaemonPort,
    upstreamCache: config.spec.upstreamCache,
    refreshPort: DEFAULT_REFRESH_PORT,
  });
  const pvc: Resource = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: metadata(config, volume.claimName, 'cache'),
    spec: {
      // Pods mount a shared claim read-only on many nodes; the tier of node mode is mounted by the keeper alone.
      accessModes: [config.node ? 'ReadWriteOnce' : 'ReadWriteMany'],
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
          volumes: writerVolumes(config, config.repos),
        },
      },
    },
  };
  const service: Resource = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(config, keeper.name, 'keeper'),
    spec: { selector: selectorLabels(config, 'keeper'), ports: servicePorts(config, gitDaemonPort) },
  };
  return [pvc, deployment, service];
}

/**
 * The node agent's first step: the kubelet creates a missing hostPath directory root-owned, mode 0755, and
 * fsGroup does not apply to hostPath, so the non-root agent could not write it. `install -d` (coreutils in the
 * agent image) hands the directory itself (not its contents) to the agent's UID, as root with only CHOWN and
 * FOWNER, and makes it world-readable for readers of any UID.
 */
function volumeOwnerContainer(config: ResolvedConfig): Resource {
  return {
    name: VOLUME_OWNER_CONTAINER_NAME,
    image: config.image,
    ...(config.spec.imagePullPolicy ? { imagePullPolicy: config.spec.imagePullPolicy } : {}),
    command: ['install', '-d', '-o', String(AGENT_UID), '-g', String(AGENT_GID), '-m', '0755', config.spec.mountPath],
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
    securityContext: {
      ...structuredClone(CACHE_CONTAINER_SECURITY_CONTEXT),
      runAsNonRoot: false,
      runAsUser: 0,
      runAsGroup: 0,
      capabilities: { drop: ['ALL'], add: ['CHOWN', 'FOWNER'] },
    },
    volumeMounts: [{ name: VOLUME_NAME, mountPath: config.spec.mountPath }],
  };
}

function nodeResources(config: ResolvedConfig): Resource[] {
  const node = config.node;
  if (!node) return [];
  const gitDaemonPort = node.serve ? DEFAULT_GIT_DAEMON_PORT : undefined;
  const container = cacheContainer(config, config.repos, {
    name: CACHE_CONTAINER_NAME,
    command: 'serve',
    longRunning: true,
    gitDaemonPort,
    upstreamCache: keeperTierUrl(config) ?? config.spec.upstreamCache,
    refreshPort: DEFAULT_REFRESH_PORT,
  });
  const daemonSet: Resource = {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: metadata(config, node.name, 'node'),
    spec: {
      selector: { matchLabels: selectorLabels(config, 'node') },
      // One agent per node at a time is not required for correctness (agents lock per repo), but one is enough.
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: node.maxUnavailable } },
      template: {
        metadata: { labels: labels(config, 'node') },
        spec: {
          automountServiceAccountToken: false,
          ...(node.priorityClassName ? { priorityClassName: node.priorityClassName } : {}),
          ...(node.nodeSelector ? { nodeSelector: node.nodeSelector } : {}),
          tolerations: node.tolerations,
          securityContext: { fsGroup: AGENT_GID, seccompProfile: { type: 'RuntimeDefault' } },
          initContainers: [volumeOwnerContainer(config)],
          containers: [container],
          volumes: nodeAgentVolumes(config),
        },
      },
    },
  };
  const service: Resource = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(config, node.name, 'node'),
    spec: {
      selector: selectorLabels(config, 'node'),
      // Each pod reaches the agent of its own node, whose mirrors it would otherwise read from the hostPath.
      internalTrafficPolicy: 'Local',
      ports: servicePorts(config, gitDaemonPort),
    },
  };
  return [daemonSet, service];
}

function namespacesPeer(namespaces: readonly string[], podSelector: LabelSelector | undefined): Resource {
  return {
    namespaceSelector: { matchExpressions: [{ key: NAMESPACE_NAME_LABEL, operator: 'In', values: namespaces }] },
    ...(podSelector ? { podSelector } : {}),
  };
}

/**
 * Ingress to an agent that serves over the network (the keeper, the node agents): its ports only from the
 * selected pods of the reader namespaces (and `extraPeers`, such as node agents reading the keeper tier), its
 * metrics port from the monitoring namespaces. Everything else is denied, so no unselected pod reads a mirror.
 * Pods carry their pod template's labels, so the selector must match those (transform.ts warns otherwise).
 */
function networkPolicy(config: ResolvedConfig, input: GenerationInput, name: string, component: string, readerNamespaces: readonly string[], extraPeers: Resource[]): Resource {
  const policy = config.spec.networkPolicy;
  const known = [...new Set([...readerNamespaces, ...[...input.readerNamespaces].filter((namespace) => namespace !== undefined), ...policy.namespaces])].sort();
  const readers: Resource[] = [
    ...(known.length > 0 ? [namespacesPeer(known, config.selector)] : []),
    // Readers in the policy's own namespace (the namespace applied to both when the package sets none).
    ...(input.readerNamespaces.has(undefined) ? [{ podSelector: config.selector }] : []),
    ...extraPeers,
  ];
  const ports = (names: readonly string[]) => names.map((port) => ({ protocol: 'TCP', port }));
  const gitPort = component === 'node' ? (config.node?.serve ? [GIT_DAEMON_PORT_NAME] : []) : keeperGitDaemonPort(config) !== undefined ? [GIT_DAEMON_PORT_NAME] : [];
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: metadata(config, name, component),
    spec: {
      podSelector: { matchLabels: selectorLabels(config, component) },
      policyTypes: ['Ingress'],
      ingress: [
        // Readers reach the refresh port and the git daemon; the metrics port only the monitoring namespaces.
        ...(readers.length > 0 ? [{ from: readers, ports: ports([REFRESH_PORT_NAME, ...gitPort]) }] : []),
        ...(policy.metricsNamespaces.length > 0 ? [{ from: [namespacesPeer([...policy.metricsNamespaces].sort(), undefined)], ports: ports([METRICS_PORT_NAME]) }] : []),
      ],
    },
  };
}

function networkPolicies(config: ResolvedConfig, input: GenerationInput): Resource[] {
  if (!config.spec.networkPolicy.enabled) return [];
  const policies: Resource[] = [];
  const keeper = config.spec.keeper;
  if (keeper?.enabled) {
    // In node mode the keeper is the node agents' tier: they are its readers, not the selected pods.
    policies.push(
      config.node
        ? networkPolicy(config, { readerNamespaces: new Set() }, keeper.name, 'keeper', [], [{ podSelector: { matchLabels: selectorLabels(config, 'node') } }])
        : networkPolicy(config, input, keeper.name, 'keeper', [], []),
    );
  }
  if (config.node) policies.push(networkPolicy(config, input, config.node.name, 'node', config.node.networkNamespaces, []));
  return policies;
}

function monitoringResources(config: ResolvedConfig): Resource[] {
  const monitoring = config.spec.monitoring;
  const resources: Resource[] = [];
  const endpoint = { port: METRICS_PORT_NAME, path: '/metrics', interval: '30s' };
  if (monitoring?.podMonitor && config.node) {
    resources.push({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PodMonitor',
      metadata: metadata(config, config.node.name, 'monitoring'),
      spec: { selector: { matchLabels: selectorLabels(config, 'node') }, podMetricsEndpoints: [endpoint] },
    });
  } else if (monitoring?.podMonitor && !config.spec.keeper?.enabled) {
    // Selects pods by the same selector as injection; pods selected only through their workload's own labels
    // (not the pod template's) carry no such label and are not scraped: label the pod template too.
    resources.push({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PodMonitor',
      metadata: metadata(config, config.name, 'monitoring'),
      spec: { selector: config.selector, podMetricsEndpoints: [endpoint], ...(config.namespace ? {} : { namespaceSelector: { any: true } }) },
    });
  }
  if (monitoring?.serviceMonitor) {
    // Prometheus scrapes each endpoint (pod) behind the Service, so every node agent is scraped.
    for (const [name, component] of [
      ...(config.spec.keeper?.enabled ? [[config.spec.keeper.name, 'keeper'] as const] : []),
      ...(config.node ? [[config.node.name, 'node'] as const] : []),
    ]) {
      resources.push({
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'ServiceMonitor',
        metadata: metadata(config, name, 'monitoring'),
        spec: { selector: { matchLabels: selectorLabels(config, component) }, endpoints: [endpoint] },
      });
    }
  }
  return resources;
}

export function generatedResources(config: ResolvedConfig, input: GenerationInput): Resource[] {
  const resources = [...keeperResources(config), ...nodeResources(config), ...networkPolicies(config, input), ...monitoringResources(config)];
  resources.forEach((resource, index) => {
    ((resource.metadata as Resource).annotations as Record<string, string>)[KPT_INDEX_ANNOTATION] = String(index);
  });
  return resources;
}
