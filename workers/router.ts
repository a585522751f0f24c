/**
 * Where a delivery's publishes go. Embedded: this process's broker. Cluster: a Redis
 * pub/sub message to each broker node that holds a recipient's connections (from the
 * connection map), not to every node; a topic with no connected recipient (an offline
 * user whose persistent session should queue it, group/{conv}, presence) goes to one live
 * broker, which publishes it through its own aedes (persistence and mqemitter-redis).
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../core/clock.ts';
import type { RoutePublish } from './deliverer.ts';

export interface NodeLocator {
  /** Broker nodes holding connections of `user`. */
  nodesOf(user: string): Promise<string[]>;
}

/**
 * Live broker nodes, by heartbeat in a Redis sorted set. `live()` is asked per delivery
 * job, so its answer is reused for `cacheMs`; pruning long-dead entries is a write and
 * happens with each heartbeat, not per job.
 */
export class NodeRegistry {
  private cached?: { at: number; nodes: string[] };

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly clock: Clock,
    private readonly ttlMs = 10_000,
    private readonly cacheMs = 1_000,
  ) {}

  async heartbeat(node: string): Promise<void> {
    const now = this.clock.now();
    await this.redis.multi().zadd(this.key, now, node).zremrangebyscore(this.key, 0, now - this.ttlMs * 6).exec();
  }

  async remove(node: string): Promise<void> {
    await this.redis.zrem(this.key, node);
  }

  async live(): Promise<string[]> {
    const now = this.clock.now();
    if (this.cached && now - this.cached.at < this.cacheMs) return this.cached.nodes;
    const nodes = await this.redis.zrangebyscore(this.key, now - this.ttlMs, '+inf');
    this.cached = { at: now, nodes };
    return nodes;
  }
}

export interface RoutedBatch {
  topics: string[];
  payload: string;
}

export const routeChannel = (prefix: string, node: string) => `${prefix}route:${node}`;

const inboxUser = (topic: string): string | undefined => {
  const m = /^chat\/([^/]+)\/(?:[^/]+\/)?in$/.exec(topic);
  return m?.[1];
};

function hashPick(key: string, nodes: string[]): string {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) | 0;
  return nodes[Math.abs(h) % nodes.length]!;
}

/** Groups topics by the node that must publish them (pure). */
export function planRoutes(topics: string[], nodesOfUser: Map<string, string[]>, live: string[]): Map<string, string[]> {
  const plan = new Map<string, string[]>();
  const add = (node: string, topic: string) => {
    const list = plan.get(node) ?? [];
    list.push(topic);
    plan.set(node, list);
  };
  const liveSet = new Set(live);
  for (const topic of topics) {
    const user = inboxUser(topic);
    const holders = user ? (nodesOfUser.get(user) ?? []).filter((n) => liveSet.has(n)) : [];
    if (holders.length > 0) for (const n of holders) add(n, topic);
    else if (live.length > 0) add(hashPick(topic, live), topic);
    else throw new Error('no live broker node to deliver to');
  }
  return plan;
}

export function redisRouter(redis: Redis, prefix: string, locator: NodeLocator, nodes: NodeRegistry): RoutePublish {
  return async (topics, event) => {
    const users = [...new Set(topics.map(inboxUser).filter((u): u is string => u !== undefined))];
    const nodesOfUser = new Map<string, string[]>();
    await Promise.all(users.map(async (u) => nodesOfUser.set(u, await locator.nodesOf(u))));
    const plan = planRoutes(topics, nodesOfUser, await nodes.live());
    const payload = JSON.stringify(event);
    await Promise.all(
      [...plan].map(([node, nodeTopics]) => redis.publish(routeChannel(prefix, node), JSON.stringify({ topics: nodeTopics, payload } satisfies RoutedBatch))),
    );
  };
}
