/**
 * Repository URLs: which ones are allowed, their cache key and default name.
 *
 * Both the function (config validation) and the agent (before git ever runs) use this, so a URL the function
 * accepts is exactly a URL the agent will fetch, and a hostile one is refused on both sides.
 */
import { createHash } from 'node:crypto';

export type RepoUrlScheme = 'https' | 'http' | 'ssh' | 'git' | 'scp';

export interface ParsedRepoUrl {
  /** The URL exactly as written. */
  readonly url: string;
  readonly scheme: RepoUrlScheme;
  readonly host: string;
  readonly port: string | undefined;
  readonly user: string | undefined;
  /** Path as written after the host (for scp-like URLs, the part after the colon). */
  readonly path: string;
}

export type RepoUrlProblem =
  | { readonly kind: 'empty' | 'unsupported' | 'malformed'; readonly message: string }
  | { readonly kind: 'credentials'; readonly message: string };

export type RepoUrlResult = { ok: true; value: ParsedRepoUrl } | { ok: false; problem: RepoUrlProblem };

// A DNS name, an IPv4 address or a bracketed IPv6 literal. A leading `-` is refused so that a host can never
// be read as an ssh option (`ssh://-oProxyCommand=...`, CVE-2017-1000117).
const HOST = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])$/;
const PORT = /^[0-9]{1,5}$/;
// userinfo for ssh: a plain user name. No `-` first (option injection), no `=` (the agent's NAME=URL form).
const SSH_USER = /^[A-Za-z0-9_][A-Za-z0-9_.+~-]*$/;
// Path characters git hosts use. No whitespace, control characters, quotes, backslashes or shell
// metacharacters; `%` escapes are allowed in URL forms only.
const URL_PATH = /^\/[A-Za-z0-9_.~!$&'()*+,;=:@%/-]*$/;
const SCP_PATH = /^[A-Za-z0-9_.~+@/-][A-Za-z0-9_.~+@/-]*$/;
const SCP_FORM = /^([^@/:\s]+)@([^/:\s]+|\[[^\]]+\]):(.*)$/;
const URL_FORM = /^(https?|ssh|git):\/\/([^/?#]*)(\/[^?#]*)?$/;

const SUPPORTED =
  'supported forms are https://host/path, http://host/path, ssh://[user@]host[:port]/path, user@host:path and git://host/path';

function problem(kind: RepoUrlProblem['kind'], message: string): RepoUrlResult {
  return { ok: false, problem: { kind, message } } as RepoUrlResult;
}

/** Validates a repository URL. Anything git could read as a local path, a helper transport or an option fails. */
export function parseRepoUrl(input: string): RepoUrlResult {
  if (input.length === 0) return problem('empty', 'repository URL is empty');
  if (input.length > 2048) return problem('malformed', 'repository URL is longer than 2048 characters');
  // Control characters and whitespace never appear in a real remote URL; a newline would also break the
  // key computation and git's config files.
  if (/[\s\u0000-\u001f\u007f]/.test(input)) return problem('malformed', 'repository URL contains whitespace or control characters');
  if (input.startsWith('-')) return problem('unsupported', `repository URL must not start with "-"; ${SUPPORTED}`);
  // Percent-encoded control characters: git refuses them in http(s) URLs (CVE-2020-5260's guard), late.
  if (/%(0[0-9a-f]|1[0-9a-f]|7f)/i.test(input)) return problem('malformed', 'repository URL contains a percent-encoded control character');
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(input)) {
    return problem('unsupported', `remote helper transports ("${input.split('::')[0]}::") are not allowed; ${SUPPORTED}`);
  }

  const urlForm = URL_FORM.exec(input);
  if (urlForm) {
    const scheme = urlForm[1] as 'https' | 'http' | 'ssh' | 'git';
    const authority = urlForm[2] ?? '';
    const path = urlForm[3] ?? '';
    const at = authority.lastIndexOf('@');
    const userinfo = at >= 0 ? authority.slice(0, at) : undefined;
    const hostPort = at >= 0 ? authority.slice(at + 1) : authority;
    if (userinfo !== undefined && (scheme === 'https' || scheme === 'http')) {
      return problem(
        'credentials',
        'repository URL embeds credentials (user:password@ or token@); put them in a Secret with keys username and password and name it in httpsSecretName',
      );
    }
    if (userinfo !== undefined && scheme === 'git') return problem('malformed', 'git:// URLs take no user name');
    if (userinfo !== undefined && !SSH_USER.test(userinfo)) {
      return problem('malformed', 'ssh user name must be letters, digits, "_", ".", "+", "~" or "-" and must not start with "-"');
    }
    const hostMatch = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(hostPort);
    const host = hostMatch?.[1] ?? '';
    const port = hostMatch?.[2];
    if (!HOST.test(host)) return problem('malformed', `repository URL has an invalid host "${host}"`);
    if (port !== undefined && (!PORT.test(port) || Number(port) < 1 || Number(port) > 65535)) {
      return problem('malformed', `repository URL has an invalid port "${port}"`);
    }
    if (!URL_PATH.test(path) || path === '/' || /(^|\/)\.\.(\/|$)/.test(path)) {
      return problem('malformed', 'repository URL needs a path to the repository, without "..", spaces or quotes');
    }
    return { ok: true, value: { url: input, scheme, host, port, user: userinfo, path } };
  }

  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(input)) {
    return problem('unsupported', `URL scheme "${input.split(':')[0]}" is not allowed (local paths and file:// are refused); ${SUPPORTED}`);
  }

  // `user@host://path` is not scp-like to git: it reads `user@host` as a URL scheme and refuses it.
  if (input.includes('://')) return problem('malformed', `"${input}" is neither a URL (scheme://host/path) nor scp-like (user@host:path); ${SUPPORTED}`);
  const scp = SCP_FORM.exec(input);
  if (scp) {
    const [, user = '', host = '', path = ''] = scp;
    if (!SSH_USER.test(user)) {
      return problem('malformed', 'ssh user name must be letters, digits, "_", ".", "+", "~" or "-" and must not start with "-"');
    }
    if (!HOST.test(host)) return problem('malformed', `repository URL has an invalid host "${host}"`);
    if (!SCP_PATH.test(path) || path.startsWith('-') || /(^|\/)\.\.(\/|$)/.test(path)) {
      return problem('malformed', 'scp-like URL needs a path after ":" without "..", spaces or quotes, not starting with "-"');
    }
    return { ok: true, value: { url: input, scheme: 'scp', host, port: undefined, user, path } };
  }

  return problem('unsupported', `"${input}" is not a remote repository URL (local paths are refused); ${SUPPORTED}`);
}

