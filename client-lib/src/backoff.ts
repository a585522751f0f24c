/**
 * Reconnect delays: exponential growth with jitter, as a pure function.
 *
 * "Equal jitter": half of the exponential delay is fixed, the other half random. The fixed
 * half keeps a minimum spacing between attempts; the random half spreads the reconnect
 * storm of thousands of clients after a broker restart.
 */

export interface BackoffOptions {
  /** Delay before the first retry (ms). */
  initialMs: number;
  /** Upper bound of any delay (ms). */
  maxMs: number;
  /** Growth per attempt. */
  factor: number;
  /** Fraction of the delay that is random, 0 (none) .. 1 (full jitter). */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 };

/**
 * Delay before retry number `attempt` (0 = first retry after a failure).
 * @param random a number in [0, 1), injectable for tests.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.floor(attempt));
  const ceiling = Math.min(options.maxMs, options.initialMs * options.factor ** exponent);
  const jitter = Math.min(1, Math.max(0, options.jitter));
  return Math.round(ceiling * (1 - jitter) + ceiling * jitter * random());
}
