// The hostile-URL validator and the cache key: every accepted form, every refused trick, the key equal to
// `printf '%s\n' URL | sha1sum | cut -c1-20`, and properties over arbitrary and near-miss strings.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { formatRepoArg, parseRepoArg } from '../../../src/shared/agent-cli.js';
import {
  REPO_NAME_MAX_LENGTH,
  REPO_NAME_PATTERN,
  canonicalRepoUrl,
  defaultRepoName,
  mirrorPath,
  parseRepoUrl,
  repoKey,
  type RepoUrlProblem,
} from '../../../src/shared/repo-url.js';
import { nearMissUrl } from './repo-url.arbitraries.js';

const accepted: Array<[string, { scheme: string; host: string; port?: string; user?: string; path: string }]> = [
  ['https://github.com/org/repo.git', { scheme: 'https', host: 'github.com', path: '/org/repo.git' }],
  ['http://git.internal:8080/scm/team/repo', { scheme: 'http', host: 'git.internal', port: '8080', path: '/scm/team/repo' }],
  ['https://10.0.0.7/repo.git', { scheme: 'https', host: '10.0.0.7', path: '/repo.git' }],
  ['ssh://git@github.com/org/repo.git', { scheme: 'ssh', host: 'github.com', user: 'git', path: '/org/repo.git' }],
  ['ssh://gitlab.example.com:2222/group/sub/repo.git', { scheme: 'ssh', host: 'gitlab.example.com', port: '2222', path: '/group/sub/repo.git' }],
  ['ssh://git@[::1]:22/repo.git', { scheme: 'ssh', host: '[::1]', port: '22', user: 'git', path: '/repo.git' }],
  ['ssh://git@host/~user/repo.git', { scheme: 'ssh', host: 'host', user: 'git', path: '/~user/repo.git' }],
  ['git@github.com:org/repo.git', { scheme: 'scp', host: 'github.com', user: 'git', path: 'org/repo.git' }],
  ['deploy.bot@10.1.2.3:/srv/git/repo.git', { scheme: 'scp', host: '10.1.2.3', user: 'deploy.bot', path: '/srv/git/repo.git' }],
  ['git@host:~/repo.git', { scheme: 'scp', host: 'host', user: 'git', path: '~/repo.git' }],
  ['git://git.kernel.org/pub/scm/git/git.git', { scheme: 'git', host: 'git.kernel.org', path: '/pub/scm/git/git.git' }],
  ['git://127.0.0.1:9418/repo.git', { scheme: 'git', host: '127.0.0.1', port: '9418', path: '/repo.git' }],
];

for (const [url, expected] of accepted) {
  test(`accepts ${url} as ${expected.scheme}`, (t) => {
    const result = parseRepoUrl(url);
    if (!result.ok) return t.fail(result.problem.message);
    t.like(result.value, { url, scheme: expected.scheme, host: expected.host, port: expected.port, user: expected.user, path: expected.path });
  });
}

