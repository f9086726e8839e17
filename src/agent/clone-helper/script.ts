/**
 * `<cacheDir>/bin/git-clone-cached`: a POSIX sh clone helper for app images that carry none of our code.
 * It computes the mirror key exactly like src/shared/repo-url.ts (userinfo of http(s) URLs removed, then
 * `sha1sum` of the URL plus a newline, first 20 hex digits) and clones with --reference-if-able when the
 * mirror is usable, else plainly; it says on stderr which it did. Kept as a string so the bundled agent can
 * install it without shipping extra files.
 */
export const CLONE_HELPER_SCRIPT = `#!/bin/sh
# git-clone-cached: clone through the git-cache mirror when it is there, plainly otherwise.
# Installed by the git-cache agent. Usage: git-clone-cached [--dissociate] URL DIR [git clone args...]
#   --dissociate  copy the borrowed objects into the new clone (recommended for long-lived workloads, so the
#                 clone stays valid whatever happens to the cache volume)
# The cache dir is $GIT_CACHE_DIR, or the directory above this script's bin/.
set -eu

me=git-clone-cached
usage() {
  echo "usage: $me [--dissociate] URL DIR [git clone args...]" >&2
  exit 2
}

dissociate=
while [ $# -gt 0 ]; do
  case $1 in
    --dissociate) dissociate=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "$me: unknown option $1 (git clone options go after URL DIR)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || usage
url=$1
dir=$2
shift 2
case $url in
  -*) echo "$me: refusing a URL that starts with -" >&2; exit 2 ;;
esac

# The key ignores http(s) userinfo (user:token@), like the agent's.
canonical=$(printf '%s\\n' "$url" | sed 's#^\\(https\\{0,1\\}://\\)[^/@]*@#\\1#')

if [ -n "\${GIT_CACHE_DIR:-}" ]; then
  cache_dir=$GIT_CACHE_DIR
else
  cache_dir=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
fi

mirror=
if command -v sha1sum >/dev/null 2>&1; then
  key=$(printf '%s\\n' "$canonical" | sha1sum | cut -c1-20)
  mirror=$cache_dir/$key.git
fi

# Usable: the agent finished it (marker written before the atomic rename) and git reads it as a repository.
# --git-dir skips git's ownership check, so a mirror written by the cache container's UID can be read.
if [ -n "$mirror" ] && [ -f "$mirror/git-cache.json" ] && [ ! -f "$mirror/shallow" ] &&
  git --git-dir="$mirror" rev-parse --git-dir >/dev/null 2>&1; then
  if [ -n "$dissociate" ]; then
    # git before 2.55 drops the reference's commit-graph while still using a commit it read from it, and the
    # checkout of "clone --reference --dissociate" fails ("unable to parse commit"): clone without graphs.
    echo "$me: cloning $canonical with --reference-if-able $mirror --dissociate" >&2
    exec git -c core.commitGraph=false clone --reference-if-able "$mirror" --dissociate "$@" -- "$url" "$dir"
  fi
  echo "$me: cloning $canonical with --reference-if-able $mirror" >&2
  exec git clone --reference-if-able "$mirror" "$@" -- "$url" "$dir"
fi
echo "$me: no usable mirror for $canonical in $cache_dir; plain clone" >&2
exec git clone "$@" -- "$url" "$dir"
`;
