/**
 * The `GitCache` functionConfig (CONTRACT.md §1), as a zod schema. The TypeScript types, the validation with
 * field paths, and the JSON Schema shipped for editors (function/gitcache.schema.json) all come from here.
 */
import { z } from 'zod';
import {
  CONFIG_API_VERSION,
  CONFIG_KIND,
  DEFAULT_KEEPER_NAME,
  DEFAULT_METRICS_NAMESPACES,
  DEFAULT_METRICS_PORT,
  DEFAULT_NODE_NAME,
  DEFAULT_NODE_PATH,
  DEFAULT_MOUNT_PATH,
  DEFAULT_REFRESH_INTERVAL,
  DEFAULT_WAIT_TIMEOUT,
  TMP_MOUNT_PATH,
} from '../shared/names.js';
import { DURATION_PATTERN } from '../shared/agent-cli.js';
import { QUANTITY_PATTERN } from '../shared/quantity.js';
import { REPO_NAME_MAX_LENGTH, REPO_NAME_PATTERN, defaultRepoName, parseRepoUrl, tierBaseProblem } from '../shared/repo-url.js';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const IMAGE_REFERENCE = /^[a-z0-9][a-z0-9._\-/:@]*[a-zA-Z0-9_]$/;
const FIELD_PATH = /^[A-Za-z0-9_]+(\/[A-Za-z0-9_]+)*$/;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const namespaceName = z.string().max(63).regex(DNS_LABEL, 'must be a namespace name (lower-case DNS label)');
const absolutePath = z
  .string()
  .regex(/^\/[A-Za-z0-9_./-]*$/, 'must be an absolute path')
  .refine((value) => !value.split('/').includes('..'), 'must not contain ".."');
const duration = (example: string) => z.string().regex(DURATION_PATTERN, `must be a duration such as ${example}`);

const secretName = z.string().max(253).regex(DNS_SUBDOMAIN, 'must be a Secret name (lower-case DNS subdomain)');
const quantity = z.string().regex(QUANTITY_PATTERN, 'must be a Kubernetes quantity such as 5Gi or 500Mi');

export const repoUrlSchema = z.string().superRefine((url, ctx) => {
  const parsed = parseRepoUrl(url);
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.problem.message });
});

export const repoSchema = z.strictObject({
  url: repoUrlSchema.describe('Remote URL: https://, http://, ssh://, scp-like user@host:path, or git://'),
  name: z
    .string()
    .max(REPO_NAME_MAX_LENGTH)
    .regex(REPO_NAME_PATTERN, 'must be lower-case letters, digits and "-"')
    .optional()
    .describe('Name used in env vars (GIT_CACHE_REF_<NAME>), metrics and annotations; default: last path segment of the URL'),
  sshSecretName: secretName.optional().describe('Secret with keys ssh-privatekey and known_hosts'),
  httpsSecretName: secretName.optional().describe('Secret with keys username and password'),
});

const labelSelectorRequirement = z.strictObject({
  key: z.string().regex(LABEL_KEY, 'must be a label key'),
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
  values: z.array(z.string().regex(LABEL_VALUE, 'must be a label value')).optional(),
});

export const labelSelectorSchema = z.strictObject({
  matchLabels: z.record(z.string().regex(LABEL_KEY, 'must be a label key'), z.string().regex(LABEL_VALUE, 'must be a label value')).optional(),
  matchExpressions: z.array(labelSelectorRequirement).optional(),
});

// partialRecord: a record keyed by an enum is exhaustive in zod 4, and requests: {cpu: 100m} alone is fine.
const resourceListSchema = z.partialRecord(z.enum(['cpu', 'memory', 'ephemeral-storage']), quantity);

export const workloadKindSchema = z.strictObject({
  apiVersion: z.string().min(1).optional().describe('Restrict to this apiVersion (e.g. argoproj.io/v1alpha1); any when omitted'),
  kind: z.string().regex(/^[A-Z][A-Za-z0-9]*$/, 'must be a Kubernetes kind such as Rollout'),
  podTemplatePath: z
    .string()
    .regex(FIELD_PATH, 'must be a "/"-separated path to the pod template, such as spec/template')
    .describe('Path from the resource to its pod template (an object with metadata and spec), kustomize fieldSpec style'),
});

