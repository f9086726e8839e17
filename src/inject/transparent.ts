/**
 * Transparent mode: the git configuration that makes a plain `git clone URL` or `git fetch` of a configured repo
 * read its mirror, while `git push` still goes to URL. Pure: repos and mirror locations in, env vars out.
 *
 * git reads it from the environment (`GIT_CONFIG_COUNT`, `GIT_CONFIG_KEY_<n>`, `GIT_CONFIG_VALUE_<n>`, git 2.31+,
 * command scope), so it applies to every git in the container and no image or tool changes:
 *
 * - `url.<mirror>.insteadOf` for every spelling of the URL (with and without `.git`, with a trailing slash,
 *   scp-like `user@host:path` and `ssh://user@host/path`). git matches insteadOf as a prefix and takes the
 *   longest match, so every configured repo gets its exact spellings; the price is that an unconfigured repo
 *   whose URL merely extends a configured one written without `.git` (org/app -> org/app-config) is rewritten
 *   too (see the README's limits).
 * - `url.<base>.pushInsteadOf` = `<base>` (an identity): git rewrites push URLs with pushInsteadOf when one
 *   matches and with insteadOf otherwise, so this keeps `git push` going to the URL as written.
 * - For a mirror on the mounted volume: `includeIf.hasconfig:remote.*.url:<base>*.path` includes a file from
 *   the volume that gives `origin` the upload-pack wrapper, which asks the agent for a refresh when the fetch
 *   names a commit (or a ref) the mirror does not have yet (actions/checkout fetches a SHA). A remote whose URL
 *   matches that pattern is always rewritten to the local mirror, so the wrapper never runs for a remote host.
 * - `GIT_CONFIG_SYSTEM`: a local clone runs upload-pack with the command-scope config removed (git's
 *   local_repo_env), and git (2.45.1+, and Debian's 2.39.5) refuses to serve a repository owned by another UID
 *   unless protected config lists it in `safe.directory`. The agent keeps that system config on the volume; it
 *   includes /etc/gitconfig, so the image's own system config still applies.
 *
 * Node mode's network mirrors (a `git://` or `http://` URL of a read-only server) need neither the wrapper nor
 * the system config: their server owns the repositories.
 */
import type { EnvVar } from './additions.js';
import {
  ENV_ENDPOINT,
  ENV_GIT_CONFIG_COUNT,
  ENV_GIT_CONFIG_KEY_PREFIX,
  ENV_GIT_CONFIG_SYSTEM,
  ENV_GIT_CONFIG_VALUE_PREFIX,
  ORIGIN_GITCONFIG_RELATIVE_PATH,
  SYSTEM_GITCONFIG_RELATIVE_PATH,
} from '../shared/names.js';
import { parseRepoUrl } from '../shared/repo-url.js';

/** Where app containers read a repo's mirror: a bare repository on the mounted cache, or a read-only network URL. */
export type MirrorLocation = { readonly path: string } | { readonly url: string };

export interface TransparentRepo {
  /** The repo URL as configured. */
  readonly url: string;
  readonly mirror: MirrorLocation;
}

export interface AppGitEnvInput {
  readonly repos: readonly TransparentRepo[];
  /** GIT_CACHE_ENDPOINT: base URL of an agent that refreshes on request; undefined where none runs (init mode). */
  readonly endpoint: string | undefined;
  /** false: only GIT_CACHE_ENDPOINT, no git configuration. */
  readonly transparent: boolean;
  /** Where app containers see the cache volume (wrapper, system config); undefined when they mount none. */
  readonly cacheDir: string | undefined;
}

export type GitConfigEntry = readonly [key: string, value: string];

/** The spellings of one URL form (scp-like, ssh://, https:// ...): `base` is the path without `.git` or `/`. */
export interface UrlFamily {
  readonly base: string;
  readonly spellings: readonly string[];
}

function barePath(path: string): string {
  return path.replace(/\/+$/, '').replace(/\.git$/, '');
}

function family(base: string): UrlFamily {
  return { base, spellings: [base, `${base}.git`, `${base}/`, `${base}.git/`] };
}

/**
 * Every spelling git users write for the repository at `url`: the URL's own form and, for ssh, the other of
 * scp-like (`user@host:org/app`) and `ssh://user@host/org/app` (as git hosts treat them: the same repository),
 * each with and without `.git` and a trailing slash. The URL as written comes first.
 */