/**
 * The URL as the cache key sees it: as written, with any userinfo of an http(s) URL removed, so a URL with and
 * without a token maps to the same mirror. (The function refuses such URLs anyway; the agent may meet them.)
 */
export function canonicalRepoUrl(url: string): string {
  // Up to the LAST "@" of the authority, as parseRepoUrl splits it: a password may hold a raw "@".
  return url.replace(/^(https?:\/\/)[^/?#]*@/, '$1');
}

/** key(url): the first 20 hex digits of sha1(canonical(url) + "\n"), i.e. `echo "$url" | sha1sum | cut -c1-20`. */
export function repoKey(url: string): string {
  return createHash('sha1')
    .update(canonicalRepoUrl(url) + '\n')
    .digest('hex')
    .slice(0, 20);
}

export const REPO_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
export const REPO_NAME_MAX_LENGTH = 40;

/**
 * The default name of a repo: the last path segment without `.git`, lower-cased. Characters outside
 * [a-z0-9-] become `-` so the name stays usable in env var, volume and metric label names.
 */
export function defaultRepoName(url: string): string {
  const withoutQuery = canonicalRepoUrl(url).replace(/[?#].*$/, '');
  const path = withoutQuery.replace(/^[a-z]+:\/\/[^/]*/, '').replace(/^[^@/:]+@[^:]+:/, '');
  const last = path.replace(/\/+$/, '').split('/').pop() ?? '';
  const name = last
    .replace(/\.git$/, '')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, REPO_NAME_MAX_LENGTH)
    .replace(/-+$/, '');
  return name.length > 0 ? name : 'repo';
}

/** The mirror directory of a repo under a cache dir: `<dir>/<key>.git`. */
export function mirrorPath(cacheDir: string, url: string): string {
  return mirrorPathForKey(cacheDir, repoKey(url));
}

/** `<dir>/<key>.git` for a key already computed (the agent keeps each repo's key). */
export function mirrorPathForKey(cacheDir: string, key: string): string {
  return `${cacheDir.replace(/\/+$/, '')}/${key}.git`;
}

/** The key of a cache directory entry named like a mirror (`<key>.git`), else undefined. */
export function mirrorKeyOfEntry(entryName: string): string | undefined {
  return /^([0-9a-f]{20})\.git$/.exec(entryName)?.[1];
}

/**
 * A git-cache tier (`--upstream-cache BASE`) serves each mirror at `BASE/<key>.git`: a keeper's or node
 * agent's git daemon (`git://host[:port]`), or any server exporting a cache directory that way.
 */
export function tierMirrorUrl(base: string, key: string): string {
  return `${base.replace(/\/+$/, '')}/${key}.git`;
}

/** Why BASE is not a usable tier base URL (git://, http:// or https://, no credentials), or undefined. */
export function tierBaseProblem(base: string): string | undefined {
  if (!/^(git|https?):\/\//.test(base)) return 'must be a git://, http:// or https:// URL of another git-cache, such as git://git-cache-keeper.ci.svc';
  const parsed = parseRepoUrl(tierMirrorUrl(base, '0'.repeat(20)));
  if (!parsed.ok) return parsed.problem.message;
  if (/[?#]/.test(base)) return 'must not have a query or fragment';
  return undefined;
}
