/**
 * The cache container runs under an arbitrary non-root UID that may have no passwd entry. OpenSSH's client
 * refuses to run then ("No user exists for uid N"); the agent brings nss_wrapper in for git's ssh.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findNssWrapper } from '../../../src/agent/git/runtime.js';
import { testWithTools } from '../../support/tools.js';
import { agentCommand, freePort, parseEvents, runProcess, tempDir } from '../../support/git-fixtures.js';

const test = testWithTools(['git', 'ssh', 'ssh-keygen', 'setpriv', 'flock']);
const UID = 4242;

test('ssh under a UID without passwd entry: plain ssh refuses, the agent (nss_wrapper) gets to the network', async (t) => {
  if (process.getuid?.() !== 0) {
    t.pass('needs root to switch UID');
    return;
  }
  t.truthy(findNssWrapper(), 'libnss-wrapper is installed (scripts/install-test-tools.sh)');
  const root = tempDir('agent-uid');
  try {
    chmodSync(root, 0o755);
    const plain = spawnSync('setpriv', ['--reuid', String(UID), '--regid', String(UID), '--clear-groups', 'ssh', '-o', 'BatchMode=yes', '-p', '1', '127.0.0.1', 'true'], {
      encoding: 'utf8',
    });
    t.regex(plain.stderr, /No user exists for uid 4242/, 'the problem is real on this machine');

    const port = await freePort(); // nothing listens there
    const creds = join(root, 'creds', 'app', 'ssh');
    mkdirSync(creds, { recursive: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(creds, 'ssh-privatekey')]);
    writeFileSync(join(creds, 'known_hosts'), `[127.0.0.1]:${port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);
    // Secret volumes are typically 0644 and not owned by the container's UID.
    chmodSync(join(creds, 'ssh-privatekey'), 0o644);
    const cache = join(root, 'cache');
    mkdirSync(cache);
    chownSync(cache, UID, UID);

    const [cmd, argv] = agentCommand(['sync', '--repo', `app=ssh://git@127.0.0.1:${port}/org/app.git`, '--cache-dir', cache, '--credentials-dir', join(root, 'creds'), '--log-level', 'debug']);
    const run = await runProcess('setpriv', ['--reuid', String(UID), '--regid', String(UID), '--clear-groups', cmd, ...argv], { HOME: '/nonexistent' });
    t.is(run.code, 1, run.stderr);
    const events = parseEvents(run.stderr);
    t.true(events.some((e) => e.event === 'nss_wrapper_enabled'));
    const failure = events.find((e) => e.event === 'sync_failed');
    // The reason names the cause (ssh reached the TCP connect), not git's closing "Could not read from remote".
    t.regex(String(failure?.reason), /Connection refused/);
    // git's stderr (debug level) shows how far ssh got: to the TCP connect, past getpwuid() and the key check.
    t.true(events.some((e) => e.event === 'git_stderr' && /Connection refused/.test(String(e.line))), run.stderr);
    t.false(run.stderr.includes('No user exists'), run.stderr);
    t.false(run.stderr.includes('UNPROTECTED PRIVATE KEY'), run.stderr);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
