import { describe, it, expect, afterAll } from 'vitest';
import { Redis } from 'ioredis';
import { MemoryRateLimitStore } from '../../broker/rate-limit.ts';
import { RedisRateLimitStore } from '../../broker/rate-limit-redis.ts';
import { Limiter } from '../../broker/limiter.ts';
import { FakeClock } from '../../core/clock.ts';
import { createLogger } from '../../core/log.ts';
import { limitsWith } from '../../config/limits.ts';
import { Registry } from 'prom-client';
import { redisUrl, uniquePrefix } from '../helpers/services.ts';
import { rateLimitStoreContract } from './rate-limit-store.contract.ts';

const prefixes: string[] = [];
async function cleanup(): Promise<void> {
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  for (const p of prefixes) {
    const keys = await r.keys(`${p}*`);
    if (keys.length) await r.del(...keys);
  }
  await r.quit();
}
afterAll(cleanup);

function redisStore(clock: FakeClock, prefix = uniquePrefix('rl')): RedisRateLimitStore {
  prefixes.push(prefix);
  return new RedisRateLimitStore({ url: redisUrl, prefix, clock });
}

rateLimitStoreContract('memory', async (clock) => new MemoryRateLimitStore(clock));
rateLimitStoreContract('redis', async (clock) => {
  const store = redisStore(clock);
  // A missing Redis fails here, never skips.
  await store.blockedFor('ping');
  return store;
});

describe('per-user limits across brokers (Redis)', () => {
  it('two brokers sharing one Redis share each user\'s budget', async () => {
    const clock = new FakeClock();
    const prefix = uniquePrefix('rl-shared');
    const limits = limitsWith({ user: { messages: { rate: 1, burst: 4 } } });
    const stores = [redisStore(clock, prefix), redisStore(clock, prefix)];
    const brokers = stores.map((store) => new Limiter({ limits, clock, store, registry: new Registry(), audit: () => {}, log: createLogger('silent') }));
    const who = { user: 'alice', device: 'phone' };
    await brokers[0]!.admit(who, 'send', 10);
    await brokers[1]!.admit({ ...who, device: 'laptop' }, 'send', 10);
    await brokers[0]!.admit(who, 'send', 10);
    await brokers[1]!.admit(who, 'send', 10);
    const refused = await brokers[0]!.admit(who, 'send', 10).then(() => undefined, (e: unknown) => e);
    expect(refused).toMatchObject({ code: 'rate_limited', details: { retryAfterMs: 1000 } });
    // Another user is not affected.
    await brokers[1]!.admit({ user: 'bob', device: 'phone' }, 'send', 10);
    clock.advance(1000);
    await brokers[1]!.admit(who, 'send', 10);
    for (const s of stores) await s.close();
  });
});
