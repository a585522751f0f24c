/**
 * Status service (DESIGN section 4: presence/{user}, typing/{conv}; docs/presence.md).
 *
 * Presence is the server's: a user is online while any of its devices is connected, on
 * any node. The retained state `{"state","last_seen","devices"}` is published on the
 * first connect and once after the last disconnect has lasted the debounce window, so a
 * device that drops and comes back within it announces nothing. Wills on presence topics
 * are decided at CONNECT (presence-rules.ts). Connections live in a PresenceStore
 * (memory, or Redis shared by the nodes), which the node keeps alive by heartbeat; the
 * sweep that runs with each heartbeat announces the users of dead nodes offline.
 *
 * Typing is forwarded at most once per user per conversation per interval, only as the
 * server rewrites it, never stored.
 *
 * All steps of one user run in order (one promise chain per user), so that online and
 * offline are published in the order they happened. Time comes from the injected Clock.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { ChatStore } from '../core/store.ts';
import type { Metrics } from '../core/metrics.ts';
import type { Logger } from '../core/log.ts';
import { presenceTopic } from '../core/events.ts';
import type { StatusHooks } from './mqtt.ts';
import { rpcMethods, type RpcMethod } from './rpc.ts';
import { MemoryPresenceStore, type PresenceStore } from './presence-store.ts';
import { RedisPresenceStore } from './presence-redis.ts';
import { decideWill, parseTyping, presencePayload, type PresenceState, type Will } from './presence-rules.ts';

export type { PresenceState } from './presence-rules.ts';

/** This node's connections: devices per user, counted (a takeover briefly has two). */
export class ConnectionMap {
  private readonly devices = new Map<string, Map<string, number>>();

  /** Returns the user's devices on this node after the change. */
  add(user: string, device: string): number {
    const d = this.devices.get(user) ?? new Map<string, number>();
    d.set(device, (d.get(device) ?? 0) + 1);
    this.devices.set(user, d);
    return d.size;
  }

  /** Removes one connection (none recorded: nothing). Returns the user's devices left on this node. */
  remove(user: string, device: string): number {
    const d = this.devices.get(user);
    if (!d) return 0;
    const n = (d.get(device) ?? 0) - 1;
    if (n <= 0) d.delete(device);
    else d.set(device, n);
    if (d.size === 0) this.devices.delete(user);
    return d.size;
  }

  deviceCount(user: string): number {
    return this.devices.get(user)?.size ?? 0;
  }

  /** device -> connections of the user on this node (a copy). */
  countsOf(user: string): Map<string, number> {
    return new Map(this.devices.get(user) ?? []);
  }

  users(): string[] {
    return [...this.devices.keys()];
  }

  usersOnline(): number {
    return this.devices.size;
  }

  devicesOnline(): number {
    let n = 0;
    for (const d of this.devices.values()) n += d.size;
    return n;
  }
}

/**
 * Typing throttle: at most one event per (user, conversation) per interval, whatever its
 * state; the rest are dropped. Memory stays bounded: entries older than the interval
 * decide nothing and are swept as the map grows.
 */
export class TypingThrottle {
  /** key -> time of the last forwarded event; in order of that time (re-inserted on use). */
  private readonly last = new Map<string, number>();
  private sweepAt = 1024;

  constructor(private readonly clock: Clock, private readonly minIntervalMs: number) {}

  allow(user: string, conv: string): boolean {
    const key = `${user}\u0000${conv}`;
    const now = this.clock.now();
    const prev = this.last.get(key);
    if (prev !== undefined && now - prev < this.minIntervalMs) return false;
    this.last.delete(key);
    this.last.set(key, now);
    if (this.last.size >= this.sweepAt) this.sweep(now);
    return true;
  }

  get size(): number {
    return this.last.size;
  }

  private sweep(now: number): void {
    for (const [key, at] of this.last) {
      if (now - at < this.minIntervalMs) break;
      this.last.delete(key);
    }
    this.sweepAt = Math.max(1024, this.last.size * 2);
  }
}

export interface PresenceDeps {
  /** The chat store: `hide_last_seen`, and last seen written on every offline (survives restarts). */
  store: Pick<ChatStore, 'getUser' | 'setLastSeen'>;
  /** Connection map and presence state; default a MemoryPresenceStore. The service closes it. */
  presenceStore?: PresenceStore;
  publish: (topic: string, event: Record<string, unknown>, opts?: { qos?: 0 | 1; retain?: boolean }) => Promise<void>;
  clock: Clock;
  metrics: Pick<Metrics, 'usersOnline' | 'devicesOnline' | 'aclDenials'>;
  log: Logger;
  /** How long a user with no device stays announced online (config presenceDebounceMs). */
  debounceMs: number;
  /** Typing: one event per user per conversation per this interval (config typingMinIntervalMs). */
  typingMinIntervalMs: number;
  /** This node in the presence store; default `{hostname}-{pid}-{random}`. */
  nodeId?: string;
  /** Heartbeat period of this node; default 5 s. */
  heartbeatMs?: number;
  /** A node whose heartbeat is older than this is dead; default 3 heartbeats. */
  nodeTtlMs?: number;
}

