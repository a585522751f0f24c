/**
 * RateLimitStore on Redis (REDIS_URL): limits per user and per address hold across every
 * broker. Token buckets, not fixed windows: each operation is one Lua script, atomic
 * against the other brokers, that computes exactly what MemoryRateLimitStore computes
 * (the same refill formula, the caller's clock passed as an argument), so one contract
 * suite covers both. Every key is a hash:
 *   bucket  t = tokens, a = time of t (ms)
 *   window  c = count, r = time the window ends (ms)
 *   block   u = time the block ends (ms)
 * PEXPIRE is only garbage collection: it is set a minute past the moment the state stops
 * mattering (bucket full again, window or block over), so a key never vanishes early.
 */
import { Redis } from 'ioredis';
import type { KeyedTake, RateLimitStore, TakeResult, WindowCount } from './rate-limit.ts';

const slackMs = 60_000;

const scripts = {
  // KEYS buckets; ARGV now, slack, then rate, burst, cost for each key. Returns {allowed, retryAfterMs}.
  rlTake: `
local now, slack = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens, ats, retry = {}, {}, 0
for i = 1, #KEYS do
  local rate, burst, cost = tonumber(ARGV[i * 3]), tonumber(ARGV[i * 3 + 1]), tonumber(ARGV[i * 3 + 2])
  local h = redis.call('HMGET', KEYS[i], 't', 'a')
  local t, a = tonumber(h[1]), tonumber(h[2])
  if t == nil or a == nil then
    t = burst; a = now
  else
    local el = now - a
    if el < 0 then el = 0 end
    t = math.min(burst, t + el * rate / 1000)
    if now > a then a = now end
  end
  tokens[i] = t; ats[i] = a
  if rate > 0 then
    if cost > burst then cost = burst end
    local need = cost - t
    if need > 0 then
      local w = math.ceil(need * 1000 / rate)
      if w > retry then retry = w end
    end
  end
end
if retry > 0 then return {0, retry} end
for i = 1, #KEYS do
  local rate, burst, cost = tonumber(ARGV[i * 3]), tonumber(ARGV[i * 3 + 1]), tonumber(ARGV[i * 3 + 2])
  if rate > 0 then
    if cost > burst then cost = burst end
    local t = tokens[i] - cost
    redis.call('HSET', KEYS[i], 't', string.format('%.17g', t), 'a', string.format('%.17g', ats[i]))
    redis.call('PEXPIRE', KEYS[i], math.ceil((burst - t) * 1000 / rate) + slack)
  end
end
return {1, 0}`,
  // KEYS counter; ARGV now, windowMs, slack. Returns {count, resetInMs}.
  rlHit: `
local now, win, slack = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'c', 'r')
local c, r = tonumber(h[1]), tonumber(h[2])
if c ~= nil and r ~= nil and now < r then
  c = redis.call('HINCRBY', KEYS[1], 'c', 1)
  return {c, r - now}
end
redis.call('HSET', KEYS[1], 'c', 1, 'r', string.format('%.17g', now + win))
redis.call('PEXPIRE', KEYS[1], win + slack)
return {1, win}`,
  // KEYS block; ARGV now, ms, slack.
  rlBlock: `
local now, ms, slack = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local u = tonumber(redis.call('HGET', KEYS[1], 'u'))
local untilv = now + ms
if u ~= nil and u > untilv then untilv = u end
redis.call('HSET', KEYS[1], 'u', string.format('%.17g', untilv))
redis.call('PEXPIRE', KEYS[1], untilv - now + slack)
return 1`,
};

type ScriptRedis = Redis & {
  rlTake(numKeys: number, ...args: (string | number)[]): Promise<[number, number]>;
  rlHit(numKeys: number, ...args: (string | number)[]): Promise<[number, number]>;
  rlBlock(numKeys: number, ...args: (string | number)[]): Promise<number>;
};

export interface RedisRateLimitStoreOptions {
  url?: string;
  /** A connection to use (not closed by close()). */
  redis?: Redis;
  /** Key prefix, e.g. `chat:rl:`. */
  prefix: string;
  clock: { now(): number };
  onError?: (err: Error) => void;
}

export class RedisRateLimitStore implements RateLimitStore {
  private readonly redis: ScriptRedis;
  private readonly owned: boolean;

  constructor(private readonly opts: RedisRateLimitStoreOptions) {
    this.owned = !opts.redis;
    const redis = opts.redis ?? new Redis(opts.url!, { maxRetriesPerRequest: 2, enableOfflineQueue: true });
    if (this.owned && opts.onError) redis.on('error', opts.onError);
    for (const [name, lua] of Object.entries(scripts)) redis.defineCommand(name, { lua });
    this.redis = redis as ScriptRedis;
  }

  async take(takes: KeyedTake[]): Promise<TakeResult> {
    if (takes.length === 0) return { allowed: true, retryAfterMs: 0 };
    const args: (string | number)[] = [this.opts.clock.now(), slackMs];
    for (const t of takes) args.push(t.limit.rate, t.limit.burst, t.cost);
    const [allowed, retryAfterMs] = await this.redis.rlTake(takes.length, ...takes.map((t) => this.key(t.key)), ...args);
    return { allowed: allowed === 1, retryAfterMs: Number(retryAfterMs) };
  }

  async hit(key: string, windowMs: number): Promise<WindowCount> {
    const [count, resetInMs] = await this.redis.rlHit(1, this.key(key), this.opts.clock.now(), windowMs, slackMs);
    return { count: Number(count), resetInMs: Number(resetInMs) };
  }

  async block(key: string, ms: number): Promise<void> {
    await this.redis.rlBlock(1, this.key(key), this.opts.clock.now(), ms, slackMs);
  }

  async blockedFor(key: string): Promise<number> {
    const until = await this.redis.hget(this.key(key), 'u');
    return until === null ? 0 : Math.max(0, Number(until) - this.opts.clock.now());
  }

  async reset(...keys: string[]): Promise<void> {
    if (keys.length) await this.redis.del(...keys.map((k) => this.key(k)));
  }

  async close(): Promise<void> {
    if (this.owned) await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private key(k: string): string {
    return `${this.opts.prefix}${k}`;
  }
}
