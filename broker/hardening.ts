/**
 * Composition of issue 9 (docs/hardening.md): rate limits, flood and slow-consumer
 * isolation, MQTT packet guards, login throttling, revocation of live connections and
 * the audit log. platform.ts creates one `Hardening` per process and plugs its parts in:
 * `admit` into ChatHooks, `aedesOptions` and `brokerDeps` into createChatBroker,
 * `attach(aedes)` once the broker exists, `loginThrottle` into the HTTP app,
 * `deviceRevoked` behind AuthService.onDeviceRevoked.
 */
import type { Aedes, AedesOptions, Client } from 'aedes';
import { Gauge } from 'prom-client';
import { ConfigError, type Config } from '../config/index.ts';
import type { Limits } from '../config/limits.ts';
import { ChatError } from '../core/errors.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';
import { parseClientId, type AclAction } from './acl.ts';
import type { AnonymousRule } from './acl-anonymous.ts';
import { createAudit, type Audit } from './audit.ts';
import type { ChatHooks } from './chat.ts';
import { Limiter } from './limiter.ts';
import { LoginThrottle } from './login-throttle.ts';
import { clientIp, connackCodes, emptyClientIdRefused, guardPacketSize, refuseConnect } from './mqtt-guard.ts';
import { MemoryRateLimitStore, type RateLimitStore } from './rate-limit.ts';
import { RedisRateLimitStore } from './rate-limit-redis.ts';
import { rpcMethods, type RpcMethod } from './rpc.ts';

export interface HardeningDeps {
  config: Config;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** Overrides the store chosen from config (tests). */
  store?: RateLimitStore;
}

/** What createChatBroker takes from here (BrokerDeps fields). */
export interface HardeningBrokerDeps {
  anonymousRules: readonly AnonymousRule[];
  admitPublish(client: Client, topic: string, bytes: number): boolean;
  onAclDenied(client: Client, action: AclAction, topic: string, reason?: string): void;
}

/** RPCs that change who may do what in a group: each is an audit event. */
export const adminRpcNames = ['group.add', 'group.remove', 'group.role', 'group.settings'] as const;

/** plainListeners=false leaves only the TLS listeners, which need a certificate. */
export function checkListeners(config: Pick<Config, 'plainListeners' | 'tlsCert' | 'tlsKey'>): void {
  if (!config.plainListeners && !(config.tlsCert && config.tlsKey)) {
    throw new ConfigError(['plainListeners: false needs tlsCert and tlsKey (TLS_CERT, TLS_KEY), or there would be no listener']);
  }
}

export class Hardening {
  readonly limits: Limits;
  readonly audit: Audit;
  readonly store: RateLimitStore;
  readonly limiter: Limiter;
  readonly loginThrottle: LoginThrottle;
  readonly aedesOptions: Partial<AedesOptions>;
  readonly brokerDeps: HardeningBrokerDeps;
  /** Largest packet after the CONNACK: never below what a maximal chat payload needs. */
  readonly maxPacketBytes: number;
  private aedes: Aedes | undefined;

  constructor(private readonly deps: HardeningDeps) {
    const { config, clock, log, metrics } = deps;
    this.limits = config.limits;
    this.audit = createAudit(log, metrics.registry);
    this.store =
      deps.store ??
      (config.redisUrl
        ? new RedisRateLimitStore({ url: config.redisUrl, prefix: `${config.redisPrefix}rl:`, clock, onError: (err) => log.warn({ err: err.message }, 'rate limits: redis error') })
        : new MemoryRateLimitStore(clock));
    this.limiter = new Limiter({ limits: this.limits, clock, store: this.store, registry: metrics.registry, audit: this.audit, log });
    this.loginThrottle = new LoginThrottle(this.store, this.limits.login, metrics.registry, this.audit, this.limits.enabled, (err) =>
      log.warn({ err: err.message }, 'rate limit store failed: login attempt admitted'),
    );
    const m = this.limits.mqtt;
    this.maxPacketBytes = Math.max(m.maxPacketBytes, config.maxPayloadBytes + 64 * 1024);
    this.aedesOptions = { drainTimeout: m.drainTimeoutMs, connectTimeout: m.connectTimeoutMs, queueLimit: m.queueLimit, concurrency: m.concurrency };
    this.brokerDeps = {
      anonymousRules: config.anonymousRules,
      admitPublish: (client, topic, bytes) => this.limiter.admitPublish(client, topic, bytes),
      onAclDenied: (client, action, topic, reason) => {
        const id = client.id ? parseClientId(client.id) : undefined;
        this.audit('acl_denied', { user: id?.user, device: id?.device, ip: clientIp(client), reason, action, topic: topic.slice(0, 256) });
      },
    };
    const mq = new Gauge({
      name: 'chat_mqtt_routing_queue',
      help: 'Messages waiting for a routing slot of the broker (mqemitter): above 0 for long means a consumer holds slots',
      registers: [metrics.registry],
      collect: () => {
        const length = (this.aedes as unknown as { mq?: { length?: unknown } } | undefined)?.mq?.length;
        mq.set(typeof length === 'number' ? length : 0);
      },
    });
  }

