#!/usr/bin/env node
// `git-cache` (npm bin): the bundled agent built by scripts/build.mjs (`npm ci` runs it through `prepare`).
import '../dist/git-cache.mjs';
