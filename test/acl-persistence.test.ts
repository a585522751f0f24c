/**
 * A denied topic in a SUBSCRIBE that also carries an allowed one must not reach the
 * client's persistent session: aedes 1.2.0 stores every topic of the packet when any one
 * is granted, and queues QoS 1 messages for offline sessions from what it stored.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startPlatform, registerUser, type TestPlatform } from './helpers/platform.ts';
import { Device, rawConnect, subscribeCodes } from './helpers/mqtt.ts';

describe('persistent sessions keep only granted subscriptions', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    // The store is not the point here: PostgreSQL starts in well under a second, PGlite in seconds.
    p = await startPlatform({ store: 'postgres' });
  });
  afterAll(async () => p?.close());

  it("does not queue another user's inbox for an offline session that asked for it", async () => {
    const mallory = await registerUser(p.httpUrl, 'mallory');
    const bob = await registerUser(p.httpUrl, 'bob');
    const alice = await registerUser(p.httpUrl, 'alice');
    const opts = { clientId: 'mallory:default', username: 'mallory', password: mallory.token, clean: false };
    const m1 = await rawConnect(p.mqttUrl, opts);
    expect(await subscribeCodes(m1, { 'chat/mallory/in': { qos: 1 }, 'chat/bob/in': { qos: 1 } })).toEqual([1, 128]);
    await m1.endAsync();
    // Bob gets a message while mallory's session is offline.
    const a = await Device.connect(p.mqttUrl, 'alice', alice.token);
    const b = await Device.connect(p.mqttUrl, 'bob', bob.token);
    await a.send({ to: 'bob' }, { text: 'for bob only' });
    await b.waitFor((e) => e.type === 'msg');
    const m2 = await rawConnect(p.mqttUrl, opts);
    const leaked: string[] = [];
    m2.on('message', (topic, payload) => leaked.push(`${topic} ${payload.toString()}`));
    await new Promise((r) => setTimeout(r, 500));
    expect(leaked.filter((l) => l.includes('for bob only'))).toEqual([]);
    await m2.endAsync();
    await a.close();
    await b.close();
  });
});
