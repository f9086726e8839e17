// Property: whatever string parseRepoUrl accepts, handing it to git (`git ls-remote -- <url>`, the way the agent
// calls git) never runs a command other than the ssh stand-in (with a host argument that is not an option) and
// never reads a local path. Git runs with the agent's protocol allow-list and no terminal prompt; ssh and the
// git:// proxy are recorders that exit 1, http(s) goes to a dead proxy on 127.0.0.1:1, and as root every git
// run is inside a fresh network namespace, so nothing leaves the machine whatever the host is.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseRepoUrl } from '../../../src/shared/repo-url.js';
import { makeTempDir, removeDir } from '../../support/servers/process.js';
import { findTool } from '../../support/tools.js';
import { MARKER_TOKEN, hostileUrl, nearMissUrl } from './repo-url.arbitraries.js';

const RECORDER = `#!/bin/sh
# Records how git invoked it (one argument per line, NUL-separated) and fails like an unreachable server.
out="$RECORD_DIR/$(basename "$0").$$"
printf '%s\\0' "$@" > "$out"
exit 1
`;

interface Run {
  code: number;
  stderr: string;
  records: Array<{ tool: string; args: string[] }>;
}

function makeSandbox(): { dir: string; run(url: string): Promise<Run>; cleanup(): void } {
  const dir = makeTempDir('url-prop');
  const bin = join(dir, 'bin');
  const records = join(dir, 'records');
  const home = join(dir, 'home');
  const cwd = join(dir, 'cwd');
  for (const sub of [bin, records, home, cwd]) mkdirSync(sub);
  for (const tool of ['ssh-recorder', 'proxy-recorder']) writeFileSync(join(bin, tool), RECORDER, { mode: 0o755 });
  const unshare = process.getuid?.() === 0 ? findTool('unshare') : undefined;
  const run = (url: string): Promise<Run> =>
    new Promise((resolve) => {
      for (const file of readdirSync(records)) rmSync(join(records, file));
      const gitArgs = ['-c', 'http.proxy=http://127.0.0.1:1', '-c', 'protocol.allow=never', '-c', 'protocol.https.allow=always',
        '-c', 'protocol.http.allow=always', '-c', 'protocol.ssh.allow=always', '-c', 'protocol.git.allow=always', 'ls-remote', '--', url];
      const [command, args] = unshare ? [unshare, ['--net', '--', 'git', ...gitArgs]] : ['git', gitArgs];
      execFile(
        command,
        args,
        {
          cwd,
          timeout: 15_000,
          env: {
            PATH: `${bin}:/usr/bin:/bin`,
            HOME: home,
            RECORD_DIR: records,
            GIT_CONFIG_NOSYSTEM: '1',
            GIT_CONFIG_GLOBAL: '/dev/null',
            GIT_ALLOW_PROTOCOL: 'https:http:ssh:git',
            GIT_TERMINAL_PROMPT: '0',
            GIT_SSH_COMMAND: join(bin, 'ssh-recorder'),
            GIT_SSH_VARIANT: 'ssh',
            GIT_PROXY_COMMAND: join(bin, 'proxy-recorder'),
            GIT_ASKPASS: '/bin/false',
            SSH_ASKPASS: '/bin/false',
          },
        },
        (error, _stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
          const recorded = readdirSync(records).map((file) => ({
            tool: file.replace(/\.\d+$/, ''),
            args: readFileSync(join(records, file), 'utf8').split('\0').slice(0, -1),
          }));
          resolve({ code, stderr: String(stderr), records: recorded });
        },
      );
    });
  // Local repos where a relative or absolute reading of generated paths could land: reading one would succeed.
  for (const path of ['repo.git', 'org/repo.git', 'srv/repo.git', 'repo', 'org']) {
    mkdirSync(join(cwd, path), { recursive: true });
    execFile('git', ['init', '-q', '--bare', join(cwd, path)], () => undefined);
  }
  return { dir, run, cleanup: () => removeDir(dir) };
}

/** Messages of git refusing a URL up front: `user@host://path` read as scheme `user@host`; `%0a` in a path. */
const GIT_REFUSALS = /^fatal: (protocol '[^']*' is not supported|credential url cannot be parsed: .*)$/m;

function markers(dir: string): string[] {
  const found: string[] = [];
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      if (entry.name.includes(MARKER_TOKEN)) found.push(join(at, entry.name));
      if (entry.isDirectory()) walk(join(at, entry.name));
    }
  };
  walk(dir);
  return found;
}

