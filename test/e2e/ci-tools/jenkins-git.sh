#!/bin/sh
# The Jenkins git plugin's checkout of BRANCH (what its log prints, "> git ..."): it fetches by URL, then checks
# out the commit it resolved (the webhook's SHA when one triggered the build).
set -eu
url=$1 dir=$2 sha=$3 branch=$4
mkdir -p "$dir" && cd "$dir"
git init "$dir"
git --version
git fetch --tags --force --progress -- "$url" "+refs/heads/*:refs/remotes/origin/*"
git config remote.origin.url "$url"
git config --add remote.origin.fetch "+refs/heads/*:refs/remotes/origin/*"
git rev-parse "refs/remotes/origin/$branch^{commit}"
git config core.sparsecheckout || true
git checkout -f "$sha"
git rev-list --no-walk "$sha"
