import { describe, it, expect } from 'vitest';
import { FakeClock } from '../../core/clock.ts';
import { TokenBucket, refill, takeAll, msToFull } from '../../broker/rate-limit.ts';
import { loginDelayMs } from '../../broker/login-throttle.ts';
import { Limiter } from '../../broker/limiter.ts';
import { MemoryRateLimitStore } from '../../broker/rate-limit.ts';
import { limitsWith } from '../../config/limits.ts';
import { createLogger } from '../../core/log.ts';
import { Registry } from 'prom-client';
import type { Aedes } from 'aedes';

describe('token bucket (pure, on a fake clock)', () => {
  it('spends its burst, then refuses with the exact wait, and refills at its rate', () => {
    const clock = new FakeClock();
    const b = new TokenBucket({ rate: 2, burst: 3 }, clock);
    expect([b.take(), b.take(), b.take()].map((r) => r.allowed)).toEqual([true, true, true]);
    expect(b.take()).toEqual({ allowed: false, retryAfterMs: 500 });
    clock.advance(499);
    expect(b.take().allowed).toBe(false);
    clock.advance(1);
    expect(b.take()).toEqual({ allowed: true, retryAfterMs: 0 });
    clock.advance(10_000);
    expect(b.available()).toBe(3); // never more than the burst
  });

  it('charges costs (bytes), refuses without charging, and caps a cost above the burst at the burst', () => {
    const clock = new FakeClock();
    const b = new TokenBucket({ rate: 1000, burst: 4000 }, clock);
    expect(b.take(3000).allowed).toBe(true);
    expect(b.take(2000)).toEqual({ allowed: false, retryAfterMs: 1000 });
    expect(b.available()).toBe(1000); // the refusal cost nothing
    clock.advance(3000);
    expect(b.take(1_000_000).allowed).toBe(true); // charged as 4000
    expect(b.available()).toBe(0);
  });

  it('is unlimited at rate 0', () => {
    const b = new TokenBucket({ rate: 0, burst: 1 }, new FakeClock());
    for (let i = 0; i < 100; i++) expect(b.take(1e9).allowed).toBe(true);
  });

  it('takes from several buckets all or nothing, waiting for the slowest', () => {
    const now = 1_000;
    const limits = [{ rate: 1, burst: 1 }, { rate: 10, burst: 100 }];
    const first = takeAll([undefined, undefined], [{ limit: limits[0]!, cost: 1 }, { limit: limits[1]!, cost: 50 }], now);
    expect(first.result.allowed).toBe(true);
    const second = takeAll(first.states, [{ limit: limits[0]!, cost: 1 }, { limit: limits[1]!, cost: 60 }], now);
    expect(second.result).toEqual({ allowed: false, retryAfterMs: 1000 }); // 1 s for the first, 1 s for 10 bytes
    expect(second.states.map((s) => s.tokens)).toEqual([0, 50]); // nothing charged
  });

  it('adds nothing when time runs backwards (clock skew between brokers)', () => {
    const s = refill({ tokens: 1, at: 10_000 }, { rate: 5, burst: 10 }, 9_000);
    expect(s).toEqual({ tokens: 1, at: 10_000 });
    expect(msToFull({ tokens: 5, at: 0 }, { rate: 5, burst: 10 })).toBe(1000);
  });
});

describe('login delay', () => {
  it('is free up to the free failures, then doubles up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map((n) => loginDelayMs(n, 3, 1000, 5000))).toEqual([0, 0, 0, 1000, 2000, 4000, 5000, 5000]);
    expect(loginDelayMs(100, 3, 0, 5000)).toBe(0);
  });
});

describe('default limits', () => {
  it('admit the heaviest existing workloads with no time passing: 8 devices x 500 messages (test/messaging), 1 device x 1001 (client-lib)', async () => {
    const clock = new FakeClock();
    const registry = new Registry();
    const limiter = new Limiter({ limits: limitsWith({}), clock, store: new MemoryRateLimitStore(clock), registry, audit: () => {}, log: createLogger('silent') });
    // Stand-ins for the aedes clients, so that the per-connection buckets count too.
    const clients = Object.fromEntries(Array.from({ length: 8 }, (_, u) => [`u${u}:d`, { id: `u${u}:d`, conn: {} }]));
    limiter.attach({ clients } as unknown as Aedes);
    for (let u = 0; u < 8; u++) {
      for (let i = 0; i < 500; i++) await limiter.admit({ user: `u${u}`, device: 'd' }, 'send', 200);
    }
    for (let i = 0; i < 300; i++) await limiter.admit({ user: 'u0', device: 'd' }, 'rpc', 100);
    for (let i = 0; i < 1001; i++) await limiter.admit({ user: 'u1', device: 'd' }, 'send', 200); // 1501 from u1:d in all
    for (let i = 0; i < 1001; i++) await limiter.admit({ user: 'u9', device: 'x' }, 'send', 200); // no aedes client: per user only
  });
});
