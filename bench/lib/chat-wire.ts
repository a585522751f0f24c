// The slice of wire protocol v1 (DESIGN section 4) the benchmarks speak. Pure functions.

export const inboxTopic = (user: string): string => `chat/${user}/in`;
export const deviceInTopic = (user: string, device: string): string => `chat/${user}/${device}/in`;
export const outTopic = (user: string, device: string): string => `chat/${user}/${device}/out`;

export type ServerEvent =
  | { type: 'msg'; conv: string; seq: number; id: string; from: string; ts: number; body: { text?: string } }
  | { type: 'ack'; id: string; conv: string; seq: number; ts: number }
  | { type: 'error'; ref?: string; code: string; message?: string }
  | { type: 'rpc'; ref: string; result: Record<string, unknown> }
  | { type: 'other'; raw: string };

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parse a server event; anything unexpected becomes {type:'other'} (never throws). */
export function parseEvent(payload: Buffer | string): ServerEvent {
  const raw = typeof payload === 'string' ? payload : payload.toString('utf8');
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return { type: 'other', raw };
  }
  if (!isObj(v)) return { type: 'other', raw };
  switch (v.type) {
    case 'msg':
      if (typeof v.id === 'string' && typeof v.conv === 'string' && typeof v.seq === 'number') {
        return {
          type: 'msg',
          conv: v.conv,
          seq: v.seq,
          id: v.id,
          from: typeof v.from === 'string' ? v.from : '',
          ts: typeof v.ts === 'number' ? v.ts : 0,
          body: isObj(v.body) && typeof v.body.text === 'string' ? { text: v.body.text } : {},
        };
      }
      break;
    case 'ack':
      if (typeof v.id === 'string') {
        return {
          type: 'ack',
          id: v.id,
          conv: typeof v.conv === 'string' ? v.conv : '',
          seq: typeof v.seq === 'number' ? v.seq : -1,
          ts: typeof v.ts === 'number' ? v.ts : 0,
        };
      }
      break;
    case 'error':
      return {
        type: 'error',
        ref: typeof v.ref === 'string' ? v.ref : undefined,
        code: typeof v.code === 'string' ? v.code : 'unknown',
        message: typeof v.message === 'string' ? v.message : undefined,
      };
    case 'rpc':
      if (typeof v.ref === 'string') return { type: 'rpc', ref: v.ref, result: isObj(v.result) ? v.result : {} };
      break;
  }
  return { type: 'other', raw };
}

export function sendRequest(o: { id: string; to?: string; conv?: string; text: string }): Buffer {
  const req: Record<string, unknown> = { type: 'send', id: o.id };
  if (o.to !== undefined) req.to = o.to;
  if (o.conv !== undefined) req.conv = o.conv;
  req.body = { text: o.text };
  return Buffer.from(JSON.stringify(req));
}

export function rpcRequest(id: string, method: string, params: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ type: 'rpc', id, method, params }));
}

/** Text that carries a send time and a message number, padded to about `bytes`. */
export function stampText(sentAt: number, n: number, bytes: number): string {
  const head = `t=${sentAt.toFixed(3)};n=${n};`;
  return head + 'x'.repeat(Math.max(0, bytes - head.length));
}

export function readStamp(text: string | undefined): { sentAt: number; n: number } | null {
  const m = text ? /^t=([\d.]+);n=(\d+);/.exec(text) : null;
  return m ? { sentAt: Number(m[1]), n: Number(m[2]) } : null;
}
