/**
 * Cluster mode parts of a broker node (REDIS_URL set): aedes-persistence-redis for
 * sessions, retained messages and offline QoS 1 queues; mqemitter-redis behind the
 * routing emitter for cross-node pub/sub; a heartbeat in the broker node registry; the
 * node's route channel, on which delivery workers hand it the publishes for the users it
 * holds; and the member-cache invalidation bus shared by brokers and workers.
 */
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import type { Aedes } from 'aedes';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import { RoutingEmitter, type Emitter } from './routing-emitter.ts';
import { redisPersistence } from './session-persistence.ts';
import { NodeRegistry, routeChannel, type RoutedBatch } from '../workers/router.ts';

const require = createRequire(import.meta.url);
// CommonJS packages without ESM entry points; typed here at the boundary.
const mqemitterRedis = require('mqemitter-redis') as (opts: Record<string, unknown>) => Emitter & { state: import('node:events').EventEmitter };

export const membersChannel = (prefix: string) => `${prefix}members`;
export const brokersKey = (prefix: string) => `${prefix}brokers`;

export interface ClusterNodeOptions {
  redisUrl: string;
  prefix: string;
  nodeId: string;
  clock: Clock;
  log: Logger;
  heartbeatMs?: number;
}

/** Invalidation of member caches in every process: brokers and workers. */
export class MembersBus {
  private constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly channel: string,
  ) {}

  static async open(redisUrl: string, prefix: string, onInvalidate: (conv: string) => void, log: Logger): Promise<MembersBus> {
    const pub = new Redis(redisUrl, { lazyConnect: false });
    const sub = new Redis(redisUrl);
    for (const c of [pub, sub]) c.on('error', (err: Error) => log.warn({ err: err.message }, 'members bus: redis error'));
    const channel = membersChannel(prefix);
    sub.on('message', (_ch: string, conv: string) => onInvalidate(conv));
    await sub.subscribe(channel);
    return new MembersBus(pub, sub, channel);
  }

  changed(conv: string): void {
    void this.pub.publish(this.channel, conv).catch(() => {});
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.pub.quit(), this.sub.quit()]);
  }
}

export class ClusterNode {
  readonly aedesOptions: { persistence: unknown; mq: Emitter };
  readonly registry: NodeRegistry;
  readonly redis: Redis;
  private readonly sub: Redis;
  private heartbeat?: NodeJS.Timeout;

  constructor(private readonly opts: ClusterNodeOptions) {
    const onError = (what: string) => (err: Error) => opts.log.warn({ err: err.message }, `${what}: redis error`);
    this.redis = new Redis(opts.redisUrl);
    this.sub = new Redis(opts.redisUrl);
    this.redis.on('error', onError('cluster'));
    this.sub.on('error', onError('route channel'));
    const url = new URL(opts.redisUrl);
    const redisOpts = { host: url.hostname, port: Number(url.port || 6379), password: url.password || undefined, db: Number(url.pathname.slice(1) || 0) };
    const mq = mqemitterRedis({ connectionString: opts.redisUrl });
    mq.state.on('error', onError('mqemitter'));
    this.aedesOptions = {
      persistence: redisPersistence({ ...redisOpts, keyPrefix: `${opts.prefix}aedes:` }),
      mq: new RoutingEmitter(mq),
    };
    this.registry = new NodeRegistry(this.redis, brokersKey(opts.prefix), opts.clock);
  }

  /** Joins the cluster: takes routed publishes for this node and heartbeats. */
  async attach(aedes: Aedes): Promise<void> {
    this.sub.on('message', (_channel: string, message: string) => {
      let batch: RoutedBatch;
      try {
        batch = JSON.parse(message) as RoutedBatch;
      } catch {
        return;
      }
      const payload = Buffer.from(batch.payload);
      for (const topic of batch.topics) {
        aedes.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, () => {});
      }
    });
    await this.sub.subscribe(routeChannel(this.opts.prefix, this.opts.nodeId));
    await this.registry.heartbeat(this.opts.nodeId);
    this.heartbeat = setInterval(() => {
      this.registry.heartbeat(this.opts.nodeId).catch(() => {});
    }, this.opts.heartbeatMs ?? 2_000);
    this.heartbeat.unref();
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.registry.remove(this.opts.nodeId).catch(() => {});
    await Promise.allSettled([this.redis.quit(), this.sub.quit()]);
  }
}