/**
 * The platform's choice: Redis when `redisUrl` is set (cluster mode; keys under
 * `{redisPrefix}presence:`), memory otherwise. Brokers and workers must pass the same
 * `redisPrefix` (config REDIS_PREFIX) to see the same connection map: it is required.
 */
export function createPresenceStore(opts: { redisUrl: string | undefined; redisPrefix: string | undefined; log: Logger }): PresenceStore {
  if (!opts.redisUrl) return new MemoryPresenceStore();
  return new RedisPresenceStore({
    url: opts.redisUrl,
    prefix: `${opts.redisPrefix ?? 'chat:'}presence:`,
    onError: (err) => opts.log.warn({ err: err.message }, 'presence: redis error'),
  });
}

export function defaultNodeId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`.replace(/[^A-Za-z0-9_.-]/g, '_');
}

export class PresenceService implements StatusHooks {
  readonly node: string;
  readonly presenceStore: PresenceStore;
  /** This node's connections, as the broker reported them (gauges, re-registration). */
  readonly connections = new ConnectionMap();
  private readonly heartbeatMs: number;
  private readonly nodeTtlMs: number;
  private readonly typingThrottle: TypingThrottle;
  private readonly pendingOffline = new Map<string, TimerHandle>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly inflight = new Set<Promise<unknown>>();
  /** The first heartbeat: every step waits for it. */
  private readonly ready: Promise<void>;
  private beatTimer: TimerHandle | undefined;
  private hadHeartbeat = false;
  private closed = false;

  constructor(private readonly deps: PresenceDeps) {
    this.node = deps.nodeId ?? defaultNodeId();
    this.presenceStore = deps.presenceStore ?? new MemoryPresenceStore();
    this.heartbeatMs = deps.heartbeatMs ?? 5_000;
    this.nodeTtlMs = deps.nodeTtlMs ?? 3 * this.heartbeatMs;
    this.typingThrottle = new TypingThrottle(deps.clock, deps.typingMinIntervalMs);
    // The node is live before it connects anyone (presence-store.ts, "Node liveness").
    this.ready = this.track(this.beat());
  }

  // ---- broker hooks (StatusHooks) ---------------------------------------------------

  deviceConnected(user: string, device: string): void {
    if (this.closed) return;
    this.connections.add(user, device);
    this.updateGauges();
    // Back within the debounce window: the drop is never announced.
    this.pendingOffline.get(user)?.cancel();
    this.pendingOffline.delete(user);
    const now = this.deps.clock.now();
    this.serial(user, async () => {
      const r = await this.presenceStore.connect(this.node, user, device, now);
      if (r.cameOnline) await this.announce(user, { state: 'online', last_seen: now, devices: r.devices });
    });
  }

  deviceDisconnected(user: string, device: string): void {
    if (this.closed) return;
    this.connections.remove(user, device);
    this.updateGauges();
    const now = this.deps.clock.now();
    this.serial(user, async () => {
      const left = await this.presenceStore.disconnect(this.node, user, device, now);
      // Even with no debounce the decision waits for a timer: a takeover by the same
      // clientId disconnects the old client just before it connects the new one.
      if (left === 0 && !this.closed) this.scheduleOffline(user, now);
    });
  }

  connectWill(clientId: string, will: Will): Will | undefined {
    const d = decideWill(clientId, will);
    if (d.verdict === 'refused') {
      this.deps.metrics.aclDenials.inc({ action: 'will' });
      this.deps.log.info({ event: 'will_refused', clientId, topic: will.topic, reason: d.reason }, 'last will removed');
    }
    return d.will;
  }

  typing(user: string, conv: string, payload: Buffer): Buffer | undefined {
    const t = parseTyping(user, payload);
    if ('drop' in t) {
      this.deps.log.debug({ event: 'typing_dropped', user, conv, reason: t.drop }, 'typing dropped');
      return undefined;
    }
    if (!this.typingThrottle.allow(user, conv)) return undefined;
    return Buffer.from(JSON.stringify({ user, state: t.state, ts: this.deps.clock.now() }));
  }

  // ---- privacy -------------------------------------------------------------------------

  /** Publishes the user's current state again (after a change of `hide_last_seen`). */
  refresh(user: string): Promise<void> {
    return this.serial(user, async () => {
      const online = await this.presenceStore.isOnline(user);
      if (online) {
        const devices = new Set((await this.presenceStore.devices(user)).map((d) => d.device)).size;
        await this.announce(user, { state: 'online', last_seen: this.deps.clock.now(), devices });
        return;
      }
      const lastSeen = (await this.presenceStore.lastSeen(user)) ?? (await this.deps.store.getUser(user))?.last_seen ?? null;
      await this.announce(user, { state: 'offline', last_seen: lastSeen, devices: 0 });
    });
  }

  /**
   * RPC overrides for ChatHooks.rpc: `profile.set` republishes presence when it changes
   * `hide_last_seen`, so that the retained state stops showing last seen at once.
   */
  rpcHooks(rpc: Record<string, RpcMethod> = {}): Record<string, RpcMethod> {
    const base = rpc['profile.set'] ?? rpcMethods['profile.set']!;
    return {
      ...rpc,
      'profile.set': async (ctx, params) => {
        const result = await base(ctx, params);
        if (params.hide_last_seen !== undefined) await this.refresh(ctx.who.user);
        return result;
      },
    };
  }

  // ---- lifecycle -------------------------------------------------------------------

  /** Resolves when every step started so far (and those they started) has finished. */
  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
  }

  /**
   * Stops: no more announcements from this node; the store keeps its connections, which
   * the other nodes expire (and announce offline) after the node TTL. Closes the store.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.beatTimer?.cancel();
    for (const t of this.pendingOffline.values()) t.cancel();
    this.pendingOffline.clear();
    await this.settled();
    await this.presenceStore.close().catch((err: unknown) => this.deps.log.warn({ err }, 'presence store not closed'));
  }

  // ---- steps -----------------------------------------------------------------------

  private scheduleOffline(user: string, droppedAt: number): void {
    const { clock, debounceMs } = this.deps;
    this.pendingOffline.get(user)?.cancel();
    const due = droppedAt + debounceMs;
    const timer = clock.setTimeout(() => {
      if (this.pendingOffline.get(user) === timer) this.pendingOffline.delete(user);
      this.serial(user, async () => {
        // The timer is for `due`; a clock that reads a little earlier must not defer it.
        const lastSeen = await this.presenceStore.settleOffline(user, Math.max(clock.now(), due), debounceMs);
        if (lastSeen !== null) await this.wentOffline(user, lastSeen);
      });
    }, Math.max(0, due - clock.now()));
    this.pendingOffline.set(user, timer);
  }

  private async wentOffline(user: string, lastSeen: number): Promise<void> {
    await this.deps.store.setLastSeen(user, lastSeen).catch((err: unknown) => this.deps.log.warn({ err, user }, 'last_seen not stored'));
    await this.announce(user, { state: 'offline', last_seen: lastSeen, devices: 0 });
  }

  private async beat(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.hadHeartbeat) {
        // A node id used before (NODE_ID): what its previous life left is gone now.
        for (const e of await this.presenceStore.removeNode(this.node)) this.serial(e.user, () => this.wentOffline(e.user, e.lastSeen));
      }
      const now = this.deps.clock.now();
      const known = await this.presenceStore.heartbeat(this.node, now);
      if (!known && this.hadHeartbeat) {
        // Another node took this one for dead and removed its connections: register again.
        this.deps.log.warn({ node: this.node }, 'presence: this node was expired; registering its connections again');
        for (const user of this.connections.users()) this.serial(user, () => this.reregister(user));
      }
      this.hadHeartbeat = true;
      for (const e of await this.presenceStore.expire(now, this.nodeTtlMs)) {
        this.serial(e.user, () => this.wentOffline(e.user, e.lastSeen));
      }
    } catch (err) {
      this.deps.log.warn({ err }, 'presence heartbeat failed');
    } finally {
      if (!this.closed) this.beatTimer = this.deps.clock.setTimeout(() => this.track(this.beat()), this.heartbeatMs);
    }
  }

  private async reregister(user: string): Promise<void> {
    const counts = this.connections.countsOf(user);
    if (counts.size === 0) return;
    const now = this.deps.clock.now();
    const r = await this.presenceStore.reconnect(this.node, user, counts, now);
    if (r.cameOnline) await this.announce(user, { state: 'online', last_seen: now, devices: r.devices });
  }

  private async announce(user: string, state: PresenceState): Promise<void> {
    try {
      const u = await this.deps.store.getUser(user);
      const payload = presencePayload(state, u?.hide_last_seen ?? false);
      await this.deps.publish(presenceTopic(user), { ...payload }, { qos: 1, retain: true });
    } catch (err) {
      this.deps.log.warn({ err, user }, 'presence not published');
    }
  }

  /** Runs `step` after the user's earlier steps; failures are logged, never thrown. */
  private serial(user: string, step: () => Promise<void>): Promise<void> {
    const next = (this.chains.get(user) ?? this.ready)
      .then(step)
      .catch((err: unknown) => this.deps.log.warn({ err, user }, 'presence step failed'));
    this.chains.set(user, next);
    void this.track(next.then(() => {
      if (this.chains.get(user) === next) this.chains.delete(user);
    }));
    return next;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p)).catch(() => {});
    return p;
  }

  private updateGauges(): void {
    this.deps.metrics.usersOnline.set(this.connections.usersOnline());
    this.deps.metrics.devicesOnline.set(this.connections.devicesOnline());
  }
}
