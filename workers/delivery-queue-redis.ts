/**
 * The delivery queue on Redis Streams (cluster mode, DESIGN section 2): N brokers enqueue,
 * M workers consume through one consumer group. It keeps the semantics written on
 * `DeliveryQueue` (workers/delivery-queue.ts) and passes the same contract suite as
 * `MemoryDeliveryQueue` (test/delivery-queue.contract.ts). docs/delivery.md is the
 * operator's side: keys, reclaim, dead letters, replay, redis-cli commands.
 *
 * Keys (the `{name}` hash tag keeps them in one Redis Cluster slot, as the scripts need):
 *   {prefix}{name}         stream of jobs: fields `job` (JSON) and `attempts`
 *   {prefix}{name}:retry   sorted set of failed jobs waiting for their retry, score = due time
 *   {prefix}{name}:dead    dead-letter stream: `job`, `attempts`, `error`, `failedAt`, `source`
 *
 * Life of a job: XADD (enqueue, refused while the stream holds `capacity` entries: the
 * producer waits) -> XREADGROUP by one consumer -> handler -> XACK + XDEL on success; on
 * failure XACK + XDEL + ZADD to the retry set with a backoff, or XADD to the dead-letter
 * stream after `maxAttempts`. Each of these moves is one Lua script or MULTI, so a job is
 * always in exactly one place and `drain` can trust XLEN + ZCARD. Due retries are moved
 * back to the stream by whichever consumer runs the script first. Entries left pending by
 * a worker that died are taken over with XAUTOCLAIM once idle for `claimIdleMs`; a live
 * worker keeps its own entries fresh (XCLAIM JUSTID) while its handler runs.
 *
 * Order: one consumer starts jobs in stream order (reads a batch, handles it in order).
 * Retried and reclaimed jobs re-enter behind later ones, and several consumers run jobs
 * concurrently, so order across jobs is not guaranteed: receivers order by seq, as the
 * interface says.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { systemClock, type Clock } from '../core/clock.ts';
import {
  backoffDelay,
  defaultRetryPolicy,
  type DeadLetter,
  type DeliveryJob,
  type DeliveryQueue,
  type JobHandler,
  type RetryPolicy,
} from './delivery-queue.ts';

export interface RedisDeliveryQueueOptions {
  redisUrl: string;
  /** Key prefix, e.g. `chat:`; keys are `{prefix}{name}`, `...:retry`, `...:dead`. */
  prefix?: string;
  /** Queue name (one stream per name). Default `deliveries`. */
  name?: string;
  /** Consumer group shared by every worker of this queue. Default `workers`. */
  group?: string;
  /** This process's consumer name, unique per worker process. Default `${hostname}:${pid}:${random}`. */
  consumer?: string;
  policy?: RetryPolicy;
  /** Entries the stream may hold (waiting + being handled) before `enqueue` waits. Default 100 000. */
  capacity?: number;
  /** A pending entry idle this long belongs to a dead worker and is reclaimed. Default 30 000. */
  claimIdleMs?: number;
  /** How often a consumer looks for entries to reclaim. Default claimIdleMs / 2. */
  reclaimIntervalMs?: number;
  /** Longest blocking read (it is shorter when a retry is due sooner). Default 2 000. */
  blockMs?: number;
  /** Entries read at once by one consumer. Default 10. */
  batchSize?: number;
  /** How long `close` waits for the in-flight job before leaving it to be reclaimed. Default 10 000. */
  closeTimeoutMs?: number;
  /** Due times of retries and `failedAt` of dead letters. Waits and blocking reads use real time. */
  clock?: Clock;
  /** Jitter source for `backoffDelay`. */
  random?: () => number;
  onDeadLetter?: (d: DeadLetter) => void;
  onRetry?: () => void;
  /** Entries taken over from workers that stopped (for a metric). */
  onReclaim?: (count: number) => void;
  /** An `enqueue` waited for room this long (for a metric: backpressure is visible). */
  onBackpressure?: (waitedMs: number) => void;
  /** Redis errors seen by the consumer loop and the connections; the loop backs off and goes on. */
  onError?: (err: Error, where: string) => void;
}

