/**
 * Structured logs: one JSON object per line on stderr (`ts`, `level`, `event`, optional `repo`, fields).
 * Everything that may carry text from git or from a user passes through `scrub` first, so URL userinfo and
 * known secret values never reach a log line.
 */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, string | number | boolean | undefined | null | readonly string[]>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** Adds a value (a password read from a Secret) that is replaced by `***` wherever it appears. */
  addSecret(value: string): void;
}

const REDACTED = '***';

/**
 * Removes `user:password@` / `token@` from any URL in the text (git prints the remote URL in many messages),
 * and every known secret value. ssh `user@host` forms carry no secret and are kept.
 */
export function scrub(text: string, secrets: Iterable<string> = []): string {
  let out = text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^/\s@]*)@/gi, (match, scheme: string, userinfo: string) =>
    /^ssh:\/\/$/i.test(scheme) && !userinfo.includes(':') ? match : `${scheme}${REDACTED}@`,
  );
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join(REDACTED);
  }
  return out;
}

function scrubFields(fields: LogFields, secrets: Iterable<string>): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === 'string') out[key] = scrub(value, secrets);
    else if (Array.isArray(value)) out[key] = value.map((v: string) => scrub(v, secrets));
    else out[key] = value as LogFields[string];
  }
  return out;
}

export function createLogger(level: LogLevel = 'info', write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const secrets = new Set<string>();
  const emit = (lvl: LogLevel, event: string, fields: LogFields = {}): void => {
    if (LOG_LEVELS.indexOf(lvl) < threshold) return;
    const record = { ts: new Date().toISOString(), level: lvl, event, ...scrubFields(fields, secrets) };
    write(`${JSON.stringify(record)}\n`);
  };
  return {
    debug: (event, fields) => emit('debug', event, fields),
    info: (event, fields) => emit('info', event, fields),
    warn: (event, fields) => emit('warn', event, fields),
    error: (event, fields) => emit('error', event, fields),
    addSecret: (value) => {
      const trimmed = value.replace(/\r?\n$/, '');
      if (trimmed.length > 0) secrets.add(trimmed);
    },
  };
}

/**
 * Git's progress output (`Receiving objects:  45% (450/1000)\r`) as log events: at most one line per
 * `intervalMs`, so a long clone is visible without flooding the log.
 */
export function progressThrottle(intervalMs: number, now: () => number = Date.now): (line: string) => boolean {
  let last = -Infinity;
  return (_line: string) => {
    const t = now();
    if (t - last < intervalMs) return false;
    last = t;
    return true;
  };
}

/** Lines that git prints as progress (they end with `\r` in a terminal and repeat with growing numbers). */
export function isProgressLine(line: string): boolean {
  return /^(?:remote: )?(?:Counting|Compressing|Enumerating|Receiving|Resolving|Writing|Total|Checking connectivity|Updating files|Unpacking)\b/.test(line.trim());
}
