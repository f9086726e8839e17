/**
 * The test cluster's network, as the mode suites use it (test/support/cluster.ts, CLUSTER):
 * - a ClusterIP Service, and one with `internalTrafficPolicy: Local`, answer from a pod by their DNS names
 *   `<svc>.<ns>.svc.cluster.local` (CoreDNS) through kube-proxy;
 * - a server on the host's bridge address (where tests run upstream git servers) answers a pod, except a
 *   container run as a no-upstream UID, which gets "network unreachable" while DNS still works for it;
 * - names outside the cluster do not resolve (nothing is forwarded off the machine).
 */
import { createServer, type Server } from 'node:http';
import { CLUSTER, RESTRICTED_CONTAINER_SECURITY, apply, clusterNamespace, logFacts, logs, testWithCluster, waitForPodReady, waitForPodSucceeded, type Manifest } from '../../support/cluster.js';
import { freePort } from '../../support/git-fixtures.js';

const test = testWithCluster();
const ns = clusterNamespace(test, 'network');

const POD_SECURITY = { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } };

let hostServer: Server | undefined;
let hostPort = 0;

test.before(async () => {
  hostPort = await freePort();
  hostServer = createServer((_request, response) => response.end('from-host'));
  await new Promise<void>((resolve) => hostServer?.listen(hostPort, CLUSTER.hostIP, resolve));
});

test.after.always(async () => {
  await new Promise((resolve) => hostServer?.close(resolve));
});

function nodePod(name: string, script: string, options: { labels?: Record<string, string>; uid?: number } = {}): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: options.labels ?? {} },
    spec: {
      restartPolicy: 'Never',
      securityContext: { ...POD_SECURITY, ...(options.uid ? { runAsUser: options.uid, runAsGroup: options.uid } : {}) },
      containers: [{ name: 'main', image: CLUSTER.agentImage, imagePullPolicy: 'Never', command: ['node', '-e', script], securityContext: RESTRICTED_CONTAINER_SECURITY }],
    },
  };
}

function service(name: string, extra: Manifest = {}): Manifest {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: { app: 'echo' }, ports: [{ port: 80, targetPort: 8080 }], ...extra } };
}

/** A client script printing one `label=result` line per URL it fetches (the body, or the error code). */
function fetchScript(urls: Record<string, string>): string {
  return `
const dns = require('node:dns').promises;
(async () => {
  for (const [label, url] of Object.entries(${JSON.stringify(urls)})) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(10000) });
      console.log(label + '=' + (await response.text()));
    } catch (error) {
      console.log(label + '=' + (error.cause?.code ?? error.code ?? error.name));
    }
  }
  try { await dns.lookup('example.com'); console.log('outside=resolved'); } catch (error) { console.log('outside=' + error.code); }
})();`;
}


test.serial('Services resolve by DNS name and connect through kube-proxy; the host address answers pods but not no-upstream UIDs', async (t) => {
  const server = nodePod('echo', `require('node:http').createServer((q, s) => s.end('from-pod')).listen(8080)`, { labels: { app: 'echo' } });
  (server.spec as { containers: Array<Record<string, unknown>> }).containers[0]!.readinessProbe = { tcpSocket: { port: 8080 }, periodSeconds: 1 };
  await apply([server, service('echo'), service('echo-local', { internalTrafficPolicy: 'Local' })], ns.name);
  await waitForPodReady('echo', ns.name);

  const domain = `${ns.name}.svc.${CLUSTER.dnsDomain}`;
  const urls = { service: `http://echo.${domain}/`, local: `http://echo-local.${domain}/`, short: 'http://echo/', host: `http://${CLUSTER.hostIP}:${hostPort}/` };
  await apply([nodePod('client', fetchScript(urls)), nodePod('fenced', fetchScript(urls), { uid: CLUSTER.noUpstreamUids.first + 7 })], ns.name);
  await waitForPodSucceeded('client', ns.name);
  await waitForPodSucceeded('fenced', ns.name);

  const client = logFacts(await logs('client', 'main', ns.name));
  t.is(client.service, 'from-pod', 'ClusterIP Service by its full DNS name');
  t.is(client.local, 'from-pod', 'internalTrafficPolicy: Local Service');
  t.is(client.short, 'from-pod', 'the namespace search domain');
  t.is(client.host, 'from-host', 'the host address on the pod bridge');
  t.is(client.outside, 'ENOTFOUND', 'a name outside the cluster resolved');

  const fenced = logFacts(await logs('fenced', 'main', ns.name));
  t.is(fenced.service, 'from-pod', 'a no-upstream UID still reaches Services by name');
  t.is(fenced.host, 'ENETUNREACH', 'a no-upstream UID reached the host address');
});
