/**
 * fast-check generators for URLs that are almost valid: real schemes and helper prefixes, option-looking
 * hosts, users and paths, ports in and out of range, shell metacharacters and unicode. Each piece is usually
 * valid and sometimes hostile, so generated strings land on both sides of the validator. Hosts are loopback or
 * `.invalid` names; the git-running property isolates the network anyway.
 */
import fc from 'fast-check';

/** Planted in hostile pieces: a command that ran would create a file with this name. */
export const MARKER_TOKEN = 'gc-marker-file';

function mostly<T>(valid: readonly T[], hostile: readonly T[]): fc.Arbitrary<T> {
  return fc.oneof({ arbitrary: fc.constantFrom(...valid), weight: 5 }, { arbitrary: fc.constantFrom(...hostile), weight: 1 });
}

const urlSchemes = mostly(
  ['https://', 'http://', 'ssh://', 'git://'],
  ['HTTPS://', 'Ssh://', 'file://', 'ftp://', 'git+ssh://', 'ssh+git://', 'ext::', 'fd::', 'foo::', 'https::', '-', '--upload-pack=', '-u', '//', 'ssh:/', 'https:///', ''],
);
const urlUsers = mostly(['', '', 'git@', 'deploy.bot@'], ['u:p@', 'tok@', '-oProxyCommand=x@', 'a b@', 'us=er@', '@', 'g\u00eft@']);
const scpUsers = mostly(['git@', 'deploy.bot@', 'u_1@'], ['', '-git@', '-oProxyCommand=x@', 'a b@', 'us=er@', '@', 'g\u00eft@', 'ext::sh -c touch@']);
const hosts = mostly(
  ['127.0.0.1', 'localhost', 'git.invalid', 'h_x.invalid', 'a-b.invalid', '[::1]'],
  ['-oProxyCommand=sh', '-host', 'ho st', 'h\u00f4st.invalid', '%2dhost', '', '[::1', '[-oProxy]', 'a/b', 'x:y'],
);
const ports = mostly(['', '', ':22', ':9418', ':2222'], [':0', ':65536', ':-1', ':abc', ':']);
const pathParts = mostly(
  ['repo.git', 'org', 'repo', 'srv', '~user', 'a.b', 'x-y', 'p@x', 'a+b', '%41'],
  [
    '..', '-oProxyCommand=x', '--upload-pack=x', '%2e%2e', `$(touch ${MARKER_TOKEN})`, `\`touch ${MARKER_TOKEN}\``,
    `;touch ${MARKER_TOKEN}`, `'$(touch ${MARKER_TOKEN})'`, 'a b', 'r\u00e9po', '\u{1f600}', 'x\ny', '?q=1', '#frag', 'C:\\x', '', '.',
    'sh -c touch% x', '%0a', '%00',
  ],
);
const suffixes = mostly(['', '', '.git', '/'], ['\n', ' ', '\u0000', '\t']);
const paths = fc.array(pathParts, { minLength: 0, maxLength: 4 }).map((parts) => parts.join('/'));

/** `scheme://[user@]host[:port]/path` shaped strings. */
export function nearMissSchemeUrl(): fc.Arbitrary<string> {
  return fc
    .tuple(urlSchemes, urlUsers, hosts, ports, mostly(['/'], [':', '::', '//', '']), paths, suffixes)
    .map(([scheme, user, host, port, separator, path, suffix]) => `${scheme}${user}${host}${port}${separator}${path}${suffix}`);
}

/** `user@host:path` shaped strings (scp-like). */
export function nearMissScpUrl(): fc.Arbitrary<string> {
  return fc
    .tuple(mostly([''], ['-', 'ext::', 'fd::', './', '/']), scpUsers, hosts, mostly([':'], ['::', '/', ':/', ':-']), paths, suffixes)
    .map(([prefix, user, host, separator, path, suffix]) => `${prefix}${user}${host}${separator}${path}${suffix}`);
}

/** Helper transports and local paths, written the way an attacker would try them. */
export function hostileUrl(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(
      `ext::sh -c touch% ${MARKER_TOKEN}`,
      `ext::sh%20-c%20touch%20${MARKER_TOKEN}`,
      'fd::0',
      'fd::3,4/x',
      '/etc',
      './repo.git',
      'repo.git',
      'file:///tmp',
    ),
    fc.tuple(fc.constantFrom('ext::', 'fd::', 'file://', '/', './', '-', 'transport::'), paths).map(([a, b]) => a + b),
  );
}

/** Any of the above. */
export function nearMissUrl(): fc.Arbitrary<string> {
  return fc.oneof({ arbitrary: nearMissSchemeUrl(), weight: 3 }, { arbitrary: nearMissScpUrl(), weight: 2 }, { arbitrary: hostileUrl(), weight: 1 });
}