const refused: Array<[string, RepoUrlProblem['kind'], string]> = [
  ['', 'empty', 'empty'],
  ['ext::sh -c touch% /tmp/pwned', 'malformed', 'ext:: (with a space)'],
  ['ext::sh%20-c%20id', 'unsupported', 'ext:: remote helper'],
  ['fd::17', 'unsupported', 'fd:: remote helper'],
  ['fd::0,1/repo', 'unsupported', 'fd:: with an output fd'],
  ['foo::https://github.com/org/repo.git', 'unsupported', 'any <helper>:: prefix'],
  ['file:///etc/passwd', 'unsupported', 'file://'],
  ['file://host/srv/repo.git', 'unsupported', 'file:// with a host'],
  ['FILE:///srv/repo.git', 'unsupported', 'upper-case FILE://'],
  ['ftp://host/repo.git', 'unsupported', 'ftp://'],
  ['git+ssh://host/repo.git', 'unsupported', 'git+ssh://'],
  ['HTTPS://github.com/org/repo.git', 'unsupported', 'upper-case scheme (git would treat it differently)'],
  ['/srv/git/repo.git', 'unsupported', 'absolute local path'],
  ['./repo.git', 'unsupported', 'relative local path'],
  ['../repo.git', 'unsupported', 'parent-relative local path'],
  ['repo.git', 'unsupported', 'bare word (local path)'],
  ['github.com:org/repo.git', 'unsupported', 'scp-like without a user'],
  ['dir/sub:repo', 'unsupported', 'a slash before the colon makes it a local path for git'],
  ['-upload-pack=touch /tmp/pwned', 'malformed', 'leading - (with space)'],
  ['--upload-pack=touch%20/tmp/pwned', 'unsupported', 'leading --upload-pack'],
  ['-uhttps://github.com/org/repo.git', 'unsupported', '-u... option'],
  ['-oProxyCommand=touch%20x@host:repo', 'unsupported', 'leading -o'],
  ['ssh://-oProxyCommand=touch%20x/repo.git', 'malformed', 'ssh:// host that is an option'],
  ['ssh://git@-oProxyCommand=x/repo.git', 'malformed', 'ssh:// host after user that is an option'],
  ['ssh://-oProxyCommand=x@host/repo.git', 'malformed', 'ssh:// user that is an option'],
  ['git@-oProxyCommand=x:repo.git', 'malformed', 'scp host starting with -'],
  ['-git@host:repo.git', 'unsupported', 'scp user starting with -'],
  ['git@host:-repo.git', 'malformed', 'scp path starting with -'],
  ['git@host:--upload-pack=x', 'malformed', 'scp path that is an option'],
  ['git@host:../../etc', 'malformed', 'scp path with ..'],
  ['https://host/../etc', 'malformed', 'url path with ..'],
  ['https://github.com/org/repo.git\n', 'malformed', 'trailing newline'],
  ['https://github.com/org/re po.git', 'malformed', 'space in path'],
  ['https://github.com/org/repo.git\t', 'malformed', 'tab'],
  [' https://github.com/org/repo.git', 'malformed', 'leading space'],
  ['https://github.com/org/repo\u0000.git', 'malformed', 'NUL'],
  ['https://user:hunter2@github.com/org/repo.git', 'credentials', 'user:password in https'],
  ['https://ghp_token1234@github.com/org/repo.git', 'credentials', 'token@ in https'],
  ['http://user:pw@git.internal/repo.git', 'credentials', 'user:password in http'],
  ['git://user@host/repo.git', 'malformed', 'user in git://'],
  ['https://github.com', 'malformed', 'no path'],
  ['https://github.com/', 'malformed', 'root path only'],
  ['https://host:0/repo', 'malformed', 'port 0'],
  ['https://host:65536/repo', 'malformed', 'port out of range'],
  ['ssh://host:/repo', 'malformed', 'empty port'],
  ['https://ho st/repo', 'malformed', 'space in host'],
  ['https://h\u00f6st/repo', 'malformed', 'non-ASCII host'],
  ['https://host/repo?upload-pack=x', 'unsupported', 'query string'],
  ['git@host:repo`id`', 'malformed', 'backticks in scp path'],
  ['user name@host:repo', 'malformed', 'space in scp user'],
  ['x'.repeat(2049), 'malformed', 'longer than 2048'],
];

for (const [url, kind, why] of refused) {
  test(`refuses ${why} (${JSON.stringify(url.length > 60 ? `${url.slice(0, 20)}...` : url)}) as ${kind}`, (t) => {
    const result = parseRepoUrl(url);
    t.false(result.ok);
    if (!result.ok) {
      t.is(result.problem.kind, kind, result.problem.message);
      t.true(result.problem.message.length > 0);
    }
  });
}

test('the credentials message never echoes the secret it refuses', (t) => {
  const result = parseRepoUrl('https://user:hunter2@github.com/org/repo.git');
  t.false(result.ok);
  if (!result.ok) t.false(result.problem.message.includes('hunter2'));
});

function shellKey(url: string): string {
  return execFileSync('sh', ['-c', `printf '%s\\n' "$1" | sha1sum | cut -c1-20`, 'key', url], { encoding: 'utf8' }).trim();
}

const keyUrls = [
  'https://github.com/org/repo.git',
  'git@github.com:org/repo.git',
  'ssh://git@[::1]:22/repo.git',
  'git://127.0.0.1:9418/repo.git',
  'http://git.internal:8080/scm/team/repo',
  'https://h\u00f6st.example/r\u00e9po.git',
];

for (const url of keyUrls) {
  test(`repoKey(${url}) equals printf '%s\\n' URL | sha1sum | cut -c1-20`, (t) => {
    t.is(repoKey(url), shellKey(url));
    t.regex(repoKey(url), /^[0-9a-f]{20}$/);
  });
}

test('repoKey ignores https userinfo: a URL with a token shares the mirror of the URL without', (t) => {
  t.is(repoKey('https://user:hunter2@github.com/org/repo.git'), shellKey('https://github.com/org/repo.git'));
  t.is(repoKey('https://token@github.com/org/repo.git'), repoKey('https://github.com/org/repo.git'));
  t.not(repoKey('git@github.com:org/repo.git'), repoKey('https://github.com/org/repo.git'));
});

test('canonicalRepoUrl removes http(s) userinfo only', (t) => {
  t.is(canonicalRepoUrl('https://user:hunter2@github.com/org/repo.git'), 'https://github.com/org/repo.git');
  t.is(canonicalRepoUrl('http://token@git.internal:8080/repo'), 'http://git.internal:8080/repo');
  t.is(canonicalRepoUrl('https://github.com/org/repo.git'), 'https://github.com/org/repo.git');
  t.is(canonicalRepoUrl('https://github.com/org/u@x/repo.git'), 'https://github.com/org/u@x/repo.git', 'an @ in the path is not userinfo');
  t.is(canonicalRepoUrl('ssh://git@github.com/org/repo.git'), 'ssh://git@github.com/org/repo.git', 'the ssh user is part of the address');
  t.is(canonicalRepoUrl('git@github.com:org/repo.git'), 'git@github.com:org/repo.git');
});

