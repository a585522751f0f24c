/**
 * Wire protocol v1 (DESIGN section 4): topic names, request and event shapes, the RPC
 * method table, and the parser for everything that arrives from the server. Pure data in,
 * data out: no I/O here.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

// ---------------------------------------------------------------------------------------
// Topics

export const topics = {
  /** Every request of one device (send, receipt, rpc). */
  out: (user: string, device: string): string => `chat/${user}/${device}/out`,
  /** Messages, receipts and conversation events for all devices of a user. */
  userIn: (user: string): string => `chat/${user}/in`,
  /** ack, error and rpc results for one device. */
  deviceIn: (user: string, device: string): string => `chat/${user}/${device}/in`,
  /** Fan-out-on-read topic of a large group. */
  group: (conv: string): string => `group/${conv}`,
  presence: (user: string): string => `presence/${user}`,
  typing: (conv: string): string => `typing/${conv}`,
} as const;

/** `[A-Za-z0-9_-]{1,64}` for userId, deviceId and groupId (DESIGN section 4). */
export const IDENTIFIER_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

// ---------------------------------------------------------------------------------------
// Shared shapes

/**
 * One entry of a conversation's sequence: a message (the `msg` event without `type`), or
 * — with `kind: "conv"` — a conversation event (member added, fan-out changed ...), which
 * takes a seq of its own. For those, `body` holds the event's fields (`event`, `user`,
 * `by`, `topic` ...) and `from` is who caused it.
 */
export interface ChatMessage {
  conv: string;
  seq: number;
  /** The sender's client id (absent on conversation events). */
  id?: string;
  from: string;
  ts: number;
  body: JsonObject;
  reply_to?: number;
  media?: string[];
  /** Present on conversation events only. */
  kind?: 'conv';
}

export type SendTarget = { conv: string; to?: never } | { to: string; conv?: never };

// ---------------------------------------------------------------------------------------
// Requests (client -> chat/{user}/{device}/out)

export interface SendRequest {
  type: 'send';
  id: string;
  conv?: string;
  to?: string;
  body: JsonObject;
  reply_to?: number;
  media?: string[];
}

export type ReceiptStatus = 'delivered' | 'read';

export interface ReceiptRequest {
  type: 'receipt';
  conv: string;
  seq: number;
  status: ReceiptStatus;
}

export interface RpcRequest<M extends RpcMethod = RpcMethod> {
  type: 'rpc';
  id: string;
  method: M;
  params: RpcParams<M>;
}

export type ClientRequest = SendRequest | ReceiptRequest | RpcRequest;

// ---------------------------------------------------------------------------------------
// Events (server -> client)

export interface MsgEvent extends ChatMessage {
  type: 'msg';
}

export interface AckEvent {
  type: 'ack';
  id: string;
  conv: string;
  seq: number;
  ts: number;
}

export interface ReceiptEvent {
  type: 'receipt';
  conv: string;
  user: string;
  seq: number;
  status: ReceiptStatus;
}

/**
 * A conversation event (`member_added`, `member_removed`, `fanout_changed`, ...). Fields
 * beyond the documented ones are kept in `extra` untouched.
 */
export interface ConvEvent {
  type: 'conv';
  conv: string;
  event: string;
  user?: string;
  by?: string;
  seq?: number;
  ts?: number;
  /** For `fanout_changed`: the new `group/{conv}` topic, or null/absent for fan-out on write. */
  topic?: string | null;
  extra: JsonObject;
}

export interface ErrorEvent {
  type: 'error';
  ref?: string;
  code: string;
  message?: string;
}

export interface RpcResultEvent {
  type: 'rpc';
  ref: string;
  result: JsonObject;
}

export type ServerEvent = MsgEvent | AckEvent | ReceiptEvent | ConvEvent | ErrorEvent | RpcResultEvent;

// ---------------------------------------------------------------------------------------
// RPC methods (DESIGN section 4 table)

export type ConversationKind = 'dm' | 'group' | 'channel';
export type MemberRole = 'owner' | 'admin' | 'member';

export interface ConversationSummary {
  conv: string;
  kind: ConversationKind;
  /** Group name; for a 1:1 the other user. */
  name?: string | null;
  /** Member count (this server), or member ids. */
  members?: number | string[];
  /** The other user of a 1:1. */
  peer?: string;
  delivered_seq?: number;
  last_seq: number;
  read_seq: number;
  unread: number;
  /** `group/{conv}` when the conversation uses fan-out on read. */
  topic?: string | null;
}

/** A `msg` or `conv` entry of a sync/history answer, as sent; read it with parseSequenced. */
export type WireSequenced = JsonObject;

export interface SyncConversationResult {
  conv: string;
  messages: WireSequenced[];
  more: boolean;
}

export interface GroupInfo {
  conv: string;
  name: string;
  kind: ConversationKind;
  members: { user: string; role: MemberRole }[];
  announce_only: boolean;
  topic?: string | null;
}

