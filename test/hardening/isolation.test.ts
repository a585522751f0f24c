import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startPlatform, registerUser, type TestPlatform } from '../helpers/platform.ts';
import { Device, rawConnect } from '../helpers/mqtt.ts';
import { limitsWith } from '../../config/limits.ts';
import { connectPacket, rawClient, subscribePacket } from './mqtt-bytes.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a subscriber that stops reading does not stall anyone else', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startPlatform({ config: { mqttAnonymous: true, limits: limitsWith({ mqtt: { maxPendingMessages: 20 } }) } });
  });
  afterAll(async () => p?.close());

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
    const slothClosed = await sloth.closed(20_000);
    pumping = false;
    await pumpLoop;

    expect(slothClosed).toBe(true);
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
});
