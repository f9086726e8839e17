import test from 'ava';
import { failureReason, type GitResult } from '../../../../src/agent/git/run.js';

function failed(stderr: string, extra: Partial<GitResult> = {}): GitResult {
  return { code: 128, signal: null, stdout: '', stderrTail: stderr.split('\n').filter((line) => line.length > 0), aborted: false, ...extra };
}

// Real stderr tails of git 2.39 / OpenSSH 9 failures (the path and host names shortened).
const CASES: ReadonlyArray<readonly [string, string, RegExp]> = [
  [
    'wrong host key: ssh says why, git only that it could not read',
    '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.',
    /^Host key verification failed\.$/,
  ],
  ['full disk: index-pack says ENOSPC, fetch-pack only that its output was bad', 'remote: Enumerating objects: 6, done.\nfatal: write error: No space left on device\nfatal: fetch-pack: invalid index-pack output', /^fatal: write error: No space left on device$/],
  ['ssh key refused', 'git@127.0.0.1: Permission denied (publickey).\nfatal: Could not read from remote repository.', /Permission denied \(publickey\)/],
  ['https credentials refused', "remote: Invalid username or password.\nfatal: Authentication failed for 'https://git.example/app.git/'", /^fatal: Authentication failed for/],
  ['unknown host', "fatal: unable to access 'https://nowhere.invalid/app.git/': Could not resolve host: nowhere.invalid", /Could not resolve host: nowhere\.invalid/],
  ['nothing listening', 'fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: errno=Connection refused', /errno=Connection refused$/],
  ['no such repository (git daemon)', "fatal: remote error: access denied or repository not exported: /app.git\nfatal: 'app.git' does not appear to be a git repository\nfatal: Could not read from remote repository.", /does not appear to be a git repository/],
  ['no such repository (https)', "remote: Repository not found.\nfatal: repository 'https://git.example/app.git/' not found", /Repository not found|not found/],
];

for (const [title, stderr, expected] of CASES) {
  test(`the reason names the cause, not git's last fatal line: ${title}`, (t) => {
    t.regex(failureReason(failed(stderr)), expected);
  });
}

test('without a known cause the reason is the last fatal/error line, else the last non-progress line', (t) => {
  t.is(failureReason(failed('warning: something\nfatal: bad object abc\nhint: try again')), 'fatal: bad object abc');
  t.is(failureReason(failed('some output\nReceiving objects:  45% (450/1000)')), 'some output');
});

test('a stopped or silent git gets a reason from its exit', (t) => {
  t.is(failureReason(failed('Host key verification failed.', { aborted: true })), 'stopped');
  t.is(failureReason(failed('', { code: null, signal: 'SIGKILL' })), 'git was killed by SIGKILL');
  t.is(failureReason(failed('', { code: 2 })), 'git exited with code 2');
});

test('the cause line wins even when a later line matches a less telling cause', (t) => {
  // ssh printed both; the host key problem is why the connection was refused by the client.
  t.regex(failureReason(failed('Host key verification failed.\nfatal: Could not read from remote repository.\nerror: Permission denied')), /^Host key verification failed/);
});

test('a URL with credentials in the chosen line comes out without them', (t) => {
  const reason = failureReason(failed("fatal: Authentication failed for 'https://bot:s3cr3t-token@git.example/app.git/'"));
  t.regex(reason, /Authentication failed/);
  t.notRegex(reason, /s3cr3t-token|bot:/);
});
