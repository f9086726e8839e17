/**
 * The whole path on the real cluster, in each sidecar-family mode (sidecar, init, legacy-sidecar): a Pod
 * rendered by the real function runs under the kubelet with the agent image, and its app container, run as ROOT
 * (the hardest case; the namespace enforces `privileged` for it) with the container runtime's default
 * capabilities, proves from inside the pod that:
 * - it started on a complete mirror (init modes: after the one-shot sync ended);
 * - `git clone --reference-if-able "$GIT_CACHE_REF" URL` and `$GIT_CACHE_DIR/bin/git-clone-cached URL DIR`
 *   both borrow from the read-only mirror (alternates), with no fallback;
 * - the private repository (nginx + git-http-backend, basic auth; the password only in the cache container's
 *   Secret) is mirrored, while the app cannot read it upstream and has no /etc/git-cache;
 * - writes to the cache fail with EROFS and a remount read-write fails (no CAP_SYS_ADMIN);
 * - it sees none of the agent's processes; the password is in no container's log and not in its environment;
 * - the mirror is owned by the agent's non-root UID and is a real mirror.
 * (This replaced test/e2e/pod-runner.test.ts, the same proof on the kubelet emulation test/support/pod-runner.ts.)
 * The Pod keeps git's configuration its own (`git-cache.dev/transparent: "false"`): this is the
 * --reference-if-able path, with the upstream reachable; test/e2e/clone-from-cache.test.ts proves transparent mode.
 */
import { rmSync } from 'node:fs';
import { AGENT_UID, CACHE_CONTAINER_NAME, INIT_CONTAINER_NAME } from '../../../src/shared/names.js';
import { CLUSTER, apply, clusterNamespace, getJson, logs, renderWithFunction, scriptContainer, testWithCluster, type Manifest } from '../../support/cluster.js';
import { git, makeUpstream, startGitDaemon, tempDir, type GitDaemon, type UpstreamRepo } from '../../support/git-fixtures.js';
import { startSmartHttp, type SmartHttpServer } from '../../support/servers/smart-http.js';

const test = testWithCluster(['nginx', 'fcgiwrap']);
const ns = clusterNamespace(test, 'clone', { enforce: 'privileged', warn: 'privileged' });
const MODES = ['sidecar', 'init', 'legacy-sidecar'] as const;

// Each finding is one `RESULT key=value` line (newlines folded) for the test to read.
const APP_SCRIPT = String.raw`
set -u
export GIT_TERMINAL_PROMPT=0 GIT_CONFIG_NOSYSTEM=1 HOME=/tmp
result() { printf 'RESULT %s=%s\n' "$1" "$(printf '%s' "$2" | tr '\n' ' ')"; }
cd /tmp
git clone --reference-if-able "$GIT_CACHE_REF" "$APP_URL" clone-ref > ref.log 2>&1; result clone_ref_exit $?
result clone_ref_output "$(cat ref.log)"
result clone_ref_alternates "$(cat clone-ref/.git/objects/info/alternates 2>&1)"
result clone_ref_head "$(git -C clone-ref rev-parse HEAD 2>&1)"
"$GIT_CACHE_DIR/bin/git-clone-cached" "$APP_URL" clone-helper > helper.log 2>&1; result clone_helper_exit $?
result clone_helper_output "$(cat helper.log)"
result clone_helper_alternates "$(cat clone-helper/.git/objects/info/alternates 2>&1)"
result clone_helper_head "$(git -C clone-helper rev-parse HEAD 2>&1)"
git ls-remote "$PRIVATE_URL" > private-upstream.log 2>&1; result private_upstream_exit $?
result private_upstream_output "$(cat private-upstream.log)"
# --git-dir: the mirror belongs to the cache container's UID, and git's ownership check applies to discovery only.
git --git-dir="$GIT_CACHE_REF_PRIVATE" rev-parse refs/heads/main > private.log 2>&1; result private_from_mirror_exit $?
result private_from_mirror_head "$(cat private.log)"
touch "$GIT_CACHE_DIR/intruder" 2> write.log; result write_cache_exit $?
result write_cache_error "$(cat write.log)"
mkdir "$GIT_CACHE_REF/objects/intruder" 2> write2.log; result write_mirror_exit $?
result write_mirror_error "$(cat write2.log)"
mount -o remount,rw "$GIT_CACHE_DIR" 2> remount.log; result remount_exit $?
result credentials_listing "$(ls -la /etc/git-cache 2>&1)"
result uid "$(id -u)"
result processes "$(for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$f"; echo; done)"
result environment "$(env)"
result mirror_owner "$(stat -c %u "$GIT_CACHE_REF")"
result mirror_config "$(cat "$GIT_CACHE_REF/config")"
`;

