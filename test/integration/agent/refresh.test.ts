/**
 * `POST /v1/refresh?repo=NAME` on a real `git-cache serve` against a real `git daemon`: what it fetches (counted
 * by the daemon's upload-pack log), what it refuses, and how floods are bounded. "Another pod" is a process in
 * a network namespace of its own (test/support/pod-network.ts; nothing leaves the machine).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, gitDaemonFixture, makeUpstream, runAgent, runProcess } from '../../support/git-fixtures.js';
import { startAgent, waitForReady, type AgentProcess } from '../../support/servers/agent.js';
import { createPodNetwork } from '../../support/pod-network.js';
import { findTool, testWithTools } from '../../support/tools.js';

const test = testWithTools(['git', 'flock', 'curl', 'ip', 'unshare']);
const upstreams = gitDaemonFixture(test, 'refresh');

interface Served {
  readonly agent: AgentProcess;
  readonly port: number;
  readonly refreshPort: number;
  readonly cache: string;
  readonly upstream: ReturnType<typeof makeUpstream>;
  readonly name: string;
  uploadPacks(): number;
  post(query: string, init?: RequestInit): Promise<{ status: number; body: string; retryAfter: string | null }>;
}

async function serve(name: string, extra: string[] = []): Promise<Served> {
  const upstream = makeUpstream(join(upstreams.root, 'up'), name);
  const url = upstreams.daemon.url(`${name}.git`);
  const cache = join(upstreams.root, `cache-${name}`);
  const port = await freePort();
  const refreshPort = await freePort();
  const agent = startAgent([
    'serve', '--repo', `${name}=${url}`, '--cache-dir', cache, '--interval', '1h', '--metrics-port', String(port),
    '--refresh-port', String(refreshPort), '--refresh-min-interval', '500ms', ...extra,
  ]);
  await waitForReady(port, agent);
  return {
    agent, port, refreshPort, cache, upstream, name,
    uploadPacks: () => upstreams.daemon.uploadPacks(`/${name}.git`),
    post: async (query, init = {}) => {
      const response = await fetch(`http://127.0.0.1:${port}/v1/refresh${query}`, { method: 'POST', ...init });
      return { status: response.status, body: await response.text(), retryAfter: response.headers.get('retry-after') };
    },
  };
}

test('200 once the mirror holds upstream refs as of the request; concurrent requests share one fetch', async (t) => {
  const s = await serve('coalesce');
  try {
    const before = s.uploadPacks();
    const newer = s.upstream.commit('pushed after the last refresh');
    const answers = await Promise.all(Array.from({ length: 20 }, () => s.post('?repo=coalesce')));
    t.deepEqual([...new Set(answers.map((answer) => answer.status))], [200]);
    t.like(JSON.parse(answers[0]?.body ?? '{}') as object, { repo: 'coalesce', result: 'fetched' });
    t.is(execFileSync('git', ['--git-dir', join(s.cache, readdirKey(s.cache)), 'rev-parse', 'refs/heads/main'], { encoding: 'utf8' }).trim(), newer);
    // Requests that arrive while the first fetch runs need one that starts after them: at most a second one.
    t.true(s.uploadPacks() - before <= 2, `20 requests, ${s.uploadPacks() - before} fetches`);
  } finally {
    await s.agent.stop();
  }
});

test('sequential requests each get a fetch started after them, at most one per --refresh-min-interval', async (t) => {
  const s = await serve('paced');
  try {
    const before = s.uploadPacks();
    const started = Date.now();
    for (let i = 0; i < 3; i++) t.is((await s.post('?repo=paced')).status, 200);
    t.is(s.uploadPacks() - before, 3);
    t.true(Date.now() - started >= 900, `3 fetches 500ms apart took ${Date.now() - started} ms`);
  } finally {
    await s.agent.stop();
  }
});

test('hostile requests are refused with a clear status and fetch nothing', async (t) => {
  const s = await serve('hostile');
  try {
    const before = s.uploadPacks();
    const cases: [string, RequestInit, number, RegExp][] = [
      ['?repo=nope', {}, 404, /serves no repo named .*nope.*; it serves hostile/],
      ['?repo=../../etc', {}, 404, /serves no repo/],
      ['?repo=hostile&url=git://evil.example/x.git', {}, 400, /never takes a URL or a ref/],
      ['?repo=hostile&ref=refs/heads/main', {}, 400, /never takes a URL or a ref/],
      ['?url=https://evil.example/x.git', {}, 400, /exactly one parameter/],
      ['?repo=hostile&repo=hostile', {}, 400, /exactly one parameter/],
      ['', {}, 400, /exactly one parameter/],
      ['?repo=hostile', { method: 'GET' }, 405, /takes POST/],
      ['?repo=hostile', { body: 'refs/heads/main' }, 400, /no request body/],
    ];
    for (const [query, init, status, message] of cases) {
      const answer = await s.post(query, init);
      t.is(answer.status, status, `${init.method ?? 'POST'} ${query}: ${answer.body}`);
      t.regex(answer.body, message);
    }
    const flood = await Promise.all(Array.from({ length: 200 }, (_, i) => s.post(`?repo=unknown-${i}`)));
    t.deepEqual([...new Set(flood.map((answer) => answer.status))], [404]);
    t.is(s.uploadPacks(), before, 'nothing fetched');
    const metrics = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
    t.regex(metrics, /git_cache_fetch_total\{repo="hostile",result="success"\} 1\n/);
  } finally {
    await s.agent.stop();
  }
});

test('a flood is bounded: 64 requests wait for one fetch, the rest get 429 with Retry-After at once', async (t) => {
  const s = await serve('flood');
  try {
    const before = s.uploadPacks();
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 300 }, () => s.post('?repo=flood')));
    const count = (status: number) => answers.filter((answer) => answer.status === status).length;
    t.is(count(200) + count(429), 300);
    t.true(count(200) >= 64 && count(200) < 300, `${count(200)} answered 200`);
    t.is(answers.find((answer) => answer.status === 429)?.retryAfter, '1');
    t.true(s.uploadPacks() - before <= 2, `${s.uploadPacks() - before} fetches`);
    t.true(Date.now() - started < 30_000);
  } finally {
    await s.agent.stop();
  }
});

/** Runs `curl ARGS` from a network namespace of its own ("another pod"); `{gateway}` in ARGS is this side. */
function fromAnotherPod(args: string[]): { status: string; body: string } {
  const network = createPodNetwork({ slot: 1 });
  try {
    const out = execFileSync(findTool('ip') ?? 'ip', ['netns', 'exec', network.name, 'curl', '-sS', '--max-time', '20', '-X', 'POST', '-w', '\n%{http_code}', ...args.map((arg) => arg.replace('{gateway}', network.gateway))], {
      encoding: 'utf8',
    });
    const lines = out.trimEnd().split('\n');
    return { status: lines.at(-1) ?? '', body: lines.slice(0, -1).join('\n') };
  } finally {
    network.remove();
  }
}