export interface Profile {
  user: string;
  name?: string | null;
  about?: string | null;
  avatar?: string | null;
}

/** A media item's metadata (docs/media.md of the platform). */
export interface MediaRecord {
  id: string;
  conv: string;
  owner: string;
  content_type: string;
  size: number;
  sha256: string;
  state: 'pending' | 'complete' | 'deleted';
  tier: string | null;
  created_at: number;
  completed_at: number | null;
  deleted_at?: number;
  /** A small preview of images (data: URL), once complete. */
  thumbnail?: string;
}

/** `media.upload` answers like `POST /v1/media`: where to PUT the bytes. */
export interface MediaUploadTicket {
  media: MediaRecord;
  /** Absolute (S3), or relative to the API origin (local driver). */
  upload_url: string;
  /** Headers to send with the PUT, exactly (they are signed). */
  upload_headers?: Record<string, string>;
  expires_at: number;
}

/**
 * `media.get` answers like `GET /v1/media/{id}`: a signed URL, or — while a cold item is
 * being restored — `restoring` and `retry_after` (seconds).
 */
export interface MediaDownload {
  media: MediaRecord;
  url?: string;
  expires_at?: number;
  restoring?: boolean;
  retry_after?: number;
}

export interface RpcMethods {
  conversations: { params: Record<string, never>; result: { convs: ConversationSummary[] } };
  sync: {
    params: { convs: Record<string, number>; limit?: number };
    /** `gone`: conversations in the request this user no longer belongs to. */
    result: { convs: SyncConversationResult[]; gone?: string[] };
  };
  history: {
    params: { conv: string; before?: number; limit?: number };
    result: { messages: WireSequenced[]; more: boolean };
  };
  'group.create': {
    params: { name: string; members: string[]; kind?: 'group' | 'channel' };
    result: { conv: string };
  };
  'group.add': { params: { conv: string; users: string[] }; result: Record<string, never> };
  'group.remove': { params: { conv: string; users: string[] }; result: Record<string, never> };
  'group.leave': { params: { conv: string }; result: Record<string, never> };
  'group.role': { params: { conv: string; user: string; role: MemberRole }; result: Record<string, never> };
  'group.settings': {
    params: { conv: string; name?: string; announce_only?: boolean };
    result: Record<string, never>;
  };
  'group.info': { params: { conv: string }; result: GroupInfo };
  block: { params: { user: string }; result: Record<string, never> };
  unblock: { params: { user: string }; result: Record<string, never> };
  'profile.get': { params: { user: string }; result: Profile };
  'profile.set': { params: { name?: string; about?: string; avatar?: string }; result: Profile };
  'media.upload': {
    params: { conv: string; content_type: string; size: number; sha256: string };
    result: MediaUploadTicket;
  };
  'media.get': { params: { id: string }; result: MediaDownload };
}

export type RpcMethod = keyof RpcMethods;
export type RpcParams<M extends RpcMethod> = RpcMethods[M]['params'];
export type RpcResult<M extends RpcMethod> = RpcMethods[M]['result'];

/**
 * Methods that read only. The client re-issues them by itself after a reconnect; the
 * others fail with `disconnected` when the connection drops while they are in flight,
 * because their outcome is then unknown.
 */
export const IDEMPOTENT_METHODS: ReadonlySet<RpcMethod> = new Set<RpcMethod>([
  'conversations',
  'sync',
  'history',
  'group.info',
  'profile.get',
  'media.get',
]);

// ---------------------------------------------------------------------------------------
// Parsing of incoming payloads

