// The built agent against git smart HTTP(S) behind nginx basic auth (nginx + fcgiwrap + git http-backend on
// 127.0.0.1, TLS with a throwaway CA): the right password mirrors, a wrong one fails clearly, and the password
// never shows up in the agent's output, /metrics, nginx's logs, the mirror's files, any process's argv or the
// environment of git and its children.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FLAG } from '../../../src/shared/agent-cli.js';
import { mirrorPath } from '../../../src/shared/repo-url.js';
import { testWithTools } from '../../support/tools.js';
import {
  failureMessage,
  httpGet,
  repoFlags,
  runAgentToEnd,
  sampleWhile,
  startAgent,
  waitForReady,
  writeHttpsCredentials,
} from '../../support/servers/agent.js';
import { freePort, makeTempDir, removeDir, waitFor } from '../../support/servers/process.js';
import { startSmartHttp } from '../../support/servers/smart-http.js';
import { createUpstream, git } from '../../support/servers/upstream.js';

const httpTest = testWithTools(['nginx', 'fcgiwrap', 'openssl', 'flock']);

/** Every file of a mirror except pack data: config, FETCH_HEAD, packed-refs, logs, hooks, info. */
function mirrorTextFiles(dir: string): Array<[string, string]> {
  const files: Array<[string, string]> = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path.endsWith('/objects')) continue;
      files.push(...mirrorTextFiles(path));
    } else if (statSync(path).size < 1 << 20) {
      files.push([path, readFileSync(path, 'latin1')]);
    }
  }
  return files;
}

