/**
 * Config of issue 9 (docs/hardening.md): rate limits, MQTT resource bounds, login
 * throttling, and the rules of the anonymous namespace. Every field has its default
 * here, so a partial object (config file, `LIMITS` as JSON, a test override) is filled
 * in field by field.
 */
import { z } from 'zod';

/** An environment variable holds JSON; anything else is left for the schema to refuse. */
function json(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

const ms = (d: number) => z.number().int().min(0).default(d);
const count = (d: number) => z.number().int().min(0).default(d);

/** A token bucket: `rate` tokens per second, at most `burst` saved up; rate 0 turns it off. */
function bucket(rate: number, burst: number) {
  return z.object({ rate: z.number().min(0).default(rate), burst: z.number().min(1).default(burst) }).prefault({});
}

const MiB = 1024 * 1024;

export const limitsObjectSchema = z.object({
  /** false turns every limit of this object off (the `mqtt` bounds still apply). */
  enabled: z.boolean().default(true),
  /** Per MQTT connection, in this process. */
  connection: z.object({
    /** `send` and `receipt` requests. */
    messages: bucket(100, 2000),
    rpcs: bucket(100, 300),
    /** Payload bytes of every request on the out topic. */
    bytes: bucket(2 * MiB, 8 * MiB),
    typing: bucket(5, 10),
    /** Publishes on topics outside the chat namespaces (MQTT_ANONYMOUS=true); off by default. */
    publishes: bucket(0, 1000),
    publishBytes: bucket(0, 8 * MiB),
  }).prefault({}),
  /** Per user over all its devices, shared by every broker when REDIS_URL is set. */
  user: z.object({
    messages: bucket(200, 4000),
    rpcs: bucket(200, 600),
    bytes: bucket(4 * MiB, 16 * MiB),
  }).prefault({}),
  connect: z.object({
    /** MQTT CONNECTs per source address per minute (token bucket, burst = the same number); 0 = off. */
    perIpPerMinute: count(120),
    /** Loopback addresses (local proxies, health checks, benchmarks) are not counted. */
    exemptLoopback: z.boolean().default(true),
  }).prefault({}),
  /**
   * A connection refused `refusals` times within `windowMs` is disconnected (0 = never),
   * and its clientId may not connect again for `banMs` (CONNACK 3).
   */
  flood: z.object({ refusals: count(100), windowMs: ms(10_000), banMs: ms(30_000) }).prefault({}),
  mqtt: z.object({
    /**
     * aedes drainTimeout: a socket that takes no bytes for this long is closed. Until then
     * a delivery waiting on it holds up the deliveries queued behind it (of its conversation).
     */
    drainTimeoutMs: ms(5_000),
    /** aedes connectTimeout: CONNECT must arrive this soon after the socket opens. */
    connectTimeoutMs: ms(10_000),
    /** aedes queueLimit: packets queued before the CONNACK. */
    queueLimit: z.number().int().min(1).default(42),
    /** aedes (mqemitter) concurrency: messages routed at once. */
    concurrency: z.number().int().min(1).default(1000),
    /** A subscriber whose socket is backed up is closed when this many deliveries wait on it; 0 = off. */
    maxPendingMessages: count(100),
    /** ... or when this many bytes wait in its socket buffer; 0 = off. */
    maxBufferedBytes: count(MiB),
    /** Largest MQTT packet (remaining length) accepted; larger closes the connection at its header. */
    maxPacketBytes: z.number().int().min(1024).default(MiB),
    /** The same before the CONNACK (CONNECT with its will, and what is queued behind it). */
    maxConnectPacketBytes: z.number().int().min(1024).default(64 * 1024),
  }).prefault({}),
  /** HTTP login throttling per user name and per source address. */
  login: z.object({
    /** Failures are counted in a window of this length from the first one. */
    windowMs: ms(15 * 60_000),
    /** After failure n > free, the next attempt waits baseDelayMs * 2^(n - free - 1), at most maxDelayMs. */
    baseDelayMs: ms(1000),
    maxDelayMs: ms(60_000),
    /** Failure number `lockoutFailures` locks the name (or address) for lockoutMs. */
    lockoutMs: ms(15 * 60_000),
    userFreeFailures: count(3),
    userLockoutFailures: count(10),
    ipFreeFailures: count(20),
    ipLockoutFailures: count(100),
  }).prefault({}),
});

export const limitsSchema = z.preprocess(json, limitsObjectSchema.prefault({}));

export type Limits = z.infer<typeof limitsObjectSchema>;
export type BucketConfig = Limits['connection']['messages'];

/** MQTT topic filter syntax: `+` and `#` fill a whole level, `#` only the last. */
export function isTopicFilter(pattern: string): boolean {
  if (pattern.length === 0) return false;
  const levels = pattern.split('/');
  return levels.every((l, i) => (l.includes('#') ? l === '#' && i === levels.length - 1 : !l.includes('+') || l === '+'));
}

export const anonymousRuleSchema = z.object({
  action: z.enum(['publish', 'subscribe', 'both']),
  pattern: z.string().refine(isTopicFilter, 'must be an MQTT topic filter (+ and # fill a whole level, # only last)'),
  allow: z.boolean(),
  /** Whom the rule is for; default both anonymous and authenticated clients. */
  clients: z.enum(['anonymous', 'authenticated', 'any']).default('any'),
});

/** First match wins; no match allows, as a plain broker does (DESIGN section 8, MQTT_ANONYMOUS). */
export const anonymousRulesSchema = z.preprocess(json, z.array(anonymousRuleSchema).default([]));

export type AnonymousRule = z.infer<typeof anonymousRuleSchema>;

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** Parses a partial limits object into a whole one (tests, tools). */
export function limitsWith(partial: DeepPartial<Limits> = {}): Limits {
  return limitsObjectSchema.parse(partial);
}
