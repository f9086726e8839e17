#!/bin/sh
# The Tekton catalog git-clone task (git-init): REVISION is the task's `revision` param, a branch or a commit id.
set -eu
url=$1 dir=$2 revision=$3
mkdir -p "$dir" && cd "$dir"
git init
git remote add origin "$url"
git fetch --recurse-submodules=yes --depth=1 origin --update-head-ok --force "$revision"
git checkout -f FETCH_HEAD
git rev-parse HEAD
