/**
 * The delivery-queue contract: one suite, a function of a factory, run against every
 * DeliveryQueue (memory and Redis Streams). Each test opens a fresh queue. It checks the
 * semantics written on the interface (workers/delivery-queue.ts): at-least-once hand-off,
 * enqueue order with one consumer, retries with backoff then dead-letter after
 * maxAttempts, listing and replaying dead letters, depth and backpressure, drain, close.
 * Real time with small delays: the Redis queue waits on a real server.
 */
import { describe, it, expect, afterEach } from 'vitest';
import type { DeadLetter, DeliveryJob, DeliveryQueue, RetryPolicy } from '../workers/delivery-queue.ts';

export interface QueueFactoryOptions {
  policy: RetryPolicy;
  capacity: number;
  onDeadLetter(d: DeadLetter): void;
  onRetry(): void;
}

export type OpenQueue = (opts: QueueFactoryOptions) => Promise<{ queue: DeliveryQueue; cleanup(): Promise<void> }>;

export const testPolicy: RetryPolicy = { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 200 };

export function job(n: number, extra: Partial<DeliveryJob> = {}): DeliveryJob {
  return { users: [`u${n}`], event: { type: 'msg', conv: 'c_1', seq: n, body: { text: `m${n}`, nested: [1, 'two', null, { ok: true }] } }, ...extra };
}

export const seqOf = (j: DeliveryJob): number => j.event.seq as number;

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

const settled = async (p: Promise<unknown>, ms: number): Promise<boolean> => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setTimeout(r, ms));
  return done;
};

