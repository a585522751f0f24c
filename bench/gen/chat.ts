// chat-1to1 load: N (sender, peer) pairs of chat users. A sender keeps `window` sends in
// flight and sends the next one when the `ack` event of one arrives (durable ack: the
// message is committed, DESIGN 3.1). Measured: send->PUBACK, send->ack, send->msg at peer.
import { createHistogram, record, toData, type Histogram } from '../lib/stats.ts';
import type { ChatJob, ChatResult, ChatUser } from '../lib/protocol.ts';
import { deviceInTopic, inboxTopic, outTopic, parseEvent, sendRequest } from '../lib/chat-wire.ts';
import { connectClient, type GenClient } from './client.ts';
import { nowMs, pool, sleepUntil, type WorkerIO } from './io.ts';

interface Pending {
  sentAt: number;
  pair: number;
  acked: boolean;
  delivered: boolean;
}

export async function connectChatUser(job: { client: ChatJob['client']; endpoint: ChatJob['endpoint'] }, u: ChatUser, inbox: boolean, extra: readonly string[] = []): Promise<GenClient> {
  const c = await connectClient(job.client, {
    host: job.endpoint.host,
    port: job.endpoint.port,
    clientId: `${u.user}:${u.device}`,
    username: u.user,
    password: u.token,
    timeoutMs: 60000,
  });
  const topics = [deviceInTopic(u.user, u.device), ...(inbox ? [inboxTopic(u.user)] : []), ...extra];
  for (const t of topics) {
    const granted = await c.subscribe(t, 1);
    if (granted !== 1 && granted !== 0) throw new Error(`SUBACK 0x${granted.toString(16)} for ${t} as ${u.user}`);
  }
  return c;
}

export async function runChat(job: ChatJob, io: WorkerIO): Promise<ChatResult> {
  const senders = await pool(job.pairs, 20, (p) => connectChatUser(job, p.sender, true));
  const peers: GenClient[] = await pool(job.pairs, 20, (p) => connectChatUser(job, p.peer, true));
  io.send({ type: 'ready', connections: senders.length * 2 });
  const go = await io.next('go');

  const measureStart = go.startAt + go.warmupMs;
  const measureEnd = measureStart + go.durationMs;
  const inWindow = (t: number): boolean => t >= measureStart && t < measureEnd;
  const puback: Histogram = createHistogram();
  const ack: Histogram = createHistogram();
  const deliver: Histogram = createHistogram();
  const pending = new Map<string, Pending>();
  const inflight = new Array<number>(job.pairs.length).fill(0);
  const seqs = new Array<number>(job.pairs.length).fill(0);
  const errors: Record<string, number> = {};
  let sentInWindow = 0;
  let ackedDuringWindow = 0;
  let deliveredDuringWindow = 0;
  let echoes = 0;
  let sending = true;
  const text = 'x'.repeat(job.textBytes);

  const send = (i: number): void => {
    const p = job.pairs[i];
    const id = `${job.runId}-${i}-${++seqs[i]}`;
    const sentAt = nowMs();
    const entry: Pending = { sentAt, pair: i, acked: false, delivered: false };
    pending.set(id, entry);
    inflight[i]++;
    if (inWindow(sentAt)) sentInWindow++;
    senders[i].publish(outTopic(p.sender.user, p.sender.device), sendRequest({ id, to: p.peer.user, text }), 1, () => {
      if (inWindow(sentAt)) record(puback, (nowMs() - sentAt) * 1000);
    });
  };
  const settle = (id: string, e: Pending): void => {
    if (e.acked && e.delivered) pending.delete(id);
  };

  senders.forEach((c, i) => {
    const p = job.pairs[i];
    const ackTopic = deviceInTopic(p.sender.user, p.sender.device);
    c.onMessage((topic, payload) => {
      const now = nowMs();
      const ev = parseEvent(payload);
      if (topic !== ackTopic) {
        if (ev.type === 'msg') echoes++;
        return;
      }
      if (ev.type === 'ack') {
        const e = pending.get(ev.id);
        if (!e || e.acked) return;
        e.acked = true;
        inflight[i]--;
        if (inWindow(now)) ackedDuringWindow++;
        if (inWindow(e.sentAt)) record(ack, (now - e.sentAt) * 1000);
        settle(ev.id, e);
        if (sending && now < measureEnd) send(i);
      } else if (ev.type === 'error') {
        errors[ev.code] = (errors[ev.code] ?? 0) + 1;
        const e = ev.ref ? pending.get(ev.ref) : undefined;
        if (e && !e.acked && ev.ref) {
          pending.delete(ev.ref);
          inflight[i]--;
          if (sending && now < measureEnd) send(i);
        }
      }
    });
  });
  peers.forEach((c) => {
    c.onMessage((_topic, payload) => {
      const now = nowMs();
      const ev = parseEvent(payload);
      if (ev.type !== 'msg') {
        if (ev.type === 'error') errors[ev.code] = (errors[ev.code] ?? 0) + 1;
        return;
      }
      const e = pending.get(ev.id);
      if (!e || e.delivered) return;
      e.delivered = true;
      if (inWindow(now)) deliveredDuringWindow++;
      if (inWindow(e.sentAt)) record(deliver, (now - e.sentAt) * 1000);
      settle(ev.id, e);
    });
  });

  await sleepUntil(go.startAt);
  for (let i = 0; i < job.pairs.length; i++) for (let k = 0; k < job.window; k++) send(i);
  await sleepUntil(measureEnd);
  sending = false;
  const drainEnd = nowMs() + go.drainMs;
  while (nowMs() < drainEnd && pending.size > 0) await new Promise((r) => setTimeout(r, 20));
  let missingAcks = 0;
  let missingDeliveries = 0;
  for (const e of pending.values()) {
    if (!inWindow(e.sentAt)) continue;
    if (!e.acked) missingAcks++;
    if (!e.delivered) missingDeliveries++;
  }
  await pool([...senders, ...peers], 50, (c) => c.end());
  return {
    kind: 'chat',
    sentInWindow,
    ackedDuringWindow,
    deliveredDuringWindow,
    windowMs: go.durationMs,
    pubackUs: toData(puback),
    ackUs: toData(ack),
    deliverUs: toData(deliver),
    missingAcks,
    missingDeliveries,
    errors,
    echoes,
  };
}
