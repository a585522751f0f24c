/**
 * The aedes persistence (broker sessions, retained messages, offline QoS 1 queues) with
 * two fixes for aedes 1.2.0's SUBSCRIBE handler, which calls
 * `persistence.addSubscriptions(client, packet.subscriptions)` once per granted topic
 * with *every* topic of the packet:
 *
 * 1. Only granted topics are stored. Otherwise a topic refused with SUBACK 0x80 next to
 *    a granted one lands in the client's persistent session, and QoS 1 messages on it
 *    (another user's inbox) are queued for that session while it is offline and handed
 *    over at its next connect (test/acl-persistence.test.ts).
 * 2. The N identical calls of one packet become one. aedes-persistence's broadcast
 *    (used by aedes-persistence-redis) waits for its `$SYS/sub/add` echo under a key made
 *    of the client and the first topic; N calls in flight at once overwrite each other's
 *    waiter and all but one never resolve, so a multi-topic SUBSCRIBE hangs in cluster mode.
 */
import { createRequire } from 'node:module';
import type { Client } from 'aedes';

type Subscription = { topic: string; qos: number };
type AsyncPersistence = {
  setup(broker: unknown): Promise<void>;
  addSubscriptions(client: Client, subs: Subscription[]): Promise<unknown>;
  [method: string]: unknown;
};

const granted = new WeakMap<Client, Set<string>>();

/** Called by authorizeSubscribe for every topic it decides on. */
export function recordSubscribeDecision(client: Client, topic: string, allowed: boolean): void {
  let topics = granted.get(client);
  if (!topics) granted.set(client, (topics = new Set()));
  if (allowed) topics.add(topic);
  else topics.delete(topic);
}

export function guardPersistence<P extends AsyncPersistence>(inner: P): P {
  // Per SUBSCRIBE packet (aedes passes the same array to each call): the topics already
  // handed to the store, and the stores in flight. Each call stores the granted topics not
  // stored yet, so the calls of one packet carry distinct first topics (distinct broadcast
  // keys) and every granted topic is stored once.
  const packets = new WeakMap<Subscription[], { stored: Set<string>; writes: Promise<unknown>[] }>();
  const addSubscriptions = async (client: Client, subs: Subscription[]): Promise<unknown> => {
    let packet = packets.get(subs);
    if (!packet) packets.set(subs, (packet = { stored: new Set(), writes: [] }));
    const topics = granted.get(client);
    const fresh = subs.filter((s) => topics?.has(s.topic) && !packet.stored.has(s.topic));
    for (const s of fresh) packet.stored.add(s.topic);
    if (fresh.length > 0) packet.writes.push(inner.addSubscriptions(client, fresh));
    await Promise.all(packet.writes);
    return client;
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'addSubscriptions') return addSubscriptions;
      const value: unknown = Reflect.get(target, prop, receiver);
      // Methods use private fields: call them on the real instance. A bound async
      // function is still an AsyncFunction, which aedes checks `setup` for.
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const require = createRequire(import.meta.url);

export function memoryPersistence(): AsyncPersistence {
  const memory = require('aedes-persistence') as () => AsyncPersistence;
  return guardPersistence(memory());
}

export function redisPersistence(opts: Record<string, unknown>): AsyncPersistence {
  const redis = require('aedes-persistence-redis') as (o: Record<string, unknown>) => AsyncPersistence;
  return guardPersistence(redis(opts));
}
