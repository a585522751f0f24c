/**
 * Pending RPC requests: ids, timeouts, answers, and what happens to them when the
 * connection drops. The ChatClient decides when a request can be published; this table
 * only remembers it.
 */

import type { Clock, TimerHandle } from './clock.ts';
import { ChatError } from './errors.ts';
import { IDEMPOTENT_METHODS, type JsonObject, type RpcMethod, type RpcRequest } from './protocol.ts';

interface PendingRpc {
  request: RpcRequest;
  /** Safe to publish again after a reconnect (read-only method). */
  idempotent: boolean;
  /** Published on the current connection. */
  published: boolean;
  resolve(result: JsonObject): void;
  reject(error: ChatError): void;
  timer: TimerHandle;
}

export class RpcTable {
  readonly #pending = new Map<string, PendingRpc>();

  constructor(private readonly clock: Clock) {}

  /** Registers a request; its promise settles with the answer, an error or a timeout. */
  add(request: RpcRequest, timeoutMs: number): Promise<JsonObject> {
    return new Promise<JsonObject>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        if (!this.#pending.delete(request.id)) return;
        reject(new ChatError('timeout', `${request.method} got no answer within ${timeoutMs} ms`, { ref: request.id }));
      }, timeoutMs);
      this.#pending.set(request.id, {
        request,
        idempotent: IDEMPOTENT_METHODS.has(request.method as RpcMethod),
        published: false,
        resolve,
        reject,
        timer,
      });
    });
  }

  has(id: string): boolean {
    return this.#pending.has(id);
  }

  /** Requests that still have to be published on the current connection, oldest first. */
  unpublished(): RpcRequest[] {
    return [...this.#pending.values()].filter((rpc) => !rpc.published).map((rpc) => rpc.request);
  }

  markPublished(id: string): void {
    const rpc = this.#pending.get(id);
    if (rpc) rpc.published = true;
  }

  /** The answer `{"type":"rpc","ref":id}` arrived. Returns false for an unknown id. */
  resolve(id: string, result: JsonObject): boolean {
    const rpc = this.#settle(id);
    rpc?.resolve(result);
    return rpc !== undefined;
  }

  /** An `error` with `ref` id arrived. Returns false for an unknown id. */
  reject(id: string, error: ChatError): boolean {
    const rpc = this.#settle(id);
    rpc?.reject(error);
    return rpc !== undefined;
  }

  /**
   * The connection dropped. Read-only requests wait to be published again on the next
   * connection (within their timeout); a request that changes something and was already
   * published fails with `disconnected`, because whether it took effect is unknown.
   */
  connectionLost(): void {
    for (const [id, rpc] of this.#pending) {
      if (!rpc.published) continue;
      if (rpc.idempotent) {
        rpc.published = false;
      } else {
        this.reject(id, new ChatError('disconnected', `connection lost while ${rpc.request.method} was in flight`, { ref: id }));
      }
    }
  }

  /** Fails everything (client closed). */
  rejectAll(error: (request: RpcRequest) => ChatError): void {
    for (const id of [...this.#pending.keys()]) {
      const rpc = this.#pending.get(id)!;
      this.reject(id, error(rpc.request));
    }
  }

  #settle(id: string): PendingRpc | undefined {
    const rpc = this.#pending.get(id);
    if (!rpc) return undefined;
    this.clock.clearTimeout(rpc.timer);
    this.#pending.delete(id);
    return rpc;
  }
}
