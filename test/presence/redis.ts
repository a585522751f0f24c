/** Redis for the presence tests: a fresh connection, and removal of a test's key prefix. */
import { Redis } from 'ioredis';
import { redisUrl } from '../helpers/services.ts';

/** A connection that fails at once (a missing Redis fails the test, it never skips). */
export async function connectRedis(): Promise<Redis> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await redis.connect();
  } catch (err) {
    throw new Error(`Redis is required for this test and is not reachable at ${redisUrl}: ${(err as Error).message}`);
  }
  return redis;
}

export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}
