/**
 * ChatClient behaviour over an in-memory transport on fake time: the connect steps, the
 * outbox, reconnect with backoff, token refresh, the receive path, receipts, typing,
 * fan-out changes and RPC errors. The real wire is covered by test/integration.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ChatClient, type ChatClientOptions, type ReceivedMessage } from '../../src/client.ts';
import { ChatError } from '../../src/errors.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { StateChange } from '../../src/connection-state.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { FakeServer, FakeTransport, flush } from '../helpers/fake-transport.ts';

const jwt = (exp: number, tag = 'a') => `e30.${Buffer.from(JSON.stringify({ sub: 'alice', dev: 'phone', exp, tag })).toString('base64url')}.sig`;

interface Rig {
  client: ChatClient;
  clock: FakeClock;
  transport: FakeTransport;
  server: FakeServer;
  store: MemoryStore;
  states: StateChange[];
  messages: ReceivedMessage[];
  errors: ChatError[];
}

const clients: ChatClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
});

function rig(options: Partial<ChatClientOptions> = {}, shared: Partial<Pick<Rig, 'store' | 'clock' | 'transport'>> = {}): Rig {
  const clock = shared.clock ?? new FakeClock(1_700_000_000_000);
  const transport = shared.transport ?? new FakeTransport();
  const store = shared.store ?? new MemoryStore();
  const server = new FakeServer('alice', 'phone', () => clock.now());
  server.attach(transport);
  const client = new ChatClient({
    url: 'mqtt://fake',
    user: 'alice',
    device: 'phone',
    getToken: () => 'token-1',
    store,
    transport,
    clock,
    random: () => 0.5,
    ...options,
  });
  clients.push(client);
  const states: StateChange[] = [];
  const messages: ReceivedMessage[] = [];
  const errors: ChatError[] = [];
  client.on('state', (change) => states.push(change));
  client.on('message', (message) => messages.push(message));
  client.on('error', (error) => errors.push(error));
  return { client, clock, transport, server, store, states, messages, errors };
}

describe('connect', () => {
  it('connects as {user}:{device} with the token, clean:false and an offline will, then subscribes, syncs', async () => {
    const { client, transport, states } = rig();
    await client.connect();
    await flush();
    const options = transport.openCalls[0]!;
    expect(options).toMatchObject({
      clientId: 'alice:phone',
      username: 'alice',
      password: 'token-1',
      clean: false,
      will: { topic: 'presence/alice', payload: '{"state":"offline"}', qos: 1, retain: true },
    });
    const connection = transport.current;
    expect(Object.fromEntries(connection.subscriptions)).toEqual({ 'chat/alice/in': 1, 'chat/alice/phone/in': 1 });
    expect(states.map((s) => s.to)).toEqual(['connecting', 'online']);
    expect(connection.rpcs().map((r) => r.method)).toEqual(['conversations', 'sync']);
    expect(connection.published.every((p) => p.topic === 'chat/alice/phone/out' && p.qos === 1)).toBe(true);
  });

  it('reconnects with exponential backoff and jitter, and resubscribes everything each time', async () => {
    const { client, clock, transport, states } = rig({ backoff: { initialMs: 1_000, maxMs: 60_000, factor: 2, jitter: 0.5 } });
    await client.connect();
    await client.watchPresence('bob');
    await flush();
    transport.outcomes.push('network-error', 'network-error', 'ok');
    transport.current.drop();
    await flush();
    expect(client.state).toBe('reconnecting');
    // random() = 0.5 with jitter 0.5: delay = 0.75 x (1000 x 2^attempt).
    clock.advance(749);
    await flush();
    expect(transport.openCalls).toHaveLength(1);
    clock.advance(1);
    await flush();
    expect(transport.openCalls).toHaveLength(2); // failed
    clock.advance(1_499);
    await flush();
    expect(transport.openCalls).toHaveLength(2);
    clock.advance(1);
    await flush();
    expect(transport.openCalls).toHaveLength(3); // failed
    clock.advance(3_000);
    await flush();
    expect(transport.openCalls).toHaveLength(4);
    expect(client.state).toBe('online');
    expect([...transport.current.subscriptions.keys()].sort()).toEqual(['chat/alice/in', 'chat/alice/phone/in', 'presence/bob']);
    expect(states.map((s) => s.to)).toEqual([
      'connecting', 'online', 'reconnecting', 'connecting', 'reconnecting', 'connecting', 'reconnecting', 'connecting', 'online',
    ]);
    // Back online, the backoff starts again from the first delay.
    transport.current.drop();
    await flush();
    clock.advance(750);
    await flush();
    expect(client.state).toBe('online');
  });

  it('refreshes a refused token once; a second refusal closes the client with forbidden', async () => {
    let refreshes = 0;
    const ok = rig({ refreshToken: async () => `token-${++refreshes + 1}` });
    ok.transport.outcomes.push('refuse-auth', 'ok');
    await ok.client.connect();
    expect(ok.transport.openCalls.map((o) => o.password)).toEqual(['token-1', 'token-2']);

    const bad = rig({ refreshToken: async () => 'still-bad' });
    bad.transport.outcomes.push('refuse-auth', 'refuse-auth');
    await expect(bad.client.connect()).rejects.toMatchObject({ code: 'forbidden' });
    expect(bad.client.state).toBe('closed');
    expect(bad.clock.pendingTimers).toBe(0);
  });

  it('refreshes the token before its JWT exp and uses it on the next connect', async () => {
    const clock = new FakeClock(1_700_000_000_000);
    const expSeconds = Math.floor(clock.now() / 1000) + 3_600;
    const refreshed: number[] = [];
    const { client, transport } = rig(
      {
        getToken: () => jwt(expSeconds),
        refreshToken: async () => {
          refreshed.push(clock.now());
          return jwt(expSeconds + 3_600, 'b');
        },
        tokenRefreshMarginMs: 60_000,
      },
      { clock },
    );
    await client.connect();
    clock.advance(3_540_000 - 1);
    await flush();
    expect(refreshed).toEqual([]);
    clock.advance(1);
    await flush();
    expect(refreshed).toHaveLength(1);
    transport.current.drop();
    await flush();
    clock.advance(1_000);
    await flush();
    expect(transport.openCalls.at(-1)!.password).toBe(jwt(expSeconds + 3_600, 'b'));
  });

  it('close() stops reconnecting and rejects what waits', async () => {
    const { client, clock, transport } = rig({ rpcTimeoutMs: 60_000 });
    await client.connect();
    transport.requestHandler = undefined; // the server stops answering
    const pending = client.rpc('group.info', { conv: 'c1' });
    await flush();
    await client.close();
    await expect(pending).rejects.toMatchObject({ code: 'disconnected', retryable: true });
    clock.advance(120_000);
    await flush();
    expect(transport.openCalls).toHaveLength(1);
    expect(client.state).toBe('closed');
  });
});

describe('outbox', () => {
  it('keeps sends made offline and publishes them in order with their ids once online', async () => {
    const { client, transport, store } = rig();
    const first = client.send({ conv: 'c1' }, { text: 'one' }, { id: 'm1' });
    const second = client.send({ to: 'bob' }, { text: 'two' }, { id: 'm2', reply_to: 1 });
    await flush();
    expect((await store.outboxList()).map((e) => e.id)).toEqual(['m1', 'm2']);
    await client.connect();
    await expect(first).resolves.toEqual({ id: 'm1', conv: 'c1', seq: 1, ts: expect.any(Number) });
    await expect(second).resolves.toMatchObject({ id: 'm2', conv: 'dm_bob', seq: 1 });
    expect(transport.current.requests('send')).toEqual([
      { type: 'send', id: 'm1', conv: 'c1', body: { text: 'one' } },
      { type: 'send', id: 'm2', to: 'bob', body: { text: 'two' }, reply_to: 1 },
    ]);
    await flush();
    expect(await store.outboxList()).toEqual([]);
    expect(client.pendingSends()).toEqual([]);
  });

  it('resends with the same id after a reconnect until acked, and reports one ack', async () => {
    const { client, clock, transport, server } = rig();
    await client.connect();
    await flush();
    server.ackSends = false;
    server.echo = false;
    const acks: string[] = [];
    client.on('ack', (ack) => acks.push(ack.id));
    const sent = client.send({ conv: 'c1' }, { text: 'hello' }, { id: 'm1' });
    await flush();
    transport.current.drop();
    server.ackSends = true;
    await flush();
    clock.advance(1_000);
    await flush();
    await expect(sent).resolves.toMatchObject({ id: 'm1', seq: 1 });
    const ids = transport.connections.flatMap((c) => c.requests('send').map((r) => r.id));
    expect(ids).toEqual(['m1', 'm1']);
    expect(server.stored.get('c1')).toHaveLength(1);
    expect(acks).toEqual(['m1']);
  });

  it('resends on a live connection when the ack does not come within ackTimeoutMs', async () => {
    const { client, clock, transport, server } = rig({ ackTimeoutMs: 5_000 });
    await client.connect();
    await flush();
    server.ackSends = false;
    server.echo = false;
    const sent = client.send({ conv: 'c1' }, { text: 'x' }, { id: 'm1' });
    await flush();
    server.ackSends = true;
    clock.advance(5_000);
    await flush();
    await expect(sent).resolves.toMatchObject({ seq: 1 });
    expect(transport.current.requests('send').map((r) => r.id)).toEqual(['m1', 'm1']);
  });

  it('treats the echo of its own id as the ack when the echo comes first', async () => {
    const { client, server, messages } = rig();
    await client.connect();
    await flush();
    server.ackSends = false;
    const sent = await client.send({ conv: 'c1' }, { text: 'mine' }, { id: 'm1' });
    expect(sent).toMatchObject({ id: 'm1', conv: 'c1', seq: 1 });
    await flush();
    expect(messages).toMatchObject([{ seq: 1, own: true, source: 'live', id: 'm1' }]);
  });

  it('survives an app restart: a new client on the same store sends the queued message', async () => {
    const store = new MemoryStore();
    const before = rig({}, { store });
    const lost = before.client.send({ conv: 'c1' }, { text: 'queued' }, { id: 'm1' });
    await flush();
    await before.client.close();
    await expect(lost).rejects.toMatchObject({ code: 'disconnected' });

    const after = rig({}, { store });
    const acks: string[] = [];
    after.client.on('ack', (ack) => acks.push(ack.id));
    await after.client.connect();
    await flush();
    expect(after.transport.current.requests('send').map((r) => r.id)).toEqual(['m1']);
    expect(acks).toEqual(['m1']);
    expect(await store.outboxList()).toEqual([]);
  });

  it('publishes what a previous run queued before what this run sends', async () => {
    const store = new MemoryStore();
    await store.outboxPut({ id: 'old-1', conv: 'c1', body: { text: 'from the last run' }, created_at: 1 });
    const { client, transport } = rig({}, { store });
    const fresh = client.send({ conv: 'c1' }, { text: 'new' }, { id: 'new-1' });
    await client.connect();
    await fresh;
    expect(transport.current.requests('send').map((r) => r.id)).toEqual(['old-1', 'new-1']);
  });

  it('rejects a second client on a store that belongs to another account', async () => {
    const store = new MemoryStore();
    await store.setMeta('account', 'bob:phone');
    const { client } = rig({}, { store });
    await expect(client.connect()).rejects.toMatchObject({ code: 'bad_request' });
    await expect(client.send({ conv: 'c1' }, { text: 'x' })).rejects.toMatchObject({ code: 'bad_request' });
    expect(await store.outboxList()).toEqual([]);
  });

  it('retries rate_limited with the same id, drops a refused send and rejects it', async () => {
    const { client, clock, transport, server } = rig();
    await client.connect();
    await flush();
    let refuse = true;
    const original = transport.requestHandler!;
    transport.requestHandler = (request, connection) => {
      if (request.type === 'send' && request.id === 'slow' && refuse) {
        refuse = false;
        connection.push('chat/alice/phone/in', { type: 'error', ref: 'slow', code: 'rate_limited', message: 'slow down' });
        return;
      }
      if (request.type === 'send' && request.id === 'bad') {
        connection.push('chat/alice/phone/in', { type: 'error', ref: 'bad', code: 'not_member', message: 'no' });
        return;
      }
      original(request, connection);
    };
    const slow = client.send({ conv: 'c1' }, { text: 'a' }, { id: 'slow' });
    const bad = client.send({ conv: 'c9' }, { text: 'b' }, { id: 'bad' });
    await expect(bad).rejects.toMatchObject({ code: 'not_member', retryable: false, ref: 'bad' });
    await flush();
    clock.advance(60_000);
    await flush();
    await expect(slow).resolves.toMatchObject({ seq: 1 });
    expect(transport.current.requests('send').filter((r) => r.id === 'slow')).toHaveLength(2);
    expect(client.pendingSends()).toEqual([]);
    void server;
  });

  it('validates the target and the id before queueing', async () => {
    const { client } = rig();
    await expect(client.send({} as never, { text: 'x' })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(client.send({ conv: 'c', to: 'b' } as never, { text: 'x' })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(client.send({ conv: 'c' }, { text: 'x' }, { id: 'x'.repeat(65) })).rejects.toMatchObject({ code: 'bad_request' });
  });
});

describe('receive path', () => {
  const msg = (seq: number, from = 'bob') => ({ type: 'msg', conv: 'c1', seq, id: `b${seq}`, from, ts: seq, body: { text: `m${seq}` } });

  it('releases messages in seq order, drops duplicates, and fills a gap with sync', async () => {
    const { client, clock, transport, server, messages, store } = rig();
    await client.connect();
    await flush();
    for (let seq = 1; seq <= 5; seq++) server.storeFrom('bob', 'c1', `m${seq}`);
    const connection = transport.current;
    connection.push('chat/alice/in', msg(1));
    connection.push('chat/alice/in', msg(3));
    connection.push('chat/alice/in', msg(1));
    connection.push('chat/alice/in', msg(5));
    await flush();
    expect(messages.map((m) => m.seq)).toEqual([1]);
    expect(client.conversationState('c1')).toMatchObject({ synced_seq: 1, last_seq: 5 });
    const syncsBefore = connection.rpcs('sync').length;
    clock.advance(300);
    await flush();
    const gapSync = connection.rpcs('sync').at(-1)!;
    expect(connection.rpcs('sync')).toHaveLength(syncsBefore + 1);
    expect(gapSync.params).toMatchObject({ convs: { c1: 1 } });
    expect(messages.map((m) => `${m.seq}:${m.source}`)).toEqual(['1:live', '2:sync', '3:live', '4:sync', '5:live']);
    connection.push('chat/alice/in', msg(4));
    await flush();
    expect(messages).toHaveLength(5);
    expect((await store.listMessages('c1')).map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('sends one cumulative delivered receipt with the highest contiguous seq', async () => {
    const { client, clock, transport } = rig({ receiptDelayMs: 200 });
    await client.connect();
    await flush();
    const connection = transport.current;
    for (const seq of [1, 2, 3]) connection.push('chat/alice/in', msg(seq));
    await flush();
    expect(connection.requests('receipt')).toEqual([]);
    clock.advance(200);
    await flush();
    expect(connection.requests('receipt')).toEqual([{ type: 'receipt', conv: 'c1', seq: 3, status: 'delivered' }]);
    connection.push('chat/alice/in', msg(4, 'alice'));
    await flush();
    clock.advance(1_000);
    await flush();
    expect(connection.requests('receipt')).toHaveLength(1); // own messages need no delivered receipt
  });

  it('can turn automatic delivered receipts off', async () => {
    const { client, clock, transport } = rig({ autoDeliveredReceipts: false });
    await client.connect();
    transport.current.push('chat/alice/in', msg(1));
    await flush();
    clock.advance(5_000);
    await flush();
    expect(transport.current.requests('receipt')).toEqual([]);
  });

  it('markRead publishes a read receipt and tracks unread and members’ marks', async () => {
    const { client, transport } = rig();
    await client.connect();
    const connection = transport.current;
    for (const seq of [1, 2, 3, 4]) connection.push('chat/alice/in', msg(seq));
    await flush();
    expect(client.conversationState('c1')).toMatchObject({ last_seq: 4, read_seq: 0, unread: 4 });
    await client.markRead('c1', 3);
    expect(connection.requests('receipt').filter((r) => r.status === 'read')).toEqual([{ type: 'receipt', conv: 'c1', seq: 3, status: 'read' }]);
    expect(client.conversationState('c1')).toMatchObject({ read_seq: 3, unread: 1 });
    connection.push('chat/alice/in', { type: 'receipt', conv: 'c1', user: 'bob', seq: 2, status: 'read' });
    connection.push('chat/alice/in', { type: 'receipt', conv: 'c1', user: 'bob', seq: 4, status: 'delivered' });
    connection.push('chat/alice/in', { type: 'receipt', conv: 'c1', user: 'alice', seq: 4, status: 'read' });
    await flush();
    expect(client.conversationState('c1')).toMatchObject({ read_seq: 4, unread: 0, members: { bob: { delivered: 4, read: 2 } } });
  });

  it('stores conversation events in the sequence and emits them as conversation events', async () => {
    const { client, transport, messages } = rig();
    const events: string[] = [];
    client.on('conversation', (event) => events.push(`${event.event}:${event.user}:${event.seq}`));
    await client.connect();
    transport.current.push('chat/alice/in', { type: 'conv', conv: 'c1', seq: 1, ts: 5, event: 'member_added', user: 'carol', by: 'bob' });
    transport.current.push('chat/alice/in', msg(2));
    await flush();
    expect(events).toEqual(['member_added:carol:1']);
    expect(messages.map((m) => m.seq)).toEqual([2]);
    expect(client.conversationState('c1')?.synced_seq).toBe(2);
  });
});

describe('fan-out changes', () => {
  it('subscribes to group/{conv} on fanout_changed, syncs, and unsubscribes when it goes back', async () => {
    const { client, transport, server } = rig();
    await client.connect();
    await flush();
    const connection = transport.current;
    const syncs = connection.rpcs('sync').length;
    connection.push('chat/alice/in', { type: 'conv', conv: 'g1', seq: 1, ts: 1, event: 'fanout_changed', by: 'bob', topic: 'group/g1' });
    await flush();
    expect(connection.subscriptions.get('group/g1')).toBe(1);
    expect(connection.rpcs('sync').length).toBeGreaterThan(syncs);
    expect(client.conversationState('g1')?.topic).toBe('group/g1');
    // After a reconnect the group topic is subscribed again, before anything else is asked.
    server.rpcOverrides.set('conversations', () => ({
      convs: [{ conv: 'g1', kind: 'group', name: 'big', members: 3000, last_seq: 1, read_seq: 0, unread: 1, topic: 'group/g1' }],
    }));
    connection.drop();
    await flush();
    client.reconnectNow();
    await flush();
    const next = transport.current;
    expect(next).not.toBe(connection);
    expect(next.subscribeCalls[1]).toEqual(['group/g1']);
    expect(next.subscriptions.get('group/g1')).toBe(1);
    next.push('chat/alice/in', { type: 'conv', conv: 'g1', seq: 2, ts: 2, event: 'fanout_changed', by: 'bob' });
    await flush();
    expect(next.unsubscribed).toEqual(['group/g1']);
    expect(client.conversationState('g1')?.topic).toBeNull();
  });

  it('takes large-group topics from the conversations answer', async () => {
    const { client, transport, server } = rig();
    server.rpcOverrides.set('conversations', () => ({
      convs: [{ conv: 'g2', kind: 'channel', name: 'news', members: 5000, last_seq: 900, read_seq: 850, unread: 50, topic: 'group/g2' }],
    }));
    await client.connect();
    await flush();
    expect(transport.current.subscriptions.get('group/g2')).toBe(1);
    // A conversation new to this device is synced from initialSyncWindow (200) below its last seq.
    expect(transport.current.rpcs('sync').at(-1)!.params).toMatchObject({ convs: { g2: 700 } });
    expect(client.conversationState('g2')).toMatchObject({ kind: 'channel', name: 'news', unread: 50 });
  });
});

describe('stale answers', () => {
  it('a conversations answer older than a fanout_changed event does not undo it', async () => {
    const { client, transport } = rig();
    const original = transport.requestHandler!;
    let heldConversations: (() => void) | undefined;
    transport.requestHandler = (request, connection) => {
      if (request.type === 'rpc' && request.method === 'conversations') {
        // Answered as the server saw it before the group grew: no topic.
        heldConversations = () =>
          connection.push('chat/alice/phone/in', {
            type: 'rpc',
            ref: request.id,
            result: { convs: [{ conv: 'g1', kind: 'group', name: 'old name', members: 3, last_seq: 1, read_seq: 0, unread: 1 }] },
          });
        return;
      }
      original(request, connection);
    };
    await client.connect();
    await flush();
    transport.current.push('chat/alice/in', { type: 'conv', conv: 'g1', seq: 1, ts: 1, event: 'fanout_changed', by: 'bob', topic: 'group/g1' });
    await flush();
    heldConversations!();
    await flush();
    expect(client.conversationState('g1')?.topic).toBe('group/g1');
    expect(transport.current.subscriptions.get('group/g1')).toBe(1);
  });
});

describe('rpc', () => {
  it('maps server errors to ChatError with code and ref, and times out', async () => {
    const { client, clock, transport, server } = rig({ rpcTimeoutMs: 2_000 });
    server.rpcOverrides.set('group.add', () => ({ error: 'forbidden' }));
    await client.connect();
    const refused = client.group.add('c1', ['carol']);
    await expect(refused).rejects.toBeInstanceOf(ChatError);
    await expect(refused).rejects.toMatchObject({ code: 'forbidden', retryable: false });
    transport.requestHandler = undefined;
    const slow = client.profile.get('bob');
    await flush();
    clock.advance(2_000);
    await expect(slow).rejects.toMatchObject({ code: 'timeout', retryable: true });
  });

  it('publishes every DESIGN method with its params', async () => {
    const { client, transport } = rig();
    await client.connect();
    await client.group.create('team', ['bob'], 'group');
    await client.group.remove('c1', ['bob']);
    await client.group.leave('c1');
    await client.group.role('c1', 'bob', 'admin');
    await client.group.settings('c1', { announce_only: true });
    await client.group.info('c1');
    await client.block('bob');
    await client.unblock('bob');
    await client.profile.set({ name: 'Alice' });
    await client.media.upload({ conv: 'c1', content_type: 'image/png', size: 3, sha256: 'ab' });
    await client.media.get('m_1');
    expect(transport.current.rpcs().filter((r) => r.method !== 'conversations' && r.method !== 'sync').map((r) => [r.method, r.params])).toEqual([
      ['group.create', { name: 'team', members: ['bob'], kind: 'group' }],
      ['group.remove', { conv: 'c1', users: ['bob'] }],
      ['group.leave', { conv: 'c1' }],
      ['group.role', { conv: 'c1', user: 'bob', role: 'admin' }],
      ['group.settings', { conv: 'c1', announce_only: true }],
      ['group.info', { conv: 'c1' }],
      ['block', { user: 'bob' }],
      ['unblock', { user: 'bob' }],
      ['profile.set', { name: 'Alice' }],
      ['media.upload', { conv: 'c1', content_type: 'image/png', size: 3, sha256: 'ab' }],
      ['media.get', { id: 'm_1' }],
    ]);
  });

  it('re-sends a read-only request after a reconnect but fails a changing one with disconnected', async () => {
    const { client, clock, transport } = rig({ rpcTimeoutMs: 30_000 });
    await client.connect();
    await flush();
    const handler = transport.requestHandler;
    transport.requestHandler = undefined;
    const info = client.group.info('c1');
    const create = client.group.create('x', []);
    await flush();
    transport.requestHandler = handler;
    transport.current.drop();
    await expect(create).rejects.toMatchObject({ code: 'disconnected' });
    clock.advance(1_000);
    await flush();
    await expect(info).resolves.toEqual({});
    expect(transport.current.rpcs('group.info')).toHaveLength(1);
  });
});

describe('typing and presence', () => {
  it('publishes typing at QoS 0 at most once per second and idle after 3 s; send() ends typing', async () => {
    const { client, clock, transport } = rig();
    await client.connect();
    for (let i = 0; i < 15; i++) {
      client.typing('c1');
      clock.advance(100);
    }
    await flush();
    const typing = () => transport.current.published.filter((p) => p.topic === 'typing/c1');
    expect(typing().map((p) => [p.json.state, p.qos])).toEqual([['typing', 0], ['typing', 0]]);
    expect(typing()[0]!.json).toEqual({ user: 'alice', state: 'typing' });
    clock.advance(3_000);
    expect(typing().map((p) => p.json.state)).toEqual(['typing', 'typing', 'idle']);
    client.typing('c1');
    void client.send({ conv: 'c1' }, { text: 'done' });
    expect(typing().map((p) => p.json.state)).toEqual(['typing', 'typing', 'idle', 'typing', 'idle']);
  });

  it('reports others typing, ignores its own echo, and expires after 6 s', async () => {
    const { client, clock, transport } = rig();
    const changes: string[] = [];
    client.on('typing', (t) => changes.push(`${t.user}:${t.state}`));
    await client.connect();
    await client.watchTyping('c1');
    expect(transport.current.subscriptions.get('typing/c1')).toBe(0);
    transport.current.push('typing/c1', { user: 'alice', state: 'typing' });
    transport.current.push('typing/c1', { user: 'bob', state: 'typing', ts: 1 });
    expect(client.typingUsers('c1')).toEqual(['bob']);
    clock.advance(6_000);
    expect(changes).toEqual(['bob:typing', 'bob:idle']);
  });

  it('watches presence from the retained state and refuses what the ACL refuses', async () => {
    const { client, transport } = rig();
    const seen: string[] = [];
    client.on('presence', (p) => seen.push(`${p.user}:${p.state}:${p.devices}`));
    await client.connect();
    await client.watchPresence('bob');
    transport.current.push('presence/bob', { state: 'online', last_seen: 5, devices: 2 });
    expect(seen).toEqual(['bob:online:2']);
    expect(client.presence('bob')).toEqual({ user: 'bob', state: 'online', last_seen: 5, devices: 2 });
    transport.refusedTopics.add('presence/mallory');
    await expect(client.watchPresence('mallory')).rejects.toMatchObject({ code: 'forbidden' });
    await client.unwatchPresence('bob');
    expect(transport.current.subscriptions.has('presence/bob')).toBe(false);
  });
});

describe('history', () => {
  it('serves a complete local page without the network, and asks the server otherwise', async () => {
    const { client, transport, server } = rig();
    for (let seq = 1; seq <= 10; seq++) server.storeFrom('bob', 'c1', `m${seq}`);
    server.rpcOverrides.set('history', (params) => {
      const before = (params.before as number | undefined) ?? 11;
      const limit = params.limit as number;
      const all = server.stored.get('c1')!.filter((m) => (m.seq as number) < before);
      return { messages: all.slice(-limit), more: all.length > limit };
    });
    await client.connect();
    await flush();
    const historyCalls = () => transport.current.rpcs('history').length;
    const local = await client.history('c1', { before: 8, limit: 3 });
    expect(local).toMatchObject({ more: true });
    expect(local.messages.map((m) => m.seq)).toEqual([5, 6, 7]);
    expect(historyCalls()).toBe(0);
    await client.store.clear();
    const remote = await client.history('c1', { before: 4, limit: 5 });
    expect(remote.messages.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(remote.more).toBe(false);
    expect(historyCalls()).toBe(1);
    expect((await client.store.listMessages('c1')).map((m) => m.seq)).toEqual([1, 2, 3]);
  });
});