export const volumeSchema = z
  .strictObject({
    type: z
      .enum(['emptyDir', 'pvc', 'node'])
      .default('emptyDir')
      .describe('emptyDir: one cache per pod; pvc: a shared claim; node: one cache per node (a DaemonSet writes a hostPath, pods read it)'),
    size: quantity.optional().describe('emptyDir sizeLimit, or the PVC request'),
    claimName: secretName.default('git-cache').describe('PersistentVolumeClaim name (pvc, and the keeper of node mode)'),
    storageClassName: z.string().min(1).optional().describe('StorageClass of a generated PVC'),
    path: absolutePath
      .refine((value) => value.replace(/\/+$/, '') !== '', 'must not be /')
      .optional()
      .describe(`node only: the directory on every node that holds the mirrors (hostPath); default ${DEFAULT_NODE_PATH}`),
  })
  .default({ type: 'emptyDir', claimName: 'git-cache' });

const tolerationSchema = z.strictObject({
  key: z.string().regex(LABEL_KEY, 'must be a taint key').optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().regex(LABEL_VALUE, 'must be a taint value').optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.number().int().optional(),
});

export const nodeSchema = z
  .strictObject({
    name: z.string().max(50).regex(DNS_LABEL, 'must be a DNS label').default(DEFAULT_NODE_NAME).describe('Name of the node DaemonSet, its Service and NetworkPolicy'),
    serve: z
      .boolean()
      .default(false)
      .describe('Node agents also serve their mirrors read-only over git:// through the node Service (internalTrafficPolicy: Local)'),
    networkNamespaces: z
      .array(namespaceName)
      .default([])
      .describe(
        'Namespaces where hostPath is not allowed (Pod Security baseline or restricted): their selected workloads get no volume and read the mirrors from the node Service (needs serve: true)',
      ),
    waitTimeout: duration('10m').default(DEFAULT_WAIT_TIMEOUT).describe('How long a pod\'s wait init container waits for complete mirrors on its node'),
    tolerations: z
      .array(tolerationSchema)
      .default([{ operator: 'Exists' }])
      .describe('Tolerations of the node DaemonSet; default: every taint, so every node that runs selected pods has a cache'),
    nodeSelector: z.record(z.string().regex(LABEL_KEY, 'must be a label key'), z.string().regex(LABEL_VALUE, 'must be a label value')).optional(),
    priorityClassName: z.string().max(253).regex(DNS_SUBDOMAIN, 'must be a PriorityClass name').optional(),
    maxUnavailable: z
      .union([z.number().int().min(1), z.string().regex(/^[1-9][0-9]?%$|^100%$/, 'must be a number or a percentage such as 10%')])
      .default(1)
      .describe('RollingUpdate maxUnavailable of the node DaemonSet'),
  })
  .describe('Node mode (volume.type node): the node DaemonSet and how pods reach it');

export const networkPolicySchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    namespaces: z
      .array(namespaceName)
      .default([])
      .describe('More namespaces whose selected pods may read the mirrors, besides the namespaces of the selected workloads and node.networkNamespaces'),
    metricsNamespaces: z
      .array(namespaceName)
      .default([...DEFAULT_METRICS_NAMESPACES])
      .describe('Namespaces whose pods may scrape the metrics port (Prometheus)'),
  })
  .describe('NetworkPolicies for what serves mirrors over the network (node agents, the keeper): only selected pods may read');

