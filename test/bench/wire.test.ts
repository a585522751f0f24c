import { describe, expect, it } from 'vitest';
import mqttPacket from 'mqtt-packet';
import { encodePublish, encodeRemainingLength } from '../../bench/gen/raw-client.ts';
import { sourceAddress } from '../../bench/gen/idle.ts';
import { parseEvent, readStamp, rpcRequest, sendRequest, stampText } from '../../bench/lib/chat-wire.ts';
import { commitStats, promValue } from '../../bench/lib/ours.ts';
import { perWorkerTargets, rampSteps } from '../../bench/scenarios/connections.ts';
import { messagesFor } from '../../bench/scenarios/fanout.ts';

describe('raw MQTT encoding', () => {
  it('Remaining Length uses 1 to 4 bytes [MQTT-2.2.3]', () => {
    expect([...encodeRemainingLength(0)]).toEqual([0]);
    expect([...encodeRemainingLength(127)]).toEqual([127]);
    expect([...encodeRemainingLength(128)]).toEqual([0x80, 0x01]);
    expect([...encodeRemainingLength(16383)]).toEqual([0xff, 0x7f]);
    expect([...encodeRemainingLength(268435455)]).toEqual([0xff, 0xff, 0xff, 0x7f]);
  });
  it('encodePublish is byte for byte what mqtt-packet generates', () => {
    const payload = Buffer.alloc(200, 7);
    for (const qos of [0, 1] as const) {
      const mine = encodePublish(Buffer.from('bench/x/1'), payload, qos, qos ? 513 : 0);
      const theirs = mqttPacket.generate({ cmd: 'publish', topic: 'bench/x/1', payload, qos, messageId: qos ? 513 : undefined, retain: false, dup: false });
      expect(mine.equals(theirs)).toBe(true);
    }
  });
  it('a large PUBLISH round-trips through the mqtt-packet parser', () => {
    const payload = Buffer.alloc(70000, 1);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const got: mqttPacket.Packet[] = [];
    parser.on('packet', (p) => got.push(p));
    parser.parse(encodePublish(Buffer.from('t'), payload, 1, 9));
    expect(got).toHaveLength(1);
    const p = got[0] as mqttPacket.IPublishPacket;
    expect(p.topic).toBe('t');
    expect(p.messageId).toBe(9);
    expect(Buffer.from(p.payload).length).toBe(70000);
  });
  it('spreads connections over source addresses', () => {
    expect(sourceAddress(0, 20000)).toBe('127.0.0.2');
    expect(sourceAddress(19999, 20000)).toBe('127.0.0.2');
    expect(sourceAddress(20000, 20000)).toBe('127.0.0.3');
    expect(sourceAddress(250 * 20000, 20000)).toBe('127.0.1.2');
  });
});

describe('chat wire (DESIGN section 4)', () => {
  it('builds send and rpc requests', () => {
    expect(JSON.parse(sendRequest({ id: 'a1', to: 'bob', text: 'hi' }).toString())).toEqual({ type: 'send', id: 'a1', to: 'bob', body: { text: 'hi' } });
    expect(JSON.parse(sendRequest({ id: 'a2', conv: 'c_1', text: 'x' }).toString())).toEqual({ type: 'send', id: 'a2', conv: 'c_1', body: { text: 'x' } });
    expect(JSON.parse(rpcRequest('r1', 'sync', { convs: {} }).toString())).toEqual({ type: 'rpc', id: 'r1', method: 'sync', params: { convs: {} } });
  });
  it('parses server events and never throws', () => {
    expect(parseEvent('{"type":"ack","id":"a1","conv":"c","seq":3,"ts":5}')).toEqual({ type: 'ack', id: 'a1', conv: 'c', seq: 3, ts: 5 });
    const msg = parseEvent(Buffer.from('{"type":"msg","conv":"c","seq":4,"id":"a1","from":"al","ts":1,"body":{"text":"hi"}}'));
    expect(msg).toMatchObject({ type: 'msg', seq: 4, body: { text: 'hi' } });
    expect(parseEvent('{"type":"error","ref":"a1","code":"not_member"}')).toMatchObject({ type: 'error', ref: 'a1', code: 'not_member' });
    expect(parseEvent('{"type":"rpc","ref":"r1","result":{"conv":"c"}}')).toEqual({ type: 'rpc', ref: 'r1', result: { conv: 'c' } });
    expect(parseEvent('not json').type).toBe('other');
    expect(parseEvent('[1]').type).toBe('other');
    expect(parseEvent('{"type":"msg"}').type).toBe('other');
  });
  it('stamps carry send time and number through the text', () => {
    const t = stampText(1764850000123.456, 42, 100);
    expect(t.length).toBe(100);
    expect(readStamp(t)).toEqual({ sentAt: 1764850000123.456, n: 42 });
    expect(readStamp('hello')).toBeNull();
    expect(readStamp(undefined)).toBeNull();
  });
});

describe('broker metrics', () => {
  const before = '# HELP x\nchat_commit_batch_size_sum 100\nchat_commit_batch_size_count 10\nchat_store_commit_seconds_sum 0.05\n';
  const after = 'chat_commit_batch_size_sum 1100\nchat_commit_batch_size_count 30\nchat_store_commit_seconds_sum 0.25\nchat_deliveries_total{mode="write"} 3\nchat_deliveries_total{mode="read"} 4\n';
  it('promValue sums every label set', () => {
    expect(promValue(after, 'chat_deliveries_total')).toBe(7);
    expect(promValue(after, 'chat_missing')).toBeNull();
  });
  it('commitStats gives mean batch and commit time over the window', () => {
    const s = commitStats(before, after);
    expect(s).toMatchObject({ batches: 20, messages: 1000, meanBatch: 50 });
    expect(s.meanCommitMs).toBeCloseTo(10, 6);
    expect(commitStats('', '').meanBatch).toBeNull();
  });
});

describe('scenario plans', () => {
  it('ramp steps go from the first count to the max', () => {
    expect(rampSteps(10000, 25000, 60000)).toEqual([10000, 35000, 60000]);
    expect(rampSteps(10000, 25000, 10000)).toEqual([10000]);
    expect(rampSteps(20000, 0, 50000)).toEqual([20000]);
  });
  it('workers fill up one after the other', () => {
    expect(perWorkerTargets(25000, 19800, 2)).toEqual([19800, 5200]);
    expect(perWorkerTargets(10000, 19800, 2)).toEqual([10000, 0]);
  });
  it('fan-out message counts aim at a delivery total within bounds', () => {
    expect(messagesFor(100, 100000, 10, 500)).toBe(500);
    expect(messagesFor(1000, 100000, 10, 500)).toBe(100);
    expect(messagesFor(10000, 100000, 10, 500)).toBe(10);
    expect(messagesFor(10000, 200000, 20, 1000)).toBe(20);
    expect(messagesFor(100, 200000, 20, 1000)).toBe(1000);
  });
});
