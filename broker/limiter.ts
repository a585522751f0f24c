/**
 * Admission of what clients send (docs/hardening.md), decided before any store work:
 *   - chat requests (ChatHooks.admit): per connection (this process, token buckets held
 *     with the aedes client) and per user (RateLimitStore: memory, or Redis shared by the
 *     brokers); over a limit is `rate_limited` with retry_after_ms;
 *   - typing events and anonymous-namespace publishes: per connection; over is dropped;
 *   - CONNECTs per source address per minute (RateLimitStore);
 *   - a connection refused `flood.refusals` times within `flood.windowMs` is closed, and
 *     its clientId may not connect again for `flood.banMs`;
 *   - a subscriber whose socket stays backed up is closed (the slow consumer bound).
 * A store error admits (fail open) and is logged: limits protect the service, an outage
 * of Redis must not become an outage of chat.
 */
import type { Aedes, Client, ConnectPacket } from 'aedes';
import type { Writable } from 'node:stream';
import { Counter, type Registry } from 'prom-client';
import { ChatError } from '../core/errors.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import type { Limits } from '../config/limits.ts';
import { parseClientId } from './acl.ts';
import type { Audit, AuditEvent } from './audit.ts';
import { takeAll, type BucketLimit, type BucketState, type RateLimitStore, type TakeResult } from './rate-limit.ts';
import { clientIp, isLoopback } from './mqtt-guard.ts';

export type RequestKind = 'send' | 'receipt' | 'rpc' | 'invalid';

type ConnBucket = keyof Limits['connection'];

interface ConnState {
  buckets: Partial<Record<ConnBucket, BucketState>>;
  strikes: number;
  strikesSince: number;
  /** Deliveries made while the socket was backed up, since it last was not. */
  backlog: number;
  closing: boolean;
}

export interface LimiterDeps {
  limits: Limits;
  clock: Clock;
  store: RateLimitStore;
  registry: Registry;
  audit: Audit;
  log: Logger;
}

export class Limiter {
  private aedes: Aedes | undefined;
  private readonly conns = new WeakMap<Client, ConnState>();
  private readonly refused: Counter<'scope' | 'kind'>;
  private readonly disconnects: Counter<'reason'>;
  private readonly lastConnectAudit = new Map<string, number>();

  constructor(private readonly deps: LimiterDeps) {
    this.refused = new Counter({ name: 'chat_rate_limited_total', help: 'Requests, events and connects refused by a rate limit', labelNames: ['scope', 'kind'], registers: [deps.registry] });
    this.disconnects = new Counter({ name: 'chat_limit_disconnects_total', help: 'Connections closed for flooding or for not reading', labelNames: ['reason'], registers: [deps.registry] });
    for (const reason of ['flood', 'slow_consumer']) this.disconnects.inc({ reason }, 0);
  }

  private get limits(): Limits {
    return this.deps.limits;
  }

  /** The broker whose clients this limiter closes. */
  attach(aedes: Aedes): void {
    this.aedes = aedes;
  }

