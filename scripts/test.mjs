// `npm test`: runs every suite with ava and keeps ava's TAP stream in .test-results/ava.tap, from which
// .ci/run takes the pass/fail counts. Suites whose external tool is missing are skipped with the reason
// printed (or fail under CI=true): see test/support/tools.ts.
//
// It builds first (scripts/build.mjs, about a second): the e2e, integration and cluster suites run the built
// function/ and dist/ bundles, which would otherwise be whatever the last `npm ci` or `npm run build` left.
//
// When the run includes cluster suites (test/e2e/cluster/), this takes the machine-wide test cluster lock for the
// whole run, brings the cluster up (scripts/test-cluster.sh up) before ava and takes it down after, unless this
// worktree had it up already (then it stays up): see test/support/cluster.ts. If it cannot come up, the cluster
// suites are skipped with the reason (or fail under CI=true); the others run as usual.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, '.test-results'), { recursive: true });
const toolsBin = join(root, '.tools', 'bin');
const clusterScript = join(root, 'scripts', 'test-cluster.sh');
const CLUSTER_SUITES = 'test/e2e/cluster';
const LOCK_FILE = '/run/lock/git-cache-test-cluster.lock';
const LOCK_WAIT_MS = 60 * 60 * 1000;
const args = process.argv.slice(2);

const build = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  process.stderr.write(`[npm test] the build failed (exit ${build.status}); not running tests on a stale bundle\n`);
  process.exit(1);
}

/** Whether the files ava will run include a cluster suite (no file arguments: every suite). */
function runsClusterSuites() {
  const files = args.filter((arg) => !arg.startsWith('-'));
  if (files.length === 0) return true;
  return files.some((file) => {
    const path = relative(root, resolve(root, file)).split('\\').join('/');
    // the suites' directory, anything in it, or a directory holding it (test, test/e2e, the root)
    const holdsClusterSuites = path === '' || `${CLUSTER_SUITES}/`.startsWith(`${path}/`);
    return holdsClusterSuites || path.startsWith(`${CLUSTER_SUITES}/`) || path.includes('*');
  });
}

const say = (line) => process.stderr.write(`[npm test] ${line}\n`);

/** Holds the machine-wide lock until this process exits (flock in a child whose stdin is our pipe). */
async function takeClusterLock() {
  mkdirSync(dirname(LOCK_FILE), { recursive: true });
  const holder = spawn('flock', ['-w', String(LOCK_WAIT_MS / 1000), LOCK_FILE, '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  holder.unref();
  const waiting = setTimeout(() => say(`waiting for the test cluster lock ${LOCK_FILE} (another run uses the cluster)`), 2000);
  try {
    const locked = await new Promise((resolveLock) => {
      createInterface({ input: holder.stdout }).once('line', (line) => resolveLock(line === 'locked'));
      holder.once('exit', () => resolveLock(false));
      holder.once('error', () => resolveLock(false));
    });
    return locked ? holder : undefined;
  } finally {
    clearTimeout(waiting);
  }
}

function clusterCommand(command) {
  return spawnSync('bash', [clusterScript, command], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    env: { ...process.env, GIT_CACHE_TEST_CLUSTER_LOCK_HELD: '1' },
  });
}

const env = { ...process.env, PATH: `${toolsBin}:${process.env.PATH ?? ''}` };
let takeDown = false;

if (runsClusterSuites() && !process.env.GIT_CACHE_TEST_KUBECONFIG) {
  if (process.getuid?.() !== 0) {
    env.GIT_CACHE_TEST_CLUSTER_UNAVAILABLE = 'the test cluster needs root';
  } else if (!existsSync(join(root, '.tools', 'cluster', 'bin', 'kubelet'))) {
    env.GIT_CACHE_TEST_CLUSTER_UNAVAILABLE = 'the test cluster is not installed (.tools/cluster/bin/kubelet is missing)';
  } else if (!(await takeClusterLock())) {
    env.GIT_CACHE_TEST_CLUSTER_UNAVAILABLE = `could not take the test cluster lock ${LOCK_FILE}`;
  } else {
    const before = clusterCommand('status');
    const wasOurs = before.status === 0 && before.stdout.includes(`owner ${root},`);
    const started = Date.now();
    const up = clusterCommand('up');
    if (up.status === 0) {
      say(`test cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s${wasOurs ? ' (it was up already; it stays up)' : ''}`);
      env.GIT_CACHE_TEST_KUBECONFIG = join(root, '.tools', 'cluster', 'kubeconfig');
      takeDown = !wasOurs;
    } else {
      env.GIT_CACHE_TEST_CLUSTER_UNAVAILABLE = `scripts/test-cluster.sh up failed (exit ${up.status}; its output is above)`;
      clusterCommand('down');
    }
  }
}

function finish(code) {
  if (takeDown) {
    takeDown = false;
    const down = clusterCommand('down');
    if (down.status !== 0) say(`scripts/test-cluster.sh down failed (exit ${down.status})`);
  }
  process.exit(code);
}

const tapFile = createWriteStream(join(root, '.test-results', 'ava.tap'));
const ava = spawn(process.execPath, [join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), '--tap', ...args], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
  env,
});
ava.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tapFile.write(chunk);
});
ava.on('close', (code) => {
  tapFile.end(() => finish(code ?? 1));
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    ava.kill(signal);
  });
}
