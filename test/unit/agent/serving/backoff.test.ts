import test from 'ava';
import fc from 'fast-check';
import { backoffDelay, defaultSchedule, jittered, nextDelay } from '../../../../src/agent/serving/backoff.js';

test('jitter stays within ±jitter of the interval and covers both ends', (t) => {
  t.is(jittered(60_000, 0.1, 0), 54_000);
  t.is(jittered(60_000, 0.1, 0.5), 60_000);
  t.is(jittered(60_000, 0.1, 0.999999), 66_000);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 10_000_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (interval, r) => {
      const d = jittered(interval, 0.1, r);
      return d >= Math.floor(interval * 0.9) && d <= Math.ceil(interval * 1.1);
    }),
  );
});

test('backoff doubles per failure, is capped, and never drops below half its nominal value', (t) => {
  t.is(backoffDelay(1, 1000, 60_000, 1), 1000);
  t.is(backoffDelay(2, 1000, 60_000, 1), 2000);
  t.is(backoffDelay(3, 1000, 60_000, 1), 4000);
  t.is(backoffDelay(3, 1000, 60_000, 0), 2000);
  t.is(backoffDelay(40, 1000, 60_000, 1), 60_000);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0, max: 1, noNaN: true }), (failures, r) => {
      const d = backoffDelay(failures, 5000, 300_000, r);
      const nominal = Math.min(300_000, 5000 * 2 ** Math.min(failures - 1, 30));
      return d >= nominal / 2 - 1 && d <= nominal + 1;
    }),
  );
});

test('nextDelay uses the jittered interval after success and backoff after failures', (t) => {
  const schedule = defaultSchedule(60_000);
  t.is(nextDelay(schedule, 0, 0.5), 60_000);
  t.is(nextDelay(schedule, 1, 1), 5000);
  t.is(nextDelay(schedule, 2, 1), 10_000);
});
