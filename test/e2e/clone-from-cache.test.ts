// The proof of "jobs clone from the cache with no credentials, no route to upstream and no code change", with
// the pod runner (test/support/pod-runner.ts; the real cluster of the infrastructure issue had not landed when
// this was written): a Job rendered by the real function (kpt fn eval --exec), its pod in a network namespace
// of its own (test/support/pod-network.ts). Upstreams: a private repo over SSH (sshd, key auth) and one over
// HTTPS (nginx + git http-backend, basic auth, TLS); their Secrets exist only in the cache container. The app
// container runs as UID 1000, which has no route out of the pod (an `unreachable` policy-routing rule for its
// UID), holds no credential, and clones with the helper, with a plain `git clone`, and with actions/checkout's
// sequence at commits pushed after the mirror's last refresh.
import test from 'ava';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_CONTAINER_NAME } from '../../src/shared/names.js';
import { git, makeUpstream, tempDir, type UpstreamRepo } from '../support/git-fixtures.js';
import { createPodNetwork, type PodNetwork } from '../support/pod-network.js';
import { describePodRun, podRunnerUnavailableReason, renderJobPodSpec, runPod, type PodSpec } from '../support/pod-runner.js';
import { startSmartHttp, type SmartHttpServer } from '../support/servers/smart-http.js';
import { startSshd, type SshServer } from '../support/servers/sshd.js';
import { freePort, removeDir } from '../support/servers/process.js';
import { testWithTools } from '../support/tools.js';

const APP_UID = 1000;

// What the app container does, for each repo (ssh, https): one `RESULT key=value` line per finding.
const APP_SCRIPT = String.raw`
set -u
export HOME=/tmp
result() { printf 'RESULT %s=%s\n' "$1" "$(printf '%s' "$2" | tr '\r\n' '  ')"; }
cd /tmp
result uid "$(id -u)"
result credentials "$(ls /etc/git-cache 2>&1)"
nossh='ssh -o BatchMode=yes -o StrictHostKeyChecking=no'
for r in ssh https; do
  if [ "$r" = ssh ]; then url=$SSH_URL; new=$NEW_SSH; else url=$HTTPS_URL; new=$NEW_HTTPS; fi
  # No route: with transparent mode switched off for one command, git goes to the upstream itself.
  GIT_CONFIG_COUNT=0 GIT_SSL_NO_VERIFY=1 GIT_SSH_COMMAND="$nossh" git ls-remote "$url" > direct.log 2>&1
  result "$r"_direct_exit $?
  result "$r"_direct_output "$(cat direct.log)"
  "$GIT_CACHE_DIR/bin/git-clone-cached" "$url" helper-"$r" > helper.log 2>&1; result "$r"_helper_exit $?
  result "$r"_helper_output "$(cat helper.log)"
  git clone "$url" plain-"$r" > plain.log 2>&1; result "$r"_plain_exit $?
  result "$r"_plain_output "$(cat plain.log)"
  /opt/git-cache-checkout/test/e2e/ci-tools/actions-checkout.sh "$url" /tmp/checkout-"$r" "$new" main > checkout.log 2>&1
  result "$r"_checkout_exit $?
  result "$r"_checkout_output "$(cat checkout.log)"
  for d in helper plain checkout; do
    result "$r"_"$d"_head "$(git -C "$d-$r" rev-parse HEAD 2>&1)"
    result "$r"_"$d"_origin "$(git -C "$d-$r" config remote.origin.url 2>&1)"
    result "$r"_"$d"_log "$(git -C "$d-$r" log --format=%H 2>&1 | tr '\n' ',')"
    git -C "$d-$r" fsck --no-progress --no-dangling > fsck.log 2>&1; result "$r"_"$d"_fsck "$?:$(cat fsck.log)"
  done
  result "$r"_helper_refs "$(git -C helper-"$r" for-each-ref --format='%(refname) %(objectname)' | tr '\n' ',')"
  (cd checkout-"$r" && GIT_SSH_COMMAND="$nossh" git push origin HEAD:refs/heads/from-job) > push.log 2>&1
  result "$r"_push_exit $?
  result "$r"_push_output "$(cat push.log)"
done
`;

