/**
 * Protocol robustness over real sockets (DESIGN section 3.6): every malformed or
 * out-of-order packet closes its own connection only; the broker's connection count and
 * heap return to their baseline; a healthy client chats through the whole barrage.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startPlatform, registerUser, type TestPlatform } from '../helpers/platform.ts';
import { Device } from '../helpers/mqtt.ts';
import { limitsWith } from '../../config/limits.ts';
import { connectPacket, packet, publishPacket, rawClient, subscribePacket, varint } from './mqtt-bytes.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const connack = (code: number) => Buffer.from([0x20, 0x02, 0x00, code]);
const hello = (id: string, keepalive = 0) => connectPacket({ clientId: id, keepalive });

interface Case {
  name: string;
  bytes: (id: string) => Buffer[];
  /** What the server answers before it closes (a prefix of all it sends). Steps are written 100 ms apart. */
  answer?: Buffer;
  within: number;
}

// Each case runs on its own connection; `within` is how soon the server must close it.
const cases: Case[] = [
  { name: 'truncated CONNECT, then silence (connect timeout)', bytes: (id) => [hello(id).subarray(0, 9)], within: 4_000 },
  { name: 'truncated PUBLISH after CONNECT, then silence (keepalive)', bytes: (id) => [hello(id, 1), publishPacket('a/b', 'x'.repeat(100)).subarray(0, 20)], answer: connack(0), within: 4_000 },
  { name: 'remaining length of 5 bytes', bytes: () => [Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f])], within: 1_500 },
  { name: 'CONNECT declaring 200 MB', bytes: () => [Buffer.from([0x10, ...varint(200_000_000)]), Buffer.alloc(64 * 1024, 1)], within: 1_500 },
  { name: 'PUBLISH declaring 200 MB after CONNECT', bytes: (id) => [hello(id), Buffer.from([0x30, ...varint(200_000_000)]), Buffer.alloc(64 * 1024, 1)], answer: connack(0), within: 1_500 },
  { name: 'PUBLISH with QoS 3', bytes: (id) => [hello(id), packet(0x36, Buffer.from([0, 3, 0x61, 0x2f, 0x62, 0, 1, 0x78]))], answer: connack(0), within: 1_500 },
  { name: 'SUBSCRIBE with flags 0000 instead of 0010', bytes: (id) => [hello(id), subscribePacket('a/b', 0, 1, 0x80)], answer: connack(0), within: 1_500 },
  { name: 'PUBLISH before CONNECT [MQTT-3.1.0-1]', bytes: () => [publishPacket('a/b', 'x')], within: 1_500 },
  { name: 'a second CONNECT [MQTT-3.1.0-2]', bytes: (id) => [hello(id), hello(`${id}-again`)], answer: connack(0), within: 1_500 },
  { name: 'garbage after CONNECT (packet type 0)', bytes: (id) => [hello(id), Buffer.from([0x00, 0x03, 0xde, 0xad, 0xbe])], answer: connack(0), within: 1_500 },
  { name: 'AUTH (reserved in 3.1.1) after CONNECT', bytes: (id) => [hello(id), Buffer.from([0xf0, 0x00])], answer: connack(0), within: 1_500 },
  { name: 'CONNECT with the reserved flag set [MQTT-3.1.2-3]', bytes: (id) => [connectPacket({ clientId: id, reservedFlag: true })], within: 1_500 },
  // [MQTT-3.1.2-2] wants CONNACK 1 first; mqtt-packet refuses the level while parsing, so it just closes.
  { name: 'CONNECT with protocol level 9', bytes: (id) => [packet(0x10, Buffer.concat([Buffer.from([0, 4]), Buffer.from('MQTT'), Buffer.from([9, 2, 0, 0, 0, id.length]), Buffer.from(id)]))], within: 1_500 },
  { name: 'PUBLISH to a wildcard topic [MQTT-3.3.2-2]', bytes: (id) => [hello(id), publishPacket('a/#', 'x')], answer: connack(0), within: 1_500 },
  { name: 'empty clientId with clean session 0 [MQTT-3.1.3-8]', bytes: () => [connectPacket({ clientId: '', clean: false })], answer: connack(2), within: 1_500 },
  { name: 'MQTT 3.1 with an empty clientId', bytes: () => [connectPacket({ clientId: '', protocolVersion: 3 })], answer: connack(2), within: 1_500 },
];

