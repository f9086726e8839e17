// The server harnesses themselves, checked with plain git and curl-free fetches: so when an agent test fails,
// the server is known to be good.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { testWithTools } from '../../support/tools.js';
import { LOOPBACK, freePort, makeTempDir, removeDir } from '../../support/servers/process.js';
import { startPrometheus } from '../../support/servers/prometheus.js';
import { startSmartHttp } from '../../support/servers/smart-http.js';
import { startSshd } from '../../support/servers/sshd.js';
import { createUpstream } from '../../support/servers/upstream.js';

const run = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function gitRun(args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  try {
    const { stdout, stderr } = await run('git', args, { env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failure.code === 'number' ? failure.code : 1, stdout: failure.stdout ?? '', stderr: failure.stderr ?? '' };
  }
}

function sshCommand(dir: string, key: string, knownHosts: string): string {
  const keyFile = join(dir, `key-${Math.random().toString(16).slice(2)}`);
  const hostsFile = `${keyFile}.known_hosts`;
  writeFileSync(keyFile, key, { mode: 0o600 });
  writeFileSync(hostsFile, knownHosts);
  return `ssh -F /dev/null -i ${keyFile} -o IdentitiesOnly=yes -o UserKnownHostsFile=${hostsFile} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes`;
}

testWithTools(['sshd', 'ssh', 'ssh-keygen'])('sshd harness: git over ssh works with the client key and is refused with a wrong host key or an unknown client key', async (t) => {
  const server = await startSshd();
  const dir = makeTempDir('harness-ssh');
  t.teardown(async () => {
    await server.stop();
    removeDir(dir);
  });
  const upstream = createUpstream(dir, 'app');
  const url = server.url(upstream.path);
  const good = await gitRun(['ls-remote', '--', url], { GIT_SSH_COMMAND: sshCommand(dir, server.clientPrivateKey, server.knownHosts) });
  t.is(good.code, 0, `${good.stderr}\n${server.log()}`);
  t.regex(good.stdout, /refs\/heads\/main/);
  const wrongHost = await gitRun(['ls-remote', '--', url], { GIT_SSH_COMMAND: sshCommand(dir, server.clientPrivateKey, server.wrongKnownHosts) });
  t.not(wrongHost.code, 0);
  t.regex(wrongHost.stderr, /host key|HOST IDENTIFICATION/i);
  const stranger = await gitRun(['ls-remote', '--', url], { GIT_SSH_COMMAND: sshCommand(dir, server.unauthorizedPrivateKey, server.knownHosts) });
  t.not(stranger.code, 0);
  t.regex(stranger.stderr, /Permission denied/);
});

for (const tls of [false, true]) {
  testWithTools(['nginx', 'fcgiwrap', 'openssl'])(
    `smart HTTP harness (${tls ? 'https' : 'http'}): clone with the right password works, a wrong password gets 401`,
    async (t) => {
      const password = `pw-${Math.random().toString(36).slice(2)}`;
      const server = await startSmartHttp({ password, tls });
      t.teardown(() => server.stop());
      createUpstream(server.projectRoot, 'app');
      const env = { GIT_SSL_CAINFO: server.caFile ?? '' };
      const withCredentials = (user: string, pass: string): string => server.url('app.git').replace('://', `://${user}:${pass}@`);
      const good = await gitRun(['ls-remote', '--', withCredentials(server.username, password)], env);
      t.is(good.code, 0, `${good.stderr}\n${server.logs()}`);
      t.regex(good.stdout, /refs\/tags\/v1/);
      const bad = await gitRun(['ls-remote', '--', withCredentials(server.username, 'wrong')], env);
      t.not(bad.code, 0);
      t.regex(bad.stderr, /Authentication failed|401/);
      const anonymous = await gitRun(['ls-remote', '--', server.url('app.git')], env);
      t.not(anonymous.code, 0);
      t.false(server.logs().includes(password), 'the password is not in the server logs');
    },
  );
}

testWithTools(['prometheus'])('prometheus harness: scrapes a target every second and answers queries', async (t) => {
  const port = await freePort();
  const target = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    response.end('# HELP harness_up A constant.\n# TYPE harness_up gauge\nharness_up{who="test"} 42\n');
  });
  await new Promise<void>((resolve) => target.listen(port, LOOPBACK, resolve));
  const prometheus = await startPrometheus([`${LOOPBACK}:${port}`]);
  t.teardown(async () => {
    await prometheus.stop();
    target.close();
  });
  const sample = await prometheus.waitForSample('harness_up');
  t.is(sample.value, 42);
  t.is(sample.metric.who, 'test');
});