interface Upstreams {
  readonly dir: string;
  readonly network: PodNetwork;
  readonly sshd: SshServer;
  readonly http: SmartHttpServer;
  readonly sshRepo: UpstreamRepo;
  readonly httpsRepo: UpstreamRepo;
  readonly sshUrl: string;
  readonly httpsUrl: string;
  readonly password: string;
}

const tools = ['kpt', 'unshare', 'setpriv', 'nsenter', 'ip', 'curl', 'nginx', 'fcgiwrap', 'openssl', 'sshd', 'ssh-keygen', 'git'];
const unavailable = podRunnerUnavailableReason();
if (unavailable && process.env.CI !== 'true') console.error(`[skip] pod runner: ${unavailable}`);
const podTest = unavailable ? (process.env.CI === 'true' ? test : test.skip) : testWithTools(tools);

async function startUpstreams(): Promise<Upstreams> {
  const dir = tempDir('clone-from-cache');
  const network = createPodNetwork({ noRouteUids: [APP_UID] });
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const sshd = await startSshd(network.gateway);
  const http = await startSmartHttp({ password, tls: true, host: network.gateway });
  mkdirSync(join(dir, 'ssh'));
  const sshRepo = makeUpstream(join(dir, 'ssh'), 'app', 4);
  const httpsRepo = makeUpstream(http.projectRoot, 'lib', 3);
  return { dir, network, sshd, http, sshRepo, httpsRepo, sshUrl: sshd.url(sshRepo.path), httpsUrl: http.url('lib.git'), password };
}

async function renderJob(u: Upstreams, metricsPort: number): Promise<PodSpec> {
  const job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'build', labels: { 'git-cache.enabled': 'true' } },
    spec: {
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'app',
              image: 'registry.example.com/ci-runner:1.0.0',
              command: ['sh', '-c', APP_SCRIPT],
              env: [
                { name: 'SSH_URL', value: u.sshUrl },
                { name: 'HTTPS_URL', value: u.httpsUrl },
              ],
              securityContext: { runAsUser: APP_UID, runAsGroup: APP_UID },
            },
          ],
        },
      },
    },
  };
  const pod = await renderJobPodSpec(job, {
    repos: [
      { url: u.sshUrl, name: 'app', sshSecretName: 'app-ssh' },
      { url: u.httpsUrl, name: 'lib', httpsSecretName: 'lib-https' },
    ],
    metricsPort,
    // The mirror moves only when asked: the commits pushed while the pod starts are newer than it.
    refreshInterval: '1h',
  });
  // The platform team's own CA for its git host, given to the cache container (the app never talks to it).
  const cache = pod.initContainers?.find((container) => container.name === CACHE_CONTAINER_NAME);
  if (!cache) throw new Error('no cache container');
  cache.env = [...(cache.env ?? []), { name: 'GIT_SSL_CAINFO', value: '/etc/git-cache-ca/ca.crt' }];
  cache.volumeMounts = [...(cache.volumeMounts ?? []), { name: 'upstream-ca', mountPath: '/etc/git-cache-ca', readOnly: true }];
  pod.volumes = [...(pod.volumes ?? []), { name: 'upstream-ca', secret: { secretName: 'upstream-ca', defaultMode: 0o444 } }];
  return pod;
}

function results(stdout: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of stdout.replace(/\r/g, ' ').split('\n')) {
    const match = /^RESULT ([a-z_]+)=(.*)$/.exec(line);
    if (match) map.set(match[1] ?? '', (match[2] ?? '').trim());
  }
  return map;
}

