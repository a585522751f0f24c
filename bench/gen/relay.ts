// Relay load: pairs of (publisher, subscriber) on bench/{run}/{i}. Both ends of a pair
// live in this process, so a message's latency is measured on one clock.
import { createHistogram, record, toData } from '../lib/stats.ts';
import type { RelayJob, RelayResult } from '../lib/protocol.ts';
import { connectClient, type GenClient } from './client.ts';
import { nowMs, pool, sleepUntil, type WorkerIO } from './io.ts';

interface Pair {
  index: number;
  topic: string;
  pub: GenClient;
  sub: GenClient;
  inflight: number;
}

export async function runRelay(job: RelayJob, io: WorkerIO): Promise<RelayResult> {
  const indices = Array.from({ length: job.to - job.from }, (_, k) => job.from + k);
  const base = { host: job.endpoint.host, port: job.endpoint.port, username: job.username, password: job.password };
  const pairs = await pool(indices, 50, async (i): Promise<Pair> => {
    const topic = `${job.topicPrefix}/${i}`;
    const sub = await connectClient(job.client, { ...base, clientId: `bs-${job.runId}-${i}` });
    const granted = await sub.subscribe(topic, job.qos);
    if (granted !== job.qos) throw new Error(`SUBACK ${granted} for ${topic}`);
    const pub = await connectClient(job.client, { ...base, clientId: `bp-${job.runId}-${i}` });
    return { index: i, topic, pub, sub, inflight: 0 };
  });
  io.send({ type: 'ready', connections: pairs.length * 2 });
  const go = await io.next('go');

  const hist = createHistogram();
  const measureStart = go.startAt + go.warmupMs;
  const measureEnd = measureStart + go.durationMs;
  let sentInWindow = 0;
  let receivedOfWindow = 0;
  let receivedDuringWindow = 0;
  let duplicates = 0;
  let sending = true;
  const seen = new Map<number, number>(); // pair -> last seq received

  const template = Buffer.alloc(Math.max(job.payloadBytes, 16), 0x61);
  const seqs = new Map<number, number>();
  const send = (p: Pair): void => {
    const seq = (seqs.get(p.index) ?? 0) + 1;
    seqs.set(p.index, seq);
    const payload = Buffer.from(template);
    const t = nowMs();
    payload.writeDoubleLE(t, 0);
    payload.writeUInt32LE(seq, 8);
    p.inflight++;
    if (t >= measureStart && t < measureEnd) sentInWindow++;
    p.pub.publish(p.topic, payload, job.qos);
  };

  for (const p of pairs) {
    p.sub.onMessage((_topic, payload) => {
      const now = nowMs();
      const sentAt = payload.readDoubleLE(0);
      const seq = payload.readUInt32LE(8);
      const last = seen.get(p.index) ?? 0;
      if (seq <= last) duplicates++;
      else seen.set(p.index, seq);
      p.inflight--;
      if (now >= measureStart && now < measureEnd) receivedDuringWindow++;
      if (sentAt >= measureStart && sentAt < measureEnd) {
        receivedOfWindow++;
        record(hist, (now - sentAt) * 1000);
      }
      if (job.rate === 0 && sending && now < measureEnd) send(p);
    });
  }

  await sleepUntil(go.startAt);
  if (job.rate === 0) {
    for (const p of pairs) for (let k = 0; k < job.window; k++) send(p);
    await sleepUntil(measureEnd);
  } else {
    // Open loop: a 1 ms ticker sends what the schedule says is due, round robin over pairs.
    const t0 = nowMs();
    let due = 0;
    let next = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const now = nowMs();
        if (now >= measureEnd) {
          clearInterval(timer);
          resolve();
          return;
        }
        const target = Math.floor(((now - t0) / 1000) * job.rate);
        for (; due < target; due++) {
          send(pairs[next]);
          next = (next + 1) % pairs.length;
        }
      }, 1);
    });
  }
  sending = false;
  // Drain: wait for messages in flight, up to drainMs.
  const drainEnd = nowMs() + go.drainMs;
  while (nowMs() < drainEnd && pairs.some((p) => p.inflight > 0)) await new Promise((r) => setTimeout(r, 20));
  await pool(pairs, 50, async (p) => {
    await p.pub.end();
    await p.sub.end();
  });
  return {
    kind: 'relay',
    sentInWindow,
    receivedOfWindow,
    receivedDuringWindow,
    windowMs: go.durationMs,
    latencyUs: toData(hist),
    duplicates,
  };
}
