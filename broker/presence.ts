/**
 * Status service (DESIGN section 4: presence/{user}, typing/{conv}). The server owns
 * presence: a user is online while any device is connected; the retained state is
 * published on the first connect and once after the last disconnect has lasted the
 * debounce window (so a flapping device announces nothing). Typing is forwarded at
 * most once per user per conversation per interval, and only as the server rewrites it.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { ChatStore } from '../core/store.ts';
import type { Metrics } from '../core/metrics.ts';
import type { Logger } from '../core/log.ts';
import { presenceTopic } from '../core/events.ts';
import type { StatusHooks } from './mqtt.ts';

export interface PresenceState {
  state: 'online' | 'offline';
  last_seen: number | null;
  devices: number;
}

/** Connection map of this node: devices per user (cluster mode shares it in Redis). */
export class ConnectionMap {
  private readonly devices = new Map<string, Map<string, number>>();

  /** Counts connections per device: a takeover briefly has two. Returns devices of the user. */
  add(user: string, device: string): number {
    const d = this.devices.get(user) ?? new Map<string, number>();
    d.set(device, (d.get(device) ?? 0) + 1);
    this.devices.set(user, d);
    return d.size;
  }

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

  usersOnline(): number {
    return this.devices.size;
  }

  devicesOnline(): number {
    let n = 0;
    for (const d of this.devices.values()) n += d.size;
    return n;
  }
}

/** Typing throttle: one event per (user, conv) per interval; a pure decision over a map. */
export class TypingThrottle {
  private readonly last = new Map<string, number>();
  constructor(private readonly clock: Clock, private readonly minIntervalMs: number) {}

  allow(user: string, conv: string, state: 'typing' | 'idle'): boolean {
    const key = `${user}\u0000${conv}\u0000${state}`;
    const now = this.clock.now();
    const prev = this.last.get(key);
    if (prev !== undefined && now - prev < this.minIntervalMs) return false;
    this.last.set(key, now);
    if (this.last.size > 100_000) this.last.clear();
    return true;
  }
}

export interface PresenceDeps {
  store: ChatStore;
  publish: (topic: string, event: Record<string, unknown>, opts?: { qos?: 0 | 1; retain?: boolean }) => Promise<void>;
  clock: Clock;
  metrics: Metrics;
  log: Logger;
  debounceMs: number;
  typingMinIntervalMs: number;
  isMember(user: string, conv: string): Promise<boolean>;
}

export class PresenceService implements StatusHooks {
  readonly connections = new ConnectionMap();
  private readonly pendingOffline = new Map<string, TimerHandle>();
  /** Users announced online (and not yet announced offline). */
  private readonly announced = new Set<string>();
  private readonly typingThrottle: TypingThrottle;

  constructor(private readonly deps: PresenceDeps) {
    this.typingThrottle = new TypingThrottle(deps.clock, deps.typingMinIntervalMs);
  }

  deviceConnected(user: string, device: string): void {
    const devices = this.connections.add(user, device);
    this.updateGauges();
    const pending = this.pendingOffline.get(user);
    if (pending) {
      // Back within the debounce window: the drop is never announced.
      pending.cancel();
      this.pendingOffline.delete(user);
    }
    if (!this.announced.has(user)) {
      this.announced.add(user);
      void this.announce(user, { state: 'online', last_seen: this.deps.clock.now(), devices });
    }
  }

  deviceDisconnected(user: string, device: string): void {
    const remaining = this.connections.remove(user, device);
    this.updateGauges();
    if (remaining > 0 || this.pendingOffline.has(user)) return;
    const goOffline = () => {
      this.pendingOffline.delete(user);
      if (this.connections.deviceCount(user) > 0 || !this.announced.has(user)) return;
      this.announced.delete(user);
      const lastSeen = this.deps.clock.now();
      void (async () => {
        await this.deps.store.setLastSeen(user, lastSeen).catch((err: unknown) => this.deps.log.warn({ err, user }, 'last_seen not stored'));
        await this.announce(user, { state: 'offline', last_seen: lastSeen, devices: 0 });
      })();
    };
    if (this.deps.debounceMs <= 0) return goOffline();
    this.pendingOffline.set(user, this.deps.clock.setTimeout(goOffline, this.deps.debounceMs));
  }

  typing(user: string, conv: string, payload: Buffer): Buffer | undefined {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload.toString('utf8'));
    } catch {
      return undefined;
    }
    const p = parsed as { user?: unknown; state?: unknown };
    if (p === null || typeof p !== 'object' || p.user !== user) return undefined;
    const state = p.state === 'idle' ? 'idle' : p.state === 'typing' ? 'typing' : undefined;
    if (!state || !this.typingThrottle.allow(user, conv, state)) return undefined;
    return Buffer.from(JSON.stringify({ user, state, ts: this.deps.clock.now() }));
  }

  private async announce(user: string, state: PresenceState): Promise<void> {
    try {
      const u = await this.deps.store.getUser(user);
      const payload: Record<string, unknown> = { state: state.state, devices: state.devices };
      // A user who hides last seen is shown online/offline only.
      payload.last_seen = u?.hide_last_seen ? null : state.last_seen;
      await this.deps.publish(presenceTopic(user), payload, { qos: 1, retain: true });
    } catch (err) {
      this.deps.log.warn({ err, user }, 'presence not published');
    }
  }

  private updateGauges(): void {
    this.deps.metrics.usersOnline.set(this.connections.usersOnline());
    this.deps.metrics.devicesOnline.set(this.connections.devicesOnline());
  }

  close(): void {
    for (const t of this.pendingOffline.values()) t.cancel();
    this.pendingOffline.clear();
  }
}
