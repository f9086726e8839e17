/**
 * Issue 8 on the real cluster: a private repo over SSH (sshd with key auth on the cluster's host address), its
 * Secret only in the native sidecar; the app container (the agent image: git and sh, no curl or wget) runs as a
 * no-upstream UID (no route to the host address), with no credential, and after commits were pushed past the
 * mirror's last refresh it clones with the helper (--rev), with a plain `git clone` and with actions/checkout's
 * fetch of the newer commit — all through the cache. Without curl or wget the helper and the upload-pack wrapper
 * wait for the agent's periodic refresh (refreshInterval 5s): that path is what this image proves; the refresh
 * endpoint itself is proven by test/e2e/clone-from-cache.test.ts and test/integration/agent/refresh.test.ts.
 */
import { rmSync } from 'node:fs';
import { CLUSTER, apply, clusterNamespace, exec, renderWithFunction, testWithCluster, waitForPodReady, type Manifest } from '../../support/cluster.js';
import { git, makeUpstream, tempDir, type UpstreamRepo } from '../../support/git-fixtures.js';
import { startSshd, type SshServer } from '../../support/servers/sshd.js';

const test = testWithCluster(['sshd', 'ssh-keygen']);
const ns = clusterNamespace(test, 'clone-from-cache');
const APP_UID = CLUSTER.noUpstreamUids.first + 8;

let root = '';
let sshd: SshServer | undefined;
let upstream: UpstreamRepo | undefined;

test.before(async () => {
  root = tempDir('cluster-clone-from-cache');
  upstream = makeUpstream(root, 'app', 3);
  sshd = await startSshd(CLUSTER.hostIP);
});

test.after.always(async () => {
  await sshd?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

// actions/checkout's sequence (test/e2e/ci-tools/actions-checkout.sh; the image does not carry this checkout).
const SCRIPT = `
set -u
export HOME=/work
cd /work
say() { printf '%s=%s\\n' "$1" "$(printf '%s' "$2" | tr '\\r\\n' '  ')"; }
say uid "$(id -u)"
# No route: a TCP connection from this UID to the upstream's address fails (the image has node, not nc/curl).
say direct "$(node -e "require('net').connect(Number(process.env.UP_PORT), process.env.UP_HOST).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(1); })" 2>&1)"
"$GIT_CACHE_DIR/bin/git-clone-cached" --rev "$NEW" "$URL" helper > helper.log 2>&1; say helper_exit $?
say helper_log "$(cat helper.log)"
say helper_head "$(git -C helper rev-parse HEAD 2>&1)"
say helper_origin "$(git -C helper config remote.origin.url 2>&1)"
git clone -q "$URL" plain > plain.log 2>&1; say plain_exit "$? $(cat plain.log)"
say plain_origin "$(git -C plain config remote.origin.url 2>&1)"
`;

const CHECKOUT_SCRIPT = `
set -u
export HOME=/work
cd /work
say() { printf '%s=%s\n' "$1" "$(printf '%s' "$2" | tr '\r\n' '  ')"; }
git init -q checkout && cd checkout && git remote add origin "$URL" &&
  git -c protocol.version=2 fetch --no-tags --prune --no-recurse-submodules --depth=1 origin "+$NEWEST:refs/remotes/origin/main" > ../checkout.log 2>&1 &&
  git checkout -q --force -B main refs/remotes/origin/main >> ../checkout.log 2>&1
say checkout_exit $?
say checkout_log "$(cat ../checkout.log)"
say checkout_head "$(git rev-parse HEAD 2>&1)"
git fsck --no-progress --no-dangling > ../fsck.log 2>&1; say checkout_fsck "$?$(cat ../fsck.log)"
`;

function facts(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

test('a private SSH repo: the app clones through the cache as a no-upstream UID with no credential, also commits newer than the mirror', async (t) => {
  if (!sshd || !upstream) return t.fail('fixture missing');
  const url = sshd.url(upstream.path);
  const pod: Manifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'builder', labels: { 'git-cache.enabled': 'true' } },
    spec: {
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'app',
          image: CLUSTER.agentImage,
          imagePullPolicy: 'Never',
          command: ['sleep', '3600'],
          securityContext: { runAsUser: APP_UID, runAsGroup: APP_UID, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          volumeMounts: [{ name: 'work', mountPath: '/work' }],
        },
      ],
      volumes: [{ name: 'work', emptyDir: {} }],
    },
  };
  const secret: Manifest = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'app-ssh' }, stringData: { 'ssh-privatekey': sshd.clientPrivateKey, known_hosts: sshd.knownHosts } };
  const config = {
    apiVersion: 'git-cache.dev/v1alpha1',
    kind: 'GitCache',
    metadata: { name: 'git-cache' },
    spec: { repos: [{ url, name: 'app', sshSecretName: 'app-ssh' }], image: CLUSTER.agentImage, imagePullPolicy: 'Never', refreshInterval: '5s' },
  };
  const { warnings } = await apply(renderWithFunction([secret, pod], config), ns.name);
  t.deepEqual(warnings, []);
  await waitForPodReady('builder', ns.name, 180);

  // Pushed after the mirror was made: the helper waits for it; then actions/checkout's fetch of a newer one.
  const newer = upstream.commit('newer than the mirror');
  const run = await exec('builder', 'app', ['env', `URL=${url}`, `NEW=${newer}`, `UP_HOST=${CLUSTER.hostIP}`, `UP_PORT=${sshd.port}`, 'sh', '-c', SCRIPT], ns.name);
  const newest = upstream.commit('newest');
  const checkout = await exec('builder', 'app', ['env', `URL=${url}`, `NEWEST=${newest}`, 'sh', '-c', CHECKOUT_SCRIPT], ns.name);
  const found = facts(`${run.stdout}\n${checkout.stdout}`);
  const report = `${run.stdout}\n${run.stderr}\n${checkout.stdout}\n${checkout.stderr}`;
  t.is(found.uid, String(APP_UID), report);
  t.is(found.direct, 'ENETUNREACH', 'the app container has a route to the upstream');
  t.is(found.helper_exit, '0', report);
  t.is(found.helper_head, newer);
  t.is(found.helper_origin, url);
  t.regex(found.helper_log ?? '', /without contacting upstream/);
  t.regex(found.plain_exit ?? '', /^0/, report);
  t.is(found.plain_origin, url);
  t.is(found.checkout_exit, '0', report);
  t.is(found.checkout_head, newest);
  t.is(found.checkout_fsck, '0');
  t.regex(found.checkout_log ?? '', /git-cache: not in the mirror: \w+; no curl or wget .*the mirror has it now/, 'the upload-pack wrapper waited for the commit');
  t.regex(found.helper_log ?? '', /not in the mirror: \w+; no curl or wget to ask the agent for a refresh: waiting for its periodic one/);
  t.is(git(['--git-dir', upstream.path, 'rev-parse', 'main']).trim(), newest);
});
