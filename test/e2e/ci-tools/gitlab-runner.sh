#!/bin/sh
# GitLab Runner, GIT_STRATEGY fetch on a fresh build directory (the first job of a pod), GIT_DEPTH 20, a branch
# pipeline N: the commands of its get_sources stage. The runner's URL carries no token here
# (FF_GIT_URLS_WITHOUT_TOKENS); with a token in the URL, no insteadOf rule can match it.
set -eu
url=$1 dir=$2 sha=$3 branch=$4 pipeline=${5:-42}
mkdir -p "$dir" && cd "$dir"
git init --template /dev/null 2>/dev/null || git init
git remote add origin "$url"
git -c http.userAgent="gitlab-runner 17.0.0 linux/amd64" fetch origin --prune "+refs/pipelines/$pipeline:refs/pipelines/$pipeline" "+refs/heads/$branch:refs/remotes/origin/$branch" --depth 20
git checkout -f -q "$sha"
git clean -ffdx
git log -1 --format=%H
