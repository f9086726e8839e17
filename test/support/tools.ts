/**
 * External tools the suites need (kustomize, kpt, sshd, nginx, prometheus, ...). A suite asks for its tools
 * with `testWithTools`: when one is missing, the suite's tests are skipped with a printed reason and the
 * install command, except under CI=true, where a missing tool is a failure.
 */
import test, { type TestFn } from 'ava';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TOOLS_BIN = join(REPO_ROOT, '.tools', 'bin');

const EXTRA_DIRS = [TOOLS_BIN, '/usr/sbin', '/sbin', '/usr/local/sbin'];

/** Absolute path of an executable on PATH (or in .tools/bin, /usr/sbin), or undefined. */
export function findTool(name: string): string | undefined {
  const dirs = [...EXTRA_DIRS, ...(process.env.PATH ?? '').split(delimiter)];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export const INSTALL_HINT = 'install the test tools with: bash scripts/install-test-tools.sh';

/**
 * `test` when every tool is present; otherwise `test.skip` (with the reason printed), or under CI=true a
 * failing test named after the missing tools.
 */
export function testWithTools(tools: readonly string[], hint: string = INSTALL_HINT): TestFn {
  const missing = tools.filter((tool) => findTool(tool) === undefined);
  if (missing.length === 0) return test;
  const reason = `missing test tool(s): ${missing.join(', ')}; ${hint}`;
  if (process.env.CI === 'true') {
    test(`required test tools are installed (${missing.join(', ')})`, (t) => {
      t.fail(reason);
    });
  } else {
    console.error(`[skip] ${reason}`);
  }
  return skippedSuite();
}

const HOOKS = new Set(['before', 'after', 'beforeEach', 'afterEach']);

/**
 * A stand-in for `test` whose tests are all skipped and whose hooks never run (they would need the missing
 * tool), whatever modifier a suite uses: `.serial`, `.failing`, `.only`, `.before`, `.after.always`, ...
 */
function skippedSuite(): TestFn {
  const skip = (...args: unknown[]): void => {
    (test.skip as unknown as (...a: unknown[]) => void)(...args);
  };
  const hook: object = new Proxy(() => undefined, { get: () => hook });
  const suite: object = new Proxy(skip, { get: (_target, property) => (typeof property === 'string' && HOOKS.has(property) ? hook : suite) });
  return suite as TestFn;
}
