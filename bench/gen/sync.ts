// sync load: senders fill a conversation with `missed` messages while the member is
// offline; on 'go' the member connects and pages through them with the sync RPC
// (DESIGN section 4) until `more` is false.
import { createHistogram, record, toData } from '../lib/stats.ts';
import type { ChatUser, SyncJob, SyncResult } from '../lib/protocol.ts';
import { deviceInTopic, outTopic, parseEvent, sendRequest } from '../lib/chat-wire.ts';
import { connectChatUser } from './chat.ts';
import { RpcClient } from './rpc.ts';
import type { WorkerIO } from './io.ts';

/** One sender's share: `count` sends into conv, `window` in flight, closed loop on the ack. */
async function fill(job: SyncJob, who: ChatUser, count: number, tag: string, errors: string[]): Promise<number> {
  const c = await connectChatUser(job, who, false);
  let sent = 0;
  let done = 0;
  let acked = 0;
  const text = 'x'.repeat(job.textBytes);
  try {
    await new Promise<void>((resolve, reject) => {
      if (count === 0) return resolve();
      const mine = deviceInTopic(who.user, who.device);
      const timer = setTimeout(() => reject(new Error(`fill ${who.user}: ${done}/${count} answered after 120 s (${errors.slice(-3).join('; ')})`)), 120000);
      c.onClose(() => {
        clearTimeout(timer);
        reject(new Error(`fill ${who.user}: connection closed by the broker after ${done}/${count} (${errors.slice(-3).join('; ')})`));
      });
      const next = (): void => {
        if (sent >= count) return;
        c.publish(outTopic(who.user, who.device), sendRequest({ id: `${job.runId}-${tag}-${sent++}`, conv: job.conv, text }), 1);
      };
      c.onMessage((topic, payload) => {
        if (topic !== mine) return;
        const ev = parseEvent(payload);
        if (ev.type === 'ack') acked++;
        else if (ev.type === 'error') {
          if (errors.length < 20) errors.push(`${ev.code}: ${ev.message ?? ''}`);
        } else return;
        if (++done === count) {
          clearTimeout(timer);
          resolve();
        } else next();
      });
      for (let w = 0; w < job.window; w++) next();
    });
  } finally {
    await c.end();
  }
  return acked;
}

export async function runSync(job: SyncJob, io: WorkerIO): Promise<SyncResult> {
  const errors: string[] = [];
  const t0 = performance.now();
  const per = Math.ceil(job.missed / job.senders.length);
  const acked = await Promise.all(job.senders.map((s, k) => fill(job, s, Math.max(0, Math.min(per, job.missed - k * per)), `y${k}`, errors)));
  const filled = acked.reduce((a, b) => a + b, 0);
  const fillMs = performance.now() - t0;
  io.send({ type: 'ready', connections: 0 });
  await io.next('go');

  // Catch up.
  const c0 = performance.now();
  const member = await connectChatUser(job, job.member, true);
  const connectMs = performance.now() - c0;
  let bytes = 0;
  const rpc = new RpcClient(member, job.member, (_t, p) => {
    bytes += p.length;
  });
  const pageHist = createHistogram();
  const seen = new Set<number>();
  let duplicates = 0;
  let pages = 0;
  let messages = 0;
  let after = 0;
  const s0 = performance.now();
  for (;;) {
    const p0 = performance.now();
    const result = await rpc.call('sync', { convs: { [job.conv]: after }, limit: job.limit }, 60000);
    record(pageHist, (performance.now() - p0) * 1000);
    bytes += JSON.stringify(result).length;
    pages++;
    const convs = Array.isArray(result.convs) ? (result.convs as unknown[]) : [];
    const mine = convs.find((x): x is { conv: string; messages: unknown[]; more: boolean } => typeof x === 'object' && x !== null && (x as { conv?: unknown }).conv === job.conv);
    if (!mine) break;
    let last = after;
    for (const m of Array.isArray(mine.messages) ? mine.messages : []) {
      const seq = typeof m === 'object' && m !== null ? (m as { seq?: unknown }).seq : undefined;
      if (typeof seq !== 'number') continue;
      if (seen.has(seq)) duplicates++;
      seen.add(seq);
      messages++;
      if (seq > last) last = seq;
    }
    if (!mine.more) break;
    if (last === after) {
      errors.push(`sync page ${pages} said more=true but advanced nothing`);
      break;
    }
    after = last;
    if (pages > job.missed) break;
  }
  const syncMs = performance.now() - s0;
  await member.end();
  const seqs = [...seen].sort((a, b) => a - b);
  const first = seqs[0] ?? 0;
  const last = seqs[seqs.length - 1] ?? 0;
  return {
    kind: 'sync',
    conv: job.conv,
    fillMs,
    filled,
    connectMs,
    syncMs,
    pages,
    messages,
    bytes,
    pageUs: toData(pageHist),
    firstSeq: first,
    lastSeq: last,
    gaps: seqs.length ? last - first + 1 - seqs.length : 0,
    duplicates,
    errors,
  };
}
