/**
 * Wire protocol v1 (DESIGN section 4): request parsing and validation as pure
 * functions. Every rejection is a ChatError with a code; `ref` is recovered whenever
 * the request's id could be read, so the client can match the error to its request.
 */
import { ChatError } from './errors.ts';

export const idPattern = /^[A-Za-z0-9_-]{1,64}$/;
export const isId = (v: unknown): v is string => typeof v === 'string' && idPattern.test(v);
const isClientId = (v: unknown): v is string => typeof v === 'string' && v.length >= 1 && v.length <= 64;
const isConv = (v: unknown): v is string => typeof v === 'string' && v.length >= 1 && v.length <= 128;
const isSeq = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 2 ** 31 - 1;
const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

export interface SendRequest {
  type: 'send';
  id: string;
  to?: string;
  conv?: string;
  body: Record<string, unknown>;
  reply_to?: number;
  media?: string[];
}
export interface ReceiptRequest {
  type: 'receipt';
  conv: string;
  seq: number;
  status: 'delivered' | 'read';
}
export interface RpcRequest {
  type: 'rpc';
  id: string;
  method: string;
  params: Record<string, unknown>;
}
export type ChatRequest = SendRequest | ReceiptRequest | RpcRequest;

export interface ParsedRequest {
  request?: ChatRequest;
  error?: ChatError;
  /** The request's id when it could be read, for the error's `ref`. */
  ref?: string;
}

export function parseRequest(payload: Buffer, maxBytes: number): ParsedRequest {
  if (payload.length > maxBytes) {
    return { error: new ChatError('too_large', `payload of ${payload.length} bytes exceeds the limit of ${maxBytes}`), ref: sniffId(payload) };
  }
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return { error: new ChatError('bad_request', 'payload is not valid JSON') };
  }
  if (!isObject(value)) return { error: new ChatError('bad_request', 'payload must be a JSON object') };
  const ref = typeof value.id === 'string' && value.id.length <= 64 ? value.id : undefined;
  try {
    return { request: validate(value), ref };
  } catch (err) {
    return { error: err as ChatError, ref };
  }
}

function bad(message: string): never {
  throw new ChatError('bad_request', message);
}

function validate(v: Record<string, unknown>): ChatRequest {
  switch (v.type) {
    case 'send': {
      if (!isClientId(v.id)) bad('send.id must be a string of 1-64 characters');
      const hasTo = v.to !== undefined;
      const hasConv = v.conv !== undefined;
      if (hasTo === hasConv) bad('send needs exactly one of "to" or "conv"');
      if (hasTo && !isId(v.to)) bad('send.to must be a user id ([A-Za-z0-9_-]{1,64})');
      if (hasConv && !isConv(v.conv)) bad('send.conv must be a conversation id');
      if (!isObject(v.body)) bad('send.body must be a JSON object');
      if (v.reply_to !== undefined && (!isSeq(v.reply_to) || v.reply_to < 1)) bad('send.reply_to must be a positive seq');
      if (v.media !== undefined && (!Array.isArray(v.media) || v.media.length > 10 || !v.media.every(isClientId))) {
        bad('send.media must be an array of at most 10 media ids');
      }
      validateBody(v.body);
      const req: SendRequest = { type: 'send', id: v.id, body: v.body };
      if (hasTo) req.to = v.to as string;
      if (hasConv) req.conv = v.conv as string;
      if (v.reply_to !== undefined) req.reply_to = v.reply_to as number;
      if (v.media !== undefined) req.media = v.media as string[];
      return req;
    }
    case 'receipt': {
      if (!isConv(v.conv)) bad('receipt.conv must be a conversation id');
      if (!isSeq(v.seq) || v.seq < 1) bad('receipt.seq must be a positive integer');
      if (v.status !== 'delivered' && v.status !== 'read') bad('receipt.status must be "delivered" or "read"');
      return { type: 'receipt', conv: v.conv, seq: v.seq, status: v.status };
    }
    case 'rpc': {
      if (!isClientId(v.id)) bad('rpc.id must be a string of 1-64 characters');
      if (typeof v.method !== 'string' || v.method.length > 64) bad('rpc.method must be a string');
      if (v.params !== undefined && !isObject(v.params)) bad('rpc.params must be a JSON object');
      return { type: 'rpc', id: v.id, method: v.method, params: (v.params as Record<string, unknown>) ?? {} };
    }
    default:
      return bad(`unknown request type ${JSON.stringify(v.type)}`);
  }
}

