/**
 * When the next refresh of a repo happens: the interval with jitter after success (so agents started together
 * do not hit the upstream in lock step), exponential backoff after failures, capped.
 */

export interface ScheduleOptions {
  readonly intervalMs: number;
  /** Fraction of the interval added or removed at random, e.g. 0.1 = ±10%. */
  readonly jitter: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

export function defaultSchedule(intervalMs: number): ScheduleOptions {
  return {
    intervalMs,
    jitter: 0.1,
    backoffBaseMs: Math.min(5_000, intervalMs),
    backoffMaxMs: Math.max(intervalMs, 5 * 60_000),
  };
}

/** `random` in [0, 1). Result in [interval·(1−jitter), interval·(1+jitter)]. */
export function jittered(intervalMs: number, jitter: number, random: number): number {
  const spread = intervalMs * jitter;
  return Math.max(0, Math.round(intervalMs - spread + 2 * spread * random));
}

/**
 * Delay after `failures` consecutive failures (≥ 1): base·2^(failures−1), capped at max, with "equal jitter"
 * (half fixed, half random) so the delay still grows but retries spread out.
 */
export function backoffDelay(failures: number, baseMs: number, maxMs: number, random: number): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const capped = Math.min(maxMs, baseMs * 2 ** exponent);
  return Math.round(capped / 2 + (capped / 2) * random);
}

export function nextDelay(options: ScheduleOptions, consecutiveFailures: number, random: number = Math.random()): number {
  return consecutiveFailures === 0
    ? jittered(options.intervalMs, options.jitter, random)
    : backoffDelay(consecutiveFailures, options.backoffBaseMs, options.backoffMaxMs, random);
}
