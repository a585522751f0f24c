/**
 * PresenceService on fake time (FakeClock): debounce, takeover, expiry of dead nodes,
 * privacy, typing throttle and will decisions - over the memory store and over Redis.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { FakeClock } from '../../core/clock.ts';
import { createMetrics } from '../../core/metrics.ts';
import { createLogger } from '../../core/log.ts';
import type { UserRow } from '../../core/store.ts';
import { PresenceService, TypingThrottle } from '../../broker/presence.ts';
import { MemoryPresenceStore, type PresenceStore } from '../../broker/presence-store.ts';
import { RedisPresenceStore } from '../../broker/presence-redis.ts';
import { decideWill, parseTyping } from '../../broker/presence-rules.ts';
import { uniquePrefix } from '../helpers/services.ts';
import { connectRedis, deleteKeys } from './redis.ts';

const log = createLogger('silent');

interface Published {
  topic: string;
  payload: Record<string, unknown>;
  opts?: { qos?: 0 | 1; retain?: boolean };
}

/** The chat store as presence uses it: hide_last_seen and last seen. */
class FakeUsers {
  hide = new Set<string>();
  lastSeen = new Map<string, number>();
  async getUser(id: string): Promise<UserRow | undefined> {
    return { id, password_hash: '', name: null, about: null, avatar: null, hide_last_seen: this.hide.has(id), last_seen: this.lastSeen.get(id) ?? null };
  }
  async setLastSeen(id: string, ts: number): Promise<void> {
    this.lastSeen.set(id, Math.max(this.lastSeen.get(id) ?? 0, ts));
  }
}

type StoreFactory = () => Promise<{ store: () => PresenceStore; cleanup(): Promise<void> }>;

const backends: [string, StoreFactory][] = [
  ['memory', async () => {
    const shared = new MemoryPresenceStore();
    return { store: () => shared, cleanup: async () => {} };
  }],
  ['Redis', async () => {
    const redis = await connectRedis();
    const prefix = uniquePrefix('presence-svc');
    return {
      // every service gets its own view of one shared Redis, as nodes do
      store: () => new RedisPresenceStore({ redis, prefix }),
      async cleanup() {
        await deleteKeys(redis, prefix);
        await redis.quit();
      },
    };
  }],
];

