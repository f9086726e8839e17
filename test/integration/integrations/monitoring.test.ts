// The monitoring assets in monitoring/: the alert rules under `promtool test rules`, the PrometheusRule kept equal
// to the plain rule file, and every metric the rules and the Grafana dashboard use checked against a real scrape
// of the built agent (`git-cache serve` mirroring a repo from a local git daemon), with the dashboard's queries
// run by a real Prometheus scraping that agent.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { REPO_ROOT, findTool, testWithTools } from '../../support/tools.js';
import { freePort, makeUpstream, startGitDaemon } from '../../support/git-fixtures.js';
import { httpGet, startAgent, waitForReady } from '../../support/servers/agent.js';
import { LOOPBACK, makeTempDir, removeDir, waitFor } from '../../support/servers/process.js';
import { startPrometheus, type PrometheusServer } from '../../support/servers/prometheus.js';
import { runTool } from './helpers.js';

const MONITORING = join(REPO_ROOT, 'monitoring');
const RULES = join(MONITORING, 'git-cache-rules.yaml');
const RULE_TESTS = join(MONITORING, 'tests', 'git-cache-rules.test.yaml');

/** Agent-wide gauges the rules compare with (no labels): 3 refresh intervals for staleness, the volume size for fill. */
const RULE_AGENT_GAUGES = ['git_cache_refresh_interval_seconds', 'git_cache_volume_size_bytes'];

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string }> }>;
}

function ruleExpressions(): string[] {
  return (parse(readFileSync(RULES, 'utf8')) as RuleFile).groups.flatMap((group) => group.rules.map((rule) => rule.expr));
}

interface Dashboard {
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  templating: { list: Array<{ name: string; definition?: string }> };
}

function dashboard(): Dashboard {
  return JSON.parse(readFileSync(join(MONITORING, 'grafana-dashboard.json'), 'utf8')) as Dashboard;
}

function dashboardExpressions(): Array<{ title: string; expr: string }> {
  const board = dashboard();
  return [
    ...board.panels.flatMap((panel) => panel.targets.map((target) => ({ title: panel.title, expr: target.expr }))),
    ...board.templating.list.filter((variable) => variable.definition).map((variable) => ({ title: `variable ${variable.name}`, expr: variable.definition ?? '' })),
  ];
}

/** git_cache_* series names in PromQL (a histogram's `_bucket` series included as written). */
function metricNames(exprs: readonly string[]): string[] {
  return [...new Set(exprs.flatMap((expr) => expr.match(/\bgit_cache_[a-z0-9_]+/g) ?? []))].sort();
}

/** Sample names of a Prometheus text exposition. */
function scrapedNames(exposition: string): Set<string> {
  return new Set(
    exposition
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => line.split(/[{ ]/, 1)[0] ?? ''),
  );
}

/** A dashboard query as Prometheus runs it once Grafana has filled its variables ("All" selected). */
function asGrafanaSends(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$namespace', '.*').replaceAll('$repo', '.*');
}

const testPromtool = testWithTools(['promtool']);

testPromtool('promtool check rules accepts the rule file and the PrometheusRule\'s groups', async (t) => {
  const dir = makeTempDir('rules');
  t.teardown(() => removeDir(dir));
  const crd = parse(readFileSync(join(MONITORING, 'prometheusrule.yaml'), 'utf8')) as { spec: RuleFile };
  const fromCrd = join(dir, 'from-prometheusrule.yaml');
  writeFileSync(fromCrd, JSON.stringify(crd.spec));
  const checked = await runTool(findTool('promtool') ?? 'promtool', ['check', 'rules', RULES, fromCrd], { env: { PATH: process.env.PATH ?? '' } });
  t.is(checked.code, 0, checked.stdout + checked.stderr);
  const rules = (parse(readFileSync(RULES, 'utf8')) as RuleFile).groups.flatMap((group) => group.rules).length;
  t.regex(checked.stdout, new RegExp(`SUCCESS: ${rules} rules found[\\s\\S]*SUCCESS: ${rules} rules found`));
});

testPromtool('promtool test rules: the alerts fire (and stay quiet) as the unit tests in monitoring/tests say', async (t) => {
  const tested = await runTool(findTool('promtool') ?? 'promtool', ['test', 'rules', RULE_TESTS], { cwd: MONITORING, env: { PATH: process.env.PATH ?? '' } });
  t.is(tested.code, 0, tested.stdout + tested.stderr);
  t.regex(tested.stdout, /SUCCESS/);
  t.notRegex(tested.stdout, /FAILED/);
});

