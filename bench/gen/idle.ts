// Idle connections: CONNECT, wait for CONNACK, then nothing (keepalive longer than the run).
// The orchestrator grows the set step by step ({type:'connect', upTo}) and measures the
// broker between steps.
import type { IdleJob } from '../lib/protocol.ts';
import { connectClient, type GenClient } from './client.ts';
import { pool, type WorkerIO } from './io.ts';

export async function runIdle(job: IdleJob, io: WorkerIO): Promise<void> {
  const clients: GenClient[] = [];
  let failed = 0;
  let lastError = '';
  let closedByBroker = 0;
  io.send({ type: 'ready', connections: 0 });
  for (;;) {
    const cmd = await io.nextOf(['connect', 'close']);
    if (cmd.type === 'close') break;
    const t0 = performance.now();
    const want = cmd.upTo - clients.length;
    const indices = Array.from({ length: Math.max(0, want) }, (_, k) => job.offset + clients.length + k);
    // Stop the step early once failures pile up: the machine or the broker is full.
    let streak = 0;
    await pool(indices, job.concurrency, async (i) => {
      if (streak >= 200) return;
      try {
        const c = await connectClient(job.client, {
          host: job.endpoint.host,
          port: job.endpoint.port,
          clientId: `bi-${job.runId}-${i}`,
          keepalive: job.keepalive,
          localAddress: job.perSourceAddress > 0 ? sourceAddress(i, job.perSourceAddress) : undefined,
          timeoutMs: 10000,
        });
        c.onClose(() => closedByBroker++);
        clients.push(c);
        streak = 0;
      } catch (err) {
        failed++;
        streak++;
        lastError = err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`.trim() : String(err);
      }
    });
    io.send({
      type: 'connected',
      total: clients.length - closedByBroker,
      failed,
      lastError,
      ms: performance.now() - t0,
    });
  }
  // RST, not FIN: 20k TIME_WAIT entries would hold ephemeral ports for a minute.
  for (const c of clients) c.abort();
}

/** 127.0.0.2, 127.0.0.3, ... : `per` connections per source address. */
export function sourceAddress(i: number, per: number): string {
  const n = Math.floor(i / per);
  return `127.0.${Math.floor(n / 250)}.${(n % 250) + 2}`;
}