async function run(p: TestPlatform, c: Case, id: string): Promise<{ closed: boolean; received: Buffer }> {
  const raw = await rawClient(p.platform.mqttPort);
  // One write per step, apart: "after CONNECT" means after its CONNACK.
  for (const [i, b] of c.bytes(id).entries()) {
    if (i > 0) await sleep(100);
    raw.write(b);
  }
  // `within` is when the close is due; the wait is generous so that a loaded machine
  // (CI runs test files in parallel) slows the test down instead of failing it.
  const closed = await raw.closed(Math.max(c.within * 3, 10_000));
  raw.end();
  return { closed, received: raw.received() };
}

describe('malformed packets over real sockets', () => {
  let p: TestPlatform;
  let alice: Device;
  const clients = () => p.platform.broker.aedes.connectedClients;

  beforeAll(async () => {
    p = await startPlatform({ store: 'postgres', config: { mqttAnonymous: true, limits: limitsWith({ mqtt: { connectTimeoutMs: 1_000 } }) } });
    const a = await registerUser(p.httpUrl, 'alice');
    await registerUser(p.httpUrl, 'bob');
    alice = await Device.connect(p.mqttUrl, 'alice', a.token);
  });
  afterAll(async () => {
    await alice?.close();
    await p?.close();
  });

  it.each(cases)('$name: closes that connection', async (c) => {
    const { closed, received } = await run(p, c, `fuzz-${cases.indexOf(c)}`);
    expect(closed).toBe(true);
    if (c.answer) expect(received.subarray(0, c.answer.length)).toEqual(c.answer);
    else expect(received.length).toBe(0);
  });

  it('accepts an empty clientId with clean session 1 (the server assigns one) [MQTT-3.1.3-6]', async () => {
    const raw = await rawClient(p.platform.mqttPort);
    raw.write(connectPacket({ clientId: '', clean: true }));
    await sleep(300);
    expect(raw.received()).toEqual(connack(0));
    raw.end();
  });

  it('survives a barrage of all of them: others keep chatting, connections and heap return to baseline', async () => {
    await sleep(200);
    const baselineClients = clients();
    gc();
    const baselineHeap = process.memoryUsage().heapUsed;

    let chatting = true;
    const acks: number[] = [];
    const chat = (async () => {
      for (let i = 0; chatting && i < 200; i++) {
        acks.push((await alice.send({ to: 'bob' }, { i })).seq as number);
        await sleep(20);
      }
    })();
    const rounds = 8;
    const results = await Promise.all(Array.from({ length: rounds }, (_, r) => cases.map((c, i) => run(p, c, `barrage-${r}-${i}`))).flat());
    chatting = false;
    await chat;

    expect(results.every((r) => r.closed)).toBe(true);
    expect(acks.length).toBeGreaterThan(5);
    expect(acks).toEqual(acks.map((_, i) => acks[0]! + i)); // gap-free: nothing lost or doubled
    expect(alice.client.connected).toBe(true);

    for (let i = 0; i < 50 && clients() !== baselineClients; i++) await sleep(100);
    expect(clients()).toBe(baselineClients);
    gc();
    const grown = process.memoryUsage().heapUsed - baselineHeap;
    expect(grown).toBeLessThan(32 * 1024 * 1024);

    const m = await (await fetch(`${p.httpUrl}/metrics`)).text();
    expect(m).toMatch(new RegExp(`chat_audit_events_total\\{event="packet_too_large"\\} ${2 * (rounds + 1)}`));
  });
});
