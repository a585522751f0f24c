/**
 * An in-memory Transport (STYLE 9: where the wire is not the point) with a scriptable
 * fake server, so that ChatClient logic runs on fake time without a broker.
 */

import {
  ConnectRefusedError,
  type QoS,
  type SubscribeGrant,
  type Transport,
  type TransportConnection,
  type TransportHandlers,
  type TransportOpenOptions,
} from '../../src/transport.ts';

export interface Published {
  topic: string;
  payload: string;
  qos: QoS;
  /** The payload parsed as JSON (requests are JSON). */
  json: Record<string, unknown>;
}

/** What the next open() does. */
export type OpenOutcome = 'ok' | 'refuse-auth' | 'network-error';

/** Answers a request published on chat/{user}/{device}/out; returns events to push back. */
export type RequestHandler = (request: Record<string, unknown>, connection: FakeConnection) => void;

export const flush = async (rounds = 10): Promise<void> => {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

export class FakeConnection implements TransportConnection {
  readonly published: Published[] = [];
  readonly subscriptions = new Map<string, QoS>();
  readonly subscribeCalls: string[][] = [];
  readonly unsubscribed: string[] = [];
  closed = false;
  /** When set, QoS 1 publishes on out topics wait for releasePubacks(). */
  holdPubacks = false;
  readonly #heldPubacks: (() => void)[] = [];

  constructor(
    readonly options: TransportOpenOptions,
    private readonly handlers: TransportHandlers,
    private readonly transport: FakeTransport,
  ) {}

  async publish(topic: string, payload: string, qos: QoS): Promise<void> {
    if (this.closed) throw new Error('closed');
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(payload) as Record<string, unknown>;
    } catch {
      json = {};
    }
    this.published.push({ topic, payload, qos, json });
    if (topic.endsWith('/out')) {
      // The server answers after the request is processed, i.e. around PUBACK.
      queueMicrotask(() => this.transport.requestHandler?.(json, this));
      if (this.holdPubacks) {
        await new Promise<void>((resolve, reject) => {
          this.#heldPubacks.push(resolve);
          this.#onClose.push(() => reject(new Error('closed')));
        });
      }
    }
  }

  readonly #onClose: (() => void)[] = [];

  releasePubacks(): void {
    for (const release of this.#heldPubacks.splice(0)) release();
  }

  async subscribe(topics: readonly string[], qos: QoS): Promise<SubscribeGrant[]> {
    if (this.closed) throw new Error('closed');
    this.subscribeCalls.push([...topics]);
    return topics.map((topic) => {
      const granted = !this.transport.refusedTopics.has(topic);
      if (granted) this.subscriptions.set(topic, qos);
      return { topic, granted };
    });
  }

  async unsubscribe(topics: readonly string[]): Promise<void> {
    for (const topic of topics) {
      this.subscriptions.delete(topic);
      this.unsubscribed.push(topic);
    }
  }

  async close(): Promise<void> {
    this.#end('closed by client');
  }

  /** The server pushes an event (JSON) on a topic. */
  push(topic: string, event: unknown): void {
    if (this.closed) return;
    this.handlers.message(topic, new TextEncoder().encode(JSON.stringify(event)));
  }

  /** The network drops the connection. */
  drop(reason = 'network down'): void {
    this.#end(reason, true);
  }

  #end(reason: string, notify = false): void {
    if (this.closed) return;
    this.closed = true;
    for (const fail of this.#onClose.splice(0)) fail();
    if (notify) this.handlers.close(reason);
  }

  /** Requests published on the out topic, parsed. */
  requests(type?: string): Record<string, unknown>[] {
    return this.published.filter((p) => p.topic.endsWith('/out')).map((p) => p.json).filter((r) => type === undefined || r.type === type);
  }

  rpcs(method?: string): Record<string, unknown>[] {
    return this.requests('rpc').filter((r) => method === undefined || r.method === method);
  }
}

export class FakeTransport implements Transport {
  readonly connections: FakeConnection[] = [];
  readonly openCalls: TransportOpenOptions[] = [];
  readonly outcomes: OpenOutcome[] = [];
  readonly refusedTopics = new Set<string>();
  requestHandler: RequestHandler | undefined;

  get current(): FakeConnection {
    const connection = this.connections.at(-1);
    if (!connection) throw new Error('no connection yet');
    return connection;
  }

  async open(options: TransportOpenOptions, handlers: TransportHandlers): Promise<TransportConnection> {
    this.openCalls.push(options);
    const outcome = this.outcomes.shift() ?? 'ok';
    if (outcome === 'refuse-auth') throw new ConnectRefusedError(5, 'Connection refused: Not authorized');
    if (outcome === 'network-error') throw new Error('connect ECONNREFUSED');
    const connection = new FakeConnection(options, handlers, this);
    this.connections.push(connection);
    return connection;
  }
}

/**
 * A minimal server behaviour: acks sends with increasing seqs per conversation (the same
 * seq again for a known id), echoes stored messages on the user's inbox, and answers
 * conversations/sync from what it stored.
 */
export class FakeServer {
  readonly stored = new Map<string, Record<string, unknown>[]>();
  readonly #byId = new Map<string, Record<string, unknown>>();
  /** When false, sends are stored and acked but not echoed. */
  echo = true;
  /** Set to drop acks (simulating a lost ack event). */
  ackSends = true;
  /** Overrides per RPC method. */
  readonly rpcOverrides = new Map<string, (params: Record<string, unknown>) => Record<string, unknown> | { error: string }>();

  constructor(
    private readonly user: string,
    private readonly device: string,
    private readonly now: () => number = () => 1_000,
  ) {}

  attach(transport: FakeTransport): void {
    transport.requestHandler = (request, connection) => this.handle(request, connection);
  }

  /** Stores a message from someone else (not pushed). */
  storeFrom(from: string, conv: string, text: string): Record<string, unknown> {
    const list = this.stored.get(conv) ?? [];
    const message = { type: 'msg', conv, seq: list.length + 1, id: `${from}-${list.length + 1}`, from, ts: this.now(), body: { text } };
    list.push(message);
    this.stored.set(conv, list);
    return message;
  }

  handle(request: Record<string, unknown>, connection: FakeConnection): void {
    const device = `chat/${this.user}/${this.device}/in`;
    if (request.type === 'send') {
      const id = String(request.id);
      let message = this.#byId.get(id);
      if (!message) {
        const conv = typeof request.conv === 'string' ? request.conv : `dm_${request.to}`;
        const list = this.stored.get(conv) ?? [];
        message = { type: 'msg', conv, seq: list.length + 1, id, from: this.user, ts: this.now(), body: request.body as object };
        if (request.reply_to !== undefined) message.reply_to = request.reply_to;
        list.push(message);
        this.stored.set(conv, list);
        this.#byId.set(id, message);
        if (this.echo) connection.push(`chat/${this.user}/in`, message);
      }
      if (this.ackSends) connection.push(device, { type: 'ack', id, conv: message.conv, seq: message.seq, ts: message.ts });
      return;
    }
    if (request.type !== 'rpc') return;
    const method = String(request.method);
    const params = (request.params ?? {}) as Record<string, unknown>;
    const override = this.rpcOverrides.get(method);
    if (override) {
      const result = override(params);
      if ('error' in result && typeof result.error === 'string') {
        connection.push(device, { type: 'error', ref: request.id, code: result.error, message: `${method} failed` });
      } else {
        connection.push(device, { type: 'rpc', ref: request.id, result });
      }
      return;
    }
    if (method === 'conversations') {
      const convs = [...this.stored.entries()].map(([conv, list]) => ({ conv, kind: 'dm', name: null, members: 2, last_seq: list.length, read_seq: 0, unread: list.length }));
      connection.push(device, { type: 'rpc', ref: request.id, result: { convs } });
    } else if (method === 'sync') {
      const seen = (params.convs ?? {}) as Record<string, number>;
      const limit = typeof params.limit === 'number' ? params.limit : 100;
      const convs = [];
      for (const [conv, list] of this.stored) {
        const after = seen[conv] ?? 0;
        if (after >= list.length) continue;
        const rest = list.filter((m) => (m.seq as number) > after);
        convs.push({ conv, messages: rest.slice(0, limit), more: rest.length > limit });
      }
      connection.push(device, { type: 'rpc', ref: request.id, result: { convs } });
    } else {
      connection.push(device, { type: 'rpc', ref: request.id, result: {} });
    }
  }
}