export interface RedisDeliveryQueueStats {
  /** Entries in the stream: waiting plus being handled (what `depth` returns). */
  depth: number;
  /** Entries read by a consumer and not yet settled. */
  pending: number;
  /** Failed jobs waiting for their retry. */
  retrying: number;
  deadLetters: number;
}

/** Explicit states of the consumer side (STYLE 11). */
type State = 'idle' | 'running' | 'closing' | 'closed';

type Fields = string[];
type RawEntry = [id: string, fields: Fields | null];
interface Entry {
  id: string;
  fields: Fields;
  /** times Redis handed this entry out (known for reclaimed entries) */
  deliveries?: number;
}

const SCRIPTS = {
  /** KEYS: stream. ARGV: capacity, job... Adds every job, or none when the stream is full. */
  dqEnqueue: {
    numberOfKeys: 1,
    lua: `
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
for i = 2, #ARGV do redis.call('XADD', KEYS[1], '*', 'job', ARGV[i], 'attempts', '0') end
return #ARGV - 1`,
  },
  /**
   * KEYS: stream, retry, dead. ARGV: now, limit. Moves due retries to the stream (a member
   * that is not ours goes to the dead letters: it must not jam every consumer); returns
   * {moved, next due or ''}.
   */
  dqPromote: {
    numberOfKeys: 3,
    lua: `
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  local ok, r = pcall(cjson.decode, m)
  if ok and type(r) == 'table' and type(r.job) == 'string' then
    redis.call('XADD', KEYS[1], '*', 'job', r.job, 'attempts', tostring(tonumber(r.attempts) or 0))
  else
    redis.call('XADD', KEYS[3], '*', 'job', m, 'attempts', '0', 'error', 'malformed retry entry', 'failedAt', ARGV[1], 'source', 'retry')
  end
  redis.call('ZREM', KEYS[2], m)
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {#due, nxt[2] or ''}`,
  },
  /**
   * KEYS: stream, retry, dead. ARGV: group, id, 'retry', due, member | 'dead', job, attempts, error, failedAt.
   * Settles a failed entry; nil when it was already settled (another worker took it over and finished).
   */
  dqFail: {
    numberOfKeys: 3,
    lua: `
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return false end
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[3] == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
  return 'retry'
end
return redis.call('XADD', KEYS[3], '*', 'job', ARGV[4], 'attempts', ARGV[5], 'error', ARGV[6], 'failedAt', ARGV[7], 'source', ARGV[2])`,
  },
  /** KEYS: stream, dead. ARGV: dead id. Back to the stream with attempts reset; 0 when unknown. */
  dqReplay: {
    numberOfKeys: 2,
    lua: `
local e = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
local f = e[1][2]
for i = 1, #f, 2 do
  if f[i] == 'job' then
    redis.call('XADD', KEYS[1], '*', 'job', f[i + 1], 'attempts', '0')
    redis.call('XDEL', KEYS[2], ARGV[1])
    return 1
  end
end
return 0`,
  },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/** Jobs per enqueue script call: a huge fan-out batch must not stall Redis in one script. */
const ENQUEUE_CHUNK = 500;
const STREAM_ID = /^\d+-\d+$/;

export function defaultConsumerName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

function fieldsToMap(fields: Fields): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) m.set(fields[i], fields[i + 1]);
  return m;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function parseJob(text: string | undefined): DeliveryJob | undefined {
  if (text === undefined) return undefined;
  try {
    const job = JSON.parse(text) as unknown;
    if (job && typeof job === 'object' && !Array.isArray(job) && typeof (job as DeliveryJob).event === 'object') return job as DeliveryJob;
  } catch {
    // malformed: handled by the caller
  }
  return undefined;
}

export class RedisDeliveryQueue implements DeliveryQueue {
  readonly keys: { stream: string; retry: string; dead: string };
  readonly group: string;
  readonly consumer: string;