/**
 * Edits, deletes and reactions are messages whose body refers to an earlier seq
 * (docs/protocol.md). Their shape is checked here; who may send them, in the store.
 */
function validateBody(body: Record<string, unknown>): void {
  if (body.edit !== undefined) {
    const e = body.edit;
    if (!isObject(e) || !isSeq(e.seq) || e.seq < 1 || typeof e.text !== 'string') bad('body.edit must be {"seq","text"}');
  }
  if (body.delete !== undefined) {
    const d = body.delete;
    if (!isObject(d) || !isSeq(d.seq) || d.seq < 1) bad('body.delete must be {"seq"}');
  }
  if (body.react !== undefined) {
    const r = body.react;
    if (!isObject(r) || !isSeq(r.seq) || r.seq < 1 || typeof r.emoji !== 'string' || r.emoji.length > 32) {
      bad('body.react must be {"seq","emoji"}');
    }
  }
}

/** The seq an edit/delete/reaction refers to, if the body is one. */
export function referencedSeq(body: Record<string, unknown>): { kind: 'edit' | 'delete' | 'react'; seq: number } | undefined {
  for (const kind of ['edit', 'delete', 'react'] as const) {
    const part = body[kind];
    if (isObject(part) && isSeq(part.seq)) return { kind, seq: part.seq };
  }
  return undefined;
}

/** Best-effort id of an oversized payload, without parsing all of it. */
function sniffId(payload: Buffer): string | undefined {
  const head = payload.subarray(0, 512).toString('utf8');
  const m = /"id"\s*:\s*"([^"\\]{1,64})"/.exec(head);
  return m?.[1];
}

// Parameter readers for RPCs: each throws bad_request naming the field.
export const params = {
  string(p: Record<string, unknown>, key: string, opts: { optional?: boolean; max?: number } = {}): string | undefined {
    const v = p[key];
    if (v === undefined && opts.optional) return undefined;
    if (typeof v !== 'string' || v.length === 0 || v.length > (opts.max ?? 256)) bad(`params.${key} must be a string of 1-${opts.max ?? 256} characters`);
    return v;
  },
  user(p: Record<string, unknown>, key: string): string {
    const v = p[key];
    if (!isId(v)) bad(`params.${key} must be a user id`);
    return v;
  },
  users(p: Record<string, unknown>, key: string, max = 10_000): string[] {
    const v = p[key];
    if (!Array.isArray(v) || v.length > max || !v.every(isId)) bad(`params.${key} must be an array of user ids`);
    return [...new Set(v as string[])];
  },
  conv(p: Record<string, unknown>, key = 'conv'): string {
    const v = p[key];
    if (!isConv(v)) bad(`params.${key} must be a conversation id`);
    return v;
  },
  seq(p: Record<string, unknown>, key: string, optional = false): number | undefined {
    const v = p[key];
    if (v === undefined && optional) return undefined;
    if (!isSeq(v)) bad(`params.${key} must be a non-negative integer`);
    return v;
  },
  limit(p: Record<string, unknown>): number {
    const v = p.limit;
    if (v === undefined) return 100;
    if (!Number.isInteger(v) || (v as number) < 1) bad('params.limit must be a positive integer');
    return Math.min(v as number, 1000);
  },
  bool(p: Record<string, unknown>, key: string): boolean | undefined {
    const v = p[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') bad(`params.${key} must be a boolean`);
    return v;
  },
  object(p: Record<string, unknown>, key: string): Record<string, unknown> {
    const v = p[key];
    if (v === undefined) return {};
    if (!isObject(v)) bad(`params.${key} must be an object`);
    return v;
  },
};
