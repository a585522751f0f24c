import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_BACKOFF } from '../../src/backoff.ts';

describe('backoffDelay', () => {
  const options = { initialMs: 100, maxMs: 5_000, factor: 2, jitter: 0.5 };

  it('grows exponentially up to the cap', () => {
    const upper = [0, 1, 2, 3, 4, 5, 6, 10].map((attempt) => backoffDelay(attempt, options, () => 0.999999));
    expect(upper).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });

  it('keeps half of the delay fixed and randomises the other half', () => {
    expect(backoffDelay(3, options, () => 0)).toBe(400);
    expect(backoffDelay(3, options, () => 0.5)).toBe(600);
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(3, options);
      expect(delay).toBeGreaterThanOrEqual(400);
      expect(delay).toBeLessThanOrEqual(800);
    }
  });

  it('spreads clients that fail at the same moment', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(5, DEFAULT_BACKOFF)));
    expect(delays.size).toBeGreaterThan(10);
  });

  it('without jitter is deterministic; negative attempts count as the first', () => {
    const fixed = { ...options, jitter: 0 };
    expect(backoffDelay(2, fixed, () => 0.7)).toBe(400);
    expect(backoffDelay(-3, fixed)).toBe(100);
  });
});