test('property: an accepted URL never makes git run a command other than ssh (with a non-option host) or read a local path', async (t) => {
  const sandbox = makeSandbox();
  t.teardown(() => sandbox.cleanup());
  const counts = { ssh: 0, git: 0, http: 0, refusedByGit: 0 };
  await fc.assert(
    fc.asyncProperty(nearMissUrl().filter((url) => parseRepoUrl(url).ok), async (url) => {
      const parsed = parseRepoUrl(url);
      if (!parsed.ok) return false;
      const { scheme } = parsed.value;
      const result = await sandbox.run(url);
      const context = `${JSON.stringify(url)} -> exit ${result.code}, records ${JSON.stringify(result.records)}\n${result.stderr}`;
      if (result.code === 0) throw new Error(`git succeeded, so it read something local: ${context}`);
      if (/does not appear to be a git repository|transport 'file' not allowed/.test(result.stderr)) {
        throw new Error(`git treated it as a local path: ${context}`);
      }
      if (markers(sandbox.dir).length > 0) throw new Error(`a planted command ran: ${context}`);
      if (result.records.length === 0 && GIT_REFUSALS.test(result.stderr)) {
        // Git refused before connecting or running anything (see the known-defect tests below): safe, but the
        // validator should have refused these itself.
        counts.refusedByGit++;
        return true;
      }
      if (scheme === 'ssh' || scheme === 'scp') {
        counts.ssh++;
        if (result.records.length !== 1 || result.records[0]?.tool !== 'ssh-recorder') throw new Error(`expected one ssh run: ${context}`);
        const args = result.records[0].args;
        const remoteCommand = args.at(-1) ?? '';
        const host = args.at(-2) ?? '';
        if (!remoteCommand.startsWith("git-upload-pack '")) throw new Error(`unexpected remote command: ${context}`);
        if (host.startsWith('-')) throw new Error(`ssh host argument is an option: ${context}`);
        const hostOnly = host.replace(/^[^@]*@/, '');
        if (hostOnly !== parsed.value.host.replace(/^\[|\]$/g, '')) throw new Error(`ssh went to another host: ${context}`);
      } else if (scheme === 'git') {
        counts.git++;
        const record = result.records[0];
        if (result.records.length !== 1 || record?.tool !== 'proxy-recorder') throw new Error(`expected one git:// proxy run: ${context}`);
        if ((record.args[0] ?? '-').startsWith('-')) throw new Error(`proxy host argument is an option: ${context}`);
      } else {
        counts.http++;
        if (result.records.length !== 0) throw new Error(`http(s) ran a command: ${context}`);
        if (!/127\.0\.0\.1|proxy|Could not resolve|unable to access/i.test(result.stderr)) throw new Error(`http(s) did not go to the dead proxy: ${context}`);
      }
      return true;
    }),
    { numRuns: 200 },
  );
  t.log(`git runs by transport: ${JSON.stringify(counts)}`);
  t.true(counts.ssh > 20 && counts.git > 5 && counts.http > 20, JSON.stringify(counts));
});

test('control: the sandbox does detect a planted ext:: command and a local read when the validator is bypassed', async (t) => {
  const sandbox = makeSandbox();
  t.teardown(() => sandbox.cleanup());
  // Without the protocol allow-list git would run ext::; with it, git refuses. Either way the validator already
  // refused these; this shows the sandbox's detectors see the difference between success and failure.
  const local = await sandbox.run('repo.git');
  t.not(local.code, 0);
  t.regex(local.stderr, /transport 'file' not allowed/, 'git classifies a local path as file and the allow-list stops it');
  const fileUrl = await sandbox.run('file:///etc');
  t.regex(fileUrl.stderr, /transport 'file' not allowed/);
  const ext = await sandbox.run(`ext::sh -c touch% ${MARKER_TOKEN}`);
  t.not(ext.code, 0);
  t.regex(ext.stderr, /transport 'ext' not allowed/);
  t.deepEqual(markers(sandbox.dir), []);
  fc.assert(fc.property(hostileUrl(), (url) => !parseRepoUrl(url).ok), { numRuns: 500 });
  t.false(existsSync(join(sandbox.dir, 'cwd', MARKER_TOKEN)));
});

// git reads `user@host://path` as a URL whose scheme is `user@host` and refuses it ("protocol ... is not
// supported"); the validator refuses it up front with a clear message.
test('parseRepoUrl refuses a scp-like URL whose path starts with "//" (git reads it as scheme user@host)', (t) => {
  t.false(parseRepoUrl('git@127.0.0.1://repo.git').ok);
});

// Git refuses percent-encoded control characters for http(s) ("credential url cannot be parsed", the
// CVE-2020-5260 guard); the validator refuses them up front instead of letting the agent fail late.
test('parseRepoUrl refuses percent-encoded newline, carriage return and NUL in a path', (t) => {
  for (const url of ['https://host/repo%0a.git', 'https://host/repo%0D.git', 'https://host/repo%00.git']) t.false(parseRepoUrl(url).ok, url);
});
