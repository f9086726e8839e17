/**
 * What the agent installs into `<cacheDir>/bin/` for app containers, which carry none of our code: POSIX sh
 * (dash, busybox ash) and git only, plus sha1sum/sed/cut/tr and, to ask for a refresh, curl or wget.
 *
 * - `git-clone-cached`: clones a configured repo from its mirror without contacting upstream; origin = URL.
 * - `git-upload-pack-cached`: transparent mode runs it (through bin/origin.gitconfig) instead of upload-pack for
 *   fetches of origin; when the fetch names a commit or ref the mirror lacks, it asks the agent to fetch first.
 * - `git-cache-lib.sh`: the functions both share (key, mirror checks, refresh requests, waiting).
 *
 * The mirror belongs to the cache container's UID and is mounted read-only: git refuses to run upload-pack on a
 * repository another UID owns unless protected config (system, global or command line) lists it in
 * safe.directory, and a local transport drops the caller's command-line config. So both scripts start
 * upload-pack as `git -c safe.directory=MIRROR upload-pack`, and read the mirror with --git-dir (no discovery,
 * no ownership check), never writing to it.
 *
 * Kept as strings so the bundled agent installs them without shipping extra files.
 */
import { REFRESH_PATH, REFRESH_TOKEN_HEADER, REFRESH_TOKEN_RELATIVE_PATH } from '../../shared/names.js';
import { MARKER_FILE } from '../mirror/mirror.js';