test('every alert of the rule file has a promtool unit test that expects it to fire', (t) => {
  const alerts = (parse(readFileSync(RULES, 'utf8')) as RuleFile).groups.flatMap((group) => group.rules.map((rule) => rule.alert)).filter(Boolean);
  const unitTests = parse(readFileSync(RULE_TESTS, 'utf8')) as { tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
  const firing = new Set(unitTests.tests.flatMap((entry) => (entry.alert_rule_test ?? []).filter((check) => check.exp_alerts.length > 0).map((check) => check.alertname)));
  t.true(alerts.length >= 4);
  for (const alert of alerts) t.true(firing.has(alert ?? ''), `${alert} is never expected to fire`);
});

test('the PrometheusRule carries exactly the groups of the plain rule file', (t) => {
  const crd = parse(readFileSync(join(MONITORING, 'prometheusrule.yaml'), 'utf8')) as { apiVersion: string; kind: string; spec: RuleFile };
  t.is(crd.apiVersion, 'monitoring.coreos.com/v1');
  t.is(crd.kind, 'PrometheusRule');
  t.deepEqual(crd.spec, parse(readFileSync(RULES, 'utf8')) as RuleFile);
});

test('the PodMonitor and ServiceMonitor scrape the agent\'s named metrics port at /metrics', async (t) => {
  const { METRICS_PORT_NAME } = await import('../../../src/shared/names.js');
  const podMonitor = parse(readFileSync(join(MONITORING, 'podmonitor.yaml'), 'utf8')) as { kind: string; spec: { podMetricsEndpoints: Array<{ port: string; path: string }> } };
  const serviceMonitor = parse(readFileSync(join(MONITORING, 'servicemonitor.yaml'), 'utf8')) as { kind: string; spec: { endpoints: Array<{ port: string; path: string }> } };
  t.is(podMonitor.kind, 'PodMonitor');
  t.is(serviceMonitor.kind, 'ServiceMonitor');
  t.deepEqual(podMonitor.spec.podMetricsEndpoints.map((endpoint) => [endpoint.port, endpoint.path]), [[METRICS_PORT_NAME, '/metrics']]);
  t.deepEqual(serviceMonitor.spec.endpoints.map((endpoint) => [endpoint.port, endpoint.path]), [[METRICS_PORT_NAME, '/metrics']]);
});

// --- against a real agent ---------------------------------------------------------------------------------

interface LiveAgent {
  readonly metricsPort: number;
  readonly exposition: string;
  readonly prometheus: PrometheusServer;
}

let live: Promise<LiveAgent> | undefined;
const cleanups: Array<() => Promise<void> | void> = [];

/** One agent (and one Prometheus scraping it) for the tests below, started on first use. */
function liveAgent(): Promise<LiveAgent> {
  live ??= (async () => {
    const dir = makeTempDir('monitoring-agent');
    cleanups.push(() => removeDir(dir));
    const daemon = await startGitDaemon(dir);
    cleanups.push(() => daemon.stop());
    makeUpstream(dir, 'platform');
    const metricsPort = await freePort();
    // The built agent (dist/git-cache.mjs, rebuilt by startAgent when older than its sources).
    const agent = startAgent(
      ['serve', '--repo', `platform=${daemon.url('platform.git')}`, '--cache-dir', join(dir, 'cache'), '--interval', '2s', '--metrics-port', String(metricsPort), '--metrics-address', LOOPBACK],
      { env: { HOME: dir, GIT_CONFIG_NOSYSTEM: '1' } },
    );
    cleanups.push(async () => {
      await agent.stop();
    });
    await waitForReady(metricsPort, agent);
    // A refresh after the first clone, so fetch counters, durations and the success timestamp all have values.
    const exposition = await waitFor(
      'a second successful fetch',
      async () => {
        const { body } = await httpGet(metricsPort, '/metrics');
        return /git_cache_fetch_total\{repo="platform",result="success"\} [2-9]/.test(body) ? body : undefined;
      },
      60_000,
      250,
    );
    const prometheus = await startPrometheus([`${LOOPBACK}:${metricsPort}`]);
    cleanups.push(() => prometheus.stop());
    return { metricsPort, exposition, prometheus };
  })();
  return live;
}

test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const testLive = testWithTools(['git', 'prometheus']);

testLive('every metric the rules and the dashboard use is in a real scrape of the agent', async (t) => {
  const { exposition } = await liveAgent();
  const scraped = scrapedNames(exposition);
  const used = metricNames([...ruleExpressions(), ...dashboardExpressions().map((entry) => entry.expr)]);
  t.true(used.length >= 8, `only ${used.join(', ')}`);
  const missing = used.filter((name) => !scraped.has(name));
  t.deepEqual(missing, [], `not in the agent's /metrics:\n${[...scraped].filter((name) => name.startsWith('git_cache_')).join('\n')}`);
  // The contract's four are among them.
  for (const name of ['git_cache_bytes', 'git_cache_last_fetch_seconds', 'git_cache_last_success_timestamp_seconds', 'git_cache_fetch_total']) t.true(used.includes(name), name);
});

testLive('the agent exposes the gauges the rules compare with, without labels: the --interval in seconds and the volume size', async (t) => {
  const { exposition } = await liveAgent();
  const value = (name: string): number | undefined => {
    const line = exposition.split('\n').find((entry) => entry.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  };
  for (const name of RULE_AGENT_GAUGES) t.true(scrapedNames(exposition).has(name), `${name} is not exposed`);
  t.is(value('git_cache_refresh_interval_seconds'), 2, 'the live agent runs with --interval 2s');
  t.true((value('git_cache_volume_size_bytes') ?? 0) > 0, 'no --volume-size: the filesystem size');
});

testLive('a real Prometheus scraping the agent answers every dashboard query with data, and every rule expression without error', async (t) => {
  const { prometheus } = await liveAgent();
  await prometheus.waitForSample('increase(git_cache_fetch_total{result="success"}[1m]) > 0', undefined, 60_000);
  for (const { title, expr } of dashboardExpressions()) {
    const promql = expr.startsWith('label_values(') ? expr.replace(/^label_values\((.*),\s*[a-z_]+\)$/, '$1') : asGrafanaSends(expr);
    const samples = await prometheus.query(asGrafanaSends(promql));
    t.true(samples.length > 0, `dashboard "${title}" returned nothing for ${promql}`);
  }
  for (const expr of ruleExpressions()) await t.notThrowsAsync(prometheus.query(expr), expr);
});
