#!/bin/sh
# A plain job: git clone, then the commit it was given.
set -eu
url=$1 dir=$2 sha=$3
git clone "$url" "$dir"
git -C "$dir" checkout -q "$sha"
git -C "$dir" rev-parse HEAD
