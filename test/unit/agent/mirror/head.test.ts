/**
 * Reading upstream's HEAD from `git ls-remote --symref` and deciding when to ask (src/agent/mirror/head.ts).
 */
import test from 'ava';
import { HEAD_CHECK_INTERVAL_MS, headCheckDue, parseSymrefHead } from '../../../../src/agent/mirror/head.js';

const SHA = 'a'.repeat(40);

test('the branch upstream HEAD points to is read from ls-remote --symref output', (t) => {
  t.is(parseSymrefHead(`ref: refs/heads/trunk\tHEAD\n${SHA}\tHEAD\n`), 'refs/heads/trunk');
  t.is(parseSymrefHead(`ref: refs/heads/release/2.x\tHEAD\n${SHA}\tHEAD`), 'refs/heads/release/2.x');
});

test('a detached, absent or odd upstream HEAD names no branch', (t) => {
  t.is(parseSymrefHead(`${SHA}\tHEAD\n`), undefined);
  t.is(parseSymrefHead(''), undefined);
  t.is(parseSymrefHead(`ref: refs/tags/v1\tHEAD\n`), undefined);
  t.is(parseSymrefHead(`ref: refs/heads/a..b\tHEAD\n`), undefined);
  t.is(parseSymrefHead(`ref: refs/heads/x y\tHEAD\n`), undefined);
  t.is(parseSymrefHead(`ref: refs/heads/main\trefs/remotes/origin/HEAD\n`), undefined);
});

test('HEAD is checked at once when it dangles, else at most once per interval', (t) => {
  const now = 10 * HEAD_CHECK_INTERVAL_MS;
  t.true(headCheckDue(now, now - 1, true));
  t.false(headCheckDue(now, now - 1, false));
  t.false(headCheckDue(now, now - HEAD_CHECK_INTERVAL_MS + 1, false));
  t.true(headCheckDue(now, now - HEAD_CHECK_INTERVAL_MS, false));
  t.true(headCheckDue(now, undefined, false), 'a marker from an older agent');
  t.true(headCheckDue(now, now, false, 0));
});
