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

  it('loses nothing when broker A is killed while its users send: they reconnect to B and every acknowledged message arrives once', async () => {
    const ann = await connect(brokerA, name('ann'));
    const bob = await connect(brokerB, name('bob'));
    const conv = (await ann.send({ to: name('bob') }, { text: 'before' })).conv as string;
    const acked = new Map<string, number>();
    const ids = Array.from({ length: 120 }, (_, i) => `k-${tag}-${i}`);
    let killed = false;
    // Ten sends in flight; broker A dies after the first 40 acks.
    const sending = (async () => {
      for (let i = 0; i < ids.length; i += 10) {
        await Promise.all(
          ids.slice(i, i + 10).map(async (id) => {
            try {
              const ack = await ann.send({ conv }, { id }, { id });
              acked.set(id, ack.seq as number);
            } catch {
              // in flight when the broker died: resent below with the same id
            }
          }),
        );
        if (!killed && acked.size >= 40) {
          killed = true;
          await brokerA.kill('SIGKILL');
        }
        if (killed) break;
      }
    })();
    await sending;
    await ann.close();
    // The client's outbox: everything not acknowledged is resent, same ids, through B.
    const ann2 = await connect(brokerB, name('ann'));
    for (const id of ids) {
      const ack = await ann2.send({ conv }, { id }, { id });
      if (acked.has(id)) expect(ack.seq).toBe(acked.get(id));
      acked.set(id, ack.seq as number);
    }
    // Bob: live deliveries, deduplicated by seq, then the gaps filled by sync.
    const bySeq = new Map<number, Event>();
    for (const e of bob.messages(conv)) bySeq.set(e.seq as number, e);
    const synced = (await bob.rpc('sync', { convs: { [conv]: 0 }, limit: 1000 })) as { convs: { conv: string; messages: Event[] }[] };
    for (const e of synced.convs.find((c) => c.conv === conv)!.messages) if (!bySeq.has(e.seq as number)) bySeq.set(e.seq as number, e);
    const received = [...bySeq.values()].map((e) => (e.body as { id?: string }).id).filter((x): x is string => x !== undefined);
    expect(received.sort()).toEqual([...ids].sort());
    expect([...bySeq.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: bySeq.size }, (_, i) => i + 1));
    await brokerA.restart();
  }, 120_000);

  it('finishes the jobs of a worker killed mid-delivery on another worker', async () => {
    for (const w of workers.splice(0)) await w.kill();
    const slow = await spawnWorker({ ...env, CHAOS_DELIVERY_DELAY_MS: '1500', DELIVERY_CLAIM_IDLE_MS: '1000' });
    const cat = await connect(brokerA, name('cat'));
    const dan = await connect(brokerB, name('dan'));
    const sent: number[] = [];
    for (let i = 0; i < 6; i++) sent.push((await cat.send({ to: name('dan') }, { n: i })).seq as number);
    await new Promise((r) => setTimeout(r, 700)); // the slow worker has read them and holds them
    await slow.kill('SIGKILL');
    // The dead worker holds jobs it read and never acknowledged: only a reclaim frees them.
    const r = new Redis(redisUrl);
    const pending = (await r.xpending(`${prefix}{deliveries}`, 'workers')) as [number, ...unknown[]];
    await r.quit();
    expect(pending[0]).toBeGreaterThan(0);
    workers.push(await spawnWorker({ ...env, DELIVERY_CLAIM_IDLE_MS: '1000' }));
    const conv = (cat.events.find((e) => e.type === 'ack') as Event).conv;
    for (const seq of sent) await dan.waitFor((e) => e.type === 'msg' && e.conv === conv && e.seq === seq, 20_000, `seq ${seq}`);
  }, 120_000);

  it('moves a job that always fails to the dead letters and replays it once the fault is fixed', async () => {
    for (const w of workers.splice(0)) await w.kill();
    const faulty = await spawnWorker({ ...env, CHAOS_DELIVERY_FAIL_TOPIC: `^chat/${name('eve')}/in$`, DELIVERY_MAX_ATTEMPTS: '2', DELIVERY_BASE_DELAY_MS: '20' });
    const bob = await connect(brokerA, name('bob'));
    const eve = await connect(brokerB, name('eve'));
    const ack = await bob.send({ to: name('eve') }, { text: 'eventually' });
    const listDead = async () => {
      const cli = await import('node:child_process');
      const out = cli.execFileSync(process.execPath, ['--import', 'tsx', 'workers/main.ts', 'dead-letters'], { env: { PATH: process.env.PATH ?? '', ...env, LOG_LEVEL: 'warn' } }).toString();
      return out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; job: { event: Event } });
    };
    let dead: { id: string; job: { event: Event } }[] = [];
    for (let i = 0; i < 40 && !dead.some((d) => d.job.event.seq === ack.seq && d.job.event.conv === ack.conv); i++) {
      await new Promise((r) => setTimeout(r, 250));
      dead = await listDead();
    }
    const letter = dead.find((d) => d.job.event.conv === ack.conv && d.job.event.seq === ack.seq);
    expect(letter).toBeDefined();
    expect(eve.messages(ack.conv as string)).toEqual([]);
    await faulty.kill();
    workers.push(await spawnWorker(env));
    const cli = await import('node:child_process');
    const replayed = cli.execFileSync(process.execPath, ['--import', 'tsx', 'workers/main.ts', 'replay', letter!.id], { env: { PATH: process.env.PATH ?? '', ...env, LOG_LEVEL: 'warn' } }).toString();
    expect(replayed).toContain('replayed');
    const got = await eve.waitFor((e) => e.type === 'msg' && e.conv === ack.conv, 20_000);
    expect(got.body).toEqual({ text: 'eventually' });
  }, 120_000);

  it('closes a revoked device on the broker that holds it, whichever broker took the revocation', async () => {
    const session = await login(brokerB.httpUrl, name('cat'));
    const r = await fetch(`${brokerB.httpUrl}/v1/devices`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${session}` }, body: JSON.stringify({ device: 'sensor' }) });
    const { token } = (await r.json()) as { token: string };
    const sensor = await Device.connect(brokerA.mqttUrl, name('cat'), token, { device: 'sensor' });
    devices.push(sensor);
    const closed = new Promise<void>((resolve) => sensor.client.once('close', () => resolve()));
    const del = await fetch(`${brokerB.httpUrl}/v1/devices/sensor`, { method: 'DELETE', headers: { authorization: `Bearer ${session}` } });
    expect(del.status).toBe(204);
    await closed;
  }, 60_000);
});