httpTest('https with basic auth: the right password mirrors, and the password appears in no output, log, metric, file, argv or git environment', async (t) => {
  const password = `S3cret-${Math.random().toString(36).slice(2)}-pw`;
  const server = await startSmartHttp({ password, tls: true });
  const dir = makeTempDir('https-agent');
  t.teardown(async () => {
    await server.stop();
    removeDir(dir);
  });
  // Big enough that the clone takes a while, so the sampler sees git and git-remote-https running.
  const upstream = createUpstream(server.projectRoot, 'app', { commits: 4, randomBytes: 24 << 20 });
  const url = server.url('app.git');
  const cacheDir = join(dir, 'cache');
  const credentialsDir = join(dir, 'credentials');
  writeHttpsCredentials(credentialsDir, 'app', server.username, password);
  const port = await freePort();
  const agent = startAgent(
    ['serve', FLAG.cacheDir, cacheDir, FLAG.credentialsDir, credentialsDir, FLAG.interval, '1s', FLAG.metricsPort, String(port), '--metrics-address', '127.0.0.1', ...repoFlags([{ name: 'app', url }])],
    { env: { GIT_SSL_CAINFO: server.caFile } },
  );
  t.teardown(() => agent.stop('SIGKILL').then(() => undefined));

  // Sample through the first clone and the following refreshes.
  const refreshed = (async () => {
    await waitForReady(port, agent, 120_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\n--- agent ---\n${agent.stderr()}\n--- server ---\n${server.logs()}`);
    });
    await waitFor('two successful fetches', async () => {
      const metrics = (await httpGet(port, '/metrics')).body;
      const match = /git_cache_fetch_total\{[^}]*repo="app"[^}]*result="success"[^}]*\} (\d+)|git_cache_fetch_total\{[^}]*result="success"[^}]*repo="app"[^}]*\} (\d+)/.exec(metrics);
      return Number(match?.[1] ?? match?.[2] ?? 0) >= 2 ? true : undefined;
    }, 60_000, 200);
  })();
  const samples = await sampleWhile(agent.pid, refreshed.catch(() => undefined));
  await refreshed;
  const metrics = (await httpGet(port, '/metrics')).body;
  t.is(await agent.stop('SIGTERM'), 0, agent.stderr());

  const mirror = mirrorPath(cacheDir, url);
  t.is(git(['--git-dir', mirror, 'show-ref']), upstream.refs(), 'the mirror holds every upstream ref');

  // The sampler saw the work happen (otherwise the argv/environ checks below would prove nothing).
  const gitProcesses = samples.tree.filter((sample) => sample.argv.some((arg) => /(^|\/)git(-remote-https)?$/.test(arg) || arg === 'remote-https'));
  const helperProcesses = samples.tree.filter((sample) => sample.argv.some((arg) => /remote-https/.test(arg)));
  t.true(gitProcesses.length > 0, 'git processes were sampled');
  t.true(helperProcesses.length > 0, 'git-remote-https was sampled');
  t.true(gitProcesses.filter((sample) => sample.environ !== undefined).length > 0, "git children's environment was read");
  t.log(`sampled ${samples.tree.length} process snapshots in the agent's tree (${helperProcesses.length} of git-remote-https), ${samples.allArgv.length} argv lines machine-wide`);

  const basic = Buffer.from(`${server.username}:${password}`).toString('base64');
  const places: Array<[string, string]> = [
    ['agent stdout', agent.stdout()],
    ['agent stderr', agent.stderr()],
    ['/metrics', metrics],
    ['nginx and fcgiwrap logs', server.logs()],
    ['argv of every process (ps)', samples.allArgv.join('\n')],
    ...samples.tree.map((sample): [string, string] => [`environment of ${sample.argv.slice(0, 3).join(' ')} (pid ${sample.pid})`, sample.environ ?? '']),
    ...mirrorTextFiles(mirror).map(([path, content]): [string, string] => [`mirror file ${path.slice(mirror.length)}`, content]),
  ];
  for (const [where, content] of places) {
    t.false(content.includes(password), `the password is in ${where}`);
    t.false(content.includes(basic), `the basic-auth header value is in ${where}`);
  }
  t.true(server.logs().includes(`"GET /app.git/info/refs?service=git-upload-pack HTTP/1.1" 200`), 'nginx served the authenticated fetch');
  t.true(readFileSync(join(mirror, 'config'), 'utf8').includes(url), 'the mirror remembers the URL, without credentials');
  t.true(existsSync(join(mirror, 'HEAD')));
});

httpTest('http with a wrong password is refused: non-zero exit with an authentication reason, no mirror, and neither password printed', async (t) => {
  const password = `Right-${Math.random().toString(36).slice(2)}`;
  const wrong = `Wrong-${Math.random().toString(36).slice(2)}`;
  const server = await startSmartHttp({ password });
  const dir = makeTempDir('http-agent');
  t.teardown(async () => {
    await server.stop();
    removeDir(dir);
  });
  createUpstream(server.projectRoot, 'app');
  const url = server.url('app.git');
  const cacheDir = join(dir, 'cache');
  const credentialsDir = join(dir, 'credentials');
  writeHttpsCredentials(credentialsDir, 'app', server.username, wrong);
  const result = await runAgentToEnd(['sync', FLAG.cacheDir, cacheDir, FLAG.credentialsDir, credentialsDir, ...repoFlags([{ name: 'app', url }])]);
  t.not(result.code, 0);
  const reason = failureMessage(result.stderr);
  t.log(`reason: ${reason}`);
  t.regex(reason, /Authentication failed|401|could not read Username|terminal prompts disabled/i);
  t.false(existsSync(mirrorPath(cacheDir, url)));
  for (const secret of [password, wrong]) {
    t.false(result.stdout.includes(secret));
    t.false(result.stderr.includes(secret));
    t.false(server.logs().includes(secret));
  }
  t.regex(server.logs(), /password mismatch|" 401 /, 'nginx saw and refused the wrong password');

  // And with no credentials at all: refused without prompting.
  const anonymous = await runAgentToEnd(['sync', FLAG.cacheDir, cacheDir, FLAG.credentialsDir, join(dir, 'none'), ...repoFlags([{ name: 'app', url }])]);
  t.not(anonymous.code, 0);
  t.false(existsSync(mirrorPath(cacheDir, url)));
});