test('another pod: refused without the volume token on both ports (nothing fetched); with it, the refresh port serves it', async (t) => {
  const s = await serve('peer');
  try {
    const before = s.uploadPacks();
    const onMetrics = fromAnotherPod([`http://{gateway}:${s.port}/v1/refresh?repo=peer`]);
    t.is(onMetrics.status, '403', onMetrics.body);
    t.regex(onMetrics.body, /come from this pod \(loopback\) or carry the x-git-cache-token header/);
    const noToken = fromAnotherPod([`http://{gateway}:${s.refreshPort}/v1/refresh?repo=peer`]);
    t.is(noToken.status, '403');
    const wrong = fromAnotherPod(['-H', 'x-git-cache-token: 0000', `http://{gateway}:${s.refreshPort}/v1/refresh?repo=peer`]);
    t.is(wrong.status, '403');
    t.is(s.uploadPacks(), before, 'nothing fetched for refused requests');
    const token = readFileSync(join(s.cache, '.refresh-token'), 'utf8');
    const selected = fromAnotherPod(['-H', `x-git-cache-token: ${token}`, `http://{gateway}:${s.refreshPort}/v1/refresh?repo=peer`]);
    t.is(selected.status, '200', selected.body);
    t.is(s.uploadPacks() - before, 1);
  } finally {
    await s.agent.stop();
  }
});

test('the refresh port serves nothing else; a stopping agent answers waiting requests 503', async (t) => {
  const s = await serve('stopping');
  const other = await fetch(`http://127.0.0.1:${s.refreshPort}/metrics`);
  t.is(other.status, 404);
  t.is((await fetch(`http://127.0.0.1:${s.refreshPort}/healthz`)).status, 200);
  const waiting = s.post('?repo=stopping');
  await s.agent.stop();
  const answer = await waiting.catch(() => ({ status: 503, body: 'connection closed', retryAfter: null }));
  t.true([200, 503].includes(answer.status), `${answer.status} ${answer.body}`);
  t.pass();
});

test('sync installs the client files; agents sharing a volume keep every mirror in the system config', async (t) => {
  makeUpstream(join(upstreams.root, 'up'), 'files');
  makeUpstream(join(upstreams.root, 'up'), 'files-two');
  const cache = join(upstreams.root, 'cache-files');
  const url = upstreams.daemon.url('files.git');
  t.is((await runAgent(['sync', '--repo', url, '--cache-dir', cache])).code, 0);
  t.is((await runAgent(['sync', '--repo', upstreams.daemon.url('files-two.git'), '--cache-dir', cache])).code, 0);
  const system = readFileSync(join(cache, 'bin', 'system.gitconfig'), 'utf8');
  t.regex(system, /\[include\]\n\tpath = \/etc\/gitconfig\n\[safe\]\n\tdirectory = .*\.git\n\tdirectory = .*\.git\n$/);
  const res = await runProcess('git', ['config', '--file', join(cache, 'bin', 'origin.gitconfig'), 'remote.origin.uploadpack'], {});
  t.is(res.stdout.trim(), `\${GIT_CACHE_DIR:-${cache}}/bin/git-upload-pack-cached`);
});

function readdirKey(cache: string): string {
  const entries = execFileSync('ls', [cache], { encoding: 'utf8' }).split('\n');
  const key = entries.find((entry) => /^[0-9a-f]{20}\.git$/.test(entry));
  if (!key) throw new Error(`no mirror in ${cache}`);
  return key;
}
