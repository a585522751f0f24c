// sync load: the sender fills a 1:1 conversation with `missed` messages while the member
// is offline; on 'go' the member connects and pages through them with the sync RPC
// (DESIGN section 4) until `more` is false.
import { createHistogram, record, toData } from '../lib/stats.ts';
import type { SyncJob, SyncResult } from '../lib/protocol.ts';
import { deviceInTopic, outTopic, parseEvent, sendRequest } from '../lib/chat-wire.ts';
import { connectChatUser } from './chat.ts';
import { RpcClient } from './rpc.ts';
import type { WorkerIO } from './io.ts';

export async function runSync(job: SyncJob, io: WorkerIO): Promise<SyncResult> {
  const errors: string[] = [];
  // Fill: closed loop on the ack event.
  const sender = await connectChatUser(job, job.sender, false);
  const t0 = performance.now();
  let conv = '';
  let sent = 0;
  let acked = 0;
  const text = 'x'.repeat(job.textBytes);
  await new Promise<void>((resolve, reject) => {
    const senderIn = deviceInTopic(job.sender.user, job.sender.device);
    const timer = setTimeout(() => reject(new Error(`fill: ${acked}/${job.missed} acked after 120 s`)), 120000);
    const next = (): void => {
      if (sent >= job.missed) return;
      const id = `${job.runId}-y-${sent++}`;
      sender.publish(outTopic(job.sender.user, job.sender.device), sendRequest({ id, to: job.member.user, text }), 1);
    };
    sender.onMessage((topic, payload) => {
      if (topic !== senderIn) return;
      const ev = parseEvent(payload);
      if (ev.type === 'ack') {
        conv = ev.conv;
        acked++;
        if (acked === job.missed) {
          clearTimeout(timer);
          resolve();
        } else next();
      } else if (ev.type === 'error') {
        if (errors.length < 20) errors.push(`${ev.code}: ${ev.message ?? ''}`);
        acked++;
        next();
      }
    });
    for (let w = 0; w < job.window; w++) next();
  });
  const fillMs = performance.now() - t0;
  await sender.end();
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
    const result = await rpc.call('sync', { convs: { [conv]: after }, limit: job.limit }, 60000);
    record(pageHist, (performance.now() - p0) * 1000);
    bytes += JSON.stringify(result).length;
    pages++;
    const convs = Array.isArray(result.convs) ? (result.convs as unknown[]) : [];
    const mine = convs.find((x): x is { conv: string; messages: unknown[]; more: boolean } => typeof x === 'object' && x !== null && (x as { conv?: unknown }).conv === conv);
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
    conv,
    fillMs,
    filled: acked,
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