for (const [backend, factory] of backends) {
  describe(`PresenceService over ${backend}`, () => {
    let clock: FakeClock;
    let users: FakeUsers;
    let services: PresenceService[];
    let cleanup: () => Promise<void>;
    let newStore: () => PresenceStore;

    function start(opts: { node?: string; debounceMs?: number; heartbeatMs?: number; nodeTtlMs?: number } = {}) {
      const published: Published[] = [];
      const svc = new PresenceService({
        store: users,
        presenceStore: newStore(),
        publish: async (topic, payload, o) => void published.push({ topic, payload, opts: o }),
        clock,
        metrics: createMetrics(),
        log,
        debounceMs: opts.debounceMs ?? 3_000,
        typingMinIntervalMs: 1_000,
        nodeId: opts.node ?? 'n1',
        heartbeatMs: opts.heartbeatMs,
        nodeTtlMs: opts.nodeTtlMs,
      });
      services.push(svc);
      const states = (user: string) => published.filter((p) => p.topic === `presence/${user}`).map((p) => p.payload);
      return { svc, published, states };
    }

    async function settle(): Promise<void> {
      for (let i = 0; i < 3; i++) for (const s of services) await s.settled();
    }

    /** Moves fake time in steps, letting the async steps of each timer finish. */
    async function tick(ms: number, step = 500): Promise<void> {
      await settle();
      for (let done = 0; done < ms; done += step) {
        clock.advance(Math.min(step, ms - done));
        await settle();
      }
    }

    beforeEach(async () => {
      clock = new FakeClock();
      users = new FakeUsers();
      services = [];
      ({ store: newStore, cleanup } = await factory());
    });
    afterEach(async () => {
      for (const s of services) await s.close();
      await cleanup();
    });

    it('announces online, retained QoS 1, on the first device only', async () => {
      const { svc, published, states } = start();
      await settle();
      const t = clock.now();
      svc.deviceConnected('alice', 'phone');
      svc.deviceConnected('alice', 'laptop');
      await settle();
      expect(states('alice')).toEqual([{ state: 'online', last_seen: t, devices: 1 }]);
      expect(published[0]!.opts).toEqual({ qos: 1, retain: true });
      expect(svc.connections.devicesOnline()).toBe(2);
    });

    it('a drop within the debounce window announces nothing; a lasting one once, with the time of the drop', async () => {
      const { svc, states } = start({ debounceMs: 3_000 });
      svc.deviceConnected('alice', 'phone');
      await tick(1_000);
      svc.deviceDisconnected('alice', 'phone');
      await tick(2_500);
      svc.deviceConnected('alice', 'phone');
      await tick(10_000);
      expect(states('alice').map((s) => s.state)).toEqual(['online']);

      const dropAt = clock.now();
      svc.deviceDisconnected('alice', 'phone');
      await tick(2_999, 2_999);
      expect(states('alice')).toHaveLength(1);
      await tick(1, 1);
      expect(states('alice')).toEqual([expect.objectContaining({ state: 'online' }), { state: 'offline', last_seen: dropAt, devices: 0 }]);
      expect(users.lastSeen.get('alice')).toBe(dropAt);
      await tick(10_000);
      expect(states('alice')).toHaveLength(2);
    });

    it('each new drop opens a new window, and last seen is the last drop', async () => {
      const { svc, states } = start({ debounceMs: 3_000 });
      svc.deviceConnected('alice', 'phone');
      await tick(500);
      svc.deviceDisconnected('alice', 'phone');
      await tick(1_000);
      svc.deviceConnected('alice', 'phone');
      await tick(1_000);
      const lastDrop = clock.now();
      svc.deviceDisconnected('alice', 'phone');
      await tick(2_500);
      expect(states('alice')).toHaveLength(1);
      await tick(1_000);
      expect(states('alice')[1]).toEqual({ state: 'offline', last_seen: lastDrop, devices: 0 });
    });

    it('with no debounce, a takeover by the same clientId announces nothing, a plain drop goes offline', async () => {
      const { svc, states } = start({ debounceMs: 0 });
      svc.deviceConnected('alice', 'phone');
      await tick(100);
      // aedes closes the old client and registers the new one in one go
      svc.deviceDisconnected('alice', 'phone');
      svc.deviceConnected('alice', 'phone');
      await tick(1_000);
      expect(states('alice').map((s) => s.state)).toEqual(['online']);
      svc.deviceDisconnected('alice', 'phone');
      await tick(0);
      clock.advance(0);
      await settle();
      expect(states('alice').map((s) => s.state)).toEqual(['online', 'offline']);
    });

    it('two devices: one leaves and the user stays online; the last one takes it offline', async () => {
      const { svc, states } = start({ debounceMs: 1_000 });
      svc.deviceConnected('alice', 'phone');
      svc.deviceConnected('alice', 'laptop');
      await tick(100);
      svc.deviceDisconnected('alice', 'phone');
      await tick(5_000);
      expect(states('alice').map((s) => s.state)).toEqual(['online']);
      svc.deviceDisconnected('alice', 'laptop');
      await tick(1_000);
      expect(states('alice').map((s) => s.state)).toEqual(['online', 'offline']);
    });

    it('hide_last_seen: online and offline without last seen, Postgres still gets it', async () => {
      users.hide.add('alice');
      const { svc, states } = start({ debounceMs: 0 });
      svc.deviceConnected('alice', 'phone');
      await tick(100);
      const dropAt = clock.now();
      svc.deviceDisconnected('alice', 'phone');
      await tick(100);
      expect(states('alice')).toEqual([
        { state: 'online', last_seen: null, devices: 1 },
        { state: 'offline', last_seen: null, devices: 0 },
      ]);
      expect(users.lastSeen.get('alice')).toBe(dropAt);
    });

    it('refresh republishes the current state with the current privacy', async () => {
      const { svc, states } = start({ debounceMs: 0 });
      svc.deviceConnected('alice', 'phone');
      await tick(100);
      users.hide.add('alice');
      await svc.refresh('alice');
      expect(states('alice')[1]).toEqual({ state: 'online', last_seen: null, devices: 1 });
      svc.deviceDisconnected('alice', 'phone');
      await tick(100);
      users.hide.delete('alice');
      await svc.refresh('alice');
      expect(states('alice')[3]).toEqual({ state: 'offline', last_seen: users.lastSeen.get('alice'), devices: 0 });
    });

    it('a crashed node: another node announces its users offline after the TTL, with its last heartbeat', async () => {
      const a = start({ node: 'a', heartbeatMs: 1_000, nodeTtlMs: 3_000 });
      const b = start({ node: 'b', heartbeatMs: 1_000, nodeTtlMs: 3_000 });
      await settle();
      a.svc.deviceConnected('carol', 'phone');
      b.svc.deviceConnected('carol', 'laptop');
      b.svc.deviceConnected('bob', 'phone');
      await tick(2_000);
      const lastBeatOfB = clock.now();
      // b stops heartbeating and never disconnects anyone (a crash), its retained "online" stays
      b.svc['closed'] = true;
      b.svc['beatTimer']?.cancel();
      await tick(2_900);
      expect(a.states('bob')).toEqual([]);
      await tick(1_500);
      expect(a.states('bob')).toEqual([{ state: 'offline', last_seen: lastBeatOfB, devices: 0 }]);
      expect(a.states('carol').map((s) => s.state)).toEqual(['online']); // still on a
      expect(users.lastSeen.get('bob')).toBe(lastBeatOfB);
      await tick(5_000);
      expect(a.states('bob')).toHaveLength(1);
    });

    it('a node that was taken for dead registers its connections again and announces them online', async () => {
      const a = start({ node: 'a', heartbeatMs: 1_000, nodeTtlMs: 3_000 });
      const b = start({ node: 'b', heartbeatMs: 10_000, nodeTtlMs: 30_000 }); // a slow heartbeat
      await settle();
      b.svc.deviceConnected('bob', 'phone');
      await tick(8_000);
      expect(a.states('bob')).toEqual([{ state: 'offline', last_seen: expect.any(Number), devices: 0 }]);
      await tick(3_000); // b's heartbeat at 10 s finds itself unknown
      expect(b.states('bob').map((s) => s.state)).toEqual(['online', 'online']);
      b.svc.deviceDisconnected('bob', 'phone');
      await tick(4_000);
      expect(b.states('bob').map((s) => s.state)).toEqual(['online', 'online', 'offline']);
    });

    it('a node that starts again under the same id announces what its previous life left offline', async () => {
      const old = start({ node: 'x', heartbeatMs: 1_000 });
      old.svc.deviceConnected('bob', 'phone');
      old.svc.deviceConnected('carol', 'phone');
      await tick(1_000);
      const lastBeat = clock.now();
      old.svc['closed'] = true; // a crash: no disconnects, no more heartbeats
      old.svc['beatTimer']?.cancel();
      await tick(500);
      const again = start({ node: 'x', heartbeatMs: 1_000 });
      await settle();
      expect(again.states('bob')).toEqual([{ state: 'offline', last_seen: lastBeat, devices: 0 }]);
      again.svc.deviceConnected('bob', 'phone');
      await settle();
      expect(again.states('bob').map((s) => s.state)).toEqual(['offline', 'online']);
    });

    it('after close, hooks change nothing', async () => {
      const { svc, states } = start({ debounceMs: 0 });
      svc.deviceConnected('alice', 'phone');
      await settle();
      await svc.close();
      svc.deviceDisconnected('alice', 'phone');
      svc.deviceConnected('bob', 'phone');
      await tick(1_000);
      expect(states('alice').map((s) => s.state)).toEqual(['online']);
      expect(states('bob')).toEqual([]);
    });

    it('typing: the payload is rewritten, a lie about the user or a bad payload is dropped, one per second', async () => {
      const { svc } = start();
      const t = (user: string, body: unknown) => svc.typing(user, 'c1', Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)));
      expect(t('alice', { user: 'bob', state: 'typing' })).toBeUndefined();
      expect(t('alice', 'not json')).toBeUndefined();
      expect(t('alice', { user: 'alice', state: 'dancing' })).toBeUndefined();
      const out = t('alice', { user: 'alice', state: 'typing', extra: 'x'.repeat(100) });
      expect(JSON.parse(out!.toString())).toEqual({ user: 'alice', state: 'typing', ts: clock.now() });
      expect(t('alice', { user: 'alice', state: 'idle' })).toBeUndefined(); // within the second
      expect(t('bob', { user: 'bob', state: 'typing' })).toBeDefined(); // another user
      expect(svc.typing('alice', 'c2', Buffer.from(JSON.stringify({ user: 'alice', state: 'typing' })))).toBeDefined(); // another conv
      clock.advance(1_000);
      expect(JSON.parse(t('alice', { user: 'alice', state: 'idle' })!.toString())).toMatchObject({ state: 'idle' });
    });

    it('wills: own presence will replaced, someone else\'s refused and counted, others kept', async () => {
      const metrics = createMetrics();
      const svc = new PresenceService({ store: users, presenceStore: newStore(), publish: async () => {}, clock, metrics, log, debounceMs: 0, typingMinIntervalMs: 1_000, nodeId: 'w' });
      services.push(svc);
      const will = (topic: string) => ({ topic, payload: Buffer.from('{"state":"online"}'), qos: 1 as const, retain: true });
      expect(svc.connectWill('alice:phone', will('presence/alice'))).toBeUndefined();
      expect(svc.connectWill('mallory:phone', will('presence/alice'))).toBeUndefined();
      const other = will('chat/alice/phone/out');
      expect(svc.connectWill('alice:phone', other)).toBe(other);
      expect((await metrics.aclDenials.get()).values).toEqual([expect.objectContaining({ labels: { action: 'will' }, value: 1 })]);
    });
  });
}

