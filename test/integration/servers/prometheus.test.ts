// A real Prometheus (Debian's package) scrapes a running `git-cache serve` whose upstream is a git daemon on
// 127.0.0.1; the test reads the contract's metrics back through Prometheus's HTTP API, and the exposition
// passes `promtool check metrics`.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { FLAG } from '../../../src/shared/agent-cli.js';
import { startGitDaemon } from '../../support/git-fixtures.js';
import { findTool, testWithTools } from '../../support/tools.js';
import { httpGet, repoFlags, startAgent, waitForReady } from '../../support/servers/agent.js';
import { freePort, makeTempDir, removeDir } from '../../support/servers/process.js';
import { startPrometheus } from '../../support/servers/prometheus.js';
import { createUpstream } from '../../support/servers/upstream.js';

const promTest = testWithTools(['prometheus', 'promtool', 'flock']);

promTest('Prometheus scrapes git-cache serve and its API returns fetch_total{result="success"} > 0 and git_cache_bytes; promtool accepts /metrics', async (t) => {
  const dir = makeTempDir('prom-agent');
  const upstreams = join(dir, 'upstreams');
  createUpstream(upstreams, 'app', { randomBytes: 64 << 10 });
  createUpstream(upstreams, 'lib');
  const daemon = await startGitDaemon(upstreams);
  const port = await freePort();
  const agent = startAgent([
    'serve',
    FLAG.cacheDir,
    join(dir, 'cache'),
    FLAG.interval,
    '1s',
    FLAG.metricsPort,
    String(port),
    '--metrics-address',
    '127.0.0.1',
    ...repoFlags([
      { name: 'app', url: daemon.url('app.git') },
      { name: 'lib', url: daemon.url('lib.git') },
    ]),
  ]);
  t.teardown(async () => {
    await agent.stop('SIGKILL');
    await daemon.stop();
    removeDir(dir);
  });
  await waitForReady(port, agent);
  const prometheus = await startPrometheus([`127.0.0.1:${port}`]);
  t.teardown(() => prometheus.stop());

  const success = await prometheus.waitForSample('git_cache_fetch_total{repo="app",result="success"}', (sample) => sample.value > 0);
  t.true(success.value > 0);
  t.is(success.metric.job, 'git-cache');
  const bytes = await prometheus.waitForSample('git_cache_bytes{repo="app"}', (sample) => sample.value > 0);
  t.true(bytes.value > 64 << 10, `app mirror holds the 64 KiB of random content (${bytes.value} bytes)`);
  const perRepo = await prometheus.query('sum by (repo) (git_cache_fetch_total{result="success"})');
  t.deepEqual(perRepo.map((sample) => sample.metric.repo).sort(), ['app', 'lib']);
  const lastSuccess = await prometheus.waitForSample('git_cache_last_success_timestamp_seconds{repo="lib"}');
  t.true(lastSuccess.value > Date.now() / 1000 - 3600);
  await prometheus.waitForSample('git_cache_last_fetch_seconds{repo="app"}');
  // Label values are repo names, never URLs.
  const labels = await prometheus.query('{__name__=~"git_cache_.*"}');
  t.true(labels.length > 0);
  for (const sample of labels) t.false(Object.values(sample.metric).some((value) => value.includes('git://')), JSON.stringify(sample.metric));
  const targets = await prometheus.targets();
  t.is(targets[0]?.health, 'up', targets[0]?.lastError);

  const exposition = (await httpGet(port, '/metrics')).body;
  const promtool = findTool('promtool') ?? 'promtool';
  let lint = '';
  try {
    lint = execFileSync(promtool, ['check', 'metrics'], { input: exposition, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string };
    t.fail(`promtool check metrics failed:\n${failure.stdout ?? ''}${failure.stderr ?? ''}`);
  }
  t.log(`promtool: ${lint.trim() || 'no problems'}`);
  t.is(await agent.stop('SIGTERM'), 0);
});
