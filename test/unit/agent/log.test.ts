import test from 'ava';
import { createLogger, isProgressLine, progressThrottle, scrub } from '../../../src/agent/log.js';

test('scrub removes userinfo of http(s) URLs anywhere in git output', (t) => {
  t.is(scrub("fatal: unable to access 'https://user:s3cret@host/r.git/': 403"), "fatal: unable to access 'https://***@host/r.git/': 403");
  t.is(scrub('remote http://token@host/x'), 'remote http://***@host/x');
  t.is(scrub('ssh://git@host/r.git keeps its user'), 'ssh://git@host/r.git keeps its user');
  t.is(scrub('ssh://u:pw@host/r.git'), 'ssh://***@host/r.git');
  t.is(scrub('git@github.com:org/repo.git'), 'git@github.com:org/repo.git');
});

test('scrub removes known secret values, and a logger never prints an added secret', (t) => {
  t.is(scrub('the password is hunter22!', ['hunter22!']), 'the password is ***');
  const lines: string[] = [];
  const logger = createLogger('debug', (line) => lines.push(line));
  logger.addSecret('pa55word-xyz\n');
  logger.error('git_failed', { reason: 'server said pa55word-xyz is wrong', list: ['x pa55word-xyz'] });
  t.is(lines.length, 1);
  t.false(lines[0]?.includes('pa55word-xyz'));
  const record = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
  t.is(record.level, 'error');
  t.is(record.event, 'git_failed');
  t.is(typeof record.ts, 'string');
});

test('log lines are single-line JSON and levels below the threshold are dropped', (t) => {
  const lines: string[] = [];
  const logger = createLogger('warn', (line) => lines.push(line));
  logger.info('hidden');
  logger.warn('shown', { detail: 'a\nb' });
  t.is(lines.length, 1);
  t.is(lines[0]?.trimEnd().split('\n').length, 1);
});

test('progress lines are recognised and throttled', (t) => {
  t.true(isProgressLine('Receiving objects:  45% (450/1000), 1.2 MiB | 3 MiB/s'));
  t.true(isProgressLine('remote: Counting objects: 100% (3/3), done.'));
  t.false(isProgressLine('fatal: could not read from remote repository'));
  let now = 0;
  const allow = progressThrottle(1000, () => now);
  t.true(allow('a'));
  now = 500;
  t.false(allow('b'));
  now = 1000;
  t.true(allow('c'));
});
