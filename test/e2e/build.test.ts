/**
 * What `npm ci` (through `prepare`) must leave behind for every client: an executable, self-contained
 * `function/inject-git-cache` with a node shebang, usable as kustomize exec.path, a Kptfile exec step and the
 * function image's entrypoint.
 */
import test from 'ava';
import { execa } from 'execa';
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { FUNCTION_PATH } from '../support/e2e.js';

test('the built function starts with a node shebang and is executable by its owner, group and others', async (t) => {
  const firstLine = (await readFile(FUNCTION_PATH, 'utf8')).split('\n', 1)[0];
  t.is(firstLine, '#!/usr/bin/env node');
  await t.notThrowsAsync(access(FUNCTION_PATH, constants.X_OK));
  t.is((await stat(FUNCTION_PATH)).mode & 0o111, 0o111);
});

test('function/inject-git-cache --help runs directly (no TypeScript loader) and prints its usage on stdout', async (t) => {
  const outcome = await execa(FUNCTION_PATH, ['--help'], { reject: false });
  t.is(outcome.exitCode, 0, outcome.stderr);
  t.regex(outcome.stdout, /^inject-git-cache \d+\.\d+\.\d+/);
  t.regex(outcome.stdout, /Usage:/);
  t.regex(outcome.stdout, /--config FILE/);
  t.is(outcome.stderr, '');
});

test('the built function is one self-contained file: it runs from a copy outside the repository', async (t) => {
  const { mkdtemp, copyFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'git-cache-fn-copy-'));
  try {
    const copy = join(dir, 'inject-git-cache');
    await copyFile(FUNCTION_PATH, copy);
    await execa('chmod', ['+x', copy]);
    const outcome = await execa(copy, ['--version'], { reject: false, cwd: dir });
    t.is(outcome.exitCode, 0, outcome.stderr);
    t.regex(outcome.stdout, /^\d+\.\d+\.\d+\n?$/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