export const CLIENT_LIBRARY_SCRIPT = `# git-cache-lib.sh: shell functions of git-clone-cached and git-upload-pack-cached (POSIX sh: dash, busybox).
# Installed by the git-cache agent; sourced by those two scripts, never run on its own.

gc_say() { printf '%s: %s\\n' "$gc_me" "$*" >&2; }

# The cache directory: $GIT_CACHE_DIR, else the directory above bin/.
gc_cache_dir() {
  if [ -n "\${GIT_CACHE_DIR:-}" ]; then printf '%s\\n' "\${GIT_CACHE_DIR%/}"; else printf '%s\\n' "\${gc_bin%/bin}"; fi
}

# The URL as the cache key sees it: userinfo (user:token@) of an http(s) URL removed (up to the authority's last
# "@"), like the agent's. Parameter expansion only: a clone should cost as few processes as possible.
gc_canonical() {
  case $1 in
    http://*|https://*)
      gc_scheme=\${1%%://*}; gc_rest=\${1#*://}; gc_authority=\${gc_rest%%[/?#]*}; gc_path=\${gc_rest#"$gc_authority"}
      printf '%s://%s%s\\n' "$gc_scheme" "\${gc_authority##*@}" "$gc_path" ;;
    *) printf '%s\\n' "$1" ;;
  esac
}

# key(url) = first 20 hex digits of sha1(canonical(url) + newline).
gc_key() { gc_sum=$(gc_canonical "$1" | sha1sum) && printf '%.20s\\n' "$gc_sum"; }

# A mirror is usable once the agent finished it: the marker is written before the atomic rename that makes
# <key>.git appear, so a marker means a complete mirror (and the agent never keeps a shallow one).
gc_usable() { [ -f "$1/${MARKER_FILE}" ] && [ ! -f "$1/shallow" ]; }

# The repo's NAME (what the agent's endpoint takes) from GIT_CACHE_REF_<NAME>=MIRROR in the environment.
gc_repo_name() {
  env | while IFS= read -r gc_line; do
    case $gc_line in
      GIT_CACHE_REF_*=*)
        [ "\${gc_line#*=}" = "$1" ] || continue
        gc_line=\${gc_line%%=*}
        printf '%s\\n' "\${gc_line#GIT_CACHE_REF_}" | tr 'ABCDEFGHIJKLMNOPQRSTUVWXYZ_' 'abcdefghijklmnopqrstuvwxyz-'
        break ;;
    esac
  done
}

# Seconds in a duration: 90, 90s, 5m, 1h, 1m30s. Fails on anything else.
gc_seconds() {
  gc_d=$1; gc_total=0
  case $gc_d in ''|*[!0-9smh]*|[smh]*) return 1 ;; esac
  case $gc_d in *[0-9]) gc_d=\${gc_d}s ;; esac
  while [ -n "$gc_d" ]; do
    gc_n=\${gc_d%%[smh]*}; gc_rest=\${gc_d#"$gc_n"}; gc_u=\${gc_rest%"\${gc_rest#?}"}; gc_d=\${gc_rest#?}
    case $gc_n in ''|*[!0-9]*) return 1 ;; esac
    case $gc_u in s) gc_total=$((gc_total + gc_n)) ;; m) gc_total=$((gc_total + gc_n * 60)) ;; h) gc_total=$((gc_total + gc_n * 3600)) ;; *) return 1 ;; esac
  done
  echo "$gc_total"
}

# gc_present MIRROR WANT: WANT is a ref (refs/...), a commit id, or a branch or tag name the mirror has.
gc_present() {
  case $2 in
    refs/*) git --git-dir="$1" rev-parse -q --verify "$2^{object}" >/dev/null 2>&1 ;;
    *[!0-9a-f]*) git --git-dir="$1" rev-parse -q --verify "refs/heads/$2^{commit}" >/dev/null 2>&1 ||
                 git --git-dir="$1" rev-parse -q --verify "refs/tags/$2^{commit}" >/dev/null 2>&1 ;;
    *) git --git-dir="$1" rev-parse -q --verify "refs/heads/$2^{commit}" >/dev/null 2>&1 ||
       git --git-dir="$1" rev-parse -q --verify "refs/tags/$2^{commit}" >/dev/null 2>&1 ||
       git --git-dir="$1" cat-file -e "$2^{commit}" 2>/dev/null ;;
  esac
}

# gc_post URL SECONDS: POST with the cache's refresh token when readable. Sets gc_status to the HTTP status,
# "000" when nothing answered, or "none" without curl and wget; gc_body to what the agent said.
gc_post() {
  gc_status=none; gc_body=; gc_token=
  [ -r "$gc_cache/${REFRESH_TOKEN_RELATIVE_PATH}" ] && gc_token=$(cat "$gc_cache/${REFRESH_TOKEN_RELATIVE_PATH}" 2>/dev/null)
  if command -v curl >/dev/null 2>&1; then
    if [ -n "$gc_token" ]; then
      gc_body=$(curl -sS -X POST --max-time "$2" -H "${REFRESH_TOKEN_HEADER}: $gc_token" -w '\\n%{http_code}' "$1" 2>&1)
    else
      gc_body=$(curl -sS -X POST --max-time "$2" -w '\\n%{http_code}' "$1" 2>&1)
    fi
    gc_status=$(printf '%s\\n' "$gc_body" | tail -n 1)
    gc_body=$(printf '%s\\n' "$gc_body" | sed '$d' | tr '\\n' ' ')
  elif command -v wget >/dev/null 2>&1; then
    # Bounded by timeout(1) rather than wget -T: Debian's busybox 1.35 wget crashes (SIGSEGV) with -T.
    gc_timeout=; command -v timeout >/dev/null 2>&1 && gc_timeout="timeout $2"
    if [ -n "$gc_token" ]; then
      gc_body=$($gc_timeout wget -S -O /dev/null --post-data= --header "${REFRESH_TOKEN_HEADER}: $gc_token" "$1" 2>&1)
    else
      gc_body=$($gc_timeout wget -S -O /dev/null --post-data= "$1" 2>&1)
    fi
    gc_status=$(printf '%s\\n' "$gc_body" | sed -n 's#.*HTTP/[0-9.]* \\([0-9][0-9][0-9]\\).*#\\1#p' | tail -n 1)
    gc_body=$(printf '%s\\n' "$gc_body" | grep -v '^ ' | tr '\\n' ' ')
  fi
  case $gc_status in none|[0-9][0-9][0-9]) ;; *) gc_status=000 ;; esac
}

# gc_wait_for MIRROR NAME SECONDS WANT...: returns 0 once the mirror has every WANT. While one is missing it asks
# the agent at GIT_CACHE_ENDPOINT to fetch NAME now (the agent takes no URL or ref: only the name) and checks
# again, until SECONDS have passed. Without an endpoint nothing would refresh the mirror: it fails at once.
gc_wait_for() {
  gc_m=$1; gc_name=$2; gc_budget=$3; shift 3
  gc_start=$(date +%s); gc_deadline=$((gc_start + gc_budget)); gc_asked=
  gc_ask=\${GIT_CACHE_ENDPOINT:-}
  [ -n "$gc_name" ] || gc_ask=
  while :; do
    gc_missing=
    for gc_w in "$@"; do gc_present "$gc_m" "$gc_w" || gc_missing="$gc_missing $gc_w"; done
    if [ -z "$gc_missing" ]; then
      [ -z "$gc_asked" ] || gc_say "the mirror has it now, after $(( $(date +%s) - gc_start ))s"
      return 0
    fi
    gc_now=$(date +%s)
    if [ -z "\${GIT_CACHE_ENDPOINT:-}" ]; then
      gc_say "not in the mirror:$gc_missing; no agent to refresh it (GIT_CACHE_ENDPOINT is not set, e.g. init mode)"
      return 1
    fi
    if [ "$gc_now" -ge "$gc_deadline" ]; then
      gc_say "not in the mirror after waiting \${gc_budget}s:$gc_missing"
      return 1
    fi
    if [ -n "$gc_ask" ]; then
      gc_post "\${gc_ask%/}${REFRESH_PATH}?repo=$gc_name" $((gc_deadline - gc_now))
      case $gc_status in
        200) [ -n "$gc_asked" ] || gc_say "not in the mirror:$gc_missing; the agent at $gc_ask fetched $gc_name now"
             gc_asked=1
             gc_present_all=1
             for gc_w in "$@"; do gc_present "$gc_m" "$gc_w" || gc_present_all=; done
             [ -n "$gc_present_all" ] || sleep 2 ;;
        429) gc_asked=1; sleep 2 ;;
        none) gc_say "not in the mirror:$gc_missing; no curl or wget to ask the agent for a refresh: waiting for its periodic one"
              gc_asked=1; gc_ask= ;;
        *) gc_say "refresh request for $gc_name answered HTTP $gc_status: $gc_body"
           gc_asked=1
           case $gc_status in 400|403|404|405) gc_ask= ;; esac
           sleep 2 ;;
      esac
    else
      sleep 2
    fi
  done
}
`;

