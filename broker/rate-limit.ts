/**
 * Rate limiting primitives (docs/hardening.md): a token bucket as a pure function over
 * injected time, a `TokenBucket` for state that lives with one connection, and the
 * `RateLimitStore` interface for state shared by key (per user, per address, login
 * failures), with its in-memory implementation. broker/rate-limit-redis.ts implements
 * the same interface on Redis; test/hardening/rate-limit-store.contract.ts runs against both.
 */
import type { Clock } from '../core/clock.ts';

/** `rate` tokens per second, at most `burst` saved up. A rate of 0 means no limit. */
export interface BucketLimit {
  rate: number;
  burst: number;
}

export interface BucketState {
  tokens: number;
  /** When `tokens` was computed (ms). */
  at: number;
}

export interface TakeResult {
  allowed: boolean;
  /** When refused: ms until the refused bucket(s) hold enough tokens; 0 when allowed. */
  retryAfterMs: number;
}

/** Refills a bucket to `now`. Time that runs backwards (clock skew between brokers) adds nothing. */
export function refill(state: BucketState | undefined, limit: BucketLimit, now: number): BucketState {
  if (!state) return { tokens: limit.burst, at: now };
  const elapsed = Math.max(0, now - state.at);
  return { tokens: Math.min(limit.burst, state.tokens + (elapsed * limit.rate) / 1000), at: Math.max(now, state.at) };
}

/** A cost above the burst could never be paid: it is charged as a full bucket. */
export function effectiveCost(cost: number, limit: BucketLimit): number {
  return Math.min(cost, limit.burst);
}

export interface BucketTake {
  limit: BucketLimit;
  cost: number;
}

/**
 * Takes from several buckets at once, all or nothing: either every bucket pays its cost,
 * or none does and `retryAfterMs` is the longest wait among the short ones. A refused
 * take costs nothing. Pure: returns the new states.
 */
export function takeAll(states: (BucketState | undefined)[], takes: BucketTake[], now: number): { result: TakeResult; states: BucketState[] } {
  const next = takes.map((t, i) => refill(states[i], t.limit, now));
  let retryAfterMs = 0;
  takes.forEach((t, i) => {
    if (t.limit.rate <= 0) return;
    const need = effectiveCost(t.cost, t.limit) - next[i]!.tokens;
    if (need > 0) retryAfterMs = Math.max(retryAfterMs, Math.ceil((need * 1000) / t.limit.rate));
  });
  if (retryAfterMs > 0) return { result: { allowed: false, retryAfterMs }, states: next };
  takes.forEach((t, i) => {
    if (t.limit.rate > 0) next[i]!.tokens -= effectiveCost(t.cost, t.limit);
  });
  return { result: { allowed: true, retryAfterMs: 0 }, states: next };
}

/** ms until a bucket left with `tokens` is full again (how long its state matters). */
export function msToFull(state: BucketState, limit: BucketLimit): number {
  return limit.rate > 0 ? Math.ceil(((limit.burst - state.tokens) * 1000) / limit.rate) : 0;
}

/** One bucket held by its owner (a connection): synchronous, never shared. */
export class TokenBucket {
  private state: BucketState | undefined;
  constructor(private readonly limit: BucketLimit, private readonly clock: Clock) {}

  take(cost = 1): TakeResult {
    if (this.limit.rate <= 0) return { allowed: true, retryAfterMs: 0 };
    const { result, states } = takeAll([this.state], [{ limit: this.limit, cost }], this.clock.now());
    this.state = states[0];
    return result;
  }

  /** Tokens there now (for tests and metrics). */
  available(): number {
    return this.limit.rate <= 0 ? Infinity : refill(this.state, this.limit, this.clock.now()).tokens;
  }
}

export interface KeyedTake extends BucketTake {
  key: string;
}

export interface WindowCount {
  /** Events counted in the current window, this one included. */
  count: number;
  /** ms until the window ends and the count starts again from 0. */
  resetInMs: number;
}

