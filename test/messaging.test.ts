/**
 * Messaging core over real MQTT clients that follow only DESIGN section 4, on PGlite
 * and on PostgreSQL.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomUUID } from 'node:crypto';
import { startPlatform, registerUser, type TestPlatform } from './helpers/platform.ts';
import { Device, type Event } from './helpers/mqtt.ts';

const threshold = 4;

describe.each(['pglite', 'postgres'] as const)('messaging on %s', (store) => {
  let p: TestPlatform;
  const tokens = new Map<string, string>();
  const open: Device[] = [];

  async function user(name: string, device = 'default'): Promise<string> {
    const key = `${name}:${device}`;
    if (!tokens.has(key)) {
      if (device === 'default') tokens.set(key, (await registerUser(p.httpUrl, name)).token);
      else {
        await user(name);
        const r = await fetch(`${p.httpUrl}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: name, password: 'correct-horse-battery', device }) });
        tokens.set(key, ((await r.json()) as { token: string }).token);
      }
    }
    return tokens.get(key)!;
  }
  async function connect(name: string, device = 'default'): Promise<Device> {
    const d = await Device.connect(p.mqttUrl, name, await user(name, device), { device });
    open.push(d);
    return d;
  }
  const seqs = (events: Event[]) => events.map((e) => e.seq as number);

  beforeAll(async () => {
    p = await startPlatform({ store, fanoutWriteMax: threshold });
  });
  afterAll(async () => {
    await Promise.all(open.map((d) => d.close()));
    await p?.close();
  });

  it('delivers 1:1 both ways, to the other user and to the sender’s other devices', async () => {
    const alice = await connect('alice');
    const aliceTablet = await connect('alice', 'tablet');
    const bob = await connect('bob');
    const a1 = await alice.send({ to: 'bob' }, { text: 'hi bob' });
    const b1 = await bob.send({ to: 'alice' }, { text: 'hi alice' });
    expect(b1.conv).toBe(a1.conv);
    expect([a1.seq, b1.seq]).toEqual([1, 2]);
    await bob.waitFor((e) => e.type === 'msg' && e.seq === 1);
    const onAlice = await alice.waitFor((e) => e.type === 'msg' && e.seq === 2);
    expect(onAlice).toMatchObject({ from: 'bob', body: { text: 'hi alice' }, conv: a1.conv, id: expect.any(String), ts: expect.any(Number) });
    // The sender's own message comes back on its inbox too, recognisable by id.
    const echo = await aliceTablet.waitFor((e) => e.type === 'msg' && e.seq === 1);
    expect(echo.from).toBe('alice');
  });

  it('delivers a group of three in seq order to every member', async () => {
    const [a, b, c] = await Promise.all(['gina', 'hank', 'ivy'].map((n) => connect(n)));
    const { conv } = (await a!.rpc('group.create', { name: 'trio', members: ['hank', 'ivy'] })) as { conv: string };
    for (let i = 0; i < 5; i++) await [a, b, c][i % 3]!.send({ conv }, { text: `m${i}` });
    for (const d of [a!, b!, c!]) {
      await d.waitFor((e) => e.type === 'msg' && e.conv === conv && e.seq === 6);
      expect(seqs(d.messages(conv))).toEqual([2, 3, 4, 5, 6]);
    }
    const created = await b!.waitFor((e) => e.type === 'conv' && e.conv === conv);
    expect(created).toMatchObject({ event: 'created', seq: 1, by: 'gina' });
  });

  it('serves a group over the threshold on group/{conv} (fan-out on read)', async () => {
    const names = ['la0', 'la1', 'la2', 'la3', 'la4', 'la5'];
    const devs = await Promise.all(names.map((n) => connect(n)));
    const { conv } = (await devs[0]!.rpc('group.create', { name: 'large', members: names.slice(1) })) as { conv: string };
    const info = await devs[1]!.rpc('group.info', { conv });
    expect(info.topic).toBe(`group/${conv}`);
    const created = await devs[1]!.waitFor((e) => e.type === 'conv' && e.conv === conv && e.event === 'created');
    expect(created.topic).toBe(`group/${conv}`);
    const list = (await devs[2]!.rpc('conversations')) as { convs: { conv: string; topic?: string }[] };
    expect(list.convs.find((c) => c.conv === conv)?.topic).toBe(`group/${conv}`);
    for (const d of devs) await d.client.subscribeAsync(`group/${conv}`, { qos: 1 });
    await devs[3]!.send({ conv }, { text: 'to many' });
    for (const d of devs) {
      const m = await d.waitFor((e, topic) => e.type === 'msg' && e.conv === conv && topic === `group/${conv}`);
      expect(m.body).toEqual({ text: 'to many' });
    }
    // Once, on the group topic, not on every inbox.
    expect(devs[4]!.events.filter((e) => e.type === 'msg' && e.conv === conv && e._topic === 'chat/la4/in')).toEqual([]);
    // A non-member cannot subscribe to it.
    const outsider = await connect('outsider');
    const granted = await outsider.client.subscribeAsync(`group/${conv}`).catch(() => [{ qos: 128 }]);
    expect(granted[0]!.qos).toBe(128);
  });

  it('crosses the threshold while messages flow without losing or duplicating any', async () => {
    const names = ['x0', 'x1', 'x2', 'x3', 'x4', 'x5'];
    const devs = await Promise.all(names.map((n) => connect(n)));
    const { conv } = (await devs[0]!.rpc('group.create', { name: 'growing', members: ['x1', 'x2'] })) as { conv: string };
    // What a client does: take msgs from inbox or group topic, subscribe on fanout_changed,
    // and fill gaps with sync. Here the reader is x1, a member from the start.
    const reader = devs[1]!;
    reader.client.on('message', (_t, payload) => {
      const e = JSON.parse(payload.toString()) as Event;
      if (e.type === 'conv' && e.event === 'fanout_changed' && e.conv === conv && e.topic) void reader.client.subscribeAsync(e.topic as string, { qos: 1 });
    });
    const sender = devs[2]!;
    const sent: number[] = [];
    const sending = (async () => {
      for (let i = 0; i < 40; i++) sent.push((await sender.send({ conv }, { i })).seq as number);
    })();
    await devs[0]!.rpc('group.add', { conv, users: ['x3', 'x4', 'x5'] }); // 6 members > 4: read
    await sending;
    const last = Math.max(...sent);
    // Gap fill by sync, as client-lib does.
    const got = new Map<number, Event>();
    for (const e of reader.events) if (e.conv === conv && (e.type === 'msg' || e.type === 'conv')) got.set(e.seq as number, e);
    const synced = (await reader.rpc('sync', { convs: { [conv]: 0 } })) as { convs: { conv: string; messages: Event[] }[] };
    const all = synced.convs.find((c) => c.conv === conv)!.messages;
    expect(seqs(all)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    expect(all.filter((e) => e.type === 'msg').map((e) => (e.body as { i: number }).i)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(all.at(-1)!.seq).toBeGreaterThanOrEqual(last);
    // No duplicate delivery of a message on both paths.
    const live = reader.events.filter((e) => e.conv === conv && e.type === 'msg');
    expect(new Set(seqs(live)).size).toBe(live.length);
    expect(all.some((e) => e.type === 'conv' && e.event === 'fanout_changed')).toBe(true);
  });

  it('lets an offline member catch up in order with sync, in pages', async () => {
    const sam = await connect('sam');
    const tom = await connect('tom');
    const first = await sam.send({ to: 'tom' }, { n: 0 });
    await tom.waitFor((e) => e.type === 'msg' && e.seq === 1 && e.conv === first.conv);
    await tom.close();
    for (let n = 1; n <= 25; n++) await sam.send({ to: 'tom' }, { n });
    const back = await connect('tom', 'laptop');
    let seen = 1;
    const got: Event[] = [];
    for (;;) {
      const r = (await back.rpc('sync', { convs: { [first.conv as string]: seen }, limit: 10 })) as { convs: { conv: string; messages: Event[]; more: boolean }[] };
      const c = r.convs.find((x) => x.conv === first.conv);
      if (!c) break;
      got.push(...c.messages);
      seen = c.messages.at(-1)!.seq as number;
      if (!c.more) break;
    }
    expect(got.map((e) => (e.body as { n: number }).n)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(seqs(got)).toEqual(Array.from({ length: 25 }, (_, i) => i + 2));
    const h = (await back.rpc('history', { conv: first.conv, limit: 5 })) as { messages: Event[]; more: boolean };
    expect([seqs(h.messages), h.more]).toEqual([[22, 23, 24, 25, 26], true]);
    const older = (await back.rpc('history', { conv: first.conv, before: 3, limit: 5 })) as { messages: Event[]; more: boolean };
    expect([seqs(older.messages), older.more]).toEqual([[1, 2], false]);
  });

  it('answers a resend of (sender, id) with the original ack and stores and delivers nothing new', async () => {
    const uma = await connect('uma');
    const vic = await connect('vic');
    const id = randomUUID();
    const a1 = await uma.send({ to: 'vic' }, { text: 'once' }, { id });
    const a2 = await uma.send({ to: 'vic' }, { text: 'twice?' }, { id });
    expect({ ...a2, _topic: 0 }).toEqual({ ...a1, _topic: 0 });
    await vic.waitFor((e) => e.type === 'msg' && e.id === id);
    await new Promise((r) => setTimeout(r, 300));
    expect(vic.messages(a1.conv as string).length).toBe(1);
    const h = (await vic.rpc('history', { conv: a1.conv })) as { messages: Event[] };
    expect(h.messages.map((m) => m.body)).toEqual([{ text: 'once' }]);
  });

  it('keeps one group gap-free under 8 concurrent senders x 500 messages', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `s${i}`);
    const devs = await Promise.all(names.map((n) => connect(n)));
    const { conv } = (await devs[0]!.rpc('group.create', { name: 'storm', members: names.slice(1) })) as { conv: string };
    const acks = await Promise.all(
      devs.map(async (d) => {
        const out: number[] = [];
        // 25 in flight per sender: a real client pipelines its QoS 1 sends.
        for (let i = 0; i < 500; i += 25) {
          const batch = await Promise.all(Array.from({ length: 25 }, (_, k) => d.send({ conv }, { k: i + k })));
          out.push(...batch.map((a) => a.seq as number));
        }
        return out;
      }),
    );
    const all = acks.flat().sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 4000 }, (_, i) => i + 2));
    const info = await devs[0]!.rpc('group.info', { conv });
    expect(info.last_seq).toBe(4001);
  }, 180_000);

  it('enforces roles and announce-only', async () => {
    const [own, adm, mem] = await Promise.all(['own', 'adm', 'mem'].map((n) => connect(n)));
    await user('newbie');
    const { conv } = (await own!.rpc('group.create', { name: 'club', members: ['adm', 'mem'] })) as { conv: string };
    await expect(mem!.rpc('group.add', { conv, users: ['newbie'] })).rejects.toMatchObject({ code: 'forbidden' });
    await own!.rpc('group.role', { conv, user: 'adm', role: 'admin' });
    await adm!.rpc('group.add', { conv, users: ['newbie'] });
    await expect(adm!.rpc('group.role', { conv, user: 'mem', role: 'owner' })).rejects.toMatchObject({ code: 'forbidden' });
    await adm!.rpc('group.settings', { conv, announce_only: true });
    await expect(mem!.send({ conv }, { text: 'may I?' })).rejects.toThrow(/forbidden/);
    await adm!.send({ conv }, { text: 'announcement' });
    const info = (await mem!.rpc('group.info', { conv })) as { members: { user: string; role: string }[]; announce_only: boolean };
    expect(info.announce_only).toBe(true);
    expect(info.members).toEqual([
      { user: 'adm', role: 'admin' },
      { user: 'mem', role: 'member' },
      { user: 'newbie', role: 'member' },
      { user: 'own', role: 'owner' },
    ]);
    const events = mem!.events.filter((e) => e.type === 'conv' && e.conv === conv).map((e) => [e.seq, e.event]);
    await mem!.waitFor((e) => e.type === 'conv' && e.event === 'settings_changed');
    expect(mem!.events.filter((e) => e.type === 'conv' && e.conv === conv).map((e) => e.event)).toEqual(['created', 'role_changed', 'member_added', 'settings_changed']);
    expect(events.every(([s]) => typeof s === 'number')).toBe(true);
    await adm!.rpc('group.remove', { conv, users: ['newbie'] });
    await expect(adm!.rpc('group.remove', { conv, users: ['own'] })).rejects.toMatchObject({ code: 'forbidden' });
    await mem!.rpc('group.leave', { conv });
    await expect(mem!.rpc('history', { conv })).rejects.toMatchObject({ code: 'not_member' });
  });

  it('refuses messages between blocked users, both ways, until unblocked', async () => {
    const kim = await connect('kim');
    const lou = await connect('lou');
    await kim.send({ to: 'lou' }, { text: 'hello' });
    await lou.rpc('block', { user: 'kim' });
    await expect(kim.send({ to: 'lou' }, { text: 'again' })).rejects.toThrow(/blocked/);
    await expect(lou.send({ to: 'kim' }, { text: 'nope' })).rejects.toThrow(/blocked/);
    await lou.rpc('unblock', { user: 'kim' });
    await kim.send({ to: 'lou' }, { text: 'friends again' });
  });

  it('stores cumulative receipts, forwards them and counts unread', async () => {
    const ann = await connect('ann');
    const ben = await connect('ben');
    const benTablet = await connect('ben', 'tablet');
    let conv = '';
    for (let i = 0; i < 5; i++) conv = (await ann.send({ to: 'ben' }, { i })).conv as string;
    const before = (await ben.rpc('conversations')) as { convs: { conv: string; unread: number; last_seq: number }[] };
    expect(before.convs.find((c) => c.conv === conv)).toMatchObject({ unread: 5, last_seq: 5, kind: 'dm', peer: 'ann' });
    await ben.request({ type: 'receipt', conv, seq: 5, status: 'delivered' });
    await ben.request({ type: 'receipt', conv, seq: 3, status: 'read' });
    const r = await ann.waitFor((e) => e.type === 'receipt' && e.status === 'read');
    expect(r).toMatchObject({ conv, user: 'ben', seq: 3 });
    await ann.waitFor((e) => e.type === 'receipt' && e.status === 'delivered' && e.seq === 5);
    await benTablet.waitFor((e) => e.type === 'receipt' && e.status === 'read' && e.user === 'ben');
    const after = (await ben.rpc('conversations')) as { convs: { conv: string; unread: number; read_seq: number }[] };
    expect(after.convs.find((c) => c.conv === conv)).toMatchObject({ unread: 2, read_seq: 3 });
    // Cumulative: an older read changes nothing.
    await ben.request({ type: 'receipt', conv, seq: 2, status: 'read' });
    const again = (await ben.rpc('conversations')) as { convs: { conv: string; read_seq: number }[] };
    expect(again.convs.find((c) => c.conv === conv)!.read_seq).toBe(3);
  });

  it('supports replies, edits, deletes and reactions as new messages; only the author edits', async () => {
    const eve = await connect('eve');
    const fay = await connect('fay');
    const m1 = await eve.send({ to: 'fay' }, { text: 'helo' });
    const conv = m1.conv as string;
    await fay.send({ conv }, { text: 'hi!' }, { reply_to: 1 });
    await eve.send({ conv }, { edit: { seq: 1, text: 'hello' } });
    await fay.send({ conv }, { react: { seq: 1, emoji: '👍' } });
    await expect(fay.send({ conv }, { edit: { seq: 1, text: 'hacked' } })).rejects.toThrow(/forbidden/);
    await expect(fay.send({ conv }, { delete: { seq: 1 } })).rejects.toThrow(/forbidden/);
    await eve.send({ conv }, { delete: { seq: 1 } });
    await expect(eve.send({ conv }, { text: 'x' }, { reply_to: 999 })).rejects.toThrow(/not_found/);
    const h = (await fay.rpc('history', { conv })) as { messages: Event[] };
    expect(h.messages.map((m) => [m.seq, m.from, m.body, m.reply_to])).toEqual([
      [1, 'eve', { text: 'helo' }, undefined],
      [2, 'fay', { text: 'hi!' }, 1],
      [3, 'eve', { edit: { seq: 1, text: 'hello' } }, undefined],
      [4, 'fay', { react: { seq: 1, emoji: '👍' } }, undefined],
      [5, 'eve', { delete: { seq: 1 } }, undefined],
    ]);
  });

  it('answers every bad request with an error code and keeps the connection', async () => {
    const zed = await connect('zed');
    const yan = await connect('yan');
    const { conv } = (await yan.rpc('group.create', { name: 'private', members: [] })) as { conv: string };
    const errorFor = async (payload: string | Record<string, unknown>, ref?: string): Promise<Event> => {
      const marker = zed.events.length;
      await zed.client.publishAsync(zed.outTopic, typeof payload === 'string' ? payload : JSON.stringify(payload), { qos: 1 });
      return zed.waitFor((e) => e.type === 'error' && zed.events.indexOf(e) >= marker && (ref === undefined || e.ref === ref), 10_000, 'error');
    };
    expect(await errorFor('{not json')).toMatchObject({ code: 'bad_request' });
    expect(await errorFor('[1,2,3]')).toMatchObject({ code: 'bad_request' });
    expect(await errorFor({ type: 'teleport', id: 'u1' }, 'u1')).toMatchObject({ code: 'bad_request', ref: 'u1' });
    expect(await errorFor({ type: 'send', id: 'x'.repeat(65), to: 'yan', body: {} })).toMatchObject({ code: 'bad_request' });
    expect(await errorFor({ type: 'send', id: 'b1', to: 'yan', body: 'text' }, 'b1')).toMatchObject({ code: 'bad_request' });
    expect(await errorFor({ type: 'send', id: 'big', to: 'yan', body: { text: 'x'.repeat(70_000) } }, 'big')).toMatchObject({ code: 'too_large' });
    expect(await errorFor({ type: 'send', id: 'nm', conv, body: { text: 'let me in' } }, 'nm')).toMatchObject({ code: 'not_member' });
    expect(await errorFor({ type: 'send', id: 'nf', to: 'ghost', body: {} }, 'nf')).toMatchObject({ code: 'not_found' });
    expect(await errorFor({ type: 'send', id: 'nc', conv: 'c_nope', body: {} }, 'nc')).toMatchObject({ code: 'not_found' });
    expect(await errorFor({ type: 'rpc', id: 'r1', method: 'group.add', params: { conv, users: ['zed'] } }, 'r1')).toMatchObject({ code: 'not_member' });
    expect(await errorFor({ type: 'rpc', id: 'r2', method: 'nope' }, 'r2')).toMatchObject({ code: 'bad_request' });
    expect(await errorFor({ type: 'rpc', id: 'r3', method: 'history', params: { conv, limit: 'ten' } }, 'r3')).toMatchObject({ code: 'bad_request' });
    await yan.rpc('block', { user: 'zed' });
    expect(await errorFor({ type: 'send', id: 'bl', to: 'yan', body: {} }, 'bl')).toMatchObject({ code: 'blocked' });
    const { conv: ann } = (await yan.rpc('group.create', { name: 'news', members: ['zed'], kind: 'channel' })) as { conv: string };
    expect(await errorFor({ type: 'send', id: 'fb', conv: ann, body: {} }, 'fb')).toMatchObject({ code: 'forbidden' });
    expect(zed.client.connected).toBe(true);
    // Nothing was stored by any of it.
    const mine = (await zed.rpc('conversations')) as { convs: { conv: string; last_seq: number }[] };
    expect(mine.convs.map((c) => [c.conv, c.last_seq])).toEqual([[ann, 1]]);
  });

  it('reports deliveries per message, fan-out switches and conversations by mode in /metrics', async () => {
    const m = await (await fetch(`${p.httpUrl}/metrics`)).text();
    expect(m).toMatch(/chat_deliveries_per_message_count [1-9]/);
    expect(m).toMatch(/chat_fanout_switches_total\{mode="read"\} [1-9]/);
    expect(m).toMatch(/chat_conversations\{kind="group",fanout="read"\} [1-9]/);
    expect(m).toMatch(/chat_conversations\{kind="dm",fanout="write"\} [1-9]/);
    expect(m).toMatch(/chat_delivery_queue_depth \d/);
    expect(m).toMatch(/chat_commit_batch_size_count [1-9]/);
  });
});