let dir = '';
let daemon: GitDaemon | undefined;
let http: SmartHttpServer | undefined;
let app: UpstreamRepo | undefined;
let privateRepo: UpstreamRepo | undefined;
const password = `pw-${Math.random().toString(36).slice(2)}-${Date.now()}`;

test.before(async () => {
  dir = tempDir('cluster-clone');
  app = makeUpstream(dir, 'app', 4);
  daemon = await startGitDaemon(dir, undefined, CLUSTER.hostIP);
  http = await startSmartHttp({ password, host: CLUSTER.hostIP });
  privateRepo = makeUpstream(http.projectRoot, 'private', 2);
  await apply([{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'private-https' }, stringData: { username: http.username, password } }], ns.name);
});

test.after.always(async () => {
  await daemon?.stop();
  await http?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function results(stdout: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const match = /^RESULT ([a-z_]+)=(.*)$/.exec(line);
    if (match) map.set(match[1] ?? '', (match[2] ?? '').trim());
  }
  return map;
}

interface ContainerStatus {
  name: string;
  state: { running?: { startedAt: string }; terminated?: { exitCode: number; startedAt: string; finishedAt: string } };
}
interface PodStatus {
  spec: { containers: Array<{ name: string; env?: Array<{ name: string; value?: string }> }> };
  status: { initContainerStatuses?: ContainerStatus[]; containerStatuses?: ContainerStatus[] };
}

/** The pod once its app container has ended (a legacy sidecar's pod never completes: it keeps running). */
async function appEnded(name: string): Promise<PodStatus> {
  for (let i = 0; i < 360; i++) {
    const pod = await getJson<PodStatus>('pod', name, ns.name);
    if (pod.status.containerStatuses?.find((entry) => entry.name === 'app')?.state.terminated) return pod;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the app container of ${name} did not end in 180 s`);
}

for (const mode of MODES) {
  test(`${mode} mode: a root app clones borrowing from the read-only mirror, cannot write or remount the cache, and never sees the credentials`, async (t) => {
    if (!daemon || !http || !app || !privateRepo) return t.fail('fixture missing');
    const name = `clone-${mode}`;
    const appUrl = daemon.url('app.git');
    const privateUrl = http.url('private.git');
    const pod: Manifest = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { 'git-cache.enabled': 'true' }, annotations: { 'git-cache.dev/transparent': 'false' } },
      spec: {
        restartPolicy: 'Never',
        terminationGracePeriodSeconds: 5,
        containers: [scriptContainer('app', APP_SCRIPT, { env: { APP_URL: appUrl, PRIVATE_URL: privateUrl }, securityContext: { runAsUser: 0, runAsGroup: 0 } })],
      },
    };
    const config = {
      apiVersion: 'git-cache.dev/v1alpha1',
      kind: 'GitCache',
      metadata: { name: 'git-cache' },
      spec: {
        repos: [
          { url: appUrl, name: 'app' },
          { url: privateUrl, name: 'private', httpsSecretName: 'private-https' },
        ],
        mode,
        refreshInterval: '2s',
        image: CLUSTER.agentImage,
        imagePullPolicy: 'Never',
      },
    };
    await apply(renderWithFunction([pod], config), ns.name);
    const status = await appEnded(name);
    const appLog = await logs(name, 'app', ns.name);
    const found = results(appLog);
    const report = appLog;

    // Order: the app starts only once the mirror is complete.
    const appState = status.status.containerStatuses?.find((entry) => entry.name === 'app')?.state.terminated;
    t.is(appState?.exitCode, 0, report);
    if (mode !== 'sidecar') {
      const initName = mode === 'init' ? CACHE_CONTAINER_NAME : INIT_CONTAINER_NAME;
      const init = status.status.initContainerStatuses?.find((entry) => entry.name === initName)?.state.terminated;
      t.is(init?.exitCode, 0, report);
      t.true(Date.parse(init?.finishedAt ?? '') <= Date.parse(appState?.startedAt ?? ''), 'the app started before the sync ended');
    }

    // The clone borrowed from the mirror, through the real mount path, with no fallback.
    const ref = status.spec.containers.find((entry) => entry.name === 'app')?.env?.find((variable) => variable.name === 'GIT_CACHE_REF')?.value ?? '';
    t.is(found.get('clone_ref_exit'), '0', report);
    t.is(found.get('clone_ref_alternates'), `${ref}/objects`, report);
    t.is(found.get('clone_ref_head'), git(['--git-dir', app.path, 'rev-parse', 'main']).trim());
    t.notRegex(found.get('clone_ref_output') ?? '', /Could not add alternate|is not a local repository|reference repository/i, report);
    t.is(found.get('clone_helper_exit'), '0', report);
    t.is(found.get('clone_helper_alternates'), `${ref}/objects`, report);
    t.regex(found.get('clone_helper_output') ?? '', /from \/git-cache\/\w+\.git without contacting upstream; objects borrowed from the mirror/, report);
    t.is(found.get('clone_helper_head'), found.get('clone_ref_head'));

    // The private repo: the app cannot read it upstream (no credentials), yet its mirror is there, so the cache
    // container did read the Secret.
    t.not(found.get('private_upstream_exit'), '0', report);
    t.regex(found.get('private_upstream_output') ?? '', /Authentication failed|401|could not read Username/i);
    t.is(found.get('private_from_mirror_exit'), '0', report);
    t.is(found.get('private_from_mirror_head'), git(['--git-dir', privateRepo.path, 'rev-parse', 'main']).trim());

    // Read-only for the app, even as root: the kernel refuses writes, and it cannot remount (no CAP_SYS_ADMIN).
    t.is(found.get('uid'), '0', 'the app container runs as root, the hardest case');
    t.not(found.get('write_cache_exit'), '0');
    t.regex(found.get('write_cache_error') ?? '', /Read-only file system/);
    t.not(found.get('write_mirror_exit'), '0');
    t.regex(found.get('write_mirror_error') ?? '', /Read-only file system/);
    t.not(found.get('remount_exit'), '0');

    // Credentials: not mounted in the app's view, not in its env, not in any process it can see, in no log.
    t.regex(found.get('credentials_listing') ?? '', /No such file or directory/);
    t.notRegex(found.get('processes') ?? '', /git-cache\.mjs|git-remote-http|upload-pack/, 'the app sees only its own processes');
    t.false(appLog.includes(password), 'the password reached the app container');
    const containers = [...(status.status.initContainerStatuses ?? []), ...(status.status.containerStatuses ?? [])].map((entry) => entry.name);
    for (const container of containers) t.false((await logs(name, container, ns.name)).includes(password), `the password is in ${container}'s log`);

    // The agent ran as its non-root UID: it owns the mirror it wrote; and it is a real mirror.
    t.is(found.get('mirror_owner'), String(AGENT_UID));
    t.regex(found.get('mirror_config') ?? '', /mirror = true/);
  });
}
