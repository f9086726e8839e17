#!/bin/sh
# Entrypoint of the git-cache agent image (and what the tests run as a plain process with the image's env).
# Layout, the same in the image (/opt/git-cache) and in a checkout: docker/agent-entrypoint.sh beside
# dist/git-cache.mjs. The root filesystem is read-only in the cache container: only the cache volume and
# /tmp are written to, so HOME defaults to /tmp.
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
: "${HOME:=/tmp}"
export HOME
# Node must not try to write a compile cache or REPL history anywhere else.
export NODE_REPL_HISTORY=
exec "${NODE:-node}" "${GIT_CACHE_MAIN:-$here/../dist/git-cache.mjs}" "$@"
