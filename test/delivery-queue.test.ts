import { describe, it, expect, afterEach } from 'vitest';
import { Redis } from 'ioredis';
import { systemClock } from '../core/clock.ts';
import { MemoryDeliveryQueue, backoffDelay, type DeliveryJob } from '../workers/delivery-queue.ts';
import { RedisDeliveryQueue, type RedisDeliveryQueueOptions } from '../workers/delivery-queue-redis.ts';
import { deliveryQueueContract, gate, job, seqOf, testPolicy, waitFor } from './delivery-queue.contract.ts';
import { redisUrl, uniquePrefix } from './helpers/services.ts';

/** Waits for a promise, failing with `what` instead of hanging until the test timeout. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}

/** Deletes every key under the prefix; a missing Redis fails here, it is never skipped. */
async function deleteKeys(prefix: string): Promise<void> {
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      if (keys.length > 0) await r.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

deliveryQueueContract('memory', async (o) => ({
  queue: new MemoryDeliveryQueue(systemClock, o.policy, o.capacity, o.onDeadLetter, o.onRetry),
  cleanup: async () => {},
}));

deliveryQueueContract('Redis Streams', async (o) => {
  const prefix = uniquePrefix('dq');
  return {
    queue: new RedisDeliveryQueue({
      redisUrl,
      prefix,
      policy: o.policy,
      capacity: o.capacity,
      claimIdleMs: 300,
      blockMs: 200,
      onDeadLetter: o.onDeadLetter,
      onRetry: o.onRetry,
    }),
    cleanup: () => deleteKeys(prefix),
  };
});

describe('backoffDelay', () => {
  it('is full jitter under an exponential ceiling capped at maxDelayMs', () => {
    const p = { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 1_000 };
    expect(backoffDelay(1, p, () => 0.999)).toBe(199);
    expect(backoffDelay(3, p, () => 0.5)).toBe(400);
    expect(backoffDelay(10, p, () => 0.999)).toBe(999);
    expect(backoffDelay(4, p, () => 0)).toBe(0);
  });
});

describe('Redis delivery queue: several workers', () => {
  const prefixes: string[] = [];
  const queues: RedisDeliveryQueue[] = [];
  let admin: Redis | undefined;

  function open(prefix: string, options: Partial<RedisDeliveryQueueOptions> = {}): RedisDeliveryQueue {
    const q = new RedisDeliveryQueue({ redisUrl, prefix, policy: testPolicy, claimIdleMs: 300, blockMs: 200, ...options });
    queues.push(q);
    return q;
  }
  function prefix(): string {
    const p = uniquePrefix('dq');
    prefixes.push(p);
    return p;
  }
  function redis(): Redis {
    admin ??= new Redis(redisUrl);
    return admin;
  }

  afterEach(async () => {
    for (const q of queues.splice(0)) await q.close();
    for (const p of prefixes.splice(0)) await deleteKeys(p);
    admin?.disconnect();
    admin = undefined;
  });

  it('uses the documented keys and removes a consumer with nothing pending from the group on close', async () => {
    const p = prefix();
    const q = open(p, { consumer: 'w1' });
    expect(q.keys).toEqual({ stream: `${p}{deliveries}`, retry: `${p}{deliveries}:retry`, dead: `${p}{deliveries}:dead` });
    q.start(async (j) => {
      if (seqOf(j) === 2) throw new Error('no');
    });
    await q.enqueue([job(1), job(2)]);
    expect(await q.drain(5_000)).toBe(true);
    expect(await redis().exists(q.keys.stream, q.keys.dead)).toBe(2);
    expect(await q.stats()).toEqual({ depth: 0, pending: 0, retrying: 0, deadLetters: 1 });
    const consumers = (await redis().call('XINFO', 'CONSUMERS', q.keys.stream, 'workers')) as unknown[][];
    expect(consumers.map((c) => c[1])).toEqual(['w1']);
    await q.close();
    expect(await redis().call('XINFO', 'CONSUMERS', q.keys.stream, 'workers')).toEqual([]);
  });

  it('a job left pending by a worker that died mid-job is reclaimed after claimIdleMs and finished by a live one', async () => {
    const p = prefix();
    const dyingStarted = gate();
    const dying = open(p, { consumer: 'dying', closeTimeoutMs: 50, onError: () => {} });
    dying.start(async () => {
      dyingStarted.open();
      await new Promise(() => {}); // never resolves: the process dies in the middle of it
    });
    await dying.enqueue([job(1)]);
    await within(dyingStarted.promise, 5_000, 'the dying worker to start the job');
    await dying.close(); // gives up on the in-flight job, quits its connections: nothing acked

    const pending = (await redis().call('XPENDING', dying.keys.stream, 'workers', '-', '+', 10)) as [string, string, number, number][];
    expect(pending.map((e) => e[1])).toEqual(['dying']);

    const reclaims: number[] = [];
    const handled: DeliveryJob[] = [];
    const live = open(p, { consumer: 'live', onReclaim: (n) => reclaims.push(n) });
    const t0 = Date.now();
    live.start(async (j) => {
      handled.push(j);
    });
    await waitFor(() => handled.length === 1, 5_000, 'the reclaimed job');
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(handled).toEqual([job(1)]);
    expect(reclaims).toEqual([1]);
    expect(await live.drain(2_000)).toBe(true);
    expect(await redis().call('XPENDING', live.keys.stream, 'workers', '-', '+', 10)).toEqual([]);
    await new Promise((r) => setTimeout(r, 400));
    expect(handled).toHaveLength(1);
  });

  it('a job that keeps killing its workers is dead-lettered once handed out more than maxAttempts times', async () => {
    const p = prefix();
    const policy = { maxAttempts: 2, baseDelayMs: 20, maxDelayMs: 100 };
    for (const name of ['dying-1', 'dying-2']) {
      const started = gate();
      const q = open(p, { consumer: name, policy, closeTimeoutMs: 50, onError: () => {} });
      q.start(async () => {
        started.open();
        await new Promise(() => {});
      });
      if (name === 'dying-1') await q.enqueue([job(1)]);
      await within(started.promise, 5_000, `${name} to take the job`);
      await q.close();
    }
    const dead: string[] = [];
    const handled: number[] = [];
    const live = open(p, { consumer: 'live', policy, onDeadLetter: (d) => dead.push(d.error) });
    live.start(async (j) => {
      handled.push(seqOf(j));
    });
    await waitFor(() => dead.length === 1, 5_000, 'the dead letter');
    expect(handled).toEqual([]);
    expect(dead[0]).toMatch(/handed out 3 times/);
    expect((await live.deadLetters())[0].job).toEqual(job(1));
    expect(await live.drain(1_000)).toBe(true);
  });

  it('two healthy consumers share the work and never handle a job twice', async () => {
    const p = prefix();
    const byConsumer = new Map<string, number[]>();
    for (const name of ['a', 'b']) {
      const mine: number[] = [];
      byConsumer.set(name, mine);
      open(p, { consumer: name }).start(async (j) => {
        mine.push(seqOf(j));
        await new Promise((r) => setTimeout(r, 3));
      });
    }
    const producer = open(p, { consumer: 'producer' });
    for (let b = 0; b < 40; b++) {
      await producer.enqueue(Array.from({ length: 5 }, (_, i) => job(b * 5 + i + 1)));
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(await producer.drain(15_000)).toBe(true);
    const a = byConsumer.get('a')!;
    const b = byConsumer.get('b')!;
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
    expect([...a, ...b].sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    // each consumer starts its own jobs in enqueue order
    expect(a).toEqual([...a].sort((x, y) => x - y));
    expect(b).toEqual([...b].sort((x, y) => x - y));
  });

  it('keeps a job that outlives claimIdleMs: its worker keeps it fresh, nobody takes it over', async () => {
    const p = prefix();
    const handled: string[] = [];
    const slow = open(p, { consumer: 'slow' });
    const other = open(p, { consumer: 'other' });
    slow.start(async () => {
      handled.push('slow');
      await new Promise((r) => setTimeout(r, 1_000));
    });
    await slow.enqueue([job(1)]);
    await waitFor(() => handled.length === 1, 5_000, 'the slow job to start');
    other.start(async () => {
      handled.push('other');
    });
    expect(await slow.drain(5_000)).toBe(true);
    expect(handled).toEqual(['slow']);
  });

  it('recreates the consumer group when it vanished (NOGROUP) and goes on', async () => {
    const p = prefix();
    const errors: string[] = [];
    const handled: number[] = [];
    const q = open(p, { onError: (e) => errors.push(e.message) });
    q.start(async (j) => {
      handled.push(seqOf(j));
    });
    await q.enqueue([job(1)]);
    await waitFor(() => handled.length === 1, 5_000, 'job 1');
    await redis().xgroup('DESTROY', q.keys.stream, 'workers');
    await waitFor(() => errors.some((m) => m.startsWith('NOGROUP')), 5_000, 'the NOGROUP error');
    await q.enqueue([job(2)]);
    await waitFor(() => handled.includes(2), 5_000, 'job 2');
    expect(await q.drain(2_000)).toBe(true);
  });

  it('survives its connections being killed: ioredis reconnects and the loop goes on', async () => {
    const p = prefix();
    const handled: number[] = [];
    const q = open(p, { consumer: `killme-${Date.now()}`, onError: () => {} });
    q.start(async (j) => {
      handled.push(seqOf(j));
    });
    await q.enqueue([job(1)]);
    await waitFor(() => handled.length === 1, 5_000, 'job 1');
    const list = (await redis().call('CLIENT', 'LIST')) as string;
    const ids = list
      .split('\n')
      .filter((line) => line.includes(`name=delivery:deliveries:${q.consumer}:`))
      .map((line) => /(?:^|\s)id=(\d+)/.exec(line)![1]);
    expect(ids).toHaveLength(2);
    for (const id of ids) await redis().call('CLIENT', 'KILL', 'ID', id);
    await q.enqueue([job(2)]);
    await waitFor(() => handled.includes(2), 10_000, 'job 2 after the reconnect');
    expect(await q.drain(2_000)).toBe(true);
  });

  it('hands entries read but not started back to the stream on close, for the other workers', async () => {
    const p = prefix();
    const g = gate();
    const first: number[] = [];
    const q1 = open(p, { consumer: 'closing', batchSize: 10 });
    q1.start(async (j) => {
      first.push(seqOf(j));
      await g.promise;
    });
    await q1.enqueue([job(1), job(2), job(3)]);
    await waitFor(() => first.length === 1, 5_000, 'job 1');
    const closing = q1.close();
    setTimeout(() => g.open(), 20);
    await closing;
    expect(first).toEqual([1]);
    const second: number[] = [];
    const q2 = open(p, { consumer: 'next', claimIdleMs: 60_000 }); // no reclaim: the hand-back is what brings them
    q2.start(async (j) => {
      second.push(seqOf(j));
    });
    expect(await q2.drain(5_000)).toBe(true);
    expect(second).toEqual([2, 3]);
  });

  it('dead-letters entries it cannot read instead of jamming the consumers', async () => {
    const p = prefix();
    const q = open(p);
    await redis().xadd(q.keys.stream, '*', 'job', 'not json', 'attempts', '0');
    await redis().zadd(q.keys.retry, 0, 'not a retry either');
    await q.enqueue([job(1)]);
    const handled: number[] = [];
    q.start(async (j) => {
      handled.push(seqOf(j));
    });
    expect(await q.drain(5_000)).toBe(true);
    expect(handled).toEqual([1]);
    const dead = await q.deadLetters();
    expect(dead.map((d) => d.error).sort()).toEqual(['malformed entry: job is not a JSON delivery job', 'malformed retry entry']);
  });

  it('fails enqueue loudly when closed while waiting for room, and reports the wait when it gets room', async () => {
    const p = prefix();
    const waits: number[] = [];
    const q = open(p, { capacity: 1, onBackpressure: (ms) => waits.push(ms) });
    await q.enqueue([job(1)]);
    const waiting = q.enqueue([job(2)]);
    await new Promise((r) => setTimeout(r, 100));
    q.start(async () => {});
    await waiting;
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThanOrEqual(50);

    const q2 = open(p, { capacity: 0 });
    const stuck = q2.enqueue([job(3)]).then(
      () => 'enqueued',
      (e: Error) => e.message,
    );
    await new Promise((r) => setTimeout(r, 50));
    await q2.close();
    expect(await stuck).toMatch(/closed/);
  });
});

describe('MemoryDeliveryQueue concurrency', () => {
  it('runs jobs of different conversations at once and one conversation in order', async () => {
    const q = new MemoryDeliveryQueue(systemClock, undefined, undefined, undefined, undefined, 8);
    let running = 0;
    let peak = 0;
    const perConv = new Map<string, number[]>();
    q.start(async (j) => {
      running++;
      peak = Math.max(peak, running);
      const conv = j.conv!;
      const list = perConv.get(conv) ?? [];
      list.push(j.event.seq as number);
      perConv.set(conv, list);
      await new Promise((r) => setTimeout(r, 5));
      running--;
    });
    const jobs = [];
    for (let seq = 1; seq <= 10; seq++) for (const conv of ['a', 'b', 'c', 'd']) jobs.push({ conv, fanout: 'write' as const, event: { type: 'msg', conv, seq } });
    await q.enqueue(jobs);
    expect(await q.drain(10_000)).toBe(true);
    expect(peak).toBe(4);
    for (const conv of ['a', 'b', 'c', 'd']) expect(perConv.get(conv)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await q.close();
  });
});