  /** ChatHooks.admit. */
  readonly admit: NonNullable<ChatHooks['admit']> = (who, kind, bytes) => this.limiter.admit(who, kind, bytes);

  /**
   * Plugs into the broker: CONNECT checks before aedes' own preConnect, the slow
   * consumer bound before its authorizeForward, the packet size guard on every new
   * connection. Wraps the hooks in place, so it composes with whatever createChatBroker
   * (and cluster mode) installed.
   */
  attach(aedes: Aedes): void {
    this.aedes = aedes;
    this.limiter.attach(aedes);
    const { log } = this.deps;

    const preConnect = aedes.preConnect;
    aedes.preConnect = (client, packet, done) => {
      if (emptyClientIdRefused(packet)) {
        // [MQTT-3.1.3-8]
        this.audit('connect_refused', { ip: clientIp(client), reason: 'empty clientId with clean session 0' });
        return refuseConnect(client, connackCodes.identifierRejected, 'identifier rejected', done);
      }
      this.limiter.admitConnect(client, packet).then(
        ({ allowed, reason }) => (allowed ? preConnect.call(aedes, client, packet, done) : refuseConnect(client, connackCodes.serverUnavailable, reason ?? 'refused', done)),
        (err: Error) => done(err, false),
      );
    };

    // aedes' own drainTimeout closes a socket that takes no bytes: a slow consumer too.
    aedes.on('clientError', (client, err) => {
      if (client && err?.message === 'drain timeout') this.limiter.drainTimedOut(client);
    });

    const authorizeForward = aedes.authorizeForward;
    aedes.authorizeForward = (client, packet) => {
      this.limiter.forward(client);
      return authorizeForward.call(aedes, client, packet);
    };

    const handle = aedes.handle;
    let warned = false;
    aedes.handle = (conn, req) => {
      const client = handle(conn, req);
      const guarded = guardPacketSize(
        client,
        (c) => (c.connected ? this.maxPacketBytes : this.limits.mqtt.maxConnectPacketBytes),
        (c, length, cmd) => {
          const id = c.id ? parseClientId(c.id) : undefined;
          this.audit('packet_too_large', { user: id?.user, device: id?.device, ip: clientIp(c), reason: `${cmd ?? 'packet'} of ${length} bytes` });
        },
      );
      if (!guarded && !warned) {
        warned = true;
        log.warn('mqtt packet size guard not installed: aedes/mqtt-packet internals changed');
      }
      return client;
    };
  }

  /**
   * AuthService.onDeviceRevoked: the device's tokens are dead, so its live connection
   * on this broker goes now. Returns how many were closed here. In cluster mode the
   * other brokers must hear of it too (a broadcast on the cluster bus calling this).
   */
  deviceRevoked(user: string, device: string, reason: string): number {
    const client = (this.aedes as unknown as { clients?: Record<string, Client> } | undefined)?.clients?.[`${user}:${device}`];
    this.audit('token_revoked', { user, device, reason, live_connections: client ? 1 : 0 });
    if (client) setImmediate(() => client.close());
    return client ? 1 : 0;
  }

  /** ChatHooks.rpc with the admin RPCs audited (success and refusal alike). */
  adminRpcs(existing: ChatHooks['rpc'] = {}): Record<string, RpcMethod> {
    const out: Record<string, RpcMethod> = { ...existing };
    for (const name of adminRpcNames) {
      const inner = existing[name] ?? rpcMethods[name];
      if (!inner) continue;
      out[name] = async (ctx, params) => {
        const fields = {
          user: ctx.who.user,
          device: ctx.who.device,
          action: name,
          conv: typeof params.conv === 'string' ? params.conv.slice(0, 100) : undefined,
          target: Array.isArray(params.users) ? params.users.slice(0, 20) : typeof params.user === 'string' ? params.user : undefined,
          role: typeof params.role === 'string' ? params.role : undefined,
        };
        try {
          const result = await inner(ctx, params);
          this.audit('admin_action', { ...fields, result: 'ok' });
          return result;
        } catch (err) {
          if (err instanceof ChatError && (err.code === 'forbidden' || err.code === 'not_member')) {
            this.audit('admin_action', { ...fields, result: err.code, reason: err.message });
          }
          throw err;
        }
      };
    }
    return out;
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