export const CLONE_HELPER_SCRIPT = `#!/bin/sh
# git-clone-cached: clone a repository from the git-cache mirror, with no network and no credentials.
# Installed by the git-cache agent.
#
#   git-clone-cached [--rev REV] [--wait DURATION] [--refresh] [--dissociate] URL DIR [-- git clone args...]
#
# DIR becomes a clone of URL: origin's fetch and push URL is URL, refs/remotes/origin/* and tags come from
# the mirror, HEAD is upstream's default branch or REV (a branch, a tag or a full commit id). Objects are
# borrowed from the mirror (objects/info/alternates) or, with --dissociate, copied.
#   --rev REV        check out REV; when the mirror does not have it yet (pushed after its last refresh), ask
#                    the agent at $GIT_CACHE_ENDPOINT to fetch now and wait for it
#   --wait DURATION  how long to wait for REV (default 60s; 90, 90s, 5m)
#   --refresh        ask the agent to fetch before cloning even when REV is present (branch heads as of now)
#   --dissociate     copy the objects instead of borrowing them (for clones that outlive the cache volume)
# When there is no usable mirror for URL it falls back to a plain git clone from upstream (and says so).
set -eu
gc_me=git-clone-cached
case $0 in */*) gc_bin=\${0%/*} ;; *) gc_bin=$(dirname -- "$(command -v -- "$0")") ;; esac
. "$gc_bin/git-cache-lib.sh"

usage() {
  echo "usage: $gc_me [--rev REV] [--wait DURATION] [--refresh] [--dissociate] URL DIR [-- git clone args...]" >&2
  exit 2
}
die() { gc_say "$*"; exit 1; }

rev=; wait=60s; dissociate=; refresh=
while [ $# -gt 0 ]; do
  case $1 in
    --rev) [ $# -ge 2 ] || usage; rev=$2; shift 2 ;;
    --rev=*) rev=\${1#--rev=}; shift ;;
    --wait) [ $# -ge 2 ] || usage; wait=$2; shift 2 ;;
    --wait=*) wait=\${1#--wait=}; shift ;;
    --dissociate) dissociate=1; shift ;;
    --refresh) refresh=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) gc_say "unknown option $1 (git clone options go after URL DIR [--])"; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || usage
url=$1; dir=$2; shift 2
[ "\${1:-}" != -- ] || shift
case $url in -*) gc_say "refusing a URL that starts with -"; exit 2 ;; esac
case $rev in -*) gc_say "refusing a --rev that starts with -"; exit 2 ;; esac
wait_seconds=$(gc_seconds "$wait") || { gc_say "--wait: \\"$wait\\" is not a duration such as 60s, 5m or 90"; exit 2; }

gc_cache=$(gc_cache_dir)
canonical=$(gc_canonical "$url")
mirror=
if command -v sha1sum >/dev/null 2>&1; then mirror=$gc_cache/$(gc_key "$url").git; fi
case $mirror in *"'"*) mirror= ;; esac

if [ -z "$mirror" ] || ! gc_usable "$mirror"; then
  gc_say "no usable mirror for $canonical in $gc_cache; plain clone from upstream"
  if [ -z "$rev" ]; then exec git clone "$@" -- "$url" "$dir"; fi
  case $rev in
    *[!0-9a-f]*) exec git clone --branch "$rev" "$@" -- "$url" "$dir" ;;
    *) git clone --no-checkout "$@" -- "$url" "$dir"
       exec git -C "$dir" -c advice.detachedHead=false checkout -q --detach "$rev" ;;
  esac
fi

name=
[ -z "$refresh$rev" ] || name=$(gc_repo_name "$mirror")
if [ -n "$refresh" ]; then
  if [ -n "\${GIT_CACHE_ENDPOINT:-}" ] && [ -n "$name" ]; then
    gc_post "\${GIT_CACHE_ENDPOINT%/}/v1/refresh?repo=$name" "$wait_seconds"
    if [ "$gc_status" = 200 ]; then gc_say "the agent fetched $name now"; else gc_say "refresh request for $name: HTTP $gc_status $gc_body; cloning the mirror as it is"; fi
  else
    gc_say "--refresh: no agent to ask (GIT_CACHE_ENDPOINT or GIT_CACHE_REF_<NAME> for this mirror is not set); cloning the mirror as it is"
  fi
fi

kind=default
if [ -n "$rev" ]; then
  gc_wait_for "$mirror" "$name" "$wait_seconds" "$rev" || die "cannot clone $canonical at $rev"
  if git --git-dir="$mirror" rev-parse -q --verify "refs/heads/$rev^{commit}" >/dev/null 2>&1; then kind=branch
  elif git --git-dir="$mirror" rev-parse -q --verify "refs/tags/$rev^{commit}" >/dev/null 2>&1; then kind=tag
  else kind=commit
  fi
fi

upload_pack="git -c safe.directory='$mirror' upload-pack"
if [ -n "$dissociate" ]; then share=; how="objects copied from the mirror"; else share=--shared; how="objects borrowed from the mirror (alternates)"; fi
case $kind in
  branch|tag) git -c safe.directory="$mirror" clone --upload-pack "$upload_pack" $share --branch "$rev" "$@" -- "$mirror" "$dir" ;;
  commit) git -c safe.directory="$mirror" clone --upload-pack "$upload_pack" $share --no-checkout "$@" -- "$mirror" "$dir" ;;
  *) git -c safe.directory="$mirror" clone --upload-pack "$upload_pack" $share "$@" -- "$mirror" "$dir" ;;
esac
git -C "$dir" remote set-url origin "$url"
[ "$kind" != commit ] || git -C "$dir" -c advice.detachedHead=false checkout -q --detach "$rev"
gc_say "cloned $canonical into $dir from $mirror without contacting upstream; $how\${rev:+; HEAD at $kind $rev}"
`;

