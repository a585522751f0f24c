/**
 * Presence and typing with real mqtt.js clients against the real platform, with no
 * debounce (presenceDebounceMs 0, the test default). Debounce has its own file
 * (presence-debounce.test.ts). Each test uses its own users on one platform. The chat
 * store is PostgreSQL: it starts in well under a second where PGlite takes seconds, and
 * presence only reads hide_last_seen and writes last_seen there.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';
import { Device } from '../helpers/mqtt.ts';
import { newUser, presenceOf, shareDm, silentClient, sleep, until, waitPresence, watch } from './helpers.ts';

describe('presence and typing over MQTT', () => {
  let p: TestPlatform;
  const devices: Device[] = [];
  const track = (d: Device) => (devices.push(d), d);

  beforeAll(async () => {
    p = await startPlatform({ store: 'postgres' });
  });
  afterAll(async () => {
    for (const d of devices) await d.close();
    await p?.close();
  });

  /** The will aedes holds for a connected client, in memory or in its persistence. */
  async function storedWill(clientId: string): Promise<unknown> {
    const aedes = p.platform.broker.aedes;
    const client = (aedes as unknown as { clients: Record<string, { will?: unknown }> }).clients[clientId];
    const { persistence } = aedes as unknown as { persistence: { getWill(c: { id: string; brokerId: string }): Promise<unknown> } };
    const persisted = await persistence.getWill({ id: clientId, brokerId: aedes.id });
    return client?.will ?? persisted;
  }

  /** alice (connected) and bob (connected, watching alice), sharing a 1:1 conversation. */
  async function pair() {
    const a = await newUser(p, 'alice');
    const b = await newUser(p, 'bob');
    const bob = track(await b.connect());
    const conv = await shareDm(bob, a.user);
    return { a, b, bob, conv };
  }

  it('online on connect; offline with last seen after a clean DISCONNECT; last seen stored', async () => {
    const { a, bob } = await pair();
    expect(await watch(bob, a.user)).toBe(1);
    const alice = await a.connect();
    const online = await waitPresence(bob, a.user, 'online');
    expect(online).toMatchObject({ state: 'online', devices: 1 });
    expect(typeof online.last_seen).toBe('number');

    const before = Date.now();
    await alice.client.endAsync(); // DISCONNECT, then the socket closes
    const offline = await waitPresence(bob, a.user, 'offline');
    expect(offline).toEqual({ state: 'offline', last_seen: expect.any(Number), devices: 0, _topic: `presence/${a.user}` });
    expect(offline.last_seen as number).toBeGreaterThanOrEqual(before - 5);
    expect(offline.last_seen as number).toBeLessThanOrEqual(Date.now());
    // written to the chat store (survives restarts), visible to a contact
    const profile = await bob.rpc('profile.get', { user: a.user });
    expect(profile.last_seen).toBe(offline.last_seen);
    // retained: a late subscriber gets the same state at once
    await bob.client.unsubscribeAsync(`presence/${a.user}`);
    bob.events.length = 0;
    await watch(bob, a.user);
    expect(await waitPresence(bob, a.user, 'offline')).toMatchObject({ last_seen: offline.last_seen });
  });

  it('a retained online state is there for a contact that subscribes later', async () => {
    const { a, bob } = await pair();
    track(await a.connect());
    await sleep(100);
    await watch(bob, a.user);
    expect(await waitPresence(bob, a.user, 'online')).toMatchObject({ devices: 1 });
  });

  it('offline after a socket destroyed without DISCONNECT', async () => {
    const { a, bob } = await pair();
    await watch(bob, a.user);
    const alice = await a.connect();
    await waitPresence(bob, a.user, 'online');
    alice.client.stream.destroy();
    expect(await waitPresence(bob, a.user, 'offline')).toMatchObject({ devices: 0, last_seen: expect.any(Number) });
  });

  it('offline after a keepalive timeout (a client that goes silent)', async () => {
    const { a, bob } = await pair();
    await watch(bob, a.user);
    const socket = await silentClient(p.mqttUrl, a.user, 'default', a.token, 1);
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    const connectedAt = Date.now();
    await waitPresence(bob, a.user, 'online');
    const closedAt = await closed; // the broker closes it after 1.5 x keepalive
    expect(closedAt - connectedAt).toBeGreaterThanOrEqual(1_000);
    const offline = await waitPresence(bob, a.user, 'offline');
    expect(offline.last_seen as number).toBeGreaterThanOrEqual(connectedAt + 1_000);
  });

  it('a takeover by the same clientId: no offline at all, still online', async () => {
    const { a, bob } = await pair();
    await watch(bob, a.user);
    const first = await a.connect();
    await waitPresence(bob, a.user, 'online');
    const firstClosed = new Promise<void>((resolve) => first.client.once('close', () => resolve()));
    const second = track(await a.connect()); // same clientId {user}:default
    await firstClosed;
    await sleep(500);
    expect(presenceOf(bob, a.user).map((e) => e.state)).toEqual(['online']);
    expect(second.client.connected).toBe(true);
    // the retained state says online
    await bob.client.unsubscribeAsync(`presence/${a.user}`);
    bob.events.length = 0;
    await watch(bob, a.user);
    expect(await waitPresence(bob, a.user, 'online')).toBeTruthy();
    expect(presenceOf(bob, a.user).map((e) => e.state)).toEqual(['online']);
  });

  it('two devices: one leaves and the user is still online; the last one takes it offline', async () => {
    const { a, bob } = await pair();
    await watch(bob, a.user);
    const phone = await a.connect();
    const laptop = await a.connect('laptop');
    await waitPresence(bob, a.user, 'online');
    const devicesOnline = async () => (await p.platform.metrics.devicesOnline.get()).values[0]!.value;
    const usersOnline = async () => (await p.platform.metrics.usersOnline.get()).values[0]!.value;
    const [d0, u0] = [await devicesOnline(), await usersOnline()];
    await phone.client.endAsync();
    await sleep(400);
    expect(presenceOf(bob, a.user).map((e) => e.state)).toEqual(['online']);
    expect(await devicesOnline()).toBe(d0 - 1);
    expect(await usersOnline()).toBe(u0);
    await laptop.client.endAsync();
    await waitPresence(bob, a.user, 'offline');
    expect(await usersOnline()).toBe(u0 - 1);
    expect(presenceOf(bob, a.user).map((e) => e.state)).toEqual(['online', 'offline']);
  });

  it('a user with no shared conversation cannot subscribe (SUBACK 0x80), and its connection stays', async () => {
    const { a } = await pair();
    const c = await newUser(p, 'carol');
    const carol = track(await c.connect());
    expect(await watch(carol, a.user)).toBe(128);
    expect(carol.client.connected).toBe(true);
    expect(await carol.rpc('conversations')).toEqual({ convs: [] });
    // once they share a conversation, it may
    await shareDm(carol, a.user);
    expect(await watch(carol, a.user)).toBe(1);
  });

  it('hide_last_seen: others see online/offline only (last_seen null), at once and after', async () => {
    const { a, bob } = await pair();
    await watch(bob, a.user);
    const alice = await a.connect();
    await waitPresence(bob, a.user, 'online');
    await alice.rpc('profile.set', { hide_last_seen: true });
    const hidden = await waitPresence(bob, a.user, 'online', 2);
    expect(hidden).toMatchObject({ state: 'online', last_seen: null, devices: 1 });
    await alice.client.endAsync();
    expect(await waitPresence(bob, a.user, 'offline')).toMatchObject({ state: 'offline', last_seen: null, devices: 0 });
    const profile = await bob.rpc('profile.get', { user: a.user });
    expect(profile).not.toHaveProperty('last_seen');
  });

  it('a will on the own presence topic cannot claim online: the server announces offline itself', async () => {
    const { a, bob } = await pair();
    await watch(bob, a.user);
    const lie = { state: 'online', last_seen: 1, devices: 9 };
    const alice = await a.connect('default', { will: { topic: `presence/${a.user}`, payload: Buffer.from(JSON.stringify(lie)), qos: 1, retain: true } });
    await waitPresence(bob, a.user, 'online');
    // decided at CONNECT: aedes neither holds nor persists it (no broker can publish it later)
    expect(await storedWill(`${a.user}:default`)).toBeFalsy();
    alice.client.stream.destroy(); // no DISCONNECT: a will would be published now
    const offline = await waitPresence(bob, a.user, 'offline');
    expect(offline).toMatchObject({ state: 'offline', devices: 0 });
    expect(offline.last_seen as number).toBeGreaterThan(1);
    await sleep(300);
    expect(presenceOf(bob, a.user).map((e) => e.state)).toEqual(['online', 'offline']);
  });

  it("a will on someone else's presence topic is removed: it never reaches that user's watchers", async () => {
    const { a, bob } = await pair();
    track(await a.connect());
    await watch(bob, a.user);
    await waitPresence(bob, a.user, 'online');
    const m = await newUser(p, 'mallory');
    const mallory = await m.connect('default', {
      will: { topic: `presence/${a.user}`, payload: Buffer.from(JSON.stringify({ state: 'offline', last_seen: 1, devices: 0 })), qos: 1, retain: true },
    });
    expect(mallory.client.connected).toBe(true);
    expect(await storedWill(`${m.user}:default`)).toBeFalsy();
    mallory.client.stream.destroy();
    await sleep(500);
    expect(presenceOf(bob, a.user).map((e) => e.state)).toEqual(['online']);
    await bob.client.unsubscribeAsync(`presence/${a.user}`);
    bob.events.length = 0;
    await watch(bob, a.user);
    expect(await waitPresence(bob, a.user, 'online')).toBeTruthy();
  });

  it('typing: forwarded once per second, rewritten, never retained; a lie about the user is dropped', async () => {
    const { a, bob, conv } = await pair();
    const alice = track(await a.connect());
    await bob.client.subscribeAsync(`typing/${conv}`, { qos: 0 });
    const typingOf = () => bob.events.filter((e) => e._topic === `typing/${conv}`);
    const send = (body: Record<string, unknown>, opts: { retain?: boolean } = {}) =>
      alice.client.publishAsync(`typing/${conv}`, JSON.stringify(body), { qos: 0, retain: opts.retain ?? false });

    const t0 = Date.now();
    for (let i = 0; i < 5; i++) await send({ user: a.user, state: 'typing', extra: i });
    await until(() => typingOf().length >= 1, 5_000, 'typing');
    await sleep(300);
    expect(typingOf()).toEqual([{ user: a.user, state: 'typing', ts: expect.any(Number), _topic: `typing/${conv}` }]);

    await sleep(Math.max(0, t0 + 1_100 - Date.now()));
    await send({ user: bob.user, state: 'typing' }); // claims to be bob: dropped
    await send({ user: a.user, state: 'idle' }, { retain: true });
    await until(() => typingOf().length >= 2, 5_000, 'idle');
    await sleep(300);
    expect(typingOf().map((e) => [e.user, e.state])).toEqual([[a.user, 'typing'], [a.user, 'idle']]);
    expect(alice.client.connected).toBe(true);

    // never stored: a new subscription gets nothing retained
    await bob.client.unsubscribeAsync(`typing/${conv}`);
    bob.events.length = 0;
    await bob.client.subscribeAsync(`typing/${conv}`, { qos: 0 });
    await sleep(300);
    expect(typingOf()).toEqual([]);
  });

  it('typing from a non-member is refused: the publish closes its connection', async () => {
    const { conv } = await pair();
    const c = await newUser(p, 'carol');
    const carol = track(await c.connect());
    const closed = new Promise<void>((resolve) => carol.client.once('close', () => resolve()));
    carol.client.publish(`typing/${conv}`, JSON.stringify({ user: c.user, state: 'typing' }), { qos: 0 });
    await closed;
    expect(carol.client.connected).toBe(false);
  });
});
