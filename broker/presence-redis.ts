/**
 * The presence store on Redis (cluster mode, `REDIS_URL`): the same contract as
 * MemoryPresenceStore (presence-store.ts), shared by every broker node. Each method is
 * one Lua script, so that it is atomic against the other nodes.
 *
 * Keys (prefix P, default `chat:presence:`):
 *   P nodes          ZSET  node -> last heartbeat (ms, from the nodes' injected clocks)
 *   P node:{node}    HASH  `{user}|{device}` -> connections of that device on that node
 *   P user:{user}    HASH  `{node}|{device}` -> connections (the connection map of the user)
 *   P online         SET   users announced online
 *   P pending        ZSET  user -> time its last device left, until settled
 *   P seen:{user}    STRING last seen (ms); PEXPIRE lastSeenTtlMs (Postgres keeps it for good)
 * A node is dead when its heartbeat is older than the TTL that `expire` is given: the
 * sweep of any live node removes it with its connections and returns its users that
 * went offline. Connection hashes carry no Redis TTL on purpose: an expired key could
 * not say whom to announce offline. User and device ids never contain `|`; a node id
 * may (fields of a user hash split at the last `|`, of a node hash at the first).
 * `expire` touches keys it computes (not declared): one Redis, not Redis Cluster.
 */
import { Redis } from 'ioredis';
import { byNodeDevice, type ConnectResult, type DeviceConnection, type ExpiredUser, type PresenceStore } from './presence-store.ts';

const lib = `
local function devices(key)
  local seen, n = {}, 0
  for _, f in ipairs(redis.call('HKEYS', key)) do
    local d = string.match(f, '|([^|]*)$')
    if not seen[d] then seen[d] = true; n = n + 1 end
  end
  return n
end
local function seen(key, ts, ttl)
  local prev = tonumber(redis.call('GET', key) or '0')
  if tonumber(ts) > prev then redis.call('SET', key, ts, 'PX', ttl) else redis.call('PEXPIRE', key, ttl) end
end
-- removes a node with its connections; appends its users left offline to out
local function drop(P, nodes, online, pending, node, beat, seenTtl, out)
  local nodeKey = P .. 'node:' .. node
  for _, f in ipairs(redis.call('HKEYS', nodeKey)) do
    local sep = string.find(f, '|', 1, true)
    local user, device = string.sub(f, 1, sep - 1), string.sub(f, sep + 1)
    local userKey = P .. 'user:' .. user
    redis.call('HDEL', userKey, node .. '|' .. device)
    if redis.call('EXISTS', userKey) == 0 then
      local seenKey = P .. 'seen:' .. user
      seen(seenKey, beat, seenTtl)
      if redis.call('SREM', online, user) == 1 then
        redis.call('ZREM', pending, user)
        table.insert(out, user)
        table.insert(out, redis.call('GET', seenKey))
      end
    end
  end
  redis.call('DEL', nodeKey)
  redis.call('ZREM', nodes, node)
end
local function touch(nodes, node, now)
  local b = redis.call('ZSCORE', nodes, node)
  if not b or tonumber(b) < tonumber(now) then redis.call('ZADD', nodes, now, node) end
  return b
end
`;

