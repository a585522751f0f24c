/**
 * Redis restarting under a running cluster: brokers and workers reconnect by themselves
 * and nothing acknowledged is lost (the durable record is PostgreSQL). This test runs its
 * own redis-server on an ephemeral port, since restarting the shared one would disturb
 * every other test.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnPlatform, spawnWorker, registerUser, type ChildPlatform, type ChildWorker } from './helpers/platform.ts';
import { createTestDatabase, type TestDatabase } from './helpers/services.ts';
import { Device, type Event } from './helpers/mqtt.ts';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 15_000);
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(t);
        resolve();
      }
    });
    p.once('exit', (code) => reject(new Error(`redis-server exited with ${code}:\n${out}`)));
  });
  return p;
}

describe('cluster: Redis restarts', () => {
  let redis: ChildProcess;
  let port: number;
  let dir: string;
  let db: TestDatabase;
  let broker: ChildPlatform;
  let worker: ChildWorker;
  const devices: Device[] = [];

  beforeAll(async () => {
    port = await freePort();
    dir = await mkdtemp(join(tmpdir(), 'redis-'));
    redis = await startRedis(port, dir);
    db = await createTestDatabase();
    const env = { DATABASE_URL: db.url, REDIS_URL: `redis://127.0.0.1:${port}`, JWT_SECRET: `redis-restart-secret-${'y'.repeat(32)}` };
    broker = await spawnPlatform({ env, args: ['--role', 'broker'] });
    worker = await spawnWorker(env);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await worker?.kill();
    await broker?.dispose();
    redis?.kill('SIGKILL');
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps delivering after Redis goes away and comes back, and loses nothing acknowledged', async () => {
    const a = await registerUser(broker.httpUrl, 'ria');
    const b = await registerUser(broker.httpUrl, 'rob');
    const ria = await Device.connect(broker.mqttUrl, 'ria', a.token);
    const rob = await Device.connect(broker.mqttUrl, 'rob', b.token);
    devices.push(ria, rob);
    const first = await ria.send({ to: 'rob' }, { n: 0 });
    await rob.waitFor((e) => e.type === 'msg' && e.seq === 1);

    redis.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1_000));
    redis = await startRedis(port, dir);

    // Acknowledged sends after the restart; delivery resumes once everything reconnected.
    const acked: number[] = [];
    for (let n = 1; n <= 5; n++) {
      for (let attempt = 0; ; attempt++) {
        try {
          acked.push((await ria.send({ to: 'rob' }, { n }, { id: `after-${n}` })).seq as number);
          break;
        } catch (err) {
          if (attempt > 20) throw err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    }
    // The connections of ria and rob survived (the broker kept them); if a live push was
    // lost while Redis was down, sync has it: nothing acknowledged is missing.
    const seen = new Set<number>(rob.messages(first.conv as string).map((m) => m.seq as number));
    const synced = (await rob.rpc('sync', { convs: { [first.conv as string]: 0 } })) as { convs: { messages: Event[] }[] };
    for (const m of synced.convs[0]?.messages ?? []) seen.add(m.seq as number);
    for (const seq of acked) expect(seen.has(seq)).toBe(true);
    // And live delivery works again end to end.
    const live = await ria.send({ to: 'rob' }, { n: 'live' });
    await rob.waitFor((e) => e.type === 'msg' && e.seq === live.seq, 30_000, 'live delivery after the restart');
  }, 120_000);
});
