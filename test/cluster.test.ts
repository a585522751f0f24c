/**
 * Cluster mode (issue 10): two brokers and workers as child processes on loopback,
 * sharing a fresh PostgreSQL database and Redis (under a key prefix of this run).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import { spawnPlatform, spawnWorker, registerUser, type ChildPlatform, type ChildWorker } from './helpers/platform.ts';
import { createTestDatabase, redisUrl, uniquePrefix, type TestDatabase } from './helpers/services.ts';
import { Device, type Event } from './helpers/mqtt.ts';
import { Redis } from 'ioredis';

describe('cluster: two brokers and a worker on Redis and PostgreSQL', () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let brokerA: ChildPlatform;
  let brokerB: ChildPlatform;
  const workers: ChildWorker[] = [];
  const devices: Device[] = [];
  const tag = randomBytes(3).toString('hex');
  const name = (n: string) => `${n}_${tag}`;
  let prefix: string;

  async function login(url: string, user: string): Promise<string> {
    const r = await fetch(`${url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password: 'correct-horse-battery' }) });
    return ((await r.json()) as { token: string }).token;
  }
  async function connect(broker: ChildPlatform, user: string): Promise<Device> {
    const d = await Device.connect(broker.mqttUrl, user, await login(broker.httpUrl, user));
    devices.push(d);
    return d;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = uniquePrefix('cluster');
    env = { DATABASE_URL: db.url, REDIS_URL: redisUrl, REDIS_PREFIX: prefix, JWT_SECRET: `cluster-test-secret-${'x'.repeat(32)}` };
    brokerA = await spawnPlatform({ env, args: ['--role', 'broker'] });
    brokerB = await spawnPlatform({ env, args: ['--role', 'broker'] });
    workers.push(await spawnWorker(env));
    for (const u of ['ann', 'bob', 'cat', 'dan', 'eve']) await registerUser(brokerA.httpUrl, name(u));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await Promise.all(workers.map((w) => w.kill()));
    await brokerA?.dispose();
    await brokerB?.dispose();
    await db?.drop();
    const r = new Redis(redisUrl);
    const keys = await r.keys(`${prefix}*`);
    if (keys.length) await r.del(...keys);
    await r.quit();
  });

  it('lets a user on broker A chat with a user on broker B', async () => {
    const ann = await connect(brokerA, name('ann'));
    const bob = await connect(brokerB, name('bob'));
    const ack = await ann.send({ to: name('bob') }, { text: 'across' });
    const got = await bob.waitFor((e) => e.type === 'msg' && e.conv === ack.conv);
    expect(got).toMatchObject({ from: name('ann'), body: { text: 'across' }, seq: 1 });
    await bob.send({ to: name('ann') }, { text: 'back' });
    await ann.waitFor((e) => e.type === 'msg' && e.conv === ack.conv && e.seq === 2);
  });

  it('delivers a group with members on both brokers', async () => {
    const cat = await connect(brokerA, name('cat'));
    const dan = await connect(brokerB, name('dan'));
    const eve = await connect(brokerB, name('eve'));
    const { conv } = (await cat.rpc('group.create', { name: 'spread', members: [name('dan'), name('eve')] })) as { conv: string };
    await dan.send({ conv }, { text: 'from B' });
    await cat.send({ conv }, { text: 'from A' });
    for (const d of [cat, dan, eve]) {
      await d.waitFor((e) => e.type === 'msg' && e.conv === conv && e.seq === 3);
      expect(d.messages(conv).map((m) => m.seq)).toEqual([2, 3]);
    }
  });
});
