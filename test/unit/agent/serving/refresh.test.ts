// The refresh queue between the HTTP side and the serve loops (src/agent/serving/refresh.ts), and the agent's
// refresh flags.
import test from 'ava';
import { parseArgs } from '../../../../src/agent/cli.js';
import { RefreshQueue, type RefreshAnswer } from '../../../../src/agent/serving/refresh.js';

const limits = { minIntervalMs: 1000, maxWaitersPerRepo: 2, maxWaiters: 3 };

test('requests wake their repo, wait for the sync that takes them, and are bounded per repo and in all', async (t) => {
  const woken: string[] = [];
  const queue = new RefreshQueue(limits, (key) => woken.push(key));
  const a1 = queue.request('a');
  const a2 = queue.request('a');
  t.is(queue.request('a'), 'busy', 'two per repo');
  const b1 = queue.request('b');
  t.is(queue.request('c'), 'busy', 'three in all');
  t.deepEqual(woken, ['a', 'a', 'b']);
  t.true(queue.hasWaiters('a'));
  const taken = queue.take('a');
  t.is(taken.length, 2);
  t.false(queue.hasWaiters('a'));
  t.not(queue.request('a'), 'busy', 'taken requests free their places');
  const answer: RefreshAnswer = { kind: 'stopped' };
  RefreshQueue.answer(taken, answer);
  t.deepEqual(await a1, answer);
  t.deepEqual(await a2, answer);
  queue.stopAll();
  t.deepEqual(await b1, { kind: 'stopped' });
  t.false(queue.hasWaiters('b'));
});

test('--refresh-port, --refresh-address and --refresh-min-interval are serve flags', (t) => {
  const parsed = parseArgs(['serve', '--repo', 'https://h.example/a.git', '--cache-dir', '/c', '--refresh-port', '9902', '--refresh-min-interval', '250ms'], {});
  if (parsed.kind !== 'run') return t.fail(JSON.stringify(parsed));
  t.is(parsed.options.refreshPort, 9902);
  t.is(parsed.options.refreshAddress, '0.0.0.0');
  t.is(parsed.options.refreshLimits.minIntervalMs, 250);
  const sync = parseArgs(['sync', '--repo', 'https://h.example/a.git', '--cache-dir', '/c', '--refresh-port', '9902'], {});
  t.like(sync, { kind: 'usage', message: '--refresh-port applies to serve only' });
  const bad = parseArgs(['serve', '--repo', 'https://h.example/a.git', '--cache-dir', '/c', '--refresh-min-interval', 'soon'], {});
  t.is(bad.kind, 'usage');
});
