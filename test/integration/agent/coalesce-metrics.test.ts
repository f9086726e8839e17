/**
 * An agent whose refresh coalesces into another agent's fetch (shared volume) reports the mirror as fresh as
 * that fetch: git_cache_last_success_timestamp_seconds moves, so the staleness alert does not fire for agents
 * that keep coalescing.
 */
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { syncRepo } from '../../../src/agent/mirror/sync.js';
import { createLogger } from '../../../src/agent/log.js';
import { createMetrics } from '../../../src/agent/metrics.js';
import { MARKER_FILE, lockPath, mirrorDir, type MirrorContext } from '../../../src/agent/mirror/mirror.js';
import { prepareRuntime } from '../../../src/agent/git/runtime.js';
import { canonicalRepoUrl, repoKey } from '../../../src/shared/repo-url.js';
import { gitDaemonFixture, holdLock, makeUpstream, runAgent } from '../../support/git-fixtures.js';
import { testWithTools } from '../../support/tools.js';

const test = testWithTools(['git', 'flock']);
const upstreams = gitDaemonFixture(test, 'agent-coalesce');

test('a coalesced refresh sets last_success_timestamp to the other agent\'s fetch and counts as coalesced, not as a fetch', async (t) => {
  makeUpstream(join(upstreams.root, 'up'), 'app');
  const url = upstreams.daemon.url('app.git');
  const cache = join(upstreams.root, 'cache');
  const first = await runAgent(['sync', '--repo', url, '--cache-dir', cache]);
  t.is(first.code, 0, first.stderr);

  const repo = { name: 'app', url, key: repoKey(url) };
  let reportWaiting: () => void = () => undefined;
  const waiting = new Promise<void>((resolve) => (reportWaiting = resolve));
  const logger = createLogger('debug', (line) => {
    if (line.includes('"lock_waiting"')) reportWaiting();
  });
  const runtime = await prepareRuntime(logger);
  const metrics = createMetrics(['app'], { refreshIntervalSeconds: 60, volumeSizeBytes: undefined, volumeStats: async () => ({ sizeBytes: 1, availableBytes: 1 }) });
  const ctx: MirrorContext = {
    cacheDir: cache,
    runtime,
    logger,
    credentials: { credentialsDir: join(upstreams.root, 'no-credentials'), insecureIgnoreHostKey: false },
    recovered: new Set([repo.key]),
  };
  try {
    const lock = await holdLock(lockPath(cache, repo.key));
    const outcome = syncRepo(ctx, repo, metrics);
    await waiting;
    // The other fetch starts after ours began waiting (a later millisecond: the comparison is strict).
    await new Promise((resolve) => setTimeout(resolve, 20));
    // What another agent holding the lock leaves behind after a successful fetch.
    const otherFetch = { fetchStartedAt: Date.now(), fetchCompletedAt: Date.now() + 1500, url: canonicalRepoUrl(url) };
    writeFileSync(join(mirrorDir(cache, repo), MARKER_FILE), `${JSON.stringify(otherFetch)}\n`);
    await lock.release();

    const result = await outcome;
    t.true(result.ok && result.result.action === 'coalesced', JSON.stringify(result));
    t.deepEqual((await metrics.lastSuccessTimestamp.get()).values.map((sample) => sample.value), [otherFetch.fetchCompletedAt / 1000]);
    t.deepEqual((await metrics.coalesced.get()).values.map((sample) => sample.value), [1]);
    t.deepEqual((await metrics.fetchTotal.get()).values.filter((sample) => sample.value > 0), []);
  } finally {
    await runtime.cleanup();
  }
});
