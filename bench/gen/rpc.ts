// RPC over MQTT (DESIGN section 4): a request on the device's out topic, the answer
// `{"type":"rpc","ref":R,"result":...}` or an `error` with ref R on the device's in topic.
import { deviceInTopic, outTopic, parseEvent, rpcRequest, type ServerEvent } from '../lib/chat-wire.ts';
import type { ChatUser, Endpoint } from '../lib/protocol.ts';
import { connectChatUser } from './chat.ts';
import type { GenClient } from './client.ts';

export class RpcError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export class RpcClient {
  private next = 1;
  private readonly waiting = new Map<string, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  /** Events on the device topic that are not RPC answers (acks, errors without ref). */
  readonly other: ServerEvent[] = [];

  constructor(
    private readonly client: GenClient,
    private readonly who: ChatUser,
    onOther?: (topic: string, payload: Buffer) => void,
  ) {
    const mine = deviceInTopic(who.user, who.device);
    client.onMessage((topic, payload) => {
      if (topic !== mine) return onOther?.(topic, payload);
      const ev = parseEvent(payload);
      const ref = ev.type === 'rpc' ? ev.ref : ev.type === 'error' ? ev.ref : undefined;
      const w = ref ? this.waiting.get(ref) : undefined;
      if (!w || !ref) {
        if (this.other.length < 1000) this.other.push(ev);
        return;
      }
      this.waiting.delete(ref);
      if (ev.type === 'rpc') w.resolve(ev.result);
      else if (ev.type === 'error') w.reject(new RpcError(ev.code, ev.message ?? ''));
    });
  }

  call(method: string, params: Record<string, unknown>, timeoutMs = 60000): Promise<Record<string, unknown>> {
    const id = `rpc${this.next++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`rpc ${method}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.client.publish(outTopic(this.who.user, this.who.device), rpcRequest(id, method, params), 1);
    });
  }
}

/** group.create then group.info over one short-lived connection of the owner. */
export async function createGroup(endpoint: Endpoint, owner: ChatUser, members: readonly ChatUser[], name: string): Promise<{ conv: string; topic?: string }> {
  const c = await connectChatUser({ client: 'raw', endpoint }, owner, false);
  try {
    const rpc = new RpcClient(c, owner);
    const created = await rpc.call('group.create', { name, members: members.map((m) => m.user) }, 180000);
    const conv = created.conv;
    if (typeof conv !== 'string') throw new Error(`group.create answered without conv: ${JSON.stringify(created).slice(0, 200)}`);
    const info = await rpc.call('group.info', { conv }, 60000);
    return { conv, topic: typeof info.topic === 'string' ? info.topic : undefined };
  } finally {
    await c.end();
  }
}

