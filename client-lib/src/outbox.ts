/**
 * The outbox: every send is written to the LocalStore before it is published, and stays
 * there — across reconnects and app restarts — until the server acknowledges its id. The
 * server answers a known (sender, id) with the original seq (DESIGN section 3.3), so
 * publishing an entry again is always safe; this class only decides *which* entries still
 * need it and settles their promises. Publishing is the ChatClient's job.
 */

import type { Clock, TimerHandle } from './clock.ts';
import type { ChatError } from './errors.ts';
import type { LocalStore, OutboxEntry } from './store/types.ts';

/** The acknowledgement of a send: the message is committed on the server. */
export interface SendAck {
  id: string;
  conv: string;
  seq: number;
  ts: number;
}

interface Waiter {
  promise: Promise<SendAck>;
  resolve(ack: SendAck): void;
  reject(error: ChatError): void;
}

export class Outbox {
  /** Unacknowledged entries in first-send order (mirror of the store's outbox). */
  readonly #entries = new Map<string, OutboxEntry>();
  /** Promises of sends made in this run (entries from a previous run have none). */
  readonly #waiters = new Map<string, Waiter>();
  /** Ids published on the current connection: a flush must not publish them twice. */
  readonly #published = new Set<string>();
  readonly #resendTimers = new Map<string, TimerHandle>();
  readonly #retries = new Map<string, number>();
  /**
   * Store writes, one at a time, so that the stored order is the call order. Closed until
   * load() has read the previous run's entries, which go out first.
   */
  #writes: Promise<unknown>;
  #opened!: () => void;
  #loadedOrFailed = false;
  /** Set when the store could not be read: every send fails with it. */
  #unusable: ChatError | undefined;

  constructor(
    private readonly store: LocalStore,
    private readonly clock: Clock,
    private readonly onStoreError: (error: unknown) => void,
  ) {
    this.#writes = new Promise<void>((resolve) => {
      this.#opened = () => {
        this.#loadedOrFailed = true;
        resolve();
      };
    });
  }

  /** Reads what a previous run left unacknowledged, then lets new sends in. */
  async load(): Promise<void> {
    for (const entry of await this.store.outboxList()) this.#entries.set(entry.id, entry);
    this.#opened();
  }

  /** The store could not be read (or belongs to another account): sends fail with `error`. */
  loadFailed(error: ChatError): void {
    this.#unusable = error;
    this.#opened();
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  get(id: string): OutboxEntry | undefined {
    return this.#entries.get(id);
  }

  /** Copies of the unacknowledged entries, oldest first. */
  entries(): OutboxEntry[] {
    return [...this.#entries.values()].map((entry) => structuredClone(entry));
  }

  /** The promise of a send of this run still waiting for its ack. */
  pending(id: string): Promise<SendAck> | undefined {
    return this.#waiters.get(id)?.promise;
  }

  /**
   * Queues a send: persists it (after every earlier one), then calls `queued` — from then
   * on it survives a restart. Resolves with the ack, rejects with the server's refusal or
   * with `disconnected` on close.
   */
  add(entry: OutboxEntry, queued: (entry: OutboxEntry) => void, persistFailed: (error: unknown) => ChatError): Promise<SendAck> {
    let waiter!: Waiter;
    const promise = new Promise<SendAck>((resolve, reject) => {
      waiter = { promise: undefined as unknown as Promise<SendAck>, resolve, reject };
    });
    waiter.promise = promise;
    // The outbox makes a send durable, so ignoring its promise is safe: a rejection on
    // close() must not crash an app that did not await it.
    promise.catch(() => undefined);
    this.#waiters.set(entry.id, waiter);
    this.#writes = this.#writes.then(async () => {
      try {
        if (this.#unusable) throw this.#unusable;
        await this.store.outboxPut(entry);
      } catch (error) {
        this.#waiters.delete(entry.id);
        waiter.reject(persistFailed(error));
        return;
      }
      this.#entries.set(entry.id, entry);
      queued(entry);
    });
    return promise;
  }

  /** Entries not yet published on the current connection, oldest first. */
  unpublished(): OutboxEntry[] {
    return [...this.#entries.values()].filter((entry) => !this.#published.has(entry.id));
  }

  isPublished(id: string): boolean {
    return this.#published.has(id);
  }

  markPublished(id: string): void {
    this.#published.add(id);
  }

  /** A new connection (or none): everything must be published again; pending resends are void. */
  connectionChanged(): void {
    this.#published.clear();
    for (const timer of this.#resendTimers.values()) this.clock.clearTimeout(timer);
    this.#resendTimers.clear();
  }

  /** Publishes `id` again after `delayMs` through `resend`, unless it is settled first. */
  scheduleResend(id: string, delayMs: number, resend: (entry: OutboxEntry) => void): void {
    const previous = this.#resendTimers.get(id);
    if (previous !== undefined) this.clock.clearTimeout(previous);
    this.#resendTimers.set(
      id,
      this.clock.setTimeout(() => {
        this.#resendTimers.delete(id);
        const entry = this.#entries.get(id);
        if (!entry) return;
        this.#published.delete(id);
        resend(entry);
      }, delayMs),
    );
  }

  /** Counts a retryable refusal of `id`; returns how many there were. */
  countRetry(id: string): number {
    const retries = (this.#retries.get(id) ?? 0) + 1;
    this.#retries.set(id, retries);
    return retries;
  }

  /**
   * The server acknowledged `ack.id` (ack event, or the echo of our own message). Returns
   * false when the id was not waiting (already settled, or not ours), so that callers
   * report each ack once.
   */
  settle(ack: SendAck): boolean {
    if (!this.#remove(ack.id)) return false;
    const waiter = this.#waiters.get(ack.id);
    this.#waiters.delete(ack.id);
    waiter?.resolve(ack);
    return true;
  }

  /**
   * The server refused `id` for good. Returns true when a promise of this run took the
   * error, false when nobody waits for it (queued by a previous run).
   */
  fail(id: string, error: ChatError): boolean {
    this.#remove(id);
    const waiter = this.#waiters.get(id);
    this.#waiters.delete(id);
    waiter?.reject(error);
    return waiter !== undefined;
  }

  /** Rejects every waiting promise (client closed); the entries stay queued. */
  rejectWaiters(error: (id: string) => ChatError): void {
    for (const [id, waiter] of this.#waiters) waiter.reject(error(id));
    this.#waiters.clear();
    this.connectionChanged();
  }

  /** Resolves once every queued store write is done (at once if the outbox was never loaded). */
  async flushWrites(): Promise<void> {
    if (!this.#loadedOrFailed) return;
    await this.#writes.catch(() => undefined);
  }

  #remove(id: string): boolean {
    if (!this.#entries.delete(id)) return false;
    this.#published.delete(id);
    this.#retries.delete(id);
    const timer = this.#resendTimers.get(id);
    if (timer !== undefined) this.clock.clearTimeout(timer);
    this.#resendTimers.delete(id);
    this.#writes = this.#writes.then(() => this.store.outboxDelete(id)).catch((error: unknown) => this.onStoreError(error));
    return true;
  }
}
