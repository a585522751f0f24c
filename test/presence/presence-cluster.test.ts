/**
 * Presence across two nodes (REDIS_URL set: the Redis presence store, under a key prefix
 * of this run): a user is online while a device is connected on either node, the
 * connection map in Redis says where, and the last device leaving announces offline once.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';
import { createTestDatabase, redisUrl, uniquePrefix, type TestDatabase } from '../helpers/services.ts';
import type { Device } from '../helpers/mqtt.ts';
import { newUser, presenceOf, shareDm, sleep, waitPresence, watch } from './helpers.ts';
import type { Redis } from 'ioredis';
import { connectRedis, deleteKeys } from './redis.ts';

describe('presence over Redis, two nodes', () => {
  let db: TestDatabase;
  let prefix: string;
  let nodeA: TestPlatform;
  let nodeB: TestPlatform;
  let redis: Redis;
  const devices: Device[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = uniquePrefix('presence-cluster');
    redis = await connectRedis();
    const config = { databaseUrl: db.url, redisUrl, redisPrefix: prefix, jwtSecret: `presence-cluster-${'x'.repeat(32)}` };
    nodeA = await startPlatform({ config: { ...config, nodeId: 'node-a' } });
    nodeB = await startPlatform({ config: { ...config, nodeId: 'node-b' } });
  }, 120_000);

  afterAll(async () => {
    for (const d of devices) await d.close();
    await nodeA?.close();
    await nodeB?.close();
    await db?.drop();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('online while a device is on either node; offline once after the last one leaves', async () => {
    const a = await newUser(nodeA, 'alice');
    const b = await newUser(nodeA, 'bob');
    const bob = await b.connect();
    devices.push(bob);
    await shareDm(bob, a.user);
    await watch(bob, a.user);

    const phone = await a.connect('phone'); // on node A
    await waitPresence(bob, a.user, 'online');
    const laptop = await a.connect('laptop', {}, nodeB.mqttUrl);
    await sleep(200);
    // the connection map in Redis (docs/presence.md, "Redis keys")
    const userKey = `${prefix}presence:user:${a.user}`;
    expect(await redis.hgetall(userKey)).toEqual({ 'node-a|phone': '1', 'node-b|laptop': '1' });
    expect(await redis.sismember(`${prefix}presence:online`, a.user)).toBe(1);

    await phone.client.endAsync();
    await sleep(400);
    expect(presenceOf(bob, a.user).map((e) => e.state)).toEqual(['online']);
    await laptop.client.endAsync(); // the last device, on the other node
    const offline = await waitPresence(bob, a.user, 'offline');
    expect(offline).toMatchObject({ devices: 0, last_seen: expect.any(Number) });
    await sleep(300);
    expect(presenceOf(bob, a.user).map((e) => e.state)).toEqual(['online', 'offline']);
    expect(await redis.exists(userKey)).toBe(0);
    expect(Number(await redis.get(`${prefix}presence:seen:${a.user}`))).toBe(offline.last_seen);
  });
});