export function deliveryQueueContract(name: string, open: OpenQueue): void {
  describe(`delivery queue contract: ${name}`, () => {
    const opened: { queue: DeliveryQueue; cleanup(): Promise<void> }[] = [];
    let dead: DeadLetter[];
    let retries: number;

    async function make(opts: Partial<Pick<QueueFactoryOptions, 'policy' | 'capacity'>> = {}): Promise<DeliveryQueue> {
      dead = [];
      retries = 0;
      const q = await open({
        policy: opts.policy ?? testPolicy,
        capacity: opts.capacity ?? 10_000,
        onDeadLetter: (d) => dead.push(d),
        onRetry: () => retries++,
      });
      opened.push(q);
      return q.queue;
    }

    afterEach(async () => {
      for (const q of opened.splice(0)) {
        await q.queue.close();
        await q.cleanup();
      }
    });

    it('hands every job to the handler, jobs enqueued before start included, as the plain data given', async () => {
      const q = await make();
      const seen: DeliveryJob[] = [];
      await q.enqueue([job(1), job(2, { conv: 'c_9', fanout: 'read', topics: ['group/c_9'] })]);
      q.start(async (j) => {
        seen.push(j);
      });
      await q.enqueue([job(3)]);
      expect(await q.drain(5_000)).toBe(true);
      expect(seen).toEqual([job(1), job(2, { conv: 'c_9', fanout: 'read', topics: ['group/c_9'] }), job(3)]);
      expect(dead).toEqual([]);
      expect(retries).toBe(0);
    });

    it('starts jobs in enqueue order with one consumer', async () => {
      const q = await make();
      const started: number[] = [];
      q.start(async (j) => {
        started.push(seqOf(j));
        await new Promise((r) => setTimeout(r, 1));
      });
      for (let b = 0; b < 10; b++) await q.enqueue(Array.from({ length: 7 }, (_, i) => job(b * 7 + i + 1)));
      expect(await q.drain(10_000)).toBe(true);
      expect(started).toEqual(Array.from({ length: 70 }, (_, i) => i + 1));
    });

    it('retries a failing job with backoff until the handler resolves, without holding back later jobs', async () => {
      const q = await make();
      const calls: number[] = [];
      let failuresLeft = 2;
      q.start(async (j) => {
        calls.push(seqOf(j));
        if (seqOf(j) === 1 && failuresLeft > 0) {
          failuresLeft--;
          throw new Error('broker not started');
        }
      });
      await q.enqueue([job(1), job(2), job(3)]);
      expect(await q.drain(5_000)).toBe(true);
      // at-least-once: job 1 is handed out until its handler resolves (twice failed, once done)
      expect(calls.filter((s) => s === 1)).toHaveLength(3);
      expect(calls.filter((s) => s !== 1)).toEqual([2, 3]);
      // a retried job may finish after later ones: 2 starts before 1's second attempt
      expect(calls.indexOf(2)).toBeLessThan(calls.indexOf(1, 1));
      expect(retries).toBe(2);
      expect(dead).toEqual([]);
    });

    it('moves a job that keeps failing to the dead letters after maxAttempts, and goes on with the rest', async () => {
      const q = await make();
      const calls: number[] = [];
      q.start(async (j) => {
        calls.push(seqOf(j));
        if (seqOf(j) === 2) throw new Error('publish failed: boom');
      });
      await q.enqueue([job(1), job(2), job(3)]);
      expect(await q.drain(5_000)).toBe(true);
      expect(calls.filter((s) => s === 2)).toHaveLength(testPolicy.maxAttempts);
      expect(calls.filter((s) => s !== 2)).toEqual([1, 3]);
      expect(retries).toBe(testPolicy.maxAttempts - 1);
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ job: job(2), attempts: testPolicy.maxAttempts, error: 'publish failed: boom' });
      expect(typeof dead[0].id).toBe('string');
      expect(dead[0].failedAt).toBeGreaterThan(0);
      expect(await q.deadLetters()).toEqual(dead);
      expect(await q.depth()).toBe(0);
    });

    it('lists dead letters oldest first, up to a limit', async () => {
      const q = await make({ policy: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } });
      q.start(async (j) => {
        throw new Error(`fail ${seqOf(j)}`);
      });
      await q.enqueue([job(1), job(2), job(3)]);
      expect(await q.drain(5_000)).toBe(true);
      expect(retries).toBe(0);
      const all = await q.deadLetters();
      expect(all.map((d) => seqOf(d.job))).toEqual([1, 2, 3]);
      expect(all.map((d) => d.error)).toEqual(['fail 1', 'fail 2', 'fail 3']);
      expect(new Set(all.map((d) => d.id)).size).toBe(3);
      expect((await q.deadLetters(2)).map((d) => seqOf(d.job))).toEqual([1, 2]);
    });

    it('replays a dead letter: back on the queue with its attempts reset, then off the list', async () => {
      const q = await make();
      let broken = true;
      const calls: number[] = [];
      q.start(async (j) => {
        calls.push(seqOf(j));
        if (broken) throw new Error('down');
      });
      await q.enqueue([job(7)]);
      expect(await q.drain(5_000)).toBe(true);
      const [first] = await q.deadLetters();
      expect(calls).toHaveLength(testPolicy.maxAttempts);

      // still failing: the replayed job gets maxAttempts new attempts, not one
      expect(await q.replay(first.id)).toBe(true);
      expect(await q.drain(5_000)).toBe(true);
      expect(calls).toHaveLength(2 * testPolicy.maxAttempts);
      const again = await q.deadLetters();
      expect(again).toHaveLength(1);
      expect(again[0]).toMatchObject({ job: job(7), attempts: testPolicy.maxAttempts });
      expect(await q.replay(first.id)).toBe(false); // the first dead letter is gone

      broken = false;
      expect(await q.replay(again[0].id)).toBe(true);
      expect(await q.drain(5_000)).toBe(true);
      expect(calls).toHaveLength(2 * testPolicy.maxAttempts + 1);
      expect(await q.deadLetters()).toEqual([]);
      expect(await q.replay(again[0].id)).toBe(false);
      expect(await q.replay('no-such-id')).toBe(false);
    });

    it('reports depth: jobs waiting to be handled', async () => {
      const q = await make();
      expect(await q.depth()).toBe(0);
      await q.enqueue([job(1), job(2)]);
      await q.enqueue([job(3)]);
      expect(await q.depth()).toBe(3);
      q.start(async () => {});
      expect(await q.drain(5_000)).toBe(true);
      expect(await q.depth()).toBe(0);
    });

    it('applies backpressure: enqueue waits while the queue is at capacity and drops nothing', async () => {
      const q = await make({ capacity: 3 });
      await q.enqueue([job(1), job(2), job(3)]);
      const waiting = q.enqueue([job(4)]);
      expect(await settled(waiting, 150)).toBe(false);
      expect(await q.depth()).toBe(3);
      const seen: number[] = [];
      q.start(async (j) => {
        seen.push(seqOf(j));
      });
      await waiting;
      expect(await q.drain(5_000)).toBe(true);
      expect(seen).toEqual([1, 2, 3, 4]);
    });

    it('drains: true at once when idle, false on timeout while a job runs, true once retries are done', async () => {
      const q = await make();
      expect(await q.drain(1_000)).toBe(true);
      const g = gate();
      let failedOnce = false;
      let done = 0;
      q.start(async (j) => {
        if (seqOf(j) === 1) await g.promise;
        if (seqOf(j) === 2 && !failedOnce) {
          failedOnce = true;
          throw new Error('once');
        }
        done++;
      });
      await q.enqueue([job(1), job(2)]);
      expect(await q.drain(100)).toBe(false);
      g.open();
      expect(await q.drain(5_000)).toBe(true);
      // the scheduled retry of job 2 counted as queued work
      expect(done).toBe(2);
      expect(retries).toBe(1);
    });

    it('close lets the in-flight job finish and starts no other; closing twice is fine', async () => {
      const q = await make();
      const g = gate();
      const started: number[] = [];
      const finished: number[] = [];
      q.start(async (j) => {
        started.push(seqOf(j));
        if (seqOf(j) === 1) await g.promise;
        finished.push(seqOf(j));
      });
      // One recipient list: an implementation that runs jobs concurrently still runs these
      // one after another (per-key order), so "in flight" is exactly job 1.
      await q.enqueue([job(1, { users: ['same'] }), job(2, { users: ['same'] }), job(3, { users: ['same'] })]);
      await waitFor(() => started.length === 1, 5_000, 'job 1 to start');
      const closing = q.close();
      setTimeout(() => g.open(), 50);
      await closing;
      await q.close();
      await waitFor(() => finished.length === 1, 5_000, 'job 1 to finish');
      await new Promise((r) => setTimeout(r, 200));
      expect(started).toEqual([1]);
      expect(finished).toEqual([1]);
      // enqueue after close never reaches a handler (memory: stays queued; Redis: rejected)
      await q.enqueue([job(4)]).catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
      expect(started).toEqual([1]);
    });
  });
}
