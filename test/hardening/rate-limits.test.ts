import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startPlatform, registerUser, type TestPlatform } from '../helpers/platform.ts';
import { Device, rawConnect, type Event } from '../helpers/mqtt.ts';
import { limitsWith } from '../../config/limits.ts';

const metricsText = async (p: TestPlatform) => (await fetch(`${p.httpUrl}/metrics`)).text();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('rate limits over real sockets', () => {
  let p: TestPlatform;
  const tokens: Record<string, string> = {};
  const open: Device[] = [];
  const connect = async (user: string, device = 'phone') => {
    const d = await Device.connect(p.mqttUrl, user, tokens[`${user}:${device}`]!, { device });
    open.push(d);
    return d;
  };

  beforeAll(async () => {
    p = await startPlatform({
      store: 'postgres',
      config: {
        typingMinIntervalMs: 0,
        // Refill so slow that nothing comes back during a test: the bursts are the budget.
        limits: limitsWith({
          connection: { messages: { rate: 0.01, burst: 5 }, typing: { rate: 0.01, burst: 2 } },
          user: { messages: { rate: 0.01, burst: 8 } },
          flood: { refusals: 20, windowMs: 60_000 },
        }),
      },
    });
    for (const [user, device] of [['alice', 'phone'], ['alice', 'laptop'], ['bob', 'phone'], ['mallory', 'phone'], ['gary', 'phone'], ['tina', 'phone'], ['tom', 'phone']] as const) {
      const r = await fetch(`${p.httpUrl}/v1/auth/${tokens[`${user}:phone`] ? 'login' : 'register'}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user, password: 'correct-horse-battery', device }),
      });
      tokens[`${user}:${device}`] = ((await r.json()) as { token: string }).token;
    }
  });
  afterAll(async () => {
    await Promise.all(open.map((d) => d.close()));
    await p?.close();
  });

  it('answers a sender over its connection limit with rate_limited and retry_after_ms, and stores nothing', async () => {
    const alice = await connect('alice');
    const acks: Event[] = [];
    for (let i = 0; i < 5; i++) acks.push(await alice.send({ to: 'bob' }, { text: `m${i}` }));
    expect(acks.map((a) => a.seq)).toEqual([1, 2, 3, 4, 5]);
    const refused = await alice.send({ to: 'bob' }, { text: 'one too many' }).then(() => undefined, (e: { event: Event }) => e.event);
    expect(refused).toMatchObject({ type: 'error', code: 'rate_limited' });
    expect(refused!.retry_after_ms).toBeGreaterThan(90_000); // 0.01 token/s
    expect(refused!.retry_after_ms).toBeLessThanOrEqual(100_000);
    // RPCs have their own budget: history shows the 5 and nothing else.
    const h = await alice.rpc('history', { conv: acks[0]!.conv });
    expect((h.messages as Event[]).map((m) => m.body)).toEqual([0, 1, 2, 3, 4].map((i) => ({ text: `m${i}` })));
  });

  it('holds a per-user budget over all devices of the user', async () => {
    const laptop = await connect('alice', 'laptop');
    // alice used 5 of her 8 on the phone; the laptop's own connection budget is fresh.
    for (let i = 0; i < 3; i++) await laptop.send({ to: 'bob' }, { text: `l${i}` });
    const refused = await laptop.send({ to: 'bob' }, { text: 'over' }).then(() => undefined, (e: { event: Event }) => e.event);
    expect(refused).toMatchObject({ code: 'rate_limited' });
    expect(refused!.message).toMatch(/this user/);
  });

  it('counts unreadable requests too', async () => {
    const gary = await connect('gary');
    for (let i = 0; i < 6; i++) await gary.client.publishAsync(gary.outTopic, '{not json', { qos: 1 });
    const errors = await gary.waitFor(() => gary.events.filter((e) => e.type === 'error').length >= 6, 5_000).then(() => gary.events.filter((e) => e.type === 'error'));
    expect(errors.map((e) => e.code)).toEqual(['bad_request', 'bad_request', 'bad_request', 'bad_request', 'bad_request', 'rate_limited']);
  });

  it('drops typing events over the per-connection limit', async () => {
    const tina = await connect('tina');
    const tom = await connect('tom');
    const { conv } = await tina.send({ to: 'tom' }, { text: 'hi' });
    await tom.client.subscribeAsync(`typing/${conv as string}`, { qos: 0 });
    // Typing is QoS 0 (DESIGN section 4).
    for (let i = 0; i < 6; i++) await tina.client.publishAsync(`typing/${conv as string}`, JSON.stringify({ user: 'tina', state: i % 2 ? 'idle' : 'typing' }), { qos: 0 });
    await sleep(300);
    const typing = tom.events.filter((e) => e._topic === `typing/${conv as string}`);
    expect(typing.map((e) => e.state)).toEqual(['typing', 'idle']);
    expect(tina.client.connected).toBe(true);
  });

  it('disconnects a client that keeps flooding, and nobody else notices', async () => {
    const bob = await connect('bob');
    const mallory = await connect('mallory');
    const closed = new Promise<void>((resolve) => mallory.client.once('close', () => resolve()));
    // Full speed: QoS 1 sends pipelined without waiting for anything.
    for (let i = 0; i < 60; i++) mallory.client.publish(mallory.outTopic, JSON.stringify({ type: 'send', id: `f${i}`, to: 'bob', body: { i } }), { qos: 1 });
    await closed;
    const refusals = mallory.events.filter((e) => e.code === 'rate_limited').length;
    // Closed once 20 were refused (the rest of the same socket read was already being answered).
    expect(refusals).toBeGreaterThanOrEqual(20);
    expect(refusals).toBeLessThanOrEqual(55);
    // bob chats on.
    expect((await bob.send({ to: 'alice' }, { text: 'still here' })).type).toBe('ack');
    // mallory's clientId is banned for a while: CONNACK 3.
    const again = await Device.connect(p.mqttUrl, 'mallory', tokens['mallory:phone']!, { device: 'phone' }).then(
      async (d) => {
        await d.close();
        return 0;
      },
      (e: { code?: number }) => e.code,
    );
    expect(again).toBe(3);
    const m = await metricsText(p);
    expect(m).toMatch(/chat_limit_disconnects_total\{reason="flood"\} 1/);
    expect(m).toMatch(/chat_audit_events_total\{event="rate_limit_disconnect"\} 1/);
    expect(m).toMatch(/chat_rate_limited_total\{scope="connection",kind="send"\} \d+/);
    expect(m).toMatch(/chat_rate_limited_total\{scope="client",kind="connect"\} 1/);
  });
});

describe('MQTT connects per source address', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startPlatform({ store: 'postgres', config: { mqttAnonymous: true, limits: limitsWith({ connect: { perIpPerMinute: 3, exemptLoopback: false } }) } });
  });
  afterAll(async () => p?.close());

  it('refuses the connect over the per-minute budget with CONNACK 3, over TCP and WebSocket alike', async () => {
    for (let i = 0; i < 3; i++) {
      const c = await rawConnect(i % 2 ? p.wsUrl : p.mqttUrl, { clientId: `sensor-${i}` });
      await c.endAsync();
    }
    for (const url of [p.mqttUrl, p.wsUrl]) {
      const err = await rawConnect(url, { clientId: 'sensor-x' }).then(
        (c) => {
          void c.endAsync();
          return undefined;
        },
        (e: Error & { code?: number }) => e,
      );
      expect(err?.code).toBe(3);
    }
    const m = await metricsText(p);
    expect(m).toMatch(/chat_rate_limited_total\{scope="ip",kind="connect"\} 2/);
    expect(m).toMatch(/chat_audit_events_total\{event="connect_refused"\} 1/); // one line per address per minute
  });
});