  /** ChatHooks.admit: throws ChatError('rate_limited') with retryAfterMs. */
  async admit(who: { user: string; device: string }, kind: RequestKind, bytes: number): Promise<void> {
    if (!this.limits.enabled) return;
    const counted = kind === 'rpc' ? 'rpcs' : 'messages';
    const client = this.clientOf(`${who.user}:${who.device}`);
    if (client) {
      const r = this.takeLocal(client, [[counted, 1], ['bytes', bytes]]);
      if (!r.allowed) this.refuse(client, 'connection', kind, counted, r.retryAfterMs);
    }
    const u = this.limits.user;
    let r: TakeResult;
    try {
      r = await this.deps.store.take([
        { key: `user:${counted}:${who.user}`, limit: u[counted], cost: 1 },
        { key: `user:bytes:${who.user}`, limit: u.bytes, cost: bytes },
      ]);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'rate limit store failed: request admitted');
      return;
    }
    if (!r.allowed) this.refuse(client, 'user', kind, counted, r.retryAfterMs);
  }

  /** A publish outside chat/ (typing, anonymous namespace): false drops it. */
  admitPublish(client: Client, topic: string, bytes: number): boolean {
    if (!this.limits.enabled) return true;
    const typing = topic.startsWith('typing/');
    const r = this.takeLocal(client, typing ? [['typing', 1]] : [['publishes', 1], ['publishBytes', bytes]]);
    if (r.allowed) return true;
    this.refused.inc({ scope: 'connection', kind: typing ? 'typing' : 'publish' });
    this.strike(client);
    return false;
  }

  /** preConnect: may this clientId (not banned for flooding) from this address (connects per minute) connect now? */
  async admitConnect(client: Client, packet: ConnectPacket): Promise<{ allowed: boolean; reason?: string }> {
    if (!this.limits.enabled) return { allowed: true };
    const c = this.limits.connect;
    const ip = clientIp(client);
    const counted = c.perIpPerMinute > 0 && ip !== undefined && !(c.exemptLoopback && isLoopback(ip));
    let r: TakeResult;
    try {
      if (this.limits.flood.banMs > 0 && packet.clientId && (await this.deps.store.blockedFor(`ban:${packet.clientId}`)) > 0) {
        this.refused.inc({ scope: 'client', kind: 'connect' });
        return { allowed: false, reason: 'banned for flooding' };
      }
      if (!counted) return { allowed: true };
      r = await this.deps.store.take([{ key: `connect:ip:${ip}`, limit: { rate: c.perIpPerMinute / 60, burst: c.perIpPerMinute }, cost: 1 }]);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'rate limit store failed: connect admitted');
      return { allowed: true };
    }
    if (r.allowed) return { allowed: true };
    this.refused.inc({ scope: 'ip', kind: 'connect' });
    // One audit line per address per minute: a connect flood must not become a log flood.
    const now = this.deps.clock.now();
    if ((this.lastConnectAudit.get(ip) ?? -Infinity) <= now - 60_000) {
      if (this.lastConnectAudit.size > 10_000) this.lastConnectAudit.clear();
      this.lastConnectAudit.set(ip, now);
      this.deps.audit('connect_refused', { ip, reason: `more than ${c.perIpPerMinute} connects a minute from this address`, retry_after_ms: r.retryAfterMs });
    }
    return { allowed: false, reason: 'too many connects from this address' };
  }

  /**
   * authorizeForward: counts deliveries to a client whose socket is backed up (a write
   * returned false and it has not drained since). aedes holds each of them - and with it
   * a slot of the broker's message routing - until the socket drains, so a subscriber
   * that stops reading would stall everyone; past the bound it is closed instead. The
   * delivery itself goes ahead: a QoS 1 one stays in the session for the next connection.
   */
  forward(client: Client): void {
    const m = this.limits.mqtt;
    if (!this.limits.enabled || (m.maxPendingMessages <= 0 && m.maxBufferedBytes <= 0)) return;
    const conn = client.conn as Partial<Writable>;
    const st = this.state(client);
    if (!conn.writableNeedDrain) {
      st.backlog = 0;
      return;
    }
    st.backlog += 1;
    const buffered = conn.writableLength ?? 0;
    if ((m.maxPendingMessages > 0 && st.backlog > m.maxPendingMessages) || (m.maxBufferedBytes > 0 && buffered > m.maxBufferedBytes)) {
      this.disconnect(client, 'slow_consumer_disconnect', `not reading: ${st.backlog} deliveries waiting, ${buffered} bytes buffered`);
    }
  }

  /** aedes closed a client whose socket did not drain within drainTimeout: the same slow consumer, counted alike. */
  drainTimedOut(client: Client): void {
    const st = this.state(client);
    if (st.closing) return;
    st.closing = true;
    this.disconnects.inc({ reason: 'slow_consumer' });
    const id = client.id ? parseClientId(client.id) : undefined;
    this.deps.audit('slow_consumer_disconnect', { user: id?.user, device: id?.device, client_id: client.id, ip: clientIp(client), reason: `socket did not drain within ${this.limits.mqtt.drainTimeoutMs} ms` });
  }

  /** Closes a client once, with its audit line. */
  disconnect(client: Client, event: Extract<AuditEvent, 'rate_limit_disconnect' | 'slow_consumer_disconnect'>, reason: string): void {
    const st = this.state(client);
    if (st.closing || client.closed) return;
    st.closing = true;
    this.disconnects.inc({ reason: event === 'rate_limit_disconnect' ? 'flood' : 'slow_consumer' });
    const id = client.id ? parseClientId(client.id) : undefined;
    this.deps.audit(event, { user: id?.user, device: id?.device, client_id: client.id, ip: clientIp(client), reason });
    // Not from inside the aedes hook that noticed it.
    setImmediate(() => client.close());
  }

  private clientOf(clientId: string): Client | undefined {
    const clients = (this.aedes as unknown as { clients?: Record<string, Client> } | undefined)?.clients;
    return clients?.[clientId];
  }

  private state(client: Client): ConnState {
    let st = this.conns.get(client);
    if (!st) {
      st = { buckets: {}, strikes: 0, strikesSince: this.deps.clock.now(), backlog: 0, closing: false };
      this.conns.set(client, st);
    }
    return st;
  }

  private takeLocal(client: Client, takes: [ConnBucket, number][]): TakeResult {
    const st = this.state(client);
    const limits: BucketLimit[] = takes.map(([b]) => this.limits.connection[b]);
    const { result, states } = takeAll(takes.map(([b]) => st.buckets[b]), takes.map(([, cost], i) => ({ limit: limits[i]!, cost })), this.deps.clock.now());
    if (result.allowed) takes.forEach(([b], i) => (st.buckets[b] = states[i]));
    return result;
  }

  private refuse(client: Client | undefined, scope: 'connection' | 'user', kind: RequestKind, counted: string, retryAfterMs: number): never {
    this.refused.inc({ scope, kind });
    if (client) this.strike(client);
    const what = scope === 'connection' ? 'this connection' : 'this user';
    throw new ChatError('rate_limited', `too many ${counted === 'rpcs' ? 'rpc requests' : 'messages'} or bytes from ${what}: retry after ${retryAfterMs} ms`, { retryAfterMs });
  }

  /** Counts a refusal; too many within the window closes the connection. */
  private strike(client: Client): void {
    const f = this.limits.flood;
    if (f.refusals <= 0) return;
    const st = this.state(client);
    const now = this.deps.clock.now();
    if (now - st.strikesSince >= f.windowMs) {
      st.strikes = 0;
      st.strikesSince = now;
    }
    st.strikes += 1;
    if (st.strikes < f.refusals) return;
    const banned = f.banMs > 0 && client.id ? `; clientId banned for ${f.banMs} ms` : '';
    this.disconnect(client, 'rate_limit_disconnect', `${st.strikes} refusals within ${f.windowMs} ms${banned}`);
    if (banned) {
      this.deps.store.block(`ban:${client.id}`, f.banMs).catch((err: Error) => this.deps.log.warn({ err: err.message }, 'rate limit store failed: flood ban not stored'));
    }
  }
}
