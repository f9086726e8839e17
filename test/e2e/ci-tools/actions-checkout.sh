#!/bin/sh
# actions/checkout v4 (fetch-depth 1, the default): the commands it runs, in order.
set -eu
url=$1 dir=$2 sha=$3 branch=$4
git version
mkdir -p "$dir" && cd "$dir"
git init
git remote add origin "$url"
git config --local gc.auto 0
git config --local --name-only --get-regexp core\.sshCommand || true
git -c protocol.version=2 fetch --no-tags --prune --no-recurse-submodules --depth=1 origin "+$sha:refs/remotes/origin/$branch"
git sparse-checkout disable || true
git config --local --unset-all extensions.worktreeConfig || true
git checkout --progress --force -B "$branch" "refs/remotes/origin/$branch"
git log -1 --format=%H