  private readonly redis: Redis;
  private readonly blocking: Redis;
  private readonly policy: RetryPolicy;
  private readonly capacity: number;
  private readonly claimIdleMs: number;
  private readonly reclaimIntervalMs: number;
  private readonly blockMs: number;
  private readonly batchSize: number;
  private readonly closeTimeoutMs: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly onDeadLetter: (d: DeadLetter) => void;
  private readonly onRetry: () => void;
  private readonly onReclaim: (count: number) => void;
  private readonly onBackpressure: (waitedMs: number) => void;
  private readonly onError: (err: Error, where: string) => void;

  private state: State = 'idle';
  private handler?: JobHandler;
  private loop?: Promise<void>;
  private closing?: Promise<void>;
  private groupReady = false;
  private reading = false;
  /** CLIENT ID of the blocking connection, refreshed after each (re)connect, for CLIENT UNBLOCK. */
  private blockingId?: number;
  private reclaimCursor = '0-0';
  private reclaimAt = 0;
  /** Ids read by this consumer and not settled yet: kept fresh while the handler runs. */
  private held: string[] = [];
  /** A batch is being handled by this instance. */
  private busy = false;
  private heartbeat?: NodeJS.Timeout;
  private readonly sleepers = new Set<() => void>();

  constructor(options: RedisDeliveryQueueOptions) {
    const prefix = options.prefix ?? 'chat:';
    const name = options.name ?? 'deliveries';
    const base = `${prefix}{${name}}`;
    this.keys = { stream: base, retry: `${base}:retry`, dead: `${base}:dead` };
    this.group = options.group ?? 'workers';
    this.consumer = options.consumer ?? defaultConsumerName();
    this.policy = options.policy ?? defaultRetryPolicy;
    this.capacity = options.capacity ?? 100_000;
    this.claimIdleMs = options.claimIdleMs ?? 30_000;
    this.reclaimIntervalMs = options.reclaimIntervalMs ?? Math.max(10, Math.floor(this.claimIdleMs / 2));
    this.blockMs = options.blockMs ?? 2_000;
    this.batchSize = options.batchSize ?? 10;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.onDeadLetter = options.onDeadLetter ?? (() => {});
    this.onRetry = options.onRetry ?? (() => {});
    this.onReclaim = options.onReclaim ?? (() => {});
    this.onBackpressure = options.onBackpressure ?? (() => {});
    this.onError =
      options.onError ??
      ((err, where) => console.error(JSON.stringify({ level: 'error', msg: 'delivery queue', where, err: err.message })));

    // CLIENT SETNAME accepts no spaces; the names make the connections findable in CLIENT LIST.
    const connName = `delivery:${name}:${this.consumer}`.replace(/[^A-Za-z0-9:._-]/g, '_');
    // RESP2: the stream replies parsed below are RESP2 arrays, whatever ioredis defaults to.
    this.redis = new Redis(options.redisUrl, { protocol: 2, connectionName: `${connName}:main` });
    this.blocking = new Redis(options.redisUrl, {
      protocol: 2,
      connectionName: `${connName}:block`,
      lazyConnect: true,
      // a zombie TCP connection must not hang the consumer forever
      blockingTimeout: this.blockMs + 30_000,
    });
    for (const [conn, where] of [
      [this.redis, 'connection'],
      [this.blocking, 'blocking connection'],
    ] as const) {
      conn.on('error', (err: Error) => {
        if (this.state !== 'closed') this.onError(err, where);
      });
    }
    this.blocking.on('ready', () => (this.blockingId = undefined));
    for (const [n, s] of Object.entries(SCRIPTS)) this.redis.defineCommand(n, s);
  }

  private script(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    return (this.redis as unknown as Record<ScriptName, ScriptFn>)[name](...args);
  }

  // ---- producer side ---------------------------------------------------------------

  async enqueue(jobs: DeliveryJob[]): Promise<void> {
    if (jobs.length === 0) return;
    const payloads = jobs.map((j) => JSON.stringify(j));
    for (let i = 0; i < payloads.length; i += ENQUEUE_CHUNK) await this.enqueueChunk(payloads.slice(i, i + ENQUEUE_CHUNK));
  }

