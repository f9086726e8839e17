#!/bin/sh
# Argo CD's repo-server, the git CLI part of util/git/client.go (it resolves a revision with go-git's ls-remote,
# which reads no git config: that step is not transparent): init, fetch, checkout; a revision the fetch did not
# bring is fetched by id and checked out again.
set -eu
url=$1 dir=$2 sha=$3
mkdir -p "$dir" && cd "$dir"
git init
git remote add origin "$url"
git fetch origin --tags --force --prune
if ! git checkout --force "$sha"; then
  git fetch origin "$sha" --force --prune
  git checkout --force "$sha"
fi
git clean -ffdx
git rev-parse HEAD
