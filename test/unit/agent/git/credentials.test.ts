import test from 'ava';
import { shellQuote, sshCommand } from '../../../../src/agent/git/credentials.js';

test('ssh command enforces host key checking with the given known_hosts and key only', (t) => {
  const cmd = sshCommand({ keyPath: '/creds/app/ssh/ssh-privatekey', knownHostsPath: '/creds/app/ssh/known_hosts', insecure: false });
  t.true(cmd.includes("-i '/creds/app/ssh/ssh-privatekey'"));
  t.true(cmd.includes('StrictHostKeyChecking=yes'));
  t.true(cmd.includes("UserKnownHostsFile='/creds/app/ssh/known_hosts'"));
  t.true(cmd.includes('IdentitiesOnly=yes'));
  t.true(cmd.includes('BatchMode=yes'));
});

test('ssh without known_hosts is refused unless host key checking is explicitly off', (t) => {
  t.throws(() => sshCommand({ keyPath: '/k', knownHostsPath: undefined, insecure: false }), { message: /known_hosts/ });
  t.true(sshCommand({ keyPath: '/k', knownHostsPath: undefined, insecure: true }).includes('StrictHostKeyChecking=no'));
});

test('paths are shell-quoted for GIT_SSH_COMMAND', (t) => {
  t.is(shellQuote("/a b/it's"), `'/a b/it'\\''s'`);
});