export function urlFamilies(url: string): UrlFamily[] {
  const parsed = parseRepoUrl(url);
  if (!parsed.ok) throw new Error(`not a repository URL: ${parsed.problem.message}`);
  const { scheme, host, port, user, path } = parsed.value;
  const userAt = user === undefined ? '' : `${user}@`;
  const families: UrlFamily[] = [];
  if (scheme === 'scp') {
    families.push(family(`${userAt}${host}:${barePath(path)}`));
    families.push(family(`ssh://${userAt}${host}/${barePath(path).replace(/^\/+/, '')}`));
  } else if (scheme === 'ssh') {
    families.push(family(`ssh://${userAt}${host}${port === undefined ? '' : `:${port}`}${barePath(path)}`));
    // scp-like syntax has no port: only the default one has an scp spelling.
    if (port === undefined || port === '22') families.push(family(`${userAt}${host}:${barePath(path).replace(/^\/+/, '')}`));
  } else {
    families.push(family(`${scheme}://${host}${port === undefined ? '' : `:${port}`}${barePath(path)}`));
  }
  const first = families[0];
  if (first) families[0] = { base: first.base, spellings: [url, ...first.spellings.filter((spelling) => spelling !== url)] };
  return families;
}

/** A wildmatch pattern matching `text` literally. */
function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, (char) => `\\${char}`);
}

function mirrorTarget(mirror: MirrorLocation): string {
  return 'path' in mirror ? mirror.path : mirror.url;
}

/** The git configuration entries of transparent mode, in a stable order. */
export function transparentGitConfig(repos: readonly TransparentRepo[], cacheDir: string | undefined): GitConfigEntry[] {
  const entries: GitConfigEntry[] = [];
  for (const repo of repos) {
    const target = mirrorTarget(repo.mirror);
    const families = urlFamilies(repo.url);
    for (const spelling of new Set(families.flatMap((entry) => entry.spellings))) entries.push([`url.${target}.insteadOf`, spelling]);
    for (const { base } of families) entries.push([`url.${base}.pushInsteadOf`, base]);
    if ('path' in repo.mirror && cacheDir !== undefined) {
      for (const { base } of families) {
        entries.push([`includeIf.hasconfig:remote.*.url:${globLiteral(base)}*.path`, `${cacheDir}/${ORIGIN_GITCONFIG_RELATIVE_PATH}`]);
      }
    }
  }
  return entries;
}

/** `GIT_CONFIG_COUNT` and the numbered KEY/VALUE pairs for `entries`. */
export function gitConfigEnv(entries: readonly GitConfigEntry[]): EnvVar[] {
  if (entries.length === 0) return [];
  return [
    { name: ENV_GIT_CONFIG_COUNT, value: String(entries.length) },
    ...entries.flatMap(([key, value], index) => [
      { name: `${ENV_GIT_CONFIG_KEY_PREFIX}${index}`, value: key },
      { name: `${ENV_GIT_CONFIG_VALUE_PREFIX}${index}`, value },
    ]),
  ];
}

/** What app containers get besides GIT_CACHE_DIR/GIT_CACHE_REF*: the endpoint and the transparent git config. */
export function appGitEnv(input: AppGitEnvInput): EnvVar[] {
  const env: EnvVar[] = input.endpoint === undefined ? [] : [{ name: ENV_ENDPOINT, value: input.endpoint }];
  if (!input.transparent || input.repos.length === 0) return env;
  env.push(...gitConfigEnv(transparentGitConfig(input.repos, input.cacheDir)));
  if (input.cacheDir !== undefined && input.repos.some((repo) => 'path' in repo.mirror)) {
    env.push({ name: ENV_GIT_CONFIG_SYSTEM, value: `${input.cacheDir}/${SYSTEM_GITCONFIG_RELATIVE_PATH}` });
  }
  return env;
}

/** Env var names a container must not set itself when transparent mode configures git through the environment. */
export function conflictsWithTransparentEnv(name: string): boolean {
  return name === ENV_GIT_CONFIG_COUNT || name === ENV_GIT_CONFIG_SYSTEM || /^GIT_CONFIG_(?:KEY|VALUE)_\d+$/.test(name);
}