export const UPLOAD_PACK_WRAPPER_SCRIPT = `#!/bin/sh
# git-upload-pack-cached: runs upload-pack on a git-cache mirror for a local fetch. Installed by the git-cache
# agent; transparent mode's git configuration makes git use it for origin when origin is a configured repo
# (bin/origin.gitconfig), as it would use git-upload-pack.
#
# When the git fetch that started it names a commit id or a ref the mirror does not have yet (actions/checkout
# fetches +SHA:refs/remotes/origin/BRANCH, GitLab Runner +refs/pipelines/N), it asks the agent at
# $GIT_CACHE_ENDPOINT to fetch now and waits for it ($GIT_CACHE_WAIT, default 60s) before serving.
set -u
gc_me=git-cache
case $0 in */*) gc_bin=\${0%/*} ;; *) gc_bin=$(dirname -- "$(command -v -- "$0")") ;; esac
. "$gc_bin/git-cache-lib.sh"

# What the git process that started us asked for: commit ids and refs/... sources of its refspecs.
parent_wants() {
  gc_pid=$PPID; gc_depth=0
  while [ "$gc_depth" -lt 4 ] && [ "$gc_pid" -gt 1 ] 2>/dev/null && [ -r "/proc/$gc_pid/cmdline" ]; do
    gc_argv0=$(tr '\\000' '\\n' < "/proc/$gc_pid/cmdline" | head -n 1)
    case \${gc_argv0##*/} in
      git|git-*)
        tr '\\000' '\\n' < "/proc/$gc_pid/cmdline" |
          sed -n -e 's/^+//' -e 's/:.*//' -e '/^[0-9a-f]\\{40\\}$/p' -e '/^[0-9a-f]\\{64\\}$/p' -e '/^refs\\/[^*]*$/p'
        return ;;
    esac
    gc_pid=$(sed 's/.*) //' "/proc/$gc_pid/stat" | cut -d' ' -f2)
    gc_depth=$((gc_depth + 1))
  done
}

eval "dir=\\\${$#}"
dir=\${dir%/}
gc_cache=$(gc_cache_dir)
case $dir in
  "$gc_cache"/*.git)
    if gc_usable "$dir"; then
      wants=$(parent_wants)
      if [ -n "$wants" ]; then
        budget=$(gc_seconds "\${GIT_CACHE_WAIT:-60s}") || budget=60
        # shellcheck disable=SC2086 # one word per want
        gc_wait_for "$dir" "$(gc_repo_name "$dir")" "$budget" $wants || gc_say "serving the mirror as it is"
      fi
      exec git -c safe.directory="$dir" upload-pack "$@"
    fi ;;
esac
exec git upload-pack "$@"
`;

