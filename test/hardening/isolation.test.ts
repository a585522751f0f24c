import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startPlatform, registerUser, type TestPlatform } from '../helpers/platform.ts';
import { Device, rawConnect } from '../helpers/mqtt.ts';
import { limitsWith } from '../../config/limits.ts';
import { connectPacket, rawClient, subscribePacket } from './mqtt-bytes.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a subscriber that stops reading does not stall anyone else', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startPlatform({ store: 'postgres', config: { mqttAnonymous: true, limits: limitsWith({ mqtt: { maxPendingMessages: 20, drainTimeoutMs: 1_000 } }) } });
  });
  afterAll(async () => p?.close());
  const disconnects = async () => Number(/chat_limit_disconnects_total\{reason="slow_consumer"\} (\d+)/.exec(await (await fetch(`${p.httpUrl}/metrics`)).text())?.[1]);

  it('closes the stalled subscriber once deliveries back up on it, while chat goes on', async () => {
    const a = await registerUser(p.httpUrl, 'alice');
    const b = await registerUser(p.httpUrl, 'bob');
    const alice = await Device.connect(p.mqttUrl, 'alice', a.token);
    const bob = await Device.connect(p.mqttUrl, 'bob', b.token);

    // The sloth subscribes, then never reads again.
    const sloth = await rawClient(p.platform.mqttPort);
    sloth.write(connectPacket({ clientId: 'sloth' }));
    sloth.write(subscribePacket('bulk/#', 0));
    await sleep(200);
    expect(sloth.received().subarray(0, 4)).toEqual(Buffer.from([0x20, 0x02, 0x00, 0x00]));
    sloth.socket.pause();

    // A pump publishes 60 KB messages on its topic as fast as it can.
    const pump = await rawConnect(p.mqttUrl, { clientId: 'pump' });
    const body = Buffer.alloc(60 * 1024, 'x');
    let pumping = true;
    let pumped = 0;
    const pumpLoop = (async () => {
      while (pumping && pumped < 3000) {
        await pump.publishAsync('bulk/data', body, { qos: 0 });
        pumped++;
        if (pumped % 20 === 0) await sleep(1);
      }
    })();

    // Meanwhile alice and bob chat, one message after the other.
    const acks: number[] = [];
    for (let i = 0; i < 30; i++) acks.push((await (i % 2 ? bob : alice).send({ to: i % 2 ? 'alice' : 'bob' }, { i })).seq as number);
    // The server lets go of the sloth (it cannot see a close it does not read).
    const clients = (p.platform.broker.aedes as unknown as { clients: Record<string, unknown> }).clients;
    const since = Date.now();
    while (clients.sloth && Date.now() - since < 20_000) await sleep(50);
    pumping = false;
    await pumpLoop;
    expect(clients.sloth).toBeUndefined();
    sloth.socket.resume();
    expect(await sloth.closed(10_000)).toBe(true);
    expect(acks).toHaveLength(30);
    expect(pump.connected).toBe(true);
    expect((await alice.send({ to: 'bob' }, { after: true })).type).toBe('ack');
    const m = await (await fetch(`${p.httpUrl}/metrics`)).text();
    expect(m).toMatch(/chat_limit_disconnects_total\{reason="slow_consumer"\} 1/);
    expect(m).toMatch(/chat_audit_events_total\{event="slow_consumer_disconnect"\} 1/);
    await pump.endAsync();
    await alice.close();
    await bob.close();
  });

  it('in a group, bounds what a member that stops reading costs the others by the drain timeout', async () => {
    const [s, c, g] = [await registerUser(p.httpUrl, 'sloth2'), await registerUser(p.httpUrl, 'carol'), await registerUser(p.httpUrl, 'gus')];
    const carol = await Device.connect(p.mqttUrl, 'carol', c.token);
    const gus = await Device.connect(p.mqttUrl, 'gus', g.token);
    const { conv } = (await gus.rpc('group.create', { name: 'busy', members: ['sloth2', 'carol'] })) as { conv: string };
    const sloth = await rawClient(p.platform.mqttPort);
    sloth.write(connectPacket({ clientId: 'sloth2:default', username: 'sloth2', password: s.token, clean: false }));
    sloth.write(subscribePacket('chat/sloth2/in', 1));
    await sleep(200);
    sloth.socket.pause();
    const before = await disconnects();

    // 48 KB messages, 40 a second (within the sender's limits), for 4 s.
    const text = 'x'.repeat(48 * 1024);
    const sent: number[] = [];
    for (let i = 0; i < 160; i++) {
      void gus.request({ type: 'send', id: `big-${i}`, conv, body: { text, i } });
      sent.push(i);
      if (i % 4 === 3) await sleep(100);
    }
    // carol gets every one of them: delayed at most about the drain timeout, never stuck.
    await carol.waitFor(() => carol.messages(conv).filter((m) => (m.body as { i?: number }).i !== undefined).length >= 160, 15_000, 'all 160');
    const clients = (p.platform.broker.aedes as unknown as { clients: Record<string, unknown> }).clients;
    expect(clients['sloth2:default']).toBeUndefined();
    expect(await disconnects()).toBe(before + 1);
    sloth.end();
    await carol.close();
    await gus.close();
  });
});
