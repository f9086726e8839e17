/**
 * Transparent mode with the exact git command sequences CI tools run (test/e2e/ci-tools/*.sh), as an app
 * container runs them: the env the function injects (built by src/inject/transparent.ts), another UID with no
 * passwd entry, the cache read-only, a real `git-cache serve` with its refresh endpoint, a real `git daemon` as
 * upstream. Each tool is given a commit pushed after the mirror's last refresh, which is what the README's
 * per-tool table documents; the daemon's log shows that the tools' git never fetched from upstream (only the
 * agent did) and that `git push` went to upstream.
 */
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { appGitEnv } from '../../../src/inject/transparent.js';
import { mirrorPath } from '../../../src/shared/repo-url.js';
import { runAsCacheReader } from '../../support/cache-reader.js';
import { freePort, git, gitDaemonFixture, makeUpstream, type UpstreamRepo } from '../../support/git-fixtures.js';
import { startAgent, waitForReady, type AgentProcess } from '../../support/servers/agent.js';
import { CI_TOOLS_DIR, CI_TOOL_CASES } from '../../support/ci-tool-cases.js';
import { testWithTools } from '../../support/tools.js';

const test = testWithTools(['git', 'flock', 'dash', 'curl', 'unshare', 'setpriv']);
const upstreams = gitDaemonFixture(test, 'ci-tools');
const READER_UID = 4343;

interface World {
  readonly url: string;
  readonly upstream: UpstreamRepo;
  readonly cache: string;
  readonly home: string;
  readonly env: Record<string, string>;
  readonly agent: AgentProcess;
}

let world: Promise<World> | undefined;

/** One upstream, one serving agent (interval 1h: only refresh requests move the mirror) for every tool. */
function setup(): Promise<World> {
  world ??= (async () => {
    const upstream = makeUpstream(join(upstreams.root, 'up'), 'app');
    const url = upstreams.daemon.url('app.git');
    const cache = join(upstreams.root, 'cache');
    const port = await freePort();
    const agent = startAgent(['serve', '--repo', `app=${url}`, '--cache-dir', cache, '--interval', '1h', '--metrics-port', String(port), '--refresh-min-interval', '200ms']);
    await waitForReady(port, agent);
    const home = join(upstreams.root, 'home');
    mkdirSync(home, { recursive: true });
    chownSync(home, READER_UID, READER_UID);
    chmodSync(upstreams.root, 0o755);
    const mirror = mirrorPath(cache, url);
    const injected = appGitEnv({ repos: [{ url, mirror: { path: mirror } }], endpoint: `http://127.0.0.1:${port}`, transparent: true, cacheDir: cache });
    const env = { ...Object.fromEntries(injected.map((variable) => [variable.name, variable.value])), GIT_CACHE_REF: mirror, GIT_CACHE_REF_APP: mirror };
    return { url, upstream, cache, home, env, agent };
  })();
  return world;
}

test.after.always(async () => {
  if (world) await (await world).agent.stop();
});

function inspect(dir: string, args: string[]): string {
  return git(['-c', 'safe.directory=*', '-C', dir, ...args]).trim();
}

const fetchesFromUpstream = (): number => upstreams.daemon.uploadPacks('/app.git');

for (const entry of CI_TOOL_CASES) {
  test.serial(`${entry.tool}: a commit pushed after the mirror's last refresh, as another UID on the read-only cache`, async (t) => {
    const w = await setup();
    const sha = w.upstream.commit(`for ${entry.tool}`);
    entry.before?.(w, sha);
    const dir = join(w.home, entry.tool.replace('.sh', ''));
    const before = fetchesFromUpstream();
    const result = await runAsCacheReader(
      { cache: w.cache, home: w.home, uid: READER_UID },
      'dash',
      `${join(CI_TOOLS_DIR, entry.tool)} ${entry.args(w, dir, sha).map((arg) => `'${arg}'`).join(' ')}`,
      w.env,
    );
    if (entry.newer === 'checked-out') {
      t.is(result.code, 0, result.stderr);
      t.is(inspect(dir, ['rev-parse', 'HEAD']), sha);
      t.regex(result.stderr, /git-cache: not in the mirror: .*; the agent at .* fetched app now/);
      t.is(inspect(dir, ['config', 'remote.origin.url']), w.url, 'origin is the URL as written');
      t.is(inspect(dir, ['fsck', '--no-progress', '--connectivity-only']), '');
      // Only the agent fetched from upstream (the refresh); the tool's own fetch read the mirror.
      t.is(fetchesFromUpstream() - before, 1, `upload-packs served by upstream during ${entry.tool}`);
      const push = await runAsCacheReader({ cache: w.cache, home: w.home, uid: READER_UID }, 'dash', `cd '${dir}' && git push origin HEAD:refs/heads/from-ci`, w.env);
      t.not(push.code, 0);
      t.regex(upstreams.daemon.log(), /receive-pack/, 'git push went to the upstream daemon, which refuses it');
    } else {
      t.not(result.code, 0, `documented: ${entry.tool} does not get a commit newer than the mirror`);
      t.regex(result.stderr, entry.newer);
      t.is(fetchesFromUpstream() - before, 0, 'and nothing reached upstream');
    }
  });
}

test.serial('plain git clone and clone --depth 1 read the mirror (as of its last refresh) and need no route and no credential', async (t) => {
  const w = await setup();
  const mirrorHead = git(['--git-dir', mirrorPath(w.cache, w.url), 'rev-parse', 'refs/heads/main']).trim();
  const before = fetchesFromUpstream();
  const dir = join(w.home, 'depth1');
  const result = await runAsCacheReader({ cache: w.cache, home: w.home, uid: READER_UID }, 'dash', `${join(CI_TOOLS_DIR, 'git-clone-depth1.sh')} '${w.url}' '${dir}'`, w.env);
  t.is(result.code, 0, result.stderr);
  t.is(inspect(dir, ['rev-parse', 'HEAD']), mirrorHead);
  t.regex(result.stderr, /--depth is ignored in local clones/, 'git says it makes a full local clone instead');
  const full = join(w.home, 'full');
  const clone = await runAsCacheReader({ cache: w.cache, home: w.home, uid: READER_UID }, 'dash', `${join(CI_TOOLS_DIR, 'git-clone.sh')} '${w.url}' '${full}' '${mirrorHead}'`, w.env);
  t.is(clone.code, 0, clone.stderr);
  t.is(inspect(full, ['config', 'remote.origin.url']), w.url);
  t.is(fetchesFromUpstream() - before, 0);
});
