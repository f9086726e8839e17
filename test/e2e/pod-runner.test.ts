// The whole path, end to end: a Job rendered by the real function (kpt fn eval --exec) is run by the pod runner
// the way the kubelet would run it — the real agent as a non-root process with a read-only root filesystem,
// the app container's clone in its own mount namespace with the cache mounted read-only — in every mode.
// Upstreams: a public repo on `git daemon`, and a private one on smart HTTP behind basic auth whose password
// exists only in the cache container's Secret volume.
import test from 'ava';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mirrorPath } from '../../src/shared/repo-url.js';
import { AGENT_UID, CACHE_CONTAINER_NAME, INIT_CONTAINER_NAME, VOLUME_NAME } from '../../src/shared/names.js';
import { freePort, git, makeUpstream, startGitDaemon, tempDir, type GitDaemon, type UpstreamRepo } from '../support/git-fixtures.js';
import { describePodRun, podRunnerUnavailableReason, renderJobPodSpec, runPod, type Container, type PodSpec } from '../support/pod-runner.js';
import { startSmartHttp, type SmartHttpServer } from '../support/servers/smart-http.js';
import { removeDir } from '../support/servers/process.js';
import { testWithTools } from '../support/tools.js';

const MODES = ['sidecar', 'init', 'legacy-sidecar'] as const;
type Mode = (typeof MODES)[number];

// What the app container does: the seed's clone, the clone helper, then tries what it must not be able to do.
// Each finding is one `RESULT key=value` line (newlines folded) for the test to read.
const APP_SCRIPT = String.raw`
set -u
export GIT_TERMINAL_PROMPT=0 GIT_CONFIG_NOSYSTEM=1
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
`;

interface Fixture {
  readonly dir: string;
  readonly daemon: GitDaemon;
  readonly http: SmartHttpServer;
  readonly app: UpstreamRepo;
  readonly privateRepo: UpstreamRepo;
  readonly password: string;
}

const tools = ['kpt', 'unshare', 'setpriv', 'nginx', 'fcgiwrap', 'openssl', 'git'];
const unavailable = podRunnerUnavailableReason();
if (unavailable && process.env.CI !== 'true') console.error(`[skip] pod runner: ${unavailable}`);
const podTest = unavailable
  ? process.env.CI === 'true'
    ? test
    : test.skip
  : testWithTools(tools);

let fixture: Promise<Fixture> | undefined;

/** One set of upstreams for all modes (started on first use, so a skipped suite starts nothing). */
function upstreams(): Promise<Fixture> {
  fixture ??= (async () => {
    const dir = tempDir('pod-e2e');
    const password = `pw-${Math.random().toString(36).slice(2)}-${Date.now()}`;
    const daemonBase = join(dir, 'daemon');
    mkdirSync(daemonBase);
    const app = makeUpstream(daemonBase, 'app', 4);
    const daemon = await startGitDaemon(daemonBase);
    const http = await startSmartHttp({ password });
    const privateRepo = makeUpstream(http.projectRoot, 'private', 2);
    return { dir, daemon, http, app, privateRepo, password };
  })();
  return fixture;
}

test.after.always(async () => {
  if (!fixture) return;
  const { dir, daemon, http } = await fixture;
  await daemon.stop();
  await http.stop();
  removeDir(dir);
});

/** The Job, through `kpt fn eval --exec` with the real function, in `mode`; returns its pod spec. */
async function renderJob(f: Fixture, mode: Mode, metricsPort: number): Promise<PodSpec> {
  const appUrl = f.daemon.url('app.git');
  const privateUrl = f.http.url('private.git');
  const job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    // This Job checks the --reference-if-able path (upstream reachable, its own clone settings), so it keeps
    // git's configuration its own; test/e2e/clone-from-cache.test.ts proves transparent mode.
    metadata: { name: 'clone', labels: { 'git-cache.enabled': 'true' }, annotations: { 'git-cache.dev/transparent': 'false' } },
    spec: {
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'app',
              image: 'registry.example.com/builder:1.0.0',
              command: ['sh', '-c', APP_SCRIPT],
              env: [
                { name: 'APP_URL', value: appUrl },
                { name: 'PRIVATE_URL', value: privateUrl },
              ],
            },
          ],
        },
      },
    },
  };
  return renderJobPodSpec(job, {
    repos: [
      { url: appUrl, name: 'app' },
      { url: privateUrl, name: 'private', httpsSecretName: 'private-https' },
    ],
    mode,
    metricsPort,
    refreshInterval: '2s',
  });
}

function results(stdout: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const match = /^RESULT ([a-z_]+)=(.*)$/.exec(line);
    if (match) map.set(match[1] ?? '', (match[2] ?? '').trim());
  }
  return map;
}

function envOf(container: Container, name: string): string {
  const value = container.env?.find((variable) => variable.name === name)?.value;
  if (value === undefined) throw new Error(`container ${container.name} has no env ${name}`);
  return value;
}

