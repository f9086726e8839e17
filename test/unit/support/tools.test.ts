/**
 * The test-tool gate: a suite whose tool is missing is skipped with every modifier it may use (hooks do not
 * run), and under CI=true the missing tool is a failing test. Checked in child ava runs, since ava's own
 * verdicts are the thing under test.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../support/tools.js';

const SUITE = `import { testWithTools } from '${join(REPO_ROOT, 'test', 'support', 'tools.ts')}';
const suite = testWithTools(['no-such-tool-gc-test']);
suite.before(() => { throw new Error('a hook ran although its tool is missing'); });
suite.after.always(() => { throw new Error('an after hook ran'); });
suite('plain', (t) => t.fail());
suite.serial('serial', (t) => t.fail());
suite.failing('failing', (t) => t.fail());
`;

function runAva(ci: boolean): { status: number | null; output: string } {
  const dir = mkdtempSync(join(REPO_ROOT, 'test', '.gate-'));
  try {
    writeFileSync(join(dir, 'gate.test.ts'), SUITE);
    const run = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), '--tap', join(dir, 'gate.test.ts')], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, CI: ci ? 'true' : 'false' },
      timeout: 120_000,
    });
    return { status: run.status, output: `${run.stdout}\n${run.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('without CI a missing tool skips every test of the suite, runs none of its hooks, and prints the reason with the install command', (t) => {
  const { status, output } = runAva(false);
  t.is(status, 0, output);
  t.regex(output, /# skip 3/);
  t.regex(output, /\[skip\] missing test tool\(s\): no-such-tool-gc-test; install the test tools with: bash scripts\/install-test-tools\.sh/);
  t.notRegex(output, /hook ran/);
});

test('under CI=true a missing tool is a failing test', (t) => {
  const { status, output } = runAva(true);
  t.not(status, 0);
  t.regex(output, /not ok \d+ - .*required test tools are installed \(no-such-tool-gc-test\)/);
});
