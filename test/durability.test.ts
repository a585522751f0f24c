/**
 * DESIGN section 3.1: once the sender has the PUBACK of a send, the message is
 * committed. The platform runs as a child process; SIGKILL lands right after the last
 * PUBACK; after a restart on the same store every acknowledged message is in history
 * with a gap-free seq.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import { spawnPlatform, registerUser, type ChildPlatform } from './helpers/platform.ts';
import { createTestDatabase, type TestDatabase } from './helpers/services.ts';
import { Device, type Event } from './helpers/mqtt.ts';

describe.each(['pglite', 'postgres'] as const)('durable acknowledgement on %s', (store) => {
  let child: ChildPlatform | undefined;
  let database: TestDatabase | undefined;
  afterAll(async () => {
    await child?.dispose();
    await database?.drop();
  });

  it('keeps all 500 acknowledged sends across SIGKILL right after the last PUBACK', async () => {
    if (store === 'postgres') database = await createTestDatabase();
    child = await spawnPlatform({ env: database ? { DATABASE_URL: database.url } : {} });
    const a = await registerUser(child.httpUrl, 'alice');
    await registerUser(child.httpUrl, 'bob');
    const client = await mqtt.connectAsync(child.mqttUrl, { clientId: 'alice:default', username: 'alice', password: a.token, reconnectPeriod: 0 });
    const acked: string[] = [];
    // 500 QoS 1 sends, 50 in flight at a time; a PUBACK resolves each publishAsync.
    for (let i = 0; i < 500; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, k) => {
          const id = `m-${i + k}-${randomUUID().slice(0, 8)}`;
          await client.publishAsync('chat/alice/default/out', JSON.stringify({ type: 'send', id, to: 'bob', body: { n: i + k } }), { qos: 1 });
          acked.push(id);
        }),
      );
    }
    expect(await child.kill('SIGKILL')).toBe(null);
    client.end(true);
    expect(acked.length).toBe(500);

    await child.restart();
    const login = await fetch(`${child.httpUrl}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'bob', password: 'correct-horse-battery' }) });
    const bob = await Device.connect(child.mqttUrl, 'bob', ((await login.json()) as { token: string }).token);
    const convs = (await bob.rpc('conversations')) as { convs: { conv: string; last_seq: number }[] };
    expect(convs.convs.length).toBe(1);
    const conv = convs.convs[0]!.conv;
    const messages: Event[] = [];
    let before: number | undefined;
    for (;;) {
      const h = (await bob.rpc('history', { conv, before, limit: 200 })) as { messages: Event[]; more: boolean };
      messages.unshift(...h.messages);
      if (!h.more) break;
      before = h.messages[0]!.seq as number;
    }
    expect(messages.map((m) => m.seq)).toEqual(Array.from({ length: messages.length }, (_, i) => i + 1));
    const stored = new Set(messages.map((m) => m.id as string));
    expect(acked.filter((id) => !stored.has(id))).toEqual([]);
    await bob.close();
  }, 180_000);
});

describe('process lifecycle', () => {
  let child: ChildPlatform | undefined;
  afterAll(async () => child?.dispose());

  it('stops on SIGTERM with exit 0 and keeps users across a restart on the same DATA_DIR', async () => {
    child = await spawnPlatform();
    await registerUser(child.httpUrl, 'carol', 'carol-password');
    const started = Date.now();
    expect(await child.kill('SIGTERM')).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    await child.restart();
    const r = await fetch(`${child.httpUrl}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'carol', password: 'carol-password' }) });
    expect(r.status).toBe(200);
  }, 120_000);

  it('refuses to start with a bad config value and names the key', async () => {
    const err = await spawnPlatform({ env: { FANOUT_WRITE_MAX: 'lots' } }).then(
      (c) => {
        void c.dispose();
        return '';
      },
      (e: Error) => e.message,
    );
    expect(err).toMatch(/exited with 1/);
    expect(err).toMatch(/fanoutWriteMax \(env FANOUT_WRITE_MAX\)/);
  }, 60_000);
});
