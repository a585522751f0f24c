// Messages between the orchestrator (bench/run.ts) and the generator workers
// (bench/gen/worker.ts), over the child-process IPC channel. Every message is checked with
// a guard on arrival: nothing untyped crosses the process boundary.
import type { ClientKind, QoS } from '../gen/client.ts';
import type { HistogramData } from './stats.ts';

export interface Endpoint {
  host: string;
  port: number;
}

export interface RelayJob {
  kind: 'relay';
  endpoint: Endpoint;
  client: ClientKind;
  runId: string;
  /** Pair indices [from, to) handled by this worker. */
  from: number;
  to: number;
  qos: QoS;
  payloadBytes: number;
  /** Closed loop: messages in flight per pair. */
  window: number;
  /** Open loop when > 0: messages per second for this worker's pairs together. */
  rate: number;
  topicPrefix: string;
  username?: string;
  password?: string;
}

export interface ChatUser {
  user: string;
  device: string;
  token: string;
}

export interface ChatJob {
  kind: 'chat';
  endpoint: Endpoint;
  client: ClientKind;
  runId: string;
  pairs: Array<{ sender: ChatUser; peer: ChatUser }>;
  window: number;
  textBytes: number;
}

/** Idle connections, added on command ({type:'connect', upTo}). */
export interface IdleJob {
  kind: 'idle';
  endpoint: Endpoint;
  client: ClientKind;
  runId: string;
  /** Connection attempts in flight. */
  concurrency: number;
  keepalive: number;
  /** Connections per source address (127.0.0.2, .3, ...); 0: default source address. */
  perSourceAddress: number;
  /** Index offset of this worker's connections (unique client ids, source addresses). */
  offset: number;
}

/**
 * Fan-out: one sender and N receivers in this worker (one clock). A message is complete
 * when all N got it; `window` messages are incomplete at most (closed loop).
 */
export interface FanoutJob {
  kind: 'fanout';
  endpoint: Endpoint;
  client: ClientKind;
  runId: string;
  qos: QoS;
  /** Prefix of send ids and client ids: unique per job. */
  idPrefix: string;
  /** Plain broker: anonymous receivers on `topic`, the sender publishes on it. */
  plain?: { topic: string; receivers: number };
  /** Ours: receivers are chat users; `topics(user)` = inbox + extraTopics. */
  chat?: { sender: ChatUser; conv: string; receivers: ChatUser[]; extraTopics: string[]; inbox: boolean };
  payloadBytes: number;
  /** Messages to send at most, and in flight at most. */
  messages: number;
  window: number;
  /** Give up on a message this long after it was sent. */
  timeoutMs: number;
  connectConcurrency: number;
  perSourceAddress: number;
}

/** A member catching up: `missed` messages sent into `conv` while it is offline, then `sync` pages. */
export interface SyncJob {
  kind: 'sync';
  endpoint: Endpoint;
  client: ClientKind;
  runId: string;
  /** They share the filling, each staying inside the per-connection burst of the rate limits. */
  senders: ChatUser[];
  conv: string;
  member: ChatUser;
  missed: number;
  /** Sends in flight while filling. */
  window: number;
  limit: number;
  textBytes: number;
}

export type Job = RelayJob | ChatJob | IdleJob | FanoutJob | SyncJob;

export interface RelayResult {
  kind: 'relay';
  sentInWindow: number;
  receivedOfWindow: number;
  receivedDuringWindow: number;
  windowMs: number;
  latencyUs: HistogramData;
  duplicates: number;
}

export interface ChatResult {
  kind: 'chat';
  sentInWindow: number;
  ackedDuringWindow: number;
  deliveredDuringWindow: number;
  windowMs: number;
  pubackUs: HistogramData;
  ackUs: HistogramData;
  deliverUs: HistogramData;
  /** Messages sent in the window with no ack / no delivery after the drain. */
  missingAcks: number;
  missingDeliveries: number;
  errors: Record<string, number>;
  echoes: number;
}

export interface FanoutResult {
  kind: 'fanout';
  receivers: number;
  sent: number;
  /** Messages every receiver got. */
  complete: number;
  deliveries: number;
  /** First send to last delivery, ms. */
  spanMs: number;
  /** send -> each delivery. */
  deliveryUs: HistogramData;
  /** send -> the last receiver of that message. */
  completeUs: HistogramData;
  /** send -> ack event (ours only). */
  ackUs: HistogramData;
  duplicates: number;
  errors: Record<string, number>;
  connectMs: number;
}

export interface SyncResult {
  kind: 'sync';
  conv: string;
  fillMs: number;
  filled: number;
  connectMs: number;
  /** From the first sync request to the last page. */
  syncMs: number;
  pages: number;
  messages: number;
  bytes: number;
  pageUs: HistogramData;
  firstSeq: number;
  lastSeq: number;
  /** Seqs missing between first and last, and seqs seen twice. */
  gaps: number;
  duplicates: number;
  errors: string[];
}

export type JobResult = RelayResult | ChatResult | FanoutResult | SyncResult;

// orchestrator -> worker
export type ToWorker =
  | { type: 'job'; job: Job }
  | { type: 'go'; startAt: number; warmupMs: number; durationMs: number; drainMs: number }
  | { type: 'connect'; upTo: number }
  | { type: 'close' };

// worker -> orchestrator
export type FromWorker =
  | { type: 'ready'; connections: number }
  | { type: 'result'; result: JobResult }
  | { type: 'connected'; total: number; failed: number; lastError: string; ms: number }
  | { type: 'progress'; received: number }
  | { type: 'failed'; message: string };

function isObj(m: unknown): m is Record<string, unknown> {
  return typeof m === 'object' && m !== null;
}

export function isFromWorker(m: unknown): m is FromWorker {
  return isObj(m) && typeof m.type === 'string' && ['ready', 'result', 'connected', 'progress', 'failed'].includes(m.type);
}

export function isToWorker(m: unknown): m is ToWorker {
  return isObj(m) && typeof m.type === 'string' && ['job', 'go', 'connect', 'close'].includes(m.type);
}

/** A guard for the answer of that type, or a failure report. */
export function messageOf<T extends FromWorker['type']>(type: T) {
  return (m: unknown): m is Extract<FromWorker, { type: T | 'failed' }> => isFromWorker(m) && (m.type === type || m.type === 'failed');
}
