/**
 * The benchmark input: a ResourceList of `total` items where `selected` are Deployments labelled for
 * injection and the rest are a realistic mix (unselected Deployments, Services, ConfigMaps), each carrying the
 * annotations kpt and kustomize add. Deterministic, so every run measures the same bytes.
 */
import { stringify } from 'yaml';

export interface BenchInput {
  resourceList: string;
  /** The same resources as a plain stream, for kustomize. */
  stream: string;
  functionConfig: Record<string, unknown>;
}

function deployment(index: number, selected: boolean): Record<string, unknown> {
  const name = `app-${index}`;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      namespace: `team-${index % 20}`,
      labels: { app: name, ...(selected ? { 'git-cache.enabled': 'true' } : {}) },
      annotations: { 'config.kubernetes.io/path': `deploy/${name}.yaml`, 'config.kubernetes.io/index': '0' },
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: 'app',
              image: `registry.example.com/app:${index}`,
              args: ['--port', '8080', '--verbose', 'on'],
              env: [
                { name: 'MODE', value: 'on' },
                { name: 'UMASK', value: '0755' },
              ],
              ports: [{ containerPort: 8080, name: 'http' }],
              resources: { requests: { cpu: '100m', memory: '128Mi' } },
            },
          ],
        },
      },
    },
  };
}

function service(index: number): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc-${index}`, namespace: `team-${index % 20}`, annotations: { 'config.kubernetes.io/path': `svc/${index}.yaml` } },
    spec: { selector: { app: `app-${index}` }, ports: [{ port: 80, targetPort: 'http' }] },
  };
}

function configMap(index: number): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: `cm-${index}`, namespace: `team-${index % 20}` },
    data: { 'settings.yaml': `feature: yes\nlevel: ${index}\n`, enabled: 'true', time: '12:30' },
  };
}

export function generateBenchInput(total: number, selected: number): BenchInput {
  const items: Record<string, unknown>[] = [];
  for (let index = 0; index < selected; index++) items.push(deployment(index, true));
  const rest = total - selected;
  for (let index = 0; index < rest; index++) {
    const kind = index % 3;
    items.push(kind === 0 ? deployment(selected + index, false) : kind === 1 ? service(index) : configMap(index));
  }
  const functionConfig = {
    apiVersion: 'git-cache.dev/v1alpha1',
    kind: 'GitCache',
    metadata: { name: 'git-cache' },
    spec: { repos: [{ url: 'https://git.example.com/org/app.git' }, { url: 'git@git.example.com:org/lib.git', sshSecretName: 'lib-ssh' }] },
  };
  return {
    resourceList: stringify({ apiVersion: 'config.kubernetes.io/v1', kind: 'ResourceList', items, functionConfig }),
    stream: items.map((item) => stringify(item)).join('---\n'),
    functionConfig,
  };
}