for (const mode of MODES) {
  podTest(`${mode} mode: the rendered Job runs like the kubelet runs it; the app clones borrowing from the read-only mirror, cannot write the cache and never sees the credentials`, async (t) => {
    if (unavailable) {
      t.fail(`pod runner unavailable under CI=true: ${unavailable}`);
      return;
    }
    const f = await upstreams();
    const pod = await renderJob(f, mode, await freePort());
    const appContainer = pod.containers.find((container) => container.name === 'app');
    if (!appContainer) throw new Error('the rendered pod has no app container');
    const run = await runPod(pod, { secrets: { 'private-https': { username: f.http.username, password: f.password } }, timeoutMs: 120_000 });
    t.teardown(() => run.cleanup());
    const report = describePodRun(run);
    t.true(run.succeeded, report);

    // Order: the app starts only once the mirror is complete.
    const app = run.container('app');
    if (mode === 'sidecar') {
      const sidecar = run.container(CACHE_CONTAINER_NAME);
      t.is(sidecar.role, 'sidecar');
      t.true(sidecar.readyAt !== undefined && app.startedAt >= sidecar.readyAt, report);
      t.is(sidecar.exitCode, 0, `the sidecar exits 0 on SIGTERM at pod end\n${report}`);
    } else {
      const init = run.container(mode === 'init' ? CACHE_CONTAINER_NAME : INIT_CONTAINER_NAME);
      t.is(init.role, 'init');
      t.is(init.exitCode, 0, report);
      t.true(init.endedAt !== undefined && app.startedAt >= init.endedAt, report);
    }
    if (mode === 'legacy-sidecar') {
      const legacy = run.container(CACHE_CONTAINER_NAME);
      t.is(legacy.role, 'app');
      t.true(legacy.terminatedByRunner, report);
      t.is(legacy.exitCode, 0, `the legacy sidecar exits 0 on SIGTERM\n${report}`);
    }

    const found = results(app.stdout);
    const ref = envOf(appContainer, 'GIT_CACHE_REF');
    const cacheDir = envOf(appContainer, 'GIT_CACHE_DIR');
    t.is(ref, mirrorPath(cacheDir, f.daemon.url('app.git')));
    t.is(appContainer.volumeMounts?.find((mount) => mount.name === VOLUME_NAME)?.readOnly, true);

    // The clone borrowed from the mirror, through the real mount path, with no fallback.
    t.is(found.get('clone_ref_exit'), '0', report);
    t.is(found.get('clone_ref_alternates'), `${ref}/objects`, report);
    t.is(found.get('clone_ref_head'), git(['--git-dir', f.app.path, 'rev-parse', 'main']).trim());
    t.notRegex(found.get('clone_ref_output') ?? '', /Could not add alternate|is not a local repository|reference repository/i, report);
    t.is(found.get('clone_helper_exit'), '0', report);
    t.is(found.get('clone_helper_alternates'), `${ref}/objects`, report);
    t.regex(found.get('clone_helper_output') ?? '', /from \/git-cache\/\w+\.git without contacting upstream; objects borrowed from the mirror/, report);
    t.is(found.get('clone_helper_head'), found.get('clone_ref_head'));

    // The private repo: the app cannot reach it upstream (no credentials), yet its mirror is there, so the
    // cache container did read the Secret.
    t.not(found.get('private_upstream_exit'), '0', report);
    t.regex(found.get('private_upstream_output') ?? '', /Authentication failed|401|could not read Username/i);
    t.is(found.get('private_from_mirror_exit'), '0', report);
    t.is(found.get('private_from_mirror_head'), git(['--git-dir', f.privateRepo.path, 'rev-parse', 'main']).trim());

    // Read-only for the app, even as root: the kernel refuses writes, and it cannot remount (no CAP_SYS_ADMIN).
    t.is(found.get('uid'), '0', 'the app container runs as root, the hardest case');
    t.not(found.get('write_cache_exit'), '0');
    t.regex(found.get('write_cache_error') ?? '', /Read-only file system/);
    t.not(found.get('write_mirror_exit'), '0');
    t.regex(found.get('write_mirror_error') ?? '', /Read-only file system/);
    t.not(found.get('remount_exit'), '0');

    // Credentials: not mounted in the app's view, not in its env, not in any process it can see, nowhere in
    // what it printed; the agent's own logs do not hold the password either.
    t.regex(found.get('credentials_listing') ?? '', /No such file or directory/);
    t.notRegex(found.get('processes') ?? '', /git-cache\.js|git-remote-http|upload-pack/, 'the app sees only its own processes');
    t.false(app.stdout.includes(f.password) || app.stderr.includes(f.password), 'the password never reached the app container');
    for (const container of run.containers) t.false(container.stderr.includes(f.password) || container.stdout.includes(f.password), `no password in ${container.name}'s output`);

    // The agent really ran as the non-root UID: it owns the mirrors it wrote into the shared volume.
    const volume = run.volumeDirs.get(VOLUME_NAME);
    if (!volume) throw new Error('no cache volume');
    const mirrorOnHost = join(volume, ref.slice(cacheDir.length + 1));
    t.is(statSync(mirrorOnHost).uid, AGENT_UID);
    t.regex(readFileSync(join(mirrorOnHost, 'config'), 'utf8'), /mirror = true/);
  });
}