export const gitCacheSpecSchema = z
  .strictObject({
    repos: z.array(repoSchema).min(1, 'at least one repo is required'),
    selector: labelSelectorSchema.optional().describe('Workloads to inject; default matchLabels {git-cache.enabled: "true"}'),
    mode: z.enum(['sidecar', 'init', 'legacy-sidecar']).default('sidecar'),
    image: z
      .string()
      .refine((value) => value === '' || IMAGE_REFERENCE.test(value), 'must be an image reference')
      .refine((value) => !/:latest$/.test(value), 'pin the agent image to a version or digest, not :latest')
      .optional()
      .describe('Agent image; default: the released image of this function version'),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
    mountPath: absolutePath
      .refine((value) => value !== '/' && value.replace(/\/+$/, '') !== TMP_MOUNT_PATH, `must not be / or ${TMP_MOUNT_PATH}`)
      .default(DEFAULT_MOUNT_PATH),
    volume: volumeSchema,
    transparent: z
      .boolean()
      .default(true)
      .describe(
        'Configure git in app containers (GIT_CONFIG_COUNT/KEY/VALUE, GIT_CONFIG_SYSTEM) so that a plain `git clone URL` or `git fetch` of a configured repo reads its mirror and `git push` still goes to URL; a workload opts out with the annotation git-cache.dev/transparent: "false"',
      ),
    refreshInterval: duration('60s, 5m or 1h').default(DEFAULT_REFRESH_INTERVAL),
    metricsPort: z.number().int().min(1024).max(65535).default(DEFAULT_METRICS_PORT),
    resources: z
      .strictObject({ requests: resourceListSchema.optional(), limits: resourceListSchema.optional() })
      .optional()
      .describe('Resources of the cache container; default requests cpu 50m, memory 128Mi, limits memory 1Gi'),
    keeper: z
      .strictObject({
        enabled: z.boolean().default(true),
        name: z.string().max(50).regex(DNS_LABEL, 'must be a DNS label').default(DEFAULT_KEEPER_NAME),
        gitDaemon: z.boolean().default(false).describe('Also serve the mirrors read-only over git:// from the keeper Service'),
        waitTimeout: duration('10m').default(DEFAULT_WAIT_TIMEOUT),
      })
      .optional()
      .describe(
        'With volume.type pvc: generate a ReadWriteMany PVC, one keeper Deployment (the only writer and credential holder) and its Service; selected workloads get a read-only, credential-free `wait` init container. With volume.type node: the keeper (on its own ReadWriteOnce claim) is the tier the node agents fetch from, so the git host sees one fetch per refresh interval for the whole cluster',
      ),
    node: nodeSchema.optional(),
    networkPolicy: networkPolicySchema.default({ enabled: true, namespaces: [], metricsNamespaces: [...DEFAULT_METRICS_NAMESPACES] }),
    upstreamCache: z
      .string()
      .superRefine((value, ctx) => {
        const problem = tierBaseProblem(value);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional()
      .describe('Base URL of another git-cache (BASE/<key>.git) that writing agents fetch from before the git host (falling back to it); generated from the keeper in node mode'),
    monitoring: z
      .strictObject({
        podMonitor: z.boolean().default(false).describe('Generate a PodMonitor for the cache containers of selected pods'),
        serviceMonitor: z.boolean().default(false).describe('Generate a ServiceMonitor for the keeper Service'),
      })
      .optional(),
    workloadKinds: z
      .array(workloadKindSchema)
      .default([])
      .describe('More workload kinds to inject, with the path to their pod template (e.g. Argo Rollouts, Knative Services)'),
  })
  .superRefine((spec, ctx) => {
    if (spec.keeper?.enabled && spec.volume.type === 'emptyDir') {
      ctx.addIssue({ code: 'custom', path: ['keeper', 'enabled'], message: 'the keeper shares a PersistentVolumeClaim (volume.type pvc) or is the tier of node agents (volume.type node); an emptyDir cannot be shared' });
    }
    if (spec.volume.path !== undefined && spec.volume.type !== 'node') {
      ctx.addIssue({ code: 'custom', path: ['volume', 'path'], message: 'volume.path (a directory on each node) applies to volume.type node only' });
    }
    if (spec.node && spec.volume.type !== 'node') {
      ctx.addIssue({ code: 'custom', path: ['node'], message: 'node settings apply to volume.type node only' });
    }
    if (spec.volume.type === 'node' && (spec.node?.networkNamespaces.length ?? 0) > 0 && !spec.node?.serve) {
      ctx.addIssue({ code: 'custom', path: ['node', 'networkNamespaces'], message: 'workloads in networkNamespaces read mirrors over the network: set node.serve to true' });
    }

    if (spec.monitoring?.serviceMonitor && !spec.keeper?.enabled && spec.volume.type !== 'node') {
      ctx.addIssue({ code: 'custom', path: ['monitoring', 'serviceMonitor'], message: 'a ServiceMonitor needs the keeper or node Service: enable keeper, use volume.type node, or use podMonitor' });
    }
    const seen = new Map<string, number>();
    spec.repos.forEach((repo, index) => {
      if (repo.sshSecretName && repo.httpsSecretName) {
        ctx.addIssue({ code: 'custom', path: ['repos', index], message: 'set sshSecretName or httpsSecretName, not both' });
      }
    });
    spec.repos.forEach((repo, index) => {
      const name = repo.name ?? defaultRepoName(repo.url);
      const first = seen.get(name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['repos', index, 'name'], message: `repo name "${name}" is already used by repos[${first}]; set a distinct name` });
      } else seen.set(name, index);
    });
  });

export const gitCacheSchema = z.object({
  apiVersion: z.literal(CONFIG_API_VERSION),
  kind: z.literal(CONFIG_KIND),
  metadata: z.object({ name: z.string().optional(), namespace: z.string().optional() }).loose().optional(),
  spec: gitCacheSpecSchema,
});

export type GitCacheInput = z.input<typeof gitCacheSchema>;
export type GitCache = z.infer<typeof gitCacheSchema>;
export type GitCacheSpec = z.infer<typeof gitCacheSpecSchema>;
export type RepoSpec = z.infer<typeof repoSchema>;
export type LabelSelector = z.infer<typeof labelSelectorSchema>;
export type WorkloadKind = z.infer<typeof workloadKindSchema>;
export type CacheMode = GitCacheSpec['mode'];
export type NodeSpec = z.infer<typeof nodeSchema>;