export type ParseResult = { ok: true; event: ServerEvent } | { ok: false; reason: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSeq(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

/**
 * Reads one entry of a conversation's sequence — a `msg` event, or a `conv` event with a
 * seq — from a live event or a sync/history answer. Undefined when malformed.
 */
export function parseSequenced(value: unknown): ChatMessage | undefined {
  if (!isObject(value)) return undefined;
  if (value.type === 'conv') {
    const parsed = parseConvEvent(value);
    return parsed ? convEventToMessage(parsed) : undefined;
  }
  return parseMessage(value);
}

/** A conversation event that has a seq, as an entry of the sequence. */
export function convEventToMessage(event: ConvEvent): ChatMessage | undefined {
  if (event.seq === undefined || event.seq < 1) return undefined;
  const body: JsonObject = { ...event.extra, event: event.event };
  if (event.user !== undefined) body.user = event.user;
  if (event.by !== undefined) body.by = event.by;
  if (event.topic !== undefined) body.topic = event.topic;
  return { conv: event.conv, seq: event.seq, from: event.by ?? '', ts: event.ts ?? 0, body, kind: 'conv' };
}

/** The conversation event an entry of kind "conv" stands for. */
export function messageToConvEvent(message: ChatMessage): ConvEvent {
  const { event, user, by, topic, ...extra } = message.body;
  const parsed: ConvEvent = { type: 'conv', conv: message.conv, event: String(event), seq: message.seq, ts: message.ts, extra };
  if (typeof user === 'string') parsed.user = user;
  if (typeof by === 'string') parsed.by = by;
  if (typeof topic === 'string' || topic === null) parsed.topic = topic;
  return parsed;
}

function parseConvEvent(value: Record<string, unknown>): ConvEvent | undefined {
  const { conv, event, user, by, seq, ts, topic, type: _type, ...rest } = value;
  if (!isNonEmptyString(conv) || !isNonEmptyString(event)) return undefined;
  const parsed: ConvEvent = { type: 'conv', conv, event, extra: rest as JsonObject };
  if (typeof user === 'string') parsed.user = user;
  if (typeof by === 'string') parsed.by = by;
  if (isSeq(seq)) parsed.seq = seq;
  if (typeof ts === 'number') parsed.ts = ts;
  if (typeof topic === 'string' || topic === null) parsed.topic = topic;
  return parsed;
}

/** Validates one `msg` object. */
export function parseMessage(value: unknown): ChatMessage | undefined {
  if (!isObject(value)) return undefined;
  const { conv, seq, id, from, ts, body, reply_to, media } = value;
  if (!isNonEmptyString(conv) || !isSeq(seq) || seq < 1 || !isNonEmptyString(from)) return undefined;
  if (typeof ts !== 'number') return undefined;
  if (id !== undefined && id !== null && typeof id !== 'string') return undefined;
  const message: ChatMessage = {
    conv,
    seq,
    from,
    ts,
    body: isObject(body) ? (body as JsonObject) : {},
  };
  if (typeof id === 'string') message.id = id;
  if (isSeq(reply_to)) message.reply_to = reply_to;
  if (Array.isArray(media) && media.every((m) => typeof m === 'string')) message.media = media as string[];
  return message;
}

/** Decodes and validates one payload from `chat/...`, `group/...`. Never throws. */
export function parseServerEvent(payload: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return { ok: false, reason: 'payload is not JSON' };
  }
  if (!isObject(value)) return { ok: false, reason: 'payload is not a JSON object' };
  switch (value.type) {
    case 'msg': {
      const message = parseMessage(value);
      return message ? { ok: true, event: { type: 'msg', ...message } } : { ok: false, reason: 'malformed msg' };
    }
    case 'ack': {
      const { id, conv, seq, ts } = value;
      if (!isNonEmptyString(id) || !isNonEmptyString(conv) || !isSeq(seq) || typeof ts !== 'number') {
        return { ok: false, reason: 'malformed ack' };
      }
      return { ok: true, event: { type: 'ack', id, conv, seq, ts } };
    }
    case 'receipt': {
      const { conv, user, seq, status } = value;
      if (!isNonEmptyString(conv) || !isNonEmptyString(user) || !isSeq(seq) || (status !== 'delivered' && status !== 'read')) {
        return { ok: false, reason: 'malformed receipt' };
      }
      return { ok: true, event: { type: 'receipt', conv, user, seq, status } };
    }
    case 'conv': {
      const parsed = parseConvEvent(value);
      return parsed ? { ok: true, event: parsed } : { ok: false, reason: 'malformed conv event' };
    }
    case 'error': {
      const { ref, code, message } = value;
      if (!isNonEmptyString(code)) return { ok: false, reason: 'malformed error' };
      const parsed: ErrorEvent = { type: 'error', code };
      if (typeof ref === 'string') parsed.ref = ref;
      if (typeof message === 'string') parsed.message = message;
      return { ok: true, event: parsed };
    }
    case 'rpc': {
      const { ref, result } = value;
      if (!isNonEmptyString(ref)) return { ok: false, reason: 'malformed rpc result' };
      return { ok: true, event: { type: 'rpc', ref, result: isObject(result) ? (result as JsonObject) : {} } };
    }
    default:
      return { ok: false, reason: `unknown event type ${JSON.stringify(value.type)}` };
  }
}

/** Presence as retained on `presence/{user}`. */
export interface PresenceState {
  user: string;
  state: 'online' | 'offline';
  last_seen?: number;
  devices?: number;
}

export function parsePresence(user: string, payload: string): PresenceState | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (!isObject(value) || (value.state !== 'online' && value.state !== 'offline')) return undefined;
  const presence: PresenceState = { user, state: value.state };
  if (typeof value.last_seen === 'number') presence.last_seen = value.last_seen;
  if (typeof value.devices === 'number') presence.devices = value.devices;
  return presence;
}

export interface TypingPayload {
  user: string;
  state: 'typing' | 'idle';
}

export function parseTyping(payload: string): TypingPayload | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (!isObject(value) || !isNonEmptyString(value.user)) return undefined;
  if (value.state !== 'typing' && value.state !== 'idle') return undefined;
  return { user: value.user, state: value.state };
}