podTest('private SSH and HTTPS repos: the app clones from the cache with no credential and no route to upstream, as a direct clone would', async (t) => {
  if (unavailable) {
    t.fail(`pod runner unavailable under CI=true: ${unavailable}`);
    return;
  }
  const u = await startUpstreams();
  t.teardown(async () => {
    await u.sshd.stop();
    await u.http.stop();
    u.network.remove();
    removeDir(u.dir);
  });
  const pod = await renderJob(u, await freePort());
  const app = pod.containers.find((container) => container.name === 'app');
  if (!app) throw new Error('no app container');
  const newer: Record<string, string> = {};
  const run = await runPod(pod, {
    netns: u.network.name,
    timeoutMs: 240_000,
    secrets: {
      'app-ssh': { 'ssh-privatekey': u.sshd.clientPrivateKey, known_hosts: u.sshd.knownHosts },
      'lib-https': { username: u.http.username, password: u.password },
      'upstream-ca': { 'ca.crt': readFileSync(u.http.caFile ?? '', 'utf8') },
    },
    // The sidecar is ready: its mirrors are complete. Commits pushed now are newer than the mirrors.
    beforeApps: () => {
      newer.ssh = u.sshRepo.commit('pushed after the mirror was made (ssh)');
      newer.https = u.httpsRepo.commit('pushed after the mirror was made (https)');
      app.env = [...(app.env ?? []), { name: 'NEW_SSH', value: newer.ssh }, { name: 'NEW_HTTPS', value: newer.https }];
    },
  });
  t.teardown(() => run.cleanup());
  const report = describePodRun(run);
  t.true(run.succeeded, report);
  const found = results(run.container('app').stdout);
  t.is(found.get('uid'), String(APP_UID), report);
  t.regex(found.get('credentials') ?? '', /No such file or directory/);

  for (const [r, url, upstream] of [
    ['ssh', u.sshUrl, u.sshRepo],
    ['https', u.httpsUrl, u.httpsRepo],
  ] as const) {
    // No route to upstream for the app's UID.
    t.not(found.get(`${r}_direct_exit`), '0', report);
    t.regex(found.get(`${r}_direct_output`) ?? '', /Network is unreachable|Couldn't connect|Failed to connect/, `${r}: ${found.get(`${r}_direct_output`)}`);

    // What a direct clone (here, as root on the host, with the credentials) would have.
    const direct = join(u.dir, `direct-${r}`);
    git(['clone', '-q', '--no-local', upstream.path, direct]);
    const directLog = (rev: string) => git(['-C', direct, 'log', '--format=%H', rev]).trim().split('\n').join(',') + ',';

    // The helper and a plain clone: the mirror as made (before the newer commit), origin = URL, fsck clean.
    for (const d of ['helper', 'plain'] as const) {
      t.is(found.get(`${r}_${d}_exit`), '0', `${r} ${d}: ${found.get(`${r}_${d}_output`)}`);
      t.is(found.get(`${r}_${d}_head`), git(['--git-dir', upstream.path, 'rev-parse', `${newer[r]}~1`]).trim(), `${r} ${d}`);
      t.is(found.get(`${r}_${d}_origin`), url);
      t.is(found.get(`${r}_${d}_log`), directLog(`${newer[r]}~1`));
      t.is(found.get(`${r}_${d}_fsck`), '0:', `${r} ${d}`);
    }
    t.regex(found.get(`${r}_helper_output`) ?? '', /without contacting upstream; objects borrowed from the mirror/);
    t.regex(found.get(`${r}_helper_refs`) ?? '', /refs\/remotes\/origin\/feature .*refs\/tags\/v1 /);

    // actions/checkout at the commit pushed after the mirror was made: the wrapper asked the agent to fetch.
    t.is(found.get(`${r}_checkout_exit`), '0', `${r} checkout: ${found.get(`${r}_checkout_output`)}`);
    t.regex(found.get(`${r}_checkout_output`) ?? '', /git-cache: not in the mirror: \w+; the agent at http:\/\/127\.0\.0\.1:\d+ fetched (app|lib) now/);
    t.is(found.get(`${r}_checkout_head`), newer[r]);
    t.is(found.get(`${r}_checkout_origin`), url);
    t.is(found.get(`${r}_checkout_log`), newer[r] + ',', 'depth 1: the commit itself');
    t.is(found.get(`${r}_checkout_fsck`), '0:', `${r} checkout`);

    // git push went to the upstream URL (and found no route), not to the mirror.
    t.not(found.get(`${r}_push_exit`), '0');
    t.regex(found.get(`${r}_push_output`) ?? '', new RegExp(`${u.network.gateway.replaceAll('.', '\\.')}.*(Network is unreachable|Couldn't connect|Failed to connect)|(Network is unreachable|Failed to connect).*${u.network.gateway.replaceAll('.', '\\.')}`));
  }
  // The password never reached the app or any log it could see.
  for (const container of run.containers) t.false(container.stdout.includes(u.password) || (container.name !== CACHE_CONTAINER_NAME && container.stderr.includes(u.password)));
});