describe('TypingThrottle', () => {
  it('one event per user per conversation per interval, whatever the state', () => {
    const clock = new FakeClock();
    const th = new TypingThrottle(clock, 1_000);
    expect(th.allow('alice', 'c1')).toBe(true);
    clock.advance(999);
    expect(th.allow('alice', 'c1')).toBe(false);
    clock.advance(1);
    expect(th.allow('alice', 'c1')).toBe(true);
    expect(th.allow('alice', 'c2')).toBe(true);
    expect(th.allow('bob', 'c1')).toBe(true);
    // a dropped event does not restart the interval
    clock.advance(500);
    expect(th.allow('alice', 'c1')).toBe(false);
    clock.advance(500);
    expect(th.allow('alice', 'c1')).toBe(true);
  });

  it('keeps memory bounded: old entries are swept as the map grows', () => {
    const clock = new FakeClock();
    const th = new TypingThrottle(clock, 1_000);
    for (let i = 0; i < 50_000; i++) {
      th.allow(`u${i}`, 'c');
      clock.advance(1);
    }
    expect(th.size).toBeLessThan(4_000);
    expect(th.allow('u49999', 'c')).toBe(false); // recent entries are kept
  });
});

describe('presence rules', () => {
  const will = (topic: string, payload = '{"state":"offline"}') => ({ topic, payload: Buffer.from(payload), qos: 1 as const, retain: true });

  it.each([
    ['alice:phone', 'presence/alice', 'replaced'],
    ['alice:phone', 'presence/bob', 'refused'],
    ['alice:phone', 'presence/alice/x', 'refused'],
    ['alice:phone', 'presence', 'refused'],
    ['', 'presence/alice', 'refused'],
    ['not-a-chat-client', 'presence/alice', 'refused'],
    ['alice:phone', 'chat/alice/phone/out', 'kept'],
    ['alice:phone', 'typing/c_1', 'kept'],
    ['', 'sensors/1/status', 'kept'],
  ])('will of %s on %s: %s', (clientId, topic, verdict) => {
    const d = decideWill(clientId, will(topic));
    expect(d.verdict).toBe(verdict);
    expect(d.will === undefined).toBe(verdict !== 'kept');
  });

  it('a will that is not JSON is replaced all the same', () => {
    expect(decideWill('alice:phone', will('presence/alice', 'online!'))).toEqual({ verdict: 'replaced', will: undefined, claimed: null });
  });

  it('parseTyping', () => {
    expect(parseTyping('alice', Buffer.from('{"user":"alice","state":"typing"}'))).toEqual({ state: 'typing' });
    expect(parseTyping('alice', Buffer.from('{"user":"alice","state":"idle"}'))).toEqual({ state: 'idle' });
    expect(parseTyping('alice', Buffer.from('{"user":"bob","state":"idle"}'))).toHaveProperty('drop');
    expect(parseTyping('alice', Buffer.from('[]'))).toHaveProperty('drop');
    expect(parseTyping('alice', Buffer.from('null'))).toHaveProperty('drop');
    expect(parseTyping('alice', Buffer.from(JSON.stringify({ user: 'alice', state: 'typing', pad: 'x'.repeat(2000) })))).toEqual({ drop: 'too large' });
  });
});