/** Included by transparent mode's git configuration when a remote is a configured repo (see src/inject/transparent.ts). */
export function originGitConfig(cacheDir: string): string {
  return `# Written by the git-cache agent. Transparent mode includes this file (includeIf hasconfig:remote.*.url) when a
# remote is a configured repo, which it rewrites to the local mirror: origin's fetches then run the upload-pack
# wrapper, which asks for a refresh when a fetch names a commit the mirror does not have yet. git runs the value
# with sh, so $GIT_CACHE_DIR is the app container's own.
[remote "origin"]
\tuploadpack = \${GIT_CACHE_DIR:-${cacheDir}}/bin/git-upload-pack-cached
`;
}

/**
 * The system git config of app containers in transparent mode (GIT_CONFIG_SYSTEM): the image's /etc/gitconfig,
 * plus safe.directory for each mirror, which git only reads from protected config and which a local clone's
 * upload-pack needs to serve a repository owned by the cache container's UID.
 */
export function systemGitConfig(mirrorDirs: readonly string[]): string {
  return [
    '# Written by the git-cache agent: the system git config of app containers in transparent mode (GIT_CONFIG_SYSTEM).',
    '# The image\'s own system config still applies (included below; a missing file is skipped).',
    '[include]',
    '\tpath = /etc/gitconfig',
    '[safe]',
    ...mirrorDirs.map((dir) => `\tdirectory = ${dir}`),
    '',
  ].join('\n');
}

/** The mirror directories a system config lists (to merge what other agents sharing the volume wrote). */
export function safeDirectoriesOf(config: string): string[] {
  return [...config.matchAll(/^\tdirectory = (.+)$/gm)].map((match) => match[1] ?? '').filter((dir) => dir !== '');
}