/**
 * State shared by key. Time comes from the caller's injected clock (passed to Redis as an
 * argument, never read from the server), so both implementations agree to the
 * millisecond under a fake clock; brokers' clocks are assumed to be roughly in sync.
 * Keys never expire earlier than their state stops mattering (a full bucket, an ended
 * window, an elapsed block); a key that is gone reads as new. A store error rejects;
 * callers decide whether to fail open.
 */
export interface RateLimitStore {
  /** Token buckets, all or nothing (takeAll) across the keys, atomically. */
  take(takes: KeyedTake[]): Promise<TakeResult>;
  /** Fixed window counter: counts one event; the window opens at the first event and lasts windowMs. */
  hit(key: string, windowMs: number): Promise<WindowCount>;
  /** Blocks `key` for `ms` from now; never shortens a longer block. */
  block(key: string, ms: number): Promise<void>;
  /** ms until the block on `key` ends; 0 when not blocked. */
  blockedFor(key: string): Promise<number>;
  /** Forgets buckets, counters and blocks of these keys. */
  reset(...keys: string[]): Promise<void>;
  close(): Promise<void>;
}

type Entry =
  | { kind: 'bucket'; state: BucketState; expiresAt: number }
  | { kind: 'window'; count: number; resetAt: number; expiresAt: number }
  | { kind: 'block'; until: number; expiresAt: number };

/** The default store: one process. */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly entries = new Map<string, Entry>();
  private ops = 0;

  constructor(private readonly clock: Clock, private readonly maxEntries = 1_000_000) {}

  async take(takes: KeyedTake[]): Promise<TakeResult> {
    const now = this.clock.now();
    const states = takes.map((t) => {
      const e = this.live(t.key, now);
      return e?.kind === 'bucket' ? e.state : undefined;
    });
    const { result, states: next } = takeAll(states, takes, now);
    if (result.allowed) {
      takes.forEach((t, i) => {
        if (t.limit.rate > 0) this.put(t.key, { kind: 'bucket', state: next[i]!, expiresAt: now + msToFull(next[i]!, t.limit) });
      });
    }
    return result;
  }

  async hit(key: string, windowMs: number): Promise<WindowCount> {
    const now = this.clock.now();
    const e = this.live(key, now);
    if (e?.kind === 'window' && now < e.resetAt) {
      e.count += 1;
      return { count: e.count, resetInMs: e.resetAt - now };
    }
    this.put(key, { kind: 'window', count: 1, resetAt: now + windowMs, expiresAt: now + windowMs });
    return { count: 1, resetInMs: windowMs };
  }

  async block(key: string, ms: number): Promise<void> {
    const now = this.clock.now();
    const e = this.live(key, now);
    const until = Math.max(now + ms, e?.kind === 'block' ? e.until : 0);
    this.put(key, { kind: 'block', until, expiresAt: until });
  }

  async blockedFor(key: string): Promise<number> {
    const now = this.clock.now();
    const e = this.live(key, now);
    return e?.kind === 'block' ? Math.max(0, e.until - now) : 0;
  }

  async reset(...keys: string[]): Promise<void> {
    for (const k of keys) this.entries.delete(k);
  }

  async close(): Promise<void> {
    this.entries.clear();
  }

  /** Entries held (tests). */
  size(): number {
    return this.entries.size;
  }

  private live(key: string, now: number): Entry | undefined {
    const e = this.entries.get(key);
    if (e && e.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private put(key: string, e: Entry): void {
    this.entries.set(key, e);
    if (++this.ops % 10_000 === 0 || this.entries.size > this.maxEntries) this.sweep();
  }

  /** Drops what has stopped mattering; past maxEntries, the oldest entries too. */
  private sweep(): void {
    const now = this.clock.now();
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
    for (const k of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(k);
    }
  }
}
