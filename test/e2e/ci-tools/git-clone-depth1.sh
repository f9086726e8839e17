#!/bin/sh
# A plain job that saves bandwidth: git clone --depth 1 (of the default branch).
set -eu
url=$1 dir=$2
git clone --depth 1 "$url" "$dir"
git -C "$dir" rev-parse HEAD
