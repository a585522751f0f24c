/**
 * Group commit: sends that arrive while a batch is being committed wait and go into the
 * next batch, so durable throughput is bounded by batches per second, not by one fsync
 * per message. Each caller's promise resolves only after its batch has committed.
 */
import type { AppendResult, ChatStore, NewMessage } from '../core/store.ts';
import type { Metrics } from '../core/metrics.ts';

interface Pending {
  message: NewMessage;
  resolve: (r: AppendResult) => void;
  reject: (err: unknown) => void;
}

const uniqueViolation = '23505';

export class GroupCommitter {
  private pending: Pending[] = [];
  private flushing = false;

  constructor(
    private readonly store: ChatStore,
    private readonly metrics?: Metrics,
    private readonly maxBatch = 500,
  ) {}

  submit(message: NewMessage): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      this.pending.push({ message, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        // Let pending socket reads run first: PGlite executes on this thread, so sends
        // cannot arrive while it commits; one turn of the event loop gathers them.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const batch = this.pending.splice(0, this.maxBatch);
        const started = performance.now();
        try {
          const results = await this.commitWithRetry(batch.map((p) => p.message));
          this.metrics?.storeLatency.observe((performance.now() - started) / 1000);
          this.metrics?.batchSize.observe(batch.length);
          batch.forEach((p, i) => p.resolve(results[i]!));
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /**
   * Another process may store the same (sender, id) between our duplicate check and our
   * insert (a device that resent through another broker): the unique index refuses it,
   * the transaction rolls back whole, and the retry finds it as a duplicate.
   */
  private async commitWithRetry(messages: NewMessage[]): Promise<AppendResult[]> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.store.appendMessages(messages);
      } catch (err) {
        if ((err as { code?: string }).code !== uniqueViolation || attempt >= 2) throw err;
      }
    }
  }
}
