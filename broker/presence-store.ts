/**
 * The presence store and connection map (DESIGN section 2: "presence, connection map:
 * in memory | Redis with TTLs"). It records which devices of each user are connected on
 * which node, whether each user is announced online, each user's last seen, and the
 * liveness of each node by heartbeat. One interface, two implementations (memory here,
 * Redis in presence-redis.ts), one contract suite (test/presence/presence-store.contract.ts).
 *
 * Time is always passed in (`now`, from the injected Clock), never read inside: the
 * memory and the Redis store decide the same way on fake time.
 */

/** One connected device of a user: on which node. */
export interface DeviceConnection {
  node: string;
  device: string;
}

export interface ConnectResult {
  /** Distinct devices of the user over all nodes, after this connect. */
  devices: number;
  /**
   * true when this connect turned the user's announced state from offline (or never
   * announced) to online: the caller publishes `online`. Exactly one connect of a
   * session gets true, whichever node it happened on.
   */
  cameOnline: boolean;
}

export interface ExpiredUser {
  user: string;
  /** Last seen: the dead node's last heartbeat, or the time of the unsettled drop. */
  lastSeen: number;
}

/**
 * Semantics shared by every implementation (checked by the contract suite):
 *
 * - Connections are counted per (node, user, device): a takeover by the same clientId
 *   briefly holds two of one device, and only the second disconnect removes it.
 *   `devices` counts distinct device ids over all nodes (one device on two nodes is one).
 * - A user is announced online from the connect that returned `cameOnline` until the
 *   `settleOffline` or `expire` that returned it; between them, no other call announces.
 * - Last seen: the time the user's last device went away (`disconnect` to zero devices,
 *   or a dead node's last heartbeat); it only moves forward; `null` if never recorded.
 * - Node liveness: `heartbeat` makes a node live at `now` (a node heartbeats before it
 *   connects devices; PresenceService does at construction); a node whose last
 *   heartbeat is older than `ttlMs` at `expire(now, ttlMs)` is dead: all of its
 *   connections are removed at once, and its users left with no device go offline.
 *   A drop that was never settled (its node died within the debounce window) is
 *   settled by `expire` once it is older than `ttlMs`.
 * - Every method is atomic with respect to the others, also across nodes sharing one
 *   Redis: two sweepers never both return the same expired user.
 */
export interface PresenceStore {
  /** Records one connection of `device` of `user` on `node` (see ConnectResult). */
  connect(node: string, user: string, device: string, now: number): Promise<ConnectResult>;

  /**
   * Sets the connections of `user` on `node` to exactly `counts` (device -> connections,
   * at least one >= 1), whatever the store held for that node: a node that learns from
   * `heartbeat` that it was expired registers its live connections again with it.
   * Other nodes' connections of the user are untouched. Returns as `connect`.
   */
  reconnect(node: string, user: string, counts: ReadonlyMap<string, number>, now: number): Promise<ConnectResult>;

  /**
   * Removes one connection; removing one that is not recorded changes nothing. Returns
   * the user's distinct devices left over all nodes; when that is 0, records `now` as
   * last seen. The user stays announced online until `settleOffline`.
   */
  disconnect(node: string, user: string, device: string, now: number): Promise<number>;

  /**
   * The end of the debounce window: if the user has no device on any node, is announced
   * online, and its last device left at least `debounceMs` before `now`, marks it
   * offline and returns its last seen (the caller publishes `offline`). Otherwise null:
   * still connected, already offline, or a later drop whose own window is still open.
   */
  settleOffline(user: string, now: number, debounceMs: number): Promise<number | null>;

  /** Connected devices of the user over all nodes, one entry per (node, device); [] when none. */
  devices(user: string): Promise<DeviceConnection[]>;

  /** Whether the user is announced online. */
  isOnline(user: string): Promise<boolean>;

  /** Last seen (see above), or null when none is recorded. */
  lastSeen(user: string): Promise<number | null>;

  /**
   * Marks `node` live at `now`. Returns false when the node was not known (a new node,
   * or one that another node expired): the caller then registers its connections again.
   */
  heartbeat(node: string, now: number): Promise<boolean>;

  /** Removes dead nodes (see above); returns the users that went offline, each once. */
  expire(now: number, ttlMs: number): Promise<ExpiredUser[]>;

  /**
   * Removes `node` and all its connections now, as `expire` does for a dead node (last
   * seen = its last heartbeat): a node that starts again under the same id clears what
   * its previous life left. Returns the users that went offline; [] for an unknown node.
   */
  removeNode(node: string): Promise<ExpiredUser[]>;

  /** Releases connections to the backend (the data stays). */
  close(): Promise<void>;
}

/** The embedded store: one process, plain maps. Also the reference of the contract. */
export class MemoryPresenceStore implements PresenceStore {
  /** user -> `${node}\u0000${device}` -> connection count */
  private readonly conns = new Map<string, Map<string, number>>();
  /** node -> last heartbeat */
  private readonly nodes = new Map<string, number>();
  private readonly online = new Set<string>();
  private readonly seen = new Map<string, number>();
  /** users with no device left and not settled yet -> time of the drop */
  private readonly pending = new Map<string, number>();

