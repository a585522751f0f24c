import { describe, expect, it } from 'vitest';
import { ChatError, chatErrorFromWire, RETRYABLE_CODES } from '../../src/errors.ts';
import { parsePresence, parseServerEvent, parseTyping } from '../../src/protocol.ts';
import { foldMessages } from '../../src/message-view.ts';
import { refreshDelay, tokenExpiresAt } from '../../src/token.ts';
import { newId } from '../../src/ids.ts';

describe('parseServerEvent', () => {
  it('reads every event type of DESIGN section 4', () => {
    const samples = [
      '{"type":"msg","conv":"c_7f","seq":42,"id":"01J","from":"alice","ts":1764850000000,"body":{"text":"hi"},"reply_to":41}',
      '{"type":"ack","id":"01J","conv":"c_7f","seq":42,"ts":1764850000000}',
      '{"type":"receipt","conv":"c_7f","user":"bob","seq":42,"status":"read"}',
      '{"type":"conv","conv":"c_7f","event":"member_added","user":"carol","by":"alice","seq":43}',
      '{"type":"error","ref":"01J","code":"not_member","message":"you are not a member of c_7f"}',
      '{"type":"rpc","ref":"r1","result":{"convs":[]}}',
    ];
    const parsed = samples.map((sample) => parseServerEvent(sample));
    expect(parsed.every((result) => result.ok)).toBe(true);
    expect(parsed.map((result) => (result.ok ? result.event.type : ''))).toEqual(['msg', 'ack', 'receipt', 'conv', 'error', 'rpc']);
    expect(parsed[0]).toEqual({
      ok: true,
      event: { type: 'msg', conv: 'c_7f', seq: 42, id: '01J', from: 'alice', ts: 1764850000000, body: { text: 'hi' }, reply_to: 41 },
    });
    expect(parsed[3]).toMatchObject({ ok: true, event: { event: 'member_added', user: 'carol', by: 'alice', seq: 43 } });
  });

  it('keeps the topic of fanout_changed, including null', () => {
    expect(parseServerEvent('{"type":"conv","conv":"g1","event":"fanout_changed","topic":"group/g1"}')).toMatchObject({
      ok: true,
      event: { topic: 'group/g1' },
    });
    expect(parseServerEvent('{"type":"conv","conv":"g1","event":"fanout_changed","topic":null}')).toMatchObject({
      ok: true,
      event: { topic: null },
    });
  });

  it('refuses malformed payloads without throwing', () => {
    for (const bad of ['not json', '[]', '{"type":"msg","conv":"c","seq":"1"}', '{"type":"nope"}', '{"type":"ack","id":"x"}']) {
      expect(parseServerEvent(bad).ok, bad).toBe(false);
    }
  });

  it('reads presence and typing payloads', () => {
    expect(parsePresence('bob', '{"state":"online","last_seen":5,"devices":2}')).toEqual({ user: 'bob', state: 'online', last_seen: 5, devices: 2 });
    expect(parsePresence('bob', '{"state":"away"}')).toBeUndefined();
    expect(parseTyping('{"user":"bob","state":"typing"}')).toEqual({ user: 'bob', state: 'typing' });
    expect(parseTyping('{"user":"bob","state":"dancing"}')).toBeUndefined();
  });
});

describe('ChatError', () => {
  it('maps wire codes, keeps ref, and documents which codes are retryable', () => {
    const error = chatErrorFromWire({ code: 'rate_limited', message: 'slow down', ref: 'r9' });
    expect(error).toBeInstanceOf(ChatError);
    expect(error).toMatchObject({ code: 'rate_limited', ref: 'r9', retryable: true, message: 'slow down' });
    expect(chatErrorFromWire({ code: 'not_member' }).retryable).toBe(false);
    expect([...RETRYABLE_CODES].sort()).toEqual(['disconnected', 'internal', 'rate_limited', 'timeout']);
  });

  it('turns an unknown server code into internal', () => {
    expect(chatErrorFromWire({ code: 'brand_new', message: 'x' }).code).toBe('internal');
  });
});

describe('tokens', () => {
  const jwt = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

  it('reads exp in ms, and nothing from a non-JWT', () => {
    expect(tokenExpiresAt(jwt({ sub: 'alice', exp: 1_800_000_000 }))).toBe(1_800_000_000_000);
    expect(tokenExpiresAt(jwt({ sub: 'alice' }))).toBeUndefined();
    expect(tokenExpiresAt('opaque-device-token')).toBeUndefined();
  });

  it('refreshes a margin before expiry, earlier for short-lived tokens, never in the past', () => {
    expect(refreshDelay(3_600_000, 0, 60_000)).toBe(3_540_000);
    expect(refreshDelay(1_000_000, 400_000, 60_000)).toBe(540_000);
    expect(refreshDelay(10_000, 0, 60_000)).toBe(8_000);
    expect(refreshDelay(10, 20, 60_000)).toBe(0);
  });
});

describe('ids', () => {
  it('are 26 characters, unique, and sort by creation time', () => {
    const a = newId(1_000);
    const b = newId(2_000);
    expect(a).toHaveLength(26);
    expect(a < b).toBe(true);
    expect(new Set(Array.from({ length: 1000 }, () => newId())).size).toBe(1000);
  });
});

describe('foldMessages', () => {
  const msg = (seq: number, from: string, body: object, extra: object = {}) => ({ conv: 'c', seq, from, ts: seq, body: body as never, ...extra });

  it('applies the author’s edits and deletions, reactions per user, and keeps replies', () => {
    const views = foldMessages([
      msg(1, 'alice', { text: 'helo' }),
      msg(2, 'bob', { text: 'hi' }, { reply_to: 1 }),
      msg(3, 'alice', { edit: { seq: 1, text: 'hello' } }),
      msg(4, 'bob', { edit: { seq: 1, text: 'hacked' } }),
      msg(5, 'bob', { react: { seq: 1, emoji: '👍' } }),
      msg(6, 'carol', { react: { seq: 1, emoji: '👍' } }),
      msg(7, 'carol', { react: { seq: 1, emoji: '❤️' } }),
      msg(8, 'bob', { delete: { seq: 2 } }),
      msg(9, 'alice', { delete: { seq: 2 } }),
    ]);
    expect(views.map((view) => view.seq)).toEqual([1, 2]);
    expect(views[0]).toMatchObject({ text: 'hello', edited_seq: 3, deleted: false, reactions: { '👍': ['bob'], '❤️': ['carol'] } });
    expect(views[1]).toMatchObject({ deleted: true, text: undefined, reply_to: 1 });
  });
});