  /** Backpressure (STYLE 14): never drop a job; wait while the stream is full. */
  private async enqueueChunk(payloads: string[]): Promise<void> {
    let pause = 5;
    let started: number | undefined;
    for (;;) {
      if (this.state === 'closing' || this.state === 'closed') throw new Error('delivery queue is closed');
      const added = Number(await this.script('dqEnqueue', this.keys.stream, this.capacity, ...payloads));
      if (added > 0) break;
      started ??= Date.now();
      await this.sleep(pause);
      pause = Math.min(pause * 2, 200);
    }
    if (started !== undefined) this.onBackpressure(Date.now() - started);
  }

  async depth(): Promise<number> {
    return this.redis.xlen(this.keys.stream);
  }

  async stats(): Promise<RedisDeliveryQueueStats> {
    const [depth, retrying, dead] = await Promise.all([
      this.redis.xlen(this.keys.stream),
      this.redis.zcard(this.keys.retry),
      this.redis.xlen(this.keys.dead),
    ]);
    const summary = (await this.redis.call('XPENDING', this.keys.stream, this.group).catch((err: Error) => {
      if (err.message.startsWith('NOGROUP')) return [0];
      throw err;
    })) as [number, ...unknown[]];
    return { depth, pending: Number(summary[0]), retrying, deadLetters: dead };
  }

  /** True once the stream holds no entry (waiting or being handled) and no retry is scheduled. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const [len, retrying] = await Promise.all([this.redis.xlen(this.keys.stream), this.redis.zcard(this.keys.retry)]);
        // `busy`: a job settled in Redis also has its hooks (onDeadLetter, onRetry) run here
        if (len === 0 && retrying === 0 && !this.busy) return true;
      } catch (err) {
        if (this.state === 'closed') return false;
        this.onError(toError(err), 'drain');
      }
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise((r) => setTimeout(r, Math.min(25, left)));
    }
  }

  // ---- dead letters ------------------------------------------------------------------

  /** Oldest first. */
  async deadLetters(limit = 100): Promise<DeadLetter[]> {
    const rows = (await this.redis.xrange(this.keys.dead, '-', '+', 'COUNT', limit)) as [string, Fields][];
    return rows.map(([id, fields]) => {
      const f = fieldsToMap(fields);
      return {
        id,
        job: parseJob(f.get('job')) ?? { event: { malformed: f.get('job') ?? null } },
        attempts: Number(f.get('attempts') ?? 0),
        error: f.get('error') ?? '',
        failedAt: Number(f.get('failedAt') ?? 0),
      };
    });
  }

  /** Puts a dead letter back at the tail of the stream with its attempts reset. */
  async replay(id: string): Promise<boolean> {
    if (!STREAM_ID.test(id)) return false;
    return Number(await this.script('dqReplay', this.keys.stream, this.keys.dead, id)) === 1;
  }

  // ---- consumer side -----------------------------------------------------------------

