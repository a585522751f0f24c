import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startPlatform, registerUser, type TestPlatform } from './helpers/platform.ts';
import { Device, rawConnect, subscribeCodes } from './helpers/mqtt.ts';

describe('MQTT connect and topic ACL over real sockets', () => {
  let p: TestPlatform;
  let alice: { token: string };
  let bob: { token: string };

  beforeAll(async () => {
    p = await startPlatform({ store: 'postgres', config: { mqttAnonymous: true } });
    alice = await registerUser(p.httpUrl, 'alice', 'password-a', 'phone');
    bob = await registerUser(p.httpUrl, 'bob', 'password-b', 'phone');
  });
  afterAll(async () => p?.close());

  it('accepts a token over TCP and over WebSocket', async () => {
    for (const url of [p.mqttUrl, p.wsUrl]) {
      const c = await rawConnect(url, { clientId: 'alice:phone', username: 'alice', password: alice.token });
      expect(c.connected).toBe(true);
      await c.endAsync();
    }
  });

  it.each([
    ['a bad token', { clientId: 'alice:phone', username: 'alice', password: 'not-a-jwt' }],
    ["another user's token (stolen)", { clientId: 'alice:phone', username: 'alice', password: 'BOB' }],
    ['a clientId for another device than the token', { clientId: 'alice:laptop', username: 'alice', password: 'ALICE' }],
    ['a clientId that is not {user}:{device}', { clientId: 'alice', username: 'alice', password: 'ALICE' }],
    ['no credentials in the chat namespaces with a chat clientId', { clientId: 'alice:phone', username: 'bob', password: 'ALICE' }],
  ])('refuses %s with CONNACK not authorized', async (_what, opts) => {
    const password = opts.password === 'BOB' ? bob.token : opts.password === 'ALICE' ? alice.token : opts.password;
    const err = await rawConnect(p.mqttUrl, { ...opts, password }).then(
      (c) => {
        void c.endAsync();
        return undefined;
      },
      (e: Error & { code?: number }) => e,
    );
    expect(err?.code).toBe(5);
  });

  it("refuses a subscription to another user's inbox or device topic with SUBACK 0x80 and keeps the connection", async () => {
    const c = await rawConnect(p.mqttUrl, { clientId: 'alice:phone', username: 'alice', password: alice.token });
    const codes = await subscribeCodes(c, { 'chat/bob/in': { qos: 1 }, 'chat/bob/phone/in': { qos: 1 }, 'chat/alice/in': { qos: 1 }, 'chat/alice/phone/out': { qos: 1 }, '#': { qos: 0 } });
    expect(codes).toEqual([128, 128, 1, 128, 128]);
    await new Promise((r) => setTimeout(r, 100));
    expect(c.connected).toBe(true);
    await c.endAsync();
  });

  it.each(['chat/bob/phone/out', 'chat/bob/in', 'chat/alice/in', 'chat/alice/phone/in', 'group/c_x', 'presence/bob'])(
    'closes the connection of a client publishing on %s, and nothing reaches anyone',
    async (topic) => {
      const bobDev = await Device.connect(p.mqttUrl, 'bob', bob.token, { device: 'phone' });
      await bobDev.client.subscribeAsync('presence/bob');
      const before = bobDev.events.length;
      const c = await rawConnect(p.mqttUrl, { clientId: 'alice:phone', username: 'alice', password: alice.token });
      const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
      c.publish(topic, JSON.stringify({ type: 'msg', conv: 'x', seq: 1, from: 'mallory', body: { text: 'spoof' } }), { qos: 1 });
      await closed;
      await new Promise((r) => setTimeout(r, 200));
      expect(bobDev.events.slice(before).filter((e) => JSON.stringify(e).includes('spoof'))).toEqual([]);
      expect(bobDev.client.connected).toBe(true);
      await bobDev.close();
    },
  );

  it('serves anonymous clients as a plain broker outside the chat namespaces when MQTT_ANONYMOUS=true', async () => {
    const sub = await rawConnect(p.mqttUrl, { clientId: 'sensor-sub' });
    expect(await subscribeCodes(sub, { 'sensors/#': { qos: 1 }, 'chat/alice/in': { qos: 1 } })).toEqual([1, 128]);
    const got = new Promise<string>((resolve) => sub.on('message', (t, m) => resolve(`${t} ${m.toString()}`)));
    const pub = await rawConnect(p.wsUrl, { clientId: 'sensor-pub' });
    await pub.publishAsync('sensors/kitchen', '21.5', { qos: 1 });
    expect(await got).toBe('sensors/kitchen 21.5');
    await sub.endAsync();
    await pub.endAsync();
  });
});

describe('MQTT without anonymous access (the default)', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startPlatform({ store: 'postgres' });
  });
  afterAll(async () => p?.close());

  it('refuses anonymous clients', async () => {
    const err = await rawConnect(p.mqttUrl, { clientId: 'anon' }).then(
      () => undefined,
      (e: Error & { code?: number }) => e,
    );
    expect(err?.code).toBe(5);
  });
});
