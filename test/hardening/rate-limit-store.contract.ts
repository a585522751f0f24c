/**
 * The RateLimitStore contract (broker/rate-limit.ts): one suite, run against every
 * implementation (rate-limit-store.test.ts: memory and Redis), on a fake clock.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { FakeClock } from '../../core/clock.ts';
import type { RateLimitStore } from '../../broker/rate-limit.ts';

export function rateLimitStoreContract(name: string, factory: (clock: FakeClock) => Promise<RateLimitStore>): void {
  describe(`RateLimitStore contract: ${name}`, () => {
    let clock: FakeClock;
    let store: RateLimitStore;
    beforeEach(async () => {
      clock = new FakeClock();
      store = await factory(clock);
    });
    afterEach(async () => store.close());

    const msgs = { rate: 2, burst: 3 };

    it('token bucket: burst, then refusal with the exact wait, then refill', async () => {
      const take = () => store.take([{ key: 'b', limit: msgs, cost: 1 }]);
      expect((await take()).allowed).toBe(true);
      expect((await take()).allowed).toBe(true);
      expect((await take()).allowed).toBe(true);
      expect(await take()).toEqual({ allowed: false, retryAfterMs: 500 });
      clock.advance(499);
      expect((await take()).allowed).toBe(false);
      clock.advance(1);
      expect(await take()).toEqual({ allowed: true, retryAfterMs: 0 });
      clock.advance(60_000);
      for (let i = 0; i < 3; i++) expect((await take()).allowed).toBe(true);
      expect((await take()).allowed).toBe(false);
    });

    it('fractional refill is exact across calls', async () => {
      const limit = { rate: 3, burst: 1 };
      expect((await store.take([{ key: 'f', limit, cost: 1 }])).allowed).toBe(true);
      expect(await store.take([{ key: 'f', limit, cost: 1 }])).toEqual({ allowed: false, retryAfterMs: 334 });
      clock.advance(333);
      expect(await store.take([{ key: 'f', limit, cost: 1 }])).toEqual({ allowed: false, retryAfterMs: 1 });
      clock.advance(1);
      expect((await store.take([{ key: 'f', limit, cost: 1 }])).allowed).toBe(true);
    });

    it('several buckets: all or nothing, the longest wait, a refusal costs nothing', async () => {
      const bytes = { rate: 100, burst: 1000 };
      expect((await store.take([{ key: 'm', limit: msgs, cost: 1 }, { key: 'y', limit: bytes, cost: 900 }])).allowed).toBe(true);
      expect(await store.take([{ key: 'm', limit: msgs, cost: 1 }, { key: 'y', limit: bytes, cost: 300 }])).toEqual({ allowed: false, retryAfterMs: 2000 });
      // Neither was charged: 2 messages and 100 bytes are still there.
      expect((await store.take([{ key: 'm', limit: msgs, cost: 2 }, { key: 'y', limit: bytes, cost: 100 }])).allowed).toBe(true);
      expect((await store.take([{ key: 'm', limit: msgs, cost: 1 }])).allowed).toBe(false);
    });

    it('rate 0 is unlimited; a cost above the burst is charged as the burst', async () => {
      for (let i = 0; i < 20; i++) expect((await store.take([{ key: 'u', limit: { rate: 0, burst: 1 }, cost: 5 }])).allowed).toBe(true);
      expect((await store.take([{ key: 'c', limit: { rate: 10, burst: 10 }, cost: 1000 }])).allowed).toBe(true);
      expect(await store.take([{ key: 'c', limit: { rate: 10, burst: 10 }, cost: 1 }])).toEqual({ allowed: false, retryAfterMs: 100 });
    });

    it('keys are independent', async () => {
      expect((await store.take([{ key: 'k1', limit: { rate: 1, burst: 1 }, cost: 1 }])).allowed).toBe(true);
      expect((await store.take([{ key: 'k2', limit: { rate: 1, burst: 1 }, cost: 1 }])).allowed).toBe(true);
      expect((await store.take([{ key: 'k1', limit: { rate: 1, burst: 1 }, cost: 1 }])).allowed).toBe(false);
    });

    it('fixed window counter: counts from the first hit and starts again when the window ends', async () => {
      expect(await store.hit('w', 1000)).toEqual({ count: 1, resetInMs: 1000 });
      clock.advance(400);
      expect(await store.hit('w', 1000)).toEqual({ count: 2, resetInMs: 600 });
      clock.advance(599);
      expect(await store.hit('w', 1000)).toEqual({ count: 3, resetInMs: 1 });
      clock.advance(1);
      expect(await store.hit('w', 1000)).toEqual({ count: 1, resetInMs: 1000 });
    });

    it('blocks: until the time, never shortened, 0 when over or absent', async () => {
      expect(await store.blockedFor('x')).toBe(0);
      await store.block('x', 1000);
      expect(await store.blockedFor('x')).toBe(1000);
      await store.block('x', 200); // shorter: no effect
      clock.advance(300);
      expect(await store.blockedFor('x')).toBe(700);
      await store.block('x', 5000); // longer: extends
      expect(await store.blockedFor('x')).toBe(5000);
      clock.advance(5000);
      expect(await store.blockedFor('x')).toBe(0);
      await store.block('z', 0);
      expect(await store.blockedFor('z')).toBe(0);
    });

    it('reset forgets buckets, counters and blocks', async () => {
      await store.take([{ key: 'r1', limit: { rate: 1, burst: 1 }, cost: 1 }]);
      await store.hit('r2', 10_000);
      await store.hit('r2', 10_000);
      await store.block('r3', 10_000);
      await store.reset('r1', 'r2', 'r3');
      expect((await store.take([{ key: 'r1', limit: { rate: 1, burst: 1 }, cost: 1 }])).allowed).toBe(true);
      expect((await store.hit('r2', 10_000)).count).toBe(1);
      expect(await store.blockedFor('r3')).toBe(0);
    });

    it('is atomic under concurrent takes: exactly the burst gets through', async () => {
      const results = await Promise.all(Array.from({ length: 50 }, () => store.take([{ key: 'race', limit: { rate: 1, burst: 10 }, cost: 1 }])));
      expect(results.filter((r) => r.allowed)).toHaveLength(10);
      const hits = await Promise.all(Array.from({ length: 20 }, () => store.hit('race-w', 10_000)));
      expect(hits.map((h) => h.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    });
  });
}
