/**
 * The `GitCache` functionConfig (CONTRACT.md §1), as a zod schema. The TypeScript types, the validation with
 * field paths, and the JSON Schema shipped for editors (function/gitcache.schema.json) all come from here.
 */
import { z } from 'zod';
import {
  CONFIG_API_VERSION,
  CONFIG_KIND,
  DEFAULT_KEEPER_NAME,
  DEFAULT_METRICS_PORT,
  DEFAULT_MOUNT_PATH,
  DEFAULT_REFRESH_INTERVAL,
  DEFAULT_WAIT_TIMEOUT,
  TMP_MOUNT_PATH,
} from '../shared/names.js';
import { DURATION_PATTERN } from '../shared/agent-cli.js';
import { QUANTITY_PATTERN } from '../shared/quantity.js';
import { REPO_NAME_MAX_LENGTH, REPO_NAME_PATTERN, defaultRepoName, parseRepoUrl } from '../shared/repo-url.js';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const IMAGE_REFERENCE = /^[a-z0-9][a-z0-9._\-/:@]*[a-zA-Z0-9_]$/;
const FIELD_PATH = /^[A-Za-z0-9_]+(\/[A-Za-z0-9_]+)*$/;

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
    type: z.enum(['emptyDir', 'pvc']).default('emptyDir'),
    size: quantity.optional().describe('emptyDir sizeLimit, or the PVC request'),
    claimName: secretName.default('git-cache').describe('PersistentVolumeClaim name (pvc only)'),
    storageClassName: z.string().min(1).optional().describe('StorageClass of a generated PVC'),
  })
  .default({ type: 'emptyDir', claimName: 'git-cache' });

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
    mountPath: z
      .string()
      .regex(/^\/[A-Za-z0-9_./-]*$/, 'must be an absolute path')
      .refine((value) => !value.split('/').includes('..'), 'must not contain ".."')
      .refine((value) => value !== '/' && value.replace(/\/+$/, '') !== TMP_MOUNT_PATH, `must not be / or ${TMP_MOUNT_PATH}`)
      .default(DEFAULT_MOUNT_PATH),
    volume: volumeSchema,
    transparent: z
      .boolean()
      .default(true)
      .describe(
        'Configure git in app containers (GIT_CONFIG_COUNT/KEY/VALUE, GIT_CONFIG_SYSTEM) so that a plain `git clone URL` or `git fetch` of a configured repo reads its mirror and `git push` still goes to URL; a workload opts out with the annotation git-cache.dev/transparent: "false"',
      ),
    refreshInterval: z.string().regex(DURATION_PATTERN, 'must be a duration such as 60s, 5m or 1h').default(DEFAULT_REFRESH_INTERVAL),
    metricsPort: z.number().int().min(1024).max(65535).default(DEFAULT_METRICS_PORT),
    resources: z
      .strictObject({ requests: resourceListSchema.optional(), limits: resourceListSchema.optional() })
      .optional()
      .describe('Resources of the cache container; default requests cpu 50m, memory 128Mi, limits memory 1Gi'),
    keeper: z
      .strictObject({
        enabled: z.boolean().default(true),
        name: z.string().max(50).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS label').default(DEFAULT_KEEPER_NAME),
        gitDaemon: z.boolean().default(false).describe('Also serve the mirrors read-only over git:// from the keeper Service'),
        waitTimeout: z.string().regex(DURATION_PATTERN, 'must be a duration such as 10m').default(DEFAULT_WAIT_TIMEOUT),
      })
      .optional()
      .describe('With volume.type pvc: generate a ReadWriteMany PVC, one keeper Deployment (the only writer and credential holder) and its Service; selected workloads get a read-only, credential-free `wait` init container'),
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
    if (spec.keeper?.enabled && spec.volume.type !== 'pvc') {
      ctx.addIssue({ code: 'custom', path: ['keeper', 'enabled'], message: 'the keeper shares a PersistentVolumeClaim: set volume.type to pvc' });
    }
    if (spec.monitoring?.serviceMonitor && !spec.keeper?.enabled) {
      ctx.addIssue({ code: 'custom', path: ['monitoring', 'serviceMonitor'], message: 'a ServiceMonitor needs the keeper Service: enable keeper, or use podMonitor' });
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