const scripts = {
  // KEYS node:{node}, user:{user}, online, pending; ARGV node, user, device
  presenceConnect: {
    numberOfKeys: 4,
    lua: `${lib}
redis.call('HINCRBY', KEYS[1], ARGV[2] .. '|' .. ARGV[3], 1)
redis.call('HINCRBY', KEYS[2], ARGV[1] .. '|' .. ARGV[3], 1)
redis.call('ZREM', KEYS[4], ARGV[2])
local came = redis.call('SADD', KEYS[3], ARGV[2])
return { devices(KEYS[2]), came }`,
  },
  // KEYS node:{node}, user:{user}, online, pending; ARGV node, user, then device, count pairs
  presenceReconnect: {
    numberOfKeys: 4,
    lua: `${lib}
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
  local node, device = string.match(f, '^(.*)|([^|]*)$')
  if node == ARGV[1] then
    redis.call('HDEL', KEYS[2], f)
    redis.call('HDEL', KEYS[1], ARGV[2] .. '|' .. device)
  end
end
for i = 3, #ARGV, 2 do
  if tonumber(ARGV[i + 1]) > 0 then
    redis.call('HSET', KEYS[2], ARGV[1] .. '|' .. ARGV[i], ARGV[i + 1])
    redis.call('HSET', KEYS[1], ARGV[2] .. '|' .. ARGV[i], ARGV[i + 1])
  end
end
local n = devices(KEYS[2])
local came = 0
if n > 0 then
  redis.call('ZREM', KEYS[4], ARGV[2])
  came = redis.call('SADD', KEYS[3], ARGV[2])
end
return { n, came }`,
  },
  // KEYS node:{node}, user:{user}, seen:{user}, pending; ARGV node, user, device, now, seenTtl
  presenceDisconnect: {
    numberOfKeys: 4,
    lua: `${lib}
local uf = ARGV[1] .. '|' .. ARGV[3]
if redis.call('HEXISTS', KEYS[2], uf) == 0 then return devices(KEYS[2]) end
if redis.call('HINCRBY', KEYS[2], uf, -1) <= 0 then redis.call('HDEL', KEYS[2], uf) end
local nf = ARGV[2] .. '|' .. ARGV[3]
if redis.call('HINCRBY', KEYS[1], nf, -1) <= 0 then redis.call('HDEL', KEYS[1], nf) end
local n = devices(KEYS[2])
if n == 0 then
  seen(KEYS[3], ARGV[4], ARGV[5])
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
end
return n`,
  },
  // KEYS user:{user}, online, seen:{user}, pending; ARGV user, now, debounceMs
  presenceSettle: {
    numberOfKeys: 4,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return false
end
local s = tonumber(redis.call('GET', KEYS[3]) or ARGV[2])
if s + tonumber(ARGV[3]) > tonumber(ARGV[2]) then return false end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return tostring(s)`,
  },
  // KEYS nodes; ARGV node, now
  presenceHeartbeat: {
    numberOfKeys: 1,
    lua: `${lib}
if touch(KEYS[1], ARGV[1], ARGV[2]) then return 1 end
return 0`,
  },
  // KEYS nodes, online, pending; ARGV cutoff (now - ttl), prefix, seenTtl
  presenceExpire: {
    numberOfKeys: 3,
    lua: `${lib}
local out = {}
local P = ARGV[2]
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'WITHSCORES')
for i = 1, #dead, 2 do
  drop(P, KEYS[1], KEYS[2], KEYS[3], dead[i], dead[i + 1], ARGV[3], out)
end
for _, user in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[1])) do
  redis.call('ZREM', KEYS[3], user)
  if redis.call('EXISTS', P .. 'user:' .. user) == 0 and redis.call('SREM', KEYS[2], user) == 1 then
    table.insert(out, user)
    table.insert(out, redis.call('GET', P .. 'seen:' .. user) or '0')
  end
end
return out`,
  },
  // KEYS nodes, online, pending; ARGV node, prefix, seenTtl
  presenceRemoveNode: {
    numberOfKeys: 3,
    lua: `${lib}