  async connect(node: string, user: string, device: string, _now: number): Promise<ConnectResult> {
    const c = this.conns.get(user) ?? new Map<string, number>();
    const key = connKey(node, device);
    c.set(key, (c.get(key) ?? 0) + 1);
    this.conns.set(user, c);
    this.pending.delete(user);
    const cameOnline = !this.online.has(user);
    this.online.add(user);
    return { devices: this.deviceCount(user), cameOnline };
  }

  async reconnect(node: string, user: string, counts: ReadonlyMap<string, number>, _now: number): Promise<ConnectResult> {
    const c = this.conns.get(user) ?? new Map<string, number>();
    const prefix = `${node}\u0000`;
    for (const key of [...c.keys()]) if (key.startsWith(prefix)) c.delete(key);
    for (const [device, n] of counts) if (n > 0) c.set(connKey(node, device), n);
    if (c.size === 0) this.conns.delete(user);
    else this.conns.set(user, c);
    this.pending.delete(user);
    const cameOnline = c.size > 0 && !this.online.has(user);
    if (c.size > 0) this.online.add(user);
    return { devices: this.deviceCount(user), cameOnline };
  }

  async disconnect(node: string, user: string, device: string, now: number): Promise<number> {
    const c = this.conns.get(user);
    const key = connKey(node, device);
    if (c?.has(key)) {
      const n = c.get(key)! - 1;
      if (n > 0) c.set(key, n);
      else c.delete(key);
      if (c.size === 0) {
        this.conns.delete(user);
        this.recordSeen(user, now);
        this.pending.set(user, now);
      }
    }
    return this.deviceCount(user);
  }

  async settleOffline(user: string, now: number, debounceMs: number): Promise<number | null> {
    if (this.conns.has(user)) return null;
    if (!this.online.has(user)) {
      this.pending.delete(user);
      return null;
    }
    const seen = this.seen.get(user) ?? now;
    if (seen + debounceMs > now) return null;
    this.online.delete(user);
    this.pending.delete(user);
    return seen;
  }

  async devices(user: string): Promise<DeviceConnection[]> {
    return [...(this.conns.get(user)?.keys() ?? [])].map(parseConnKey).sort(byNodeDevice);
  }

  async isOnline(user: string): Promise<boolean> {
    return this.online.has(user);
  }

  async lastSeen(user: string): Promise<number | null> {
    return this.seen.get(user) ?? null;
  }

  async heartbeat(node: string, now: number): Promise<boolean> {
    const known = this.nodes.has(node);
    this.touch(node, now);
    return known;
  }

  async expire(now: number, ttlMs: number): Promise<ExpiredUser[]> {
    const out: ExpiredUser[] = [];
    for (const [node, beat] of [...this.nodes]) {
      if (beat < now - ttlMs) this.drop(node, beat, out);
    }
    for (const [user, at] of [...this.pending]) {
      if (at >= now - ttlMs) continue;
      this.pending.delete(user);
      if (!this.conns.has(user) && this.online.delete(user)) out.push({ user, lastSeen: this.seen.get(user)! });
    }
    return out;
  }

  async removeNode(node: string): Promise<ExpiredUser[]> {
    const out: ExpiredUser[] = [];
    const beat = this.nodes.get(node);
    if (beat !== undefined) this.drop(node, beat, out);
    return out;
  }

  async close(): Promise<void> {}

  private drop(node: string, beat: number, out: ExpiredUser[]): void {
    this.nodes.delete(node);
    const prefix = `${node}\u0000`;
    for (const [user, c] of [...this.conns]) {
      let had = false;
      for (const key of [...c.keys()]) {
        if (key.startsWith(prefix)) {
          c.delete(key);
          had = true;
        }
      }
      if (!had || c.size > 0) continue;
      this.conns.delete(user);
      this.recordSeen(user, beat);
      if (this.online.delete(user)) out.push({ user, lastSeen: this.seen.get(user)! });
    }
  }

  private touch(node: string, now: number): void {
    this.nodes.set(node, Math.max(this.nodes.get(node) ?? now, now));
  }

  private recordSeen(user: string, ts: number): void {
    this.seen.set(user, Math.max(this.seen.get(user) ?? ts, ts));
  }

  private deviceCount(user: string): number {
    const c = this.conns.get(user);
    if (!c) return 0;
    return new Set([...c.keys()].map((k) => parseConnKey(k).device)).size;
  }
}

function connKey(node: string, device: string): string {
  return `${node}\u0000${device}`;
}

function parseConnKey(key: string): DeviceConnection {
  const i = key.lastIndexOf('\u0000');
  return { node: key.slice(0, i), device: key.slice(i + 1) };
}

export function byNodeDevice(a: DeviceConnection, b: DeviceConnection): number {
  return a.node < b.node ? -1 : a.node > b.node ? 1 : a.device < b.device ? -1 : a.device > b.device ? 1 : 0;
}
