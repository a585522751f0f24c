/**
 * The delivery queue: jobs that publish stored events to their recipients.
 *
 * Semantics every implementation keeps (the contract suite checks them):
 * - at-least-once: a job is handed to the handler until the handler resolves for it;
 * - a job whose handler throws is retried with exponential backoff and jitter, up to
 *   `maxAttempts`; then it moves to the dead-letter store, where it can be listed and
 *   replayed (replay puts it back with its attempts reset);
 * - jobs are started in enqueue order; a retried job may finish after later ones
 *   (receivers order by seq and fill gaps with `sync`, so order is restored there).
 */
import type { Clock } from '../core/clock.ts';

export interface DeliveryJob {
  /** Recipients: `users` get it on chat/{user}/in, `topics` as given. */
  users?: string[];
  topics?: string[];
  /** a conversation message delivered to the members as of delivery time */
  conv?: string;
  fanout?: 'write' | 'read';
  event: Record<string, unknown>;
}

export interface DeadLetter {
  id: string;
  job: DeliveryJob;
  attempts: number;
  error: string;
  failedAt: number;
}

export type JobHandler = (job: DeliveryJob) => Promise<void>;

export interface DeliveryQueue {
  enqueue(jobs: DeliveryJob[]): Promise<void>;
  /** Starts handing jobs to `handler`. */
  start(handler: JobHandler): void;
  deadLetters(limit?: number): Promise<DeadLetter[]>;
  replay(id: string): Promise<boolean>;
  depth(): Promise<number>;
  /** Resolves when every queued job has been handled (or dead-lettered), for shutdown. */
  drain(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 30_000 };

/** Exponential backoff with full jitter: a random delay in [0, min(max, base * 2^attempt)). */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

interface Entry {
  job: DeliveryJob;
  attempts: number;
}

/** Jobs of one conversation (or one recipient list) run one at a time, in order. */
export function orderingKey(job: DeliveryJob): string {
  return job.conv ?? (job.users ?? job.topics ?? []).join(',');
}

/**
 * In-process queue (embedded mode). Bounded: enqueue waits while it is full. Up to
 * `concurrency` jobs run at once, but never two of the same ordering key, so one
 * conversation's messages are published in seq order while others proceed; a job waiting
 * for its key does not hold back jobs of other keys behind it.
 */
export class MemoryDeliveryQueue implements DeliveryQueue {
  private readonly queue: Entry[] = [];
  private readonly dead = new Map<string, DeadLetter>();
  private readonly busyKeys = new Set<string>();
  private handler?: JobHandler;
  private inFlight = 0;
  /** retries waiting for their backoff timer */
  private retrying = 0;
  private waitingRoom: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private deadSeq = 0;
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly policy: RetryPolicy = defaultRetryPolicy,
    private readonly capacity = 100_000,
    private readonly onDeadLetter: (d: DeadLetter) => void = () => {},
    private readonly onRetry: () => void = () => {},
    private readonly concurrency = 64,
  ) {}

  async enqueue(jobs: DeliveryJob[]): Promise<void> {
    while (this.queue.length >= this.capacity && !this.closed) {
      await new Promise<void>((resolve) => this.waitingRoom.push(resolve));
    }
    for (const job of jobs) this.queue.push({ job, attempts: 0 });
    this.pump();
  }

  start(handler: JobHandler): void {
    this.handler = handler;
    this.pump();
  }

  private pump(): void {
    if (!this.handler || this.closed) return;
    // Look ahead a bounded distance for jobs whose key is free.
    for (let i = 0; i < this.queue.length && i < 1_000 && this.inFlight < this.concurrency; ) {
      const key = orderingKey(this.queue[i]!.job);
      if (this.busyKeys.has(key)) {
        i++;
        continue;
      }
      const [entry] = this.queue.splice(i, 1);
      this.run(entry!, key);
    }
    this.notify();
  }

  private run(entry: Entry, key: string): void {
    this.inFlight++;
    this.busyKeys.add(key);
    const handler = this.handler!;
    void Promise.resolve()
      .then(() => handler(entry.job))
      .catch((err: unknown) => this.failed(entry, err))
      .finally(() => {
        this.inFlight--;
        this.busyKeys.delete(key);
        this.pump();
      });
  }

  private notify(): void {
    while (this.waitingRoom.length > 0 && this.queue.length < this.capacity) this.waitingRoom.shift()!();
    if (this.idle()) for (const w of this.idleWaiters.splice(0)) w();
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.inFlight === 0 && this.retrying === 0;
  }

  private failed(entry: Entry, err: unknown): void {
    entry.attempts++;
    if (entry.attempts >= this.policy.maxAttempts) {
      const d: DeadLetter = { id: `dl-${++this.deadSeq}`, job: entry.job, attempts: entry.attempts, error: (err as Error).message ?? String(err), failedAt: this.clock.now() };
      this.dead.set(d.id, d);
      this.onDeadLetter(d);
      return;
    }
    this.onRetry();
    this.retrying++;
    this.clock.setTimeout(() => {
      this.retrying--;
      this.queue.push(entry);
      this.pump();
    }, backoffDelay(entry.attempts, this.policy));
  }

  async deadLetters(limit = 100): Promise<DeadLetter[]> {
    return [...this.dead.values()].slice(0, limit);
  }

  async replay(id: string): Promise<boolean> {
    const d = this.dead.get(id);
    if (!d) return false;
    this.dead.delete(id);
    this.queue.push({ job: d.job, attempts: 0 });
    this.pump();
    return true;
  }

  async depth(): Promise<number> {
    return this.queue.length;
  }

  async drain(timeoutMs: number): Promise<boolean> {
    if (this.idle()) return true;
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waitingRoom.splice(0)) w();
  }
}
