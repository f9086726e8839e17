import test from 'ava';
import { agentArgs, parseDurationMs } from '../../../src/shared/agent-cli.js';
import { repoKey } from '../../../src/shared/repo-url.js';
import { parseArgs, splitRepoEnv, type AgentOptions } from '../../../src/agent/cli.js';

function options(argv: string[], env: Record<string, string> = {}): AgentOptions {
  const result = parseArgs(argv, env);
  if (result.kind !== 'run') throw new Error(`expected run, got ${JSON.stringify(result)}`);
  return result.options;
}

function usage(argv: string[], env: Record<string, string> = {}): string {
  const result = parseArgs(argv, env);
  if (result.kind !== 'usage') throw new Error(`expected usage error, got ${result.kind}`);
  return result.message;
}

test('sync parses repeated --repo with NAME=URL and plain URLs, keys and names', (t) => {
  const o = options(['sync', '--repo', 'app=https://example.com/org/app.git', '--repo', 'git@example.com:org/lib.git', '--cache-dir', '/c/']);
  t.is(o.command, 'sync');
  t.is(o.cacheDir, '/c');
  t.deepEqual(
    o.repos.map((r) => [r.name, r.url, r.key]),
    [
      ['app', 'https://example.com/org/app.git', repoKey('https://example.com/org/app.git')],
      ['lib', 'git@example.com:org/lib.git', repoKey('git@example.com:org/lib.git')],
    ],
  );
});

test('the args the KRM function renders are exactly what the agent parses', (t) => {
  const argv = agentArgs({
    command: 'serve',
    repos: [{ name: 'app', url: 'ssh://git@example.com/org/app.git' }, { name: 'custom', url: 'https://example.com/x/lib.git' }],
    cacheDir: '/git-cache',
    interval: '90s',
    metricsPort: 9902,
    credentialsDir: '/creds',
    volumeSize: '5Gi',
  });
  const o = options(argv);
  t.is(o.command, 'serve');
  t.is(o.intervalMs, 90_000);
  t.is(o.metricsPort, 9902);
  t.is(o.volumeSizeBytes, 5 * 2 ** 30);
  t.is(o.credentialsDir, '/creds');
  t.deepEqual(o.repos.map((r) => r.name), ['app', 'custom']);
});

test('env fallbacks: REPO_URL with several URLs separated by spaces and commas, GIT_CACHE_DIR', (t) => {
  const o = options(['sync'], { REPO_URL: ' https://h/a.git,git://h/b.git\n ssh://git@h/c.git ', GIT_CACHE_DIR: '/cache' });
  t.deepEqual(o.repos.map((r) => r.name), ['a', 'b', 'c']);
  t.is(o.cacheDir, '/cache');
  t.deepEqual(splitRepoEnv('a, b,,c'), ['a', 'b', 'c']);
});

test('flags win over env; --flag=value form works; defaults are the contract defaults', (t) => {
  const o = options(['serve', '--repo=https://h/a.git', '--cache-dir=/x'], { REPO_URL: 'https://h/zzz.git', GIT_CACHE_DIR: '/y' });
  t.deepEqual(o.repos.map((r) => r.name), ['a']);
  t.is(o.cacheDir, '/x');
  t.is(o.intervalMs, 60_000);
  t.is(o.metricsPort, 9901);
  t.is(o.metricsAddress, '0.0.0.0');
  t.is(o.credentialsDir, '/etc/git-cache/credentials');
  t.false(o.insecureIgnoreHostKey);
  t.is(o.volumeSizeBytes, undefined, 'no --volume-size: the filesystem size is measured instead');
});

