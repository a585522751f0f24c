// Fan-out load: one sender, N receivers, all in this process (one clock). A message is
// complete when every receiver got it; at most `window` messages are incomplete.
import { createHistogram, record, toData } from '../lib/stats.ts';
import type { FanoutJob, FanoutResult } from '../lib/protocol.ts';
import { outTopic, parseEvent, readStamp, sendRequest, stampText } from '../lib/chat-wire.ts';
import { connectClient, type GenClient } from './client.ts';
import { connectChatUser } from './chat.ts';
import { sourceAddress } from './idle.ts';
import { nowMs, pool, sleepUntil, type WorkerIO } from './io.ts';

interface Sent {
  sentAt: number;
  got: Uint8Array;
  count: number;
  done: boolean;
}

export async function runFanout(job: FanoutJob, io: WorkerIO): Promise<FanoutResult> {
  const n = job.plain ? job.plain.receivers : (job.chat?.receivers.length ?? 0);
  const t0 = performance.now();
  const receivers: GenClient[] = await pool(
    Array.from({ length: n }, (_, i) => i),
    job.connectConcurrency,
    async (i) => {
      if (job.plain) {
        const c = await connectClient(job.client, {
          host: job.endpoint.host,
          port: job.endpoint.port,
          clientId: `bfr-${job.idPrefix}-${i}`,
          localAddress: job.perSourceAddress > 0 ? sourceAddress(i, job.perSourceAddress) : undefined,
          timeoutMs: 60000,
        });
        const g = await c.subscribe(job.plain.topic, job.qos);
        if (g !== job.qos) throw new Error(`SUBACK ${g} for ${job.plain.topic}`);
        return c;
      }
      const chat = job.chat;
      if (!chat) throw new Error('fanout job without target');
      return await connectChatUser(job, chat.receivers[i], chat.inbox, chat.extraTopics);
    },
  );
  const sender = job.plain
    ? await connectClient(job.client, { host: job.endpoint.host, port: job.endpoint.port, clientId: `bfs-${job.idPrefix}` })
    : await connectChatUser(job, job.chat?.sender ?? fail('no sender'), false);
  const connectMs = performance.now() - t0;
  io.send({ type: 'ready', connections: n + 1 });
  const go = await io.next('go');

  const sent: Sent[] = [];
  const delivery = createHistogram();
  const complete = createHistogram();
  const ack = createHistogram();
  const errors: Record<string, number> = {};
  let deliveries = 0;
  let duplicates = 0;
  let completed = 0;
  let incompleteOpen = 0;
  let lastDelivery = 0;
  let firstSend = 0;
  const hardEnd = go.startAt + go.durationMs;
  const template = Buffer.alloc(Math.max(job.payloadBytes, 16), 0x61);
  const ackIds = new Map<string, number>();

  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  const maybeFinish = (): void => {
    if (sent.length >= job.messages && incompleteOpen === 0) resolveDone();
  };
  const sendNext = (): void => {
    if (sent.length >= job.messages || nowMs() >= hardEnd) {
      maybeFinish();
      return;
    }
    const k = sent.length;
    const sentAt = nowMs();
    if (k === 0) firstSend = sentAt;
    sent.push({ sentAt, got: new Uint8Array(n), count: 0, done: false });
    incompleteOpen++;
    if (job.plain) {
      const payload = Buffer.from(template);
      payload.writeDoubleLE(sentAt, 0);
      payload.writeUInt32LE(k, 8);
      sender.publish(job.plain.topic, payload, job.qos);
    } else if (job.chat) {
      const id = `${job.idPrefix}-${k}`;
      ackIds.set(id, sentAt);
      const s = job.chat.sender;
      sender.publish(outTopic(s.user, s.device), sendRequest({ id, conv: job.chat.conv, text: stampText(sentAt, k, job.payloadBytes) }), 1);
    }
  };
  const finishMessage = (m: Sent, now: number, full: boolean): void => {
    m.done = true;
    incompleteOpen--;
    if (full) {
      completed++;
      record(complete, (now - m.sentAt) * 1000);
    }
    sendNext();
    maybeFinish();
  };
  const onDelivery = (i: number, k: number, sentAtFromPayload: number): void => {
    const now = nowMs();
    const m = sent[k];
    if (!m) return;
    if (m.got[i]) {
      duplicates++;
      return;
    }
    m.got[i] = 1;
    m.count++;
    deliveries++;
    lastDelivery = now;
    record(delivery, (now - sentAtFromPayload) * 1000);
    if (!m.done && m.count === n) finishMessage(m, now, true);
  };

  receivers.forEach((c, i) => {
    c.onMessage((_topic, payload) => {
      if (job.plain) {
        onDelivery(i, payload.readUInt32LE(8), payload.readDoubleLE(0));
        return;
      }
      const ev = parseEvent(payload);
      if (ev.type === 'msg') {
        const st = readStamp(ev.body.text);
        if (st) onDelivery(i, st.n, st.sentAt);
      } else if (ev.type === 'error') errors[ev.code] = (errors[ev.code] ?? 0) + 1;
    });
  });
  sender.onMessage((_topic, payload) => {
    const ev = parseEvent(payload);
    if (ev.type === 'ack') {
      const t = ackIds.get(ev.id);
      if (t !== undefined) {
        ackIds.delete(ev.id);
        record(ack, (nowMs() - t) * 1000);
      }
    } else if (ev.type === 'error') errors[ev.code] = (errors[ev.code] ?? 0) + 1;
  });

  await sleepUntil(go.startAt);
  for (let w = 0; w < job.window; w++) sendNext();
  const watchdog = setInterval(() => {
    const now = nowMs();
    for (const m of sent) if (!m.done && now - m.sentAt > job.timeoutMs) finishMessage(m, now, false);
    if (now >= hardEnd + go.drainMs) resolveDone();
  }, 100);
  await done;
  clearInterval(watchdog);
  await pool([sender, ...receivers], 100, (c) => c.end());
  return {
    kind: 'fanout',
    receivers: n,
    sent: sent.length,
    complete: completed,
    deliveries,
    spanMs: lastDelivery > firstSend ? lastDelivery - firstSend : 0,
    deliveryUs: toData(delivery),
    completeUs: toData(complete),
    ackUs: toData(ack),
    duplicates,
    errors,
    connectMs,
  };
}

function fail(msg: string): never {
  throw new Error(msg);
}
