/**
 * `wait` polls many times over minutes: each poll must not leave a listener on the stop signal behind (Node
 * warns past 10, in the middle of the JSON log), and a stop or the deadline ends it with a clear message.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../../../../src/agent/cli.js';
import { createLogger } from '../../../../src/agent/log.js';
import { WaitTimeoutError, waitForMirrors } from '../../../../src/agent/mirror/wait.js';

function options(cacheDir: string, timeout: string) {
  const parsed = parseArgs(['wait', '--cache-dir', cacheDir, '--timeout', timeout, '--repo', 'https://git.example.com/org/app.git'], {});
  if (parsed.kind !== 'run') throw new Error(`unexpected ${parsed.kind}`);
  return parsed.options;
}

test('waiting over many polls adds no listeners to the stop signal and times out naming the missing mirror', async (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'gc-wait-'));
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  try {
    const stop = new AbortController();
    const error = await t.throwsAsync(waitForMirrors(options(cache, '300ms'), createLogger('error', () => undefined), stop.signal, 5), { instanceOf: WaitTimeoutError });
    t.regex(error?.message ?? '', /timed out after 0\.3s waiting for mirrors: app \(.*: missing\)/);
    await new Promise((resolve) => setImmediate(resolve));
    t.deepEqual(warnings.map((warning) => warning.name), []);
  } finally {
    process.off('warning', onWarning);
    rmSync(cache, { recursive: true, force: true });
  }
});

test('a stop signal ends the wait at once, not at the next poll an hour later', async (t) => {
  t.timeout(20_000);
  const cache = mkdtempSync(join(tmpdir(), 'gc-wait-'));
  try {
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 50);
    await t.throwsAsync(waitForMirrors(options(cache, '2h'), createLogger('error', () => undefined), stop.signal, 3_600_000), { message: /stopped while waiting/ });
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});