test('--volume-size takes a Kubernetes quantity for serve only; agentArgs renders it for serve only', (t) => {
  t.is(options(['serve', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--volume-size', '500Mi']).volumeSizeBytes, 500 * 2 ** 20);
  t.is(options(['serve', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--volume-size=10G']).volumeSizeBytes, 10e9);
  t.regex(usage(['serve', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--volume-size', '5GB']), /--volume-size: "5GB" is not a size/);
  t.regex(usage(['serve', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--volume-size', '0']), /not a size/);
  t.regex(usage(['sync', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--volume-size', '5Gi']), /serve only/);
  const repos = [{ name: 'a', url: 'https://h/a.git' }];
  t.deepEqual(agentArgs({ command: 'serve', repos, cacheDir: '/c', volumeSize: '5Gi' }), ['serve', '--cache-dir', '/c', '--volume-size', '5Gi', '--repo', 'https://h/a.git']);
  t.deepEqual(agentArgs({ command: 'sync', repos, cacheDir: '/c', volumeSize: '5Gi' }), ['sync', '--cache-dir', '/c', '--repo', 'https://h/a.git']);
});

test('--upstream-cache takes the base URL of another git-cache for sync and serve, never credentials or other schemes; agentArgs renders it', (t) => {
  const base = ['--repo', 'https://h/a.git', '--cache-dir', '/c'];
  t.is(options(['serve', ...base, '--upstream-cache', 'git://git-cache-keeper.ci.svc']).upstreamCache, 'git://git-cache-keeper.ci.svc');
  t.is(options(['sync', ...base, '--upstream-cache=http://cache.example:8080/mirrors/']).upstreamCache, 'http://cache.example:8080/mirrors', 'a trailing slash is dropped');
  t.is(options(['sync', ...base]).upstreamCache, undefined);
  t.is(options(['sync', ...base]).upstreamCacheWaitMs, 5 * 60_000);
  t.is(options(['sync', ...base, '--upstream-cache-wait', '30s']).upstreamCacheWaitMs, 30_000);
  t.regex(usage(['sync', ...base, '--upstream-cache', 'file:///srv/cache']), /--upstream-cache: must be a git:\/\/, http:\/\/ or https:\/\/ URL/);
  t.regex(usage(['sync', ...base, '--upstream-cache', 'ext::sh -c id']), /must be a git:\/\//);
  t.regex(usage(['sync', ...base, '--upstream-cache', 'https://user:pw@cache.example']), /credentials/);
  t.regex(usage(['sync', ...base, '--upstream-cache', 'git://-oProxyCommand=x']), /invalid host/);
  t.regex(usage(['wait', ...base, '--upstream-cache', 'git://keeper']), /sync and serve only/);
  const repos = [{ name: 'a', url: 'https://h/a.git' }];
  t.deepEqual(agentArgs({ command: 'sync', repos, cacheDir: '/c', upstreamCache: 'git://k' }), ['sync', '--cache-dir', '/c', '--upstream-cache', 'git://k', '--repo', 'https://h/a.git']);
  t.deepEqual(agentArgs({ command: 'wait', repos, cacheDir: '/c', upstreamCache: 'git://k' }), ['wait', '--cache-dir', '/c', '--repo', 'https://h/a.git']);
});


test('wait --cache-url waits for a git-cache server instead of a directory: wait only, not with --cache-dir, no credentials or other schemes; agentArgs renders it', (t) => {
  const repo = ['--repo', 'https://h/a.git'];
  const waiting = options(['wait', ...repo, '--cache-url', 'git://git-cache-node.ci.svc/', '--timeout', '2m'], { GIT_CACHE_DIR: '/ignored' });
  t.is(waiting.cacheUrl, 'git://git-cache-node.ci.svc', 'a trailing slash is dropped');
  t.is(waiting.cacheDir, '', 'no directory is read');
  t.is(waiting.timeoutMs, 120_000);
  t.is(options(['wait', ...repo, '--cache-dir', '/c']).cacheUrl, undefined);
  t.regex(usage(['wait', ...repo, '--cache-dir', '/c', '--cache-url', 'git://n']), /exclude each other/);
  t.regex(usage(['serve', ...repo, '--cache-dir', '/c', '--cache-url', 'git://n']), /applies to wait only/);
  t.regex(usage(['wait', ...repo, '--cache-url', 'file:///srv']), /--cache-url: must be a git:\/\/, http:\/\/ or https:\/\/ URL/);
  t.regex(usage(['wait', ...repo, '--cache-url', 'https://user:pw@n']), /credentials/);
  const repos = [{ name: 'a', url: 'https://h/a.git' }];
  t.deepEqual(agentArgs({ command: 'wait', repos, cacheDir: '/c', cacheUrl: 'git://n', timeout: '10m' }), ['wait', '--cache-url', 'git://n', '--timeout', '10m', '--repo', 'https://h/a.git']);
  t.deepEqual(agentArgs({ command: 'sync', repos, cacheDir: '/c', cacheUrl: 'git://n' }), ['sync', '--cache-dir', '/c', '--repo', 'https://h/a.git'], 'only wait takes it');
});
test('--orphan-grace: serve only, default 24h, a duration or never', (t) => {
  const base = ['--repo', 'https://h/a.git', '--cache-dir', '/c'];
  t.is(options(['serve', ...base]).orphanGraceMs, 24 * 3_600_000);
  t.is(options(['serve', ...base, '--orphan-grace', '90m']).orphanGraceMs, 90 * 60_000);
  t.is(options(['serve', ...base, '--orphan-grace', 'never']).orphanGraceMs, undefined);
  t.regex(usage(['serve', ...base, '--orphan-grace', '0']), /not a duration/);
  t.regex(usage(['sync', ...base, '--orphan-grace', '1h']), /serve only/);
});

test('hostile URLs are usage errors before anything runs', (t) => {
  for (const url of ['ext::sh -c touch% /tmp/x', 'ext::sh', 'file:///etc', '/etc', '-oProxyCommand=touch /tmp/x', 'ssh://-oProxyCommand=x/y', 'https://user:pw@h/r.git']) {
    const message = usage(['sync', '--repo', url, '--cache-dir', '/c']);
    t.true(message.startsWith('--repo'), message);
    t.false(message.includes('\n'));
  }
});

test('usage errors: missing repo, missing cache dir, unknown flag, serve-only flags, bad durations and ports', (t) => {
  t.regex(usage(['sync', '--cache-dir', '/c']), /no repository/);
  t.regex(usage(['sync', '--repo', 'https://h/a.git']), /no cache directory/);
  t.regex(usage(['sync', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--bogus']), /unknown flag "--bogus"/);
  t.regex(usage(['sync', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--interval', '5s']), /serve only/);
  t.regex(usage(['serve', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--interval', '5 minutes']), /not a duration/);
  t.regex(usage(['serve', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--metrics-port', '70000']), /not a port/);
  t.regex(usage(['serve', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--log-level', 'loud']), /log-level/);
  t.regex(usage(['frobnicate']), /unknown command/);
  t.regex(usage(['sync', '--repo', 'https://h/a.git', '--repo', 'https://other/a.git', '--cache-dir', '/c']), /given twice/);
  t.regex(usage(['sync', '--repo', 'x=https://h/a.git', '--repo', 'y=https://h/a.git', '--cache-dir', '/c']), /same repository/);
  t.regex(usage(['sync', 'https://h/a.git', '--cache-dir', '/c']), /unexpected argument/);
});

test('--help at top level and per command; wait takes --timeout', (t) => {
  const top = parseArgs(['--help'], {});
  t.is(top.kind, 'help');
  for (const command of ['sync', 'serve', 'wait', 'maintain']) {
    const help = parseArgs([command, '--help'], {});
    t.is(help.kind, 'help');
    if (help.kind === 'help') t.true(help.text.includes(`git-cache ${command}`));
  }
  t.is(options(['wait', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--timeout', '2m']).timeoutMs, 120_000);
});

test('duration parsing accepts Kubernetes-style values and refuses others', (t) => {
  t.is(parseDurationMs('90s'), 90_000);
  t.is(parseDurationMs('1h30m'), 5_400_000);
  t.is(parseDurationMs('250ms'), 250);
  t.is(parseDurationMs('1.5m'), 90_000);
  t.is(parseDurationMs('10'), undefined);
  t.is(parseDurationMs('-5s'), undefined);
  t.is(parseDurationMs(''), undefined);
});

test('maintain: repos are optional (every mirror in the cache dir), --maintenance-budget applies, --no-maintenance does not', (t) => {
  const all = options(['maintain', '--cache-dir', '/c']);
  t.is(all.command, 'maintain');
  t.deepEqual(all.repos, []);
  t.is(all.maintenanceBudgetMs, 10 * 60_000);
  t.deepEqual(options(['maintain', '--cache-dir', '/c'], { REPO_URL: 'https://h/a.git' }).repos.map((r) => r.name), ['a']);
  t.is(options(['maintain', '--cache-dir', '/c', '--maintenance-budget', '90s']).maintenanceBudgetMs, 90_000);
  t.regex(usage(['maintain', '--cache-dir', '/c', '--no-maintenance']), /--no-maintenance applies to sync, serve only/);
  t.regex(usage(['maintain', '--cache-dir', '/c', '--interval', '5s']), /serve only/);
  t.regex(usage(['maintain', '--cache-dir', '/c', '--maintenance-budget', 'soon']), /not a duration/);
});

test('sync and serve maintain by default; --no-maintenance turns it off; wait takes neither flag', (t) => {
  t.true(options(['sync', '--repo', 'https://h/a.git', '--cache-dir', '/c']).maintenance);
  t.false(options(['serve', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--no-maintenance']).maintenance);
  t.is(options(['serve', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--maintenance-budget=2m']).maintenanceBudgetMs, 120_000);
  t.regex(usage(['wait', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--maintenance-budget', '1m']), /applies to sync, serve, maintain only/);
  t.regex(usage(['sync', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--no-maintenance=yes']), /takes no value/);
  t.true(options(['sync', '--repo', 'https://h/a.git', '--cache-dir', '/c']).commitGraph);
  t.false(options(['maintain', '--cache-dir', '/c', '--no-commit-graph']).commitGraph);
  t.regex(usage(['wait', '--repo', 'https://h/a.git', '--cache-dir', '/c', '--no-commit-graph']), /applies to sync, serve, maintain only/);
});