// parseRepoUrl splits the authority at the LAST "@"; canonicalRepoUrl must too, or a raw "@" in a password
// would leave the rest of the password in the canonical URL (and in the key).
test('canonicalRepoUrl removes all userinfo even when the password holds a raw "@"', (t) => {
  t.is(canonicalRepoUrl('https://user:p@ss@github.com/org/repo.git'), 'https://github.com/org/repo.git');
});

test('mirrorPath is <cacheDir>/<key>.git, tolerating a trailing slash', (t) => {
  const url = 'https://github.com/org/repo.git';
  t.is(mirrorPath('/git-cache', url), `/git-cache/${shellKey(url)}.git`);
  t.is(mirrorPath('/git-cache/', url), `/git-cache/${shellKey(url)}.git`);
});

const names: Array<[string, string]> = [
  ['https://github.com/org/repo.git', 'repo'],
  ['git@github.com:org/My_Repo.git', 'my-repo'],
  ['ssh://git@host:2222/group/Sub.Project.git', 'sub-project'],
  ['https://host/org/repo.git/', 'repo'],
  ['git@host:repo', 'repo'],
  ['git://host/a/b/c', 'c'],
  ['https://user:pw@host/org/secret-name.git', 'secret-name'],
  ['https://host/org/.git', 'repo'],
  ['https://host/org/---.git', 'repo'],
  [`https://host/${'a'.repeat(39)}-bbbb.git`, 'a'.repeat(39)],
  ['https://host/org/r\u00e9po.git', 'r-po'],
];

for (const [url, name] of names) {
  test(`defaultRepoName(${url.length > 60 ? `${url.slice(0, 30)}...` : url}) is ${name}`, (t) => {
    t.is(defaultRepoName(url), name);
    t.regex(defaultRepoName(url), REPO_NAME_PATTERN);
  });
}

// Git's own rule (connect.c url_is_local_not_ssh): without "://", a colon before any slash means ssh; otherwise
// it is a local path. An accepted string must be a remote URL by that rule.
function gitSeesRemote(url: string): boolean {
  if (/^[a-z]+:\/\//.test(url)) return true;
  const colon = url.indexOf(':');
  const slash = url.indexOf('/');
  return colon > 0 && (slash < 0 || colon < slash);
}

test('property: any accepted string is a remote URL of an allowed kind, with no option, helper or local form', (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 80 }), fc.string({ maxLength: 80 }), nearMissUrl()), (input) => {
      const result = parseRepoUrl(input);
      if (!result.ok) return true;
      const { scheme, host, user, path } = result.value;
      return (
        ['https', 'http', 'ssh', 'git', 'scp'].includes(scheme) &&
        !input.startsWith('-') &&
        !/[\s\u0000-\u001f\u007f]/.test(input) &&
        !/^[A-Za-z0-9+.-]*::/.test(input) &&
        !/^file:/i.test(input) &&
        !host.startsWith('-') &&
        !(user ?? '').startsWith('-') &&
        !path.startsWith('-') &&
        !path.split('/').includes('..') &&
        gitSeesRemote(input) &&
        (scheme !== 'scp' || input.startsWith(`${user ?? ''}@`)) &&
        (scheme === 'scp' || input.startsWith(`${scheme}://`))
      );
    }),
    { numRuns: 20_000 },
  );
  t.pass();
});

test('property: key, name and --repo argument are well-formed for every accepted URL', (t) => {
  fc.assert(
    fc.property(nearMissUrl(), fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/), (url, name) => {
      if (!parseRepoUrl(url).ok) return true;
      const defaultName = defaultRepoName(url);
      const roundTrip = parseRepoArg(formatRepoArg({ name, url }));
      const defaultTrip = parseRepoArg(formatRepoArg({ name: defaultName, url }));
      return (
        /^[0-9a-f]{20}$/.test(repoKey(url)) &&
        canonicalRepoUrl(canonicalRepoUrl(url)) === canonicalRepoUrl(url) &&
        REPO_NAME_PATTERN.test(defaultName) &&
        defaultName.length <= REPO_NAME_MAX_LENGTH &&
        roundTrip.name === name &&
        roundTrip.url === url &&
        defaultTrip.name === defaultName &&
        defaultTrip.url === url
      );
    }),
    { numRuns: 5_000 },
  );
  t.pass();
});

test('property: the near-miss generator reaches both sides of the validator', (t) => {
  const samples = fc.sample(nearMissUrl(), { numRuns: 2_000, seed: 42 });
  const acceptedCount = samples.filter((url) => parseRepoUrl(url).ok).length;
  t.true(acceptedCount > 200, `accepted ${acceptedCount} of 2000`);
  t.true(acceptedCount < 1_800, `accepted ${acceptedCount} of 2000`);
});
