/**
 * Per-conversation ordering (DESIGN section 3, guarantees 2 and 3): messages are released
 * in `seq` order, a seq already held is a duplicate, and a hole below a buffered message is
 * a gap to fill with `sync`.
 *
 * Pure bookkeeping, no I/O: the client stores and emits what `accept` releases, and asks
 * the server for the gap it reports.
 */

export interface Sequenced {
  seq: number;
}

export interface SeqRange {
  /** First missing seq. */
  from: number;
  /** Last missing seq (inclusive). */
  to: number;
}

export interface AcceptResult<T> {
  /** Items that became contiguous, in ascending seq order. */
  ready: T[];
  /** The item's seq was already released or is already buffered: it was dropped. */
  duplicate: boolean;
  /** The item did not fit in the buffer; `sync` will bring it again. */
  overflow: boolean;
  /** The hole below the lowest buffered item, when items wait for it. */
  gap: SeqRange | undefined;
}

/** Bound on out-of-order items held per conversation (STYLE 14: no unbounded buffers). */
export const DEFAULT_MAX_BUFFERED = 5_000;

export class ConversationSequencer<T extends Sequenced> {
  #contiguous: number;
  readonly #buffered = new Map<number, T>();

  /**
   * @param contiguous the highest seq such that every seq up to it has been released
   *   (the sync cursor; 0 for a conversation never seen).
   */
  constructor(
    contiguous: number,
    private readonly maxBuffered: number = DEFAULT_MAX_BUFFERED,
  ) {
    this.#contiguous = contiguous;
  }

  /** Every seq up to this one has been released. */
  get contiguous(): number {
    return this.#contiguous;
  }

  get bufferedCount(): number {
    return this.#buffered.size;
  }

  /** The hole below the lowest buffered item, if any. */
  get gap(): SeqRange | undefined {
    if (this.#buffered.size === 0) return undefined;
    const lowest = Math.min(...this.#buffered.keys());
    return { from: this.#contiguous + 1, to: lowest - 1 };
  }

  /** Takes one item from any source (live push, sync, history) in any order. */
  accept(item: T): AcceptResult<T> {
    if (item.seq <= this.#contiguous || this.#buffered.has(item.seq)) {
      return { ready: [], duplicate: true, overflow: false, gap: this.gap };
    }
    if (item.seq !== this.#contiguous + 1 && this.#buffered.size >= this.maxBuffered) {
      return { ready: [], duplicate: false, overflow: true, gap: this.gap };
    }
    this.#buffered.set(item.seq, item);
    const ready = this.#drain();
    return { ready, duplicate: false, overflow: false, gap: this.gap };
  }

  /**
   * Declares every seq up to `through` as settled even if it never arrived (the server
   * answered a complete sync without it: it is not for this member, e.g. before they
   * joined). Releases the buffered items that become contiguous.
   */
  skipThrough(through: number): T[] {
    if (through <= this.#contiguous) return [];
    const released: T[] = [];
    for (const [seq, item] of [...this.#buffered].sort(([a], [b]) => a - b)) {
      if (seq > through) break;
      released.push(item);
      this.#buffered.delete(seq);
    }
    this.#contiguous = through;
    return [...released, ...this.#drain()];
  }

  #drain(): T[] {
    const ready: T[] = [];
    for (;;) {
      const next = this.#buffered.get(this.#contiguous + 1);
      if (next === undefined) return ready;
      this.#buffered.delete(next.seq);
      this.#contiguous = next.seq;
      ready.push(next);
    }
  }
}