local out = {}
local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
if beat then drop(ARGV[2], KEYS[1], KEYS[2], KEYS[3], ARGV[1], beat, ARGV[3], out) end
return out`,
  },
} as const;

type Arg = string | number;
type ScriptCommands = { [K in keyof typeof scripts]: (...args: Arg[]) => Promise<unknown> };

export interface RedisPresenceStoreOptions {
  /** A connection to use (not closed by `close`), or `url` to open one (closed by `close`). */
  redis?: Redis;
  url?: string;
  /** Key prefix; default `chat:presence:`. */
  prefix?: string;
  /** TTL of the last-seen keys; default 30 days (Postgres keeps last seen for good). */
  lastSeenTtlMs?: number;
  /** Connection errors of an owned connection (ioredis reconnects by itself). */
  onError?: (err: Error) => void;
}

export class RedisPresenceStore implements PresenceStore {
  readonly prefix: string;
  private readonly redis: Redis;
  private readonly owned: boolean;
  private readonly seenTtlMs: number;
  private readonly cmd: ScriptCommands;

  constructor(opts: RedisPresenceStoreOptions) {
    if (!opts.redis && !opts.url) throw new Error('RedisPresenceStore needs `redis` or `url`');
    this.owned = !opts.redis;
    this.redis = opts.redis ?? new Redis(opts.url!, { maxRetriesPerRequest: 3 });
    if (this.owned) this.redis.on('error', (err: Error) => opts.onError?.(err));
    this.prefix = opts.prefix ?? 'chat:presence:';
    this.seenTtlMs = opts.lastSeenTtlMs ?? 30 * 24 * 3600_000;
    for (const [name, def] of Object.entries(scripts)) this.redis.defineCommand(name, def);
    this.cmd = this.redis as unknown as ScriptCommands;
  }

  private key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  async connect(node: string, user: string, device: string, _now: number): Promise<ConnectResult> {
    const [devices, came] = (await this.cmd.presenceConnect(
      this.key('node', node), this.key('user', user), this.key('online'), this.key('pending'),
      node, user, device,
    )) as [number, number];
    return { devices, cameOnline: came === 1 };
  }

  async reconnect(node: string, user: string, counts: ReadonlyMap<string, number>, _now: number): Promise<ConnectResult> {
    const pairs = [...counts].flatMap(([device, n]) => [device, n]);
    const [devices, came] = (await this.cmd.presenceReconnect(
      this.key('node', node), this.key('user', user), this.key('online'), this.key('pending'),
      node, user, ...pairs,
    )) as [number, number];
    return { devices, cameOnline: came === 1 };
  }

  async disconnect(node: string, user: string, device: string, now: number): Promise<number> {
    return (await this.cmd.presenceDisconnect(
      this.key('node', node), this.key('user', user), this.key('seen', user), this.key('pending'),
      node, user, device, now, this.seenTtlMs,
    )) as number;
  }

  async settleOffline(user: string, now: number, debounceMs: number): Promise<number | null> {
    const r = (await this.cmd.presenceSettle(
      this.key('user', user), this.key('online'), this.key('seen', user), this.key('pending'),
      user, now, debounceMs,
    )) as string | null;
    return r === null ? null : Number(r);
  }

  async devices(user: string): Promise<DeviceConnection[]> {
    const fields = await this.redis.hkeys(this.key('user', user));
    return fields
      .map((f) => {
        const i = f.lastIndexOf('|');
        return { node: f.slice(0, i), device: f.slice(i + 1) };
      })
      .sort(byNodeDevice);
  }

  async isOnline(user: string): Promise<boolean> {
    return (await this.redis.sismember(this.key('online'), user)) === 1;
  }

  async lastSeen(user: string): Promise<number | null> {
    const v = await this.redis.get(this.key('seen', user));
    return v === null ? null : Number(v);
  }

  async heartbeat(node: string, now: number): Promise<boolean> {
    return (await this.cmd.presenceHeartbeat(this.key('nodes'), node, now)) === 1;
  }

  async expire(now: number, ttlMs: number): Promise<ExpiredUser[]> {
    const flat = (await this.cmd.presenceExpire(
      this.key('nodes'), this.key('online'), this.key('pending'),
      now - ttlMs, this.prefix, this.seenTtlMs,
    )) as string[];
    return pairs(flat);
  }

  async removeNode(node: string): Promise<ExpiredUser[]> {
    const flat = (await this.cmd.presenceRemoveNode(this.key('nodes'), this.key('online'), this.key('pending'), node, this.prefix, this.seenTtlMs)) as string[];
    return pairs(flat);
  }

  async close(): Promise<void> {
    if (this.owned) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

function pairs(flat: string[]): ExpiredUser[] {
  const out: ExpiredUser[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push({ user: flat[i]!, lastSeen: Number(flat[i + 1]) });
  return out;
}