  start(handler: JobHandler): void {
    this.handler = handler;
    if (this.state !== 'idle') return;
    this.state = 'running';
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.state === 'running') {
      try {
        if (!this.groupReady) await this.createGroup();
        const nextDue = await this.promoteDue();
        let batch: Entry[] = [];
        if (Date.now() >= this.reclaimAt) batch = await this.reclaim();
        if (batch.length === 0 && this.state === 'running') {
          const untilDue = nextDue === undefined ? this.blockMs : nextDue - this.clock.now();
          const untilReclaim = this.reclaimAt - Date.now();
          batch = await this.read(Math.max(1, Math.min(this.blockMs, untilDue, untilReclaim)));
        }
        await this.handleBatch(batch);
        failures = 0;
      } catch (err) {
        if (this.state !== 'running') break;
        const e = toError(err);
        if (e.message.startsWith('NOGROUP')) this.groupReady = false;
        this.onError(e, 'consumer loop');
        failures++;
        // back off and go on: ioredis reconnects by itself
        await this.sleep(backoffDelay(failures, { maxAttempts: 0, baseDelayMs: 50, maxDelayMs: 2_000 }, this.random) + 20);
      }
    }
  }

  /** From id 0: a group made after jobs were enqueued (or after the group vanished) reads them all. */
  private async createGroup(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.keys.stream, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!errorMessage(err).startsWith('BUSYGROUP')) throw err;
    }
    this.groupReady = true;
  }

  /** Moves due retries back to the stream; returns the due time of the next one. */
  private async promoteDue(): Promise<number | undefined> {
    const [, next] = (await this.script('dqPromote', this.keys.stream, this.keys.retry, this.keys.dead, this.clock.now(), 100)) as [number, string];
    return next === '' ? undefined : Number(next);
  }

  private async read(blockMs: number): Promise<Entry[]> {
    if (this.blocking.status === 'wait') await this.blocking.connect();
    this.blockingId ??= Number(await this.blocking.client('ID'));
    if (this.state !== 'running') return [];
    this.reading = true;
    try {
      const reply = (await this.blocking.call(
        'XREADGROUP', 'GROUP', this.group, this.consumer, 'COUNT', this.batchSize, 'BLOCK', Math.ceil(blockMs), 'STREAMS', this.keys.stream, '>',
      )) as [string, RawEntry[]][] | null;
      const entries = reply?.[0]?.[1] ?? [];
      return entries.filter((e): e is [string, Fields] => e[1] !== null).map(([id, fields]) => ({ id, fields }));
    } finally {
      this.reading = false;
    }
  }

  /** Takes over entries idle longer than claimIdleMs (their worker died), one page per round. */
  private async reclaim(): Promise<Entry[]> {
    const [cursor, claimed] = (await this.redis.call(
      'XAUTOCLAIM', this.keys.stream, this.group, this.consumer, this.claimIdleMs, this.reclaimCursor, 'COUNT', this.batchSize,
    )) as [string, RawEntry[], string[]?]; // 7.x adds the ids it found deleted (and dropped)
    this.reclaimCursor = cursor;
    // a full page means more may wait: look again right away; else after the interval
    this.reclaimAt = cursor !== '0-0' ? 0 : Date.now() + this.reclaimIntervalMs;
    // Redis 6.2 returns entries deleted meanwhile with nil fields and keeps them pending (7.x drops them: `deleted`)
    const gone = claimed.filter((e) => e[1] === null).map((e) => e[0]);
    if (gone.length > 0) await this.redis.xack(this.keys.stream, this.group, ...gone);
    const entries: Entry[] = claimed.filter((e): e is [string, Fields] => e[1] !== null).map(([id, fields]) => ({ id, fields }));
    if (entries.length === 0) return entries;
    this.onReclaim(entries.length);
    const pending = (await this.redis.call('XPENDING', this.keys.stream, this.group, '-', '+', Math.max(100, this.batchSize * 2), this.consumer)) as [string, string, number, number][];
    const deliveries = new Map(pending.map(([id, , , n]) => [id, Number(n)]));
    for (const e of entries) e.deliveries = deliveries.get(e.id);
    return entries;
  }

  private async handleBatch(batch: Entry[]): Promise<void> {
    if (batch.length === 0) return;
    this.busy = true;
    this.held = batch.map((e) => e.id);
    this.heartbeat = this.startHeartbeat();
    try {
      for (let i = 0; i < batch.length; i++) {
        if (this.state !== 'running') {
          await this.handBack(batch.slice(i));
          return;
        }
        await this.handle(batch[i]);
        this.held = this.held.filter((id) => id !== batch[i].id);
      }
    } finally {
      clearInterval(this.heartbeat);
      this.held = [];
      this.busy = false;
    }
  }

  /**
   * While a batch is being handled, reset the idle time of its entries so that live
   * workers do not reclaim them (JUSTID: the delivery counter is not incremented).
   */
  private startHeartbeat(): NodeJS.Timeout {
    const every = Math.max(20, Math.floor(this.claimIdleMs / 3));
    const t = setInterval(() => {
      if (this.held.length === 0 || this.state === 'closed') return;
      this.redis.call('XCLAIM', this.keys.stream, this.group, this.consumer, 0, ...this.held, 'JUSTID').catch(() => {});
    }, every);
    t.unref();
    return t;
  }

  private async handle(entry: Entry): Promise<void> {
    const f = fieldsToMap(entry.fields);
    const raw = f.get('job') ?? '';
    const attempts = Number(f.get('attempts') ?? 0) || 0;
    const job = parseJob(raw);
    if (!job) {
      await this.deadLetter(entry.id, raw, attempts, 'malformed entry: job is not a JSON delivery job');
      return;
    }
    // A job that kills its worker would otherwise kill every worker in turn.
    if (entry.deliveries !== undefined && entry.deliveries > this.policy.maxAttempts) {
      await this.deadLetter(entry.id, raw, attempts, `handed out ${entry.deliveries} times without an outcome (its workers stopped)`);
      return;
    }
    let failure: unknown;
    let ok = false;
    try {
      await this.handler!(job);
      ok = true;
    } catch (err) {
      failure = err;
    }
    if (this.state === 'closed') return; // close gave up on this job: it stays pending for another worker
    if (ok) {
      await this.redis.multi().xack(this.keys.stream, this.group, entry.id).xdel(this.keys.stream, entry.id).exec();
      return;
    }
    const failed = attempts + 1;
    if (failed >= this.policy.maxAttempts) {
      await this.deadLetter(entry.id, raw, failed, errorMessage(failure));
      return;
    }
    const due = this.clock.now() + backoffDelay(failed, this.policy, this.random);
    const member = JSON.stringify({ r: randomBytes(6).toString('hex'), attempts: failed, job: raw });
    const r = await this.script('dqFail', this.keys.stream, this.keys.retry, this.keys.dead, this.group, entry.id, 'retry', due, member);
    if (r !== null) this.onRetry();
  }

  private async deadLetter(sourceId: string, raw: string, attempts: number, error: string): Promise<void> {
    const failedAt = this.clock.now();
    const id = (await this.script(
      'dqFail', this.keys.stream, this.keys.retry, this.keys.dead, this.group, sourceId, 'dead', raw, attempts, error, failedAt,
    )) as string | null;
    if (id === null) return;
    this.onDeadLetter({ id, job: parseJob(raw) ?? { event: { malformed: raw } }, attempts, error, failedAt });
  }

  /** On close: entries read but not started go back to the stream now rather than after claimIdleMs. */
  private async handBack(entries: Entry[]): Promise<void> {
    if (entries.length === 0) return;
    const m = this.redis.multi();
    for (const e of entries) {
      m.xadd(this.keys.stream, '*', ...e.fields);
      m.xack(this.keys.stream, this.group, e.id);
      m.xdel(this.keys.stream, e.id);
    }
    await m.exec();
  }

  // ---- shutdown ------------------------------------------------------------------------

  /**
   * Stops consuming: the in-flight job finishes (up to closeTimeoutMs; after that it stays
   * pending and a live worker reclaims it), entries read but not started are handed back,
   * the blocking read is stopped, and both connections quit. Enqueue after close rejects.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.state = 'closing';
    for (const wake of [...this.sleepers]) wake();
    let finished = true;
    if (this.loop) {
      if (this.reading && this.blockingId !== undefined) {
        await this.redis.call('CLIENT', 'UNBLOCK', this.blockingId).catch(() => {});
      }
      let timer: NodeJS.Timeout | undefined;
      finished = await Promise.race([
        this.loop.then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.closeTimeoutMs))),
      ]);
      clearTimeout(timer);
      if (!finished) this.onError(new Error(`in-flight delivery job did not finish within ${this.closeTimeoutMs} ms; left pending for another worker`), 'close');
    }
    this.state = 'closed';
    clearInterval(this.heartbeat); // a job close gave up on goes stale, so a live worker reclaims it
    this.blocking.disconnect();
    // A consumer with nothing pending is removed from the group, so XINFO CONSUMERS lists live workers.
    if (finished && this.loop) {
      try {
        const mine = (await this.redis.call('XPENDING', this.keys.stream, this.group, '-', '+', 1, this.consumer)) as unknown[];
        if (mine.length === 0) await this.redis.xgroup('DELCONSUMER', this.keys.stream, this.group, this.consumer);
      } catch {
        // best effort
      }
    }
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /** A real-time wait that close() cuts short. */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }
}
