/**
 * ChatClient: the SDK's entry point. It owns one MQTT connection at a time, the outbox,
 * the per-conversation ordering, receipts, presence and typing, and speaks wire protocol v1
 * (DESIGN section 4).
 *
 * Reconnecting is done here, not by MQTT.js (which runs with reconnectPeriod 0), because a
 * reconnect is more than a new socket: it may need a fresh token (MQTT 3.1.1 sends the
 * password only in CONNECT), it must back off exponentially with jitter (MQTT.js retries
 * at a fixed period, so a broker restart gets every client back in the same instant), and
 * it must resubscribe, flush the outbox and sync — in that order, as named steps below.
 */

import { DEFAULT_BACKOFF, backoffDelay, type BackoffOptions } from './backoff.ts';
import { systemClock, type Clock, type TimerHandle } from './clock.ts';
import { ConnectionStateMachine, type ConnectionEvent, type ConnectionState, type StateChange } from './connection-state.ts';
import { ConversationBook, type Arrival, type ConversationState, type MessageSource } from './conversation-book.ts';

export type { MessageSource } from './conversation-book.ts';
import { TypedEmitter } from './emitter.ts';
import { ChatError, chatErrorFromWire } from './errors.ts';
import { newId } from './ids.ts';
import {
  IDENTIFIER_PATTERN,
  convEventToMessage,
  messageToConvEvent,
  parsePresence,
  parseSequenced,
  parseServerEvent,
  parseTyping,
  topics,
  type ChatMessage,
  type ConvEvent,
  type ConversationSummary,
  type ErrorEvent,
  type GroupInfo,
  type JsonObject,
  type MediaDownload,
  type MediaRecord,
  type MediaUploadTicket,
  type MemberRole,
  type PresenceState,
  type Profile,
  type ReceiptEvent,
  type ReceiptStatus,
  type RpcMethod,
  type RpcParams,
  type RpcRequest,
  type RpcResult,
  type SendRequest,
  type SendTarget,
} from './protocol.ts';
import { Outbox, type SendAck } from './outbox.ts';
import { RpcTable } from './rpc.ts';
import { DEFAULT_MAX_BUFFERED } from './sequencer.ts';
import { MemoryStore } from './store/memory.ts';
import type { LocalStore, MessagePageQuery, OutboxEntry, SearchQuery, StoredMessage } from './store/types.ts';
import { refreshDelay, tokenExpiresAt } from './token.ts';
import { ConnectRefusedError, MqttTransport, type Transport, type TransportConnection } from './transport.ts';
import type { IClientOptions } from 'mqtt';
import { DEFAULT_TYPING, TypingTracker, type TypingChange, type TypingOptions } from './typing.ts';

// ---------------------------------------------------------------------------------------
// Public types

export interface ChatClientOptions {
  /** Broker URL: `mqtt://`, `mqtts://` (Node) or `ws://`, `wss://` (Node and browsers; path `/mqtt`). */
  url: string;
  user: string;
  /** Device id; default "default" (DESIGN section 7). */
  device?: string;
  /** Returns the current access token; called before the first connect. */
  getToken: () => string | Promise<string>;
  /**
   * Returns a new access token. Called before the current one expires (JWT `exp` minus
   * `tokenRefreshMarginMs`) and once when the broker refuses the token. Defaults to
   * `getToken`. Omit both for long-lived device tokens without `exp`.
   */
  refreshToken?: () => Promise<string>;
  /**
   * The HTTP API origin (e.g. `http://localhost:8080`): needed by `media.send` to upload
   * bytes and complete the upload (DESIGN section 7).
   */
  httpUrl?: string;
  /** Where messages, the outbox and cursors live; default: a new MemoryStore. */
  store?: LocalStore;
  /** Default: MQTT.js. */
  transport?: Transport;
  /** Extra MQTT.js options (TLS `ca`, `rejectUnauthorized`, `wsOptions` ...). */
  mqttOptions?: IClientOptions;
  clock?: Clock;
  /** Random source in [0,1) for backoff jitter; injectable for tests. */
  random?: () => number;
  backoff?: Partial<BackoffOptions>;
  /** Per-RPC answer timeout; default 15 s. */
  rpcTimeoutMs?: number;
  /** MQTT CONNECT -> CONNACK timeout; default 10 s. */
  connectTimeoutMs?: number;
  /** MQTT keepalive; default 30 s. */
  keepaliveSeconds?: number;
  /** Resend an unacknowledged send after this long on a live connection; default 10 s. */
  ackTimeoutMs?: number;
  /** Send `delivered` receipts automatically; default true. */
  autoDeliveredReceipts?: boolean;
  /** Delivered receipts are batched for this long (cumulative: one per conversation); default 250 ms. */
  receiptDelayMs?: number;
  /** Page size of `sync`; default 200 (the server caps at 1000). */
  syncLimit?: number;
  /** How many recent messages of a conversation new to this device are synced; default 200. */
  initialSyncWindow?: number;
  /** Refresh the token this long before it expires; default 60 s. */
  tokenRefreshMarginMs?: number;
  typing?: Partial<TypingOptions>;
}

export interface SendOptions {
  /** The message id (1-64 chars, unique per sender); default: a new time-ordered id. */
  id?: string;
  /** Seq of the message this one answers. */
  reply_to?: number;
  /** Media ids from media.upload. */
  media?: string[];
}

export type { SendAck } from './outbox.ts';

export interface ReceivedMessage extends ChatMessage {
  /** Sent by this user (from this device or another one). */
  own: boolean;
  /** How it reached this device. */
  source: MessageSource;
}

export type Receipt = Omit<ReceiptEvent, 'type'>;
export type ConversationEvent = Omit<ConvEvent, 'type'>;

export interface ChatEvents {
  /** A new message, released in seq order per conversation, never twice. */
  message: ReceivedMessage;
  /** A send was acknowledged (also for sends queued before an app restart). */
  ack: SendAck;
  receipt: Receipt;
  presence: PresenceState;
  typing: TypingChange;
  conversation: ConversationEvent;
  state: StateChange;
  /** Errors without a promise to reject (failed queued sends, bad receipts, failed background sync ...). */
  error: ChatError;
}

export interface HistoryPage {
  /** Ascending seq. */
  messages: ChatMessage[];
  /** Older messages exist. */
  more: boolean;
}

// ---------------------------------------------------------------------------------------

/** Errors raised by our own steps that decide the next connection event. */
class AttemptError extends Error {
  constructor(
    readonly event: Extract<ConnectionEvent, 'failed' | 'rejected'>,
    message: string,
    readonly chatError?: ChatError,
  ) {
    super(message);
  }
}

const MAX_GAP_RETRIES = 3;
const GAP_FILL_DELAY_MS = 300;
const MAX_SYNC_ROUNDS = 1_000;

/** An HTTP error answer (`{"error":{"code","message"}}`, DESIGN section 7) as a ChatError. */
async function httpError(response: Response, what: string): Promise<ChatError> {
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof error?.code === 'string' ? error.code : response.status >= 500 ? 'internal' : 'bad_request';
  const message = typeof error?.message === 'string' ? error.message : `${what} failed with HTTP ${response.status}`;
  return chatErrorFromWire({ code, message });
}

function toChatError(error: unknown, fallback: ChatError['code'] = 'internal'): ChatError {
  if (error instanceof ChatError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ChatError(fallback, message, { cause: error });
}

export class ChatClient extends TypedEmitter<ChatEvents> {
  readonly user: string;
  readonly device: string;
  readonly store: LocalStore;

  readonly #options: Required<
    Pick<
      ChatClientOptions,
      | 'rpcTimeoutMs'
      | 'connectTimeoutMs'
      | 'keepaliveSeconds'
      | 'ackTimeoutMs'
      | 'autoDeliveredReceipts'
      | 'receiptDelayMs'
      | 'syncLimit'
      | 'tokenRefreshMarginMs'
    >
  > & { backoff: BackoffOptions };
  readonly #url: string;
  readonly #httpUrl: string | undefined;
  readonly #getToken: () => string | Promise<string>;
  readonly #refreshToken: () => Promise<string>;
  readonly #transport: Transport;
  readonly #mqttOptions: IClientOptions | undefined;
  readonly #clock: Clock;
  readonly #random: () => number;

  readonly #machine: ConnectionStateMachine;
  readonly #book: ConversationBook;
  readonly #rpcs: RpcTable;
  readonly #typing: TypingTracker;

  #loaded: Promise<void> | undefined;
  #connection: TransportConnection | undefined;
  /** Bumped by every connect attempt and by close(): callbacks of older ones are ignored. */
  #generation = 0;
  #attempt = 0;
  #reconnectTimer: TimerHandle | undefined;
  #token: string | undefined;
  #refreshTimer: TimerHandle | undefined;
  #connectWaiters: { resolve(): void; reject(error: ChatError): void }[] = [];
  #syncWaiters: { resolve(): void; reject(error: ChatError): void }[] = [];
  #syncedGeneration = -1;

  readonly #outbox: Outbox;

  /** Store writes of messages and cursors run one at a time, in arrival order. */
  #ingestQueue: Promise<unknown> = Promise.resolve();
  readonly #gapFills = new Map<string, { timer: TimerHandle | undefined; retries: number }>();
  readonly #deliveredDue = new Set<string>();
  #receiptTimer: TimerHandle | undefined;
  #syncRunning: Promise<void> | undefined;
  #syncFollowUp: Promise<void> | undefined;
  #removeOnlineListener: (() => void) | undefined;
  readonly #topicSwitches = new Set<Promise<void>>();
  /**
   * Conversation events applied per conversation. An RPC answer describing a conversation
   * (conversations, group.info) is ignored for name and topic when events were applied
   * while it was in flight: the events are newer.
   */
  readonly #eventsApplied = new Map<string, number>();

  readonly #watchedPresence = new Set<string>();
  readonly #presence = new Map<string, PresenceState>();
  readonly #watchedTyping = new Set<string>();

  constructor(options: ChatClientOptions) {
    super();
    if (!IDENTIFIER_PATTERN.test(options.user)) throw new ChatError('bad_request', `invalid user id ${JSON.stringify(options.user)}`);
    const device = options.device ?? 'default';
    if (!IDENTIFIER_PATTERN.test(device)) throw new ChatError('bad_request', `invalid device id ${JSON.stringify(device)}`);
    this.user = options.user;
    this.device = device;
    this.store = options.store ?? new MemoryStore();
    this.#url = options.url;
    this.#httpUrl = options.httpUrl;
    this.#getToken = options.getToken;
    this.#refreshToken = options.refreshToken ?? (async () => options.getToken());
    this.#transport = options.transport ?? new MqttTransport();
    this.#mqttOptions = options.mqttOptions;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#options = {
      rpcTimeoutMs: options.rpcTimeoutMs ?? 15_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      keepaliveSeconds: options.keepaliveSeconds ?? 30,
      ackTimeoutMs: options.ackTimeoutMs ?? 10_000,
      autoDeliveredReceipts: options.autoDeliveredReceipts ?? true,
      receiptDelayMs: options.receiptDelayMs ?? 250,
      syncLimit: options.syncLimit ?? 200,
      tokenRefreshMarginMs: options.tokenRefreshMarginMs ?? 60_000,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
    };
    this.#machine = new ConnectionStateMachine((change) => this.emit('state', change));
    this.#book = new ConversationBook(this.store, {
      initialSyncWindow: options.initialSyncWindow ?? 200,
      maxBuffered: DEFAULT_MAX_BUFFERED,
    });
    this.#rpcs = new RpcTable(this.#clock);
    this.#outbox = new Outbox(this.store, this.#clock, (error) => this.emit('error', toChatError(error)));
    this.#typing = new TypingTracker(
      this.#clock,
      (conv, state) => this.#publishTyping(conv, state),
      (change) => this.emit('typing', change),
      { ...DEFAULT_TYPING, ...options.typing },
    );
  }

  // =====================================================================================
  // Connection

  get state(): ConnectionState {
    return this.#machine.state;
  }

  /**
   * Starts connecting (and reconnecting, for as long as the client is not closed). Resolves
   * once online. Rejects with `forbidden` when the broker refuses the credentials even after
   * a token refresh, or `disconnected` when close() is called first. Sends made before it
   * resolves wait in the outbox.
   */
  connect(): Promise<void> {
    this.#listenForNetwork();
    const online = this.#ensureLoaded().then(() => {
      if (this.state === 'online') return undefined;
      const reached = new Promise<void>((resolve, reject) => this.#connectWaiters.push({ resolve, reject }));
      if (this.#machine.can('open')) {
        this.#machine.apply('open');
        void this.#attemptConnect();
      }
      return reached;
    });
    // Offline-first apps may start connecting without awaiting: a later close() must not
    // turn into an unhandled rejection. Awaiting callers still get the error.
    online.catch(() => undefined);
    return online;
  }

  /** In a browser, the `online` event ends the backoff wait at once. */
  #listenForNetwork(): void {
    const target = globalThis as { addEventListener?: (type: string, listener: () => void) => void; removeEventListener?: (type: string, listener: () => void) => void };
    if (this.#removeOnlineListener || typeof target.addEventListener !== 'function' || typeof target.removeEventListener !== 'function') return;
    const listener = (): void => this.reconnectNow();
    target.addEventListener('online', listener);
    this.#removeOnlineListener = () => target.removeEventListener?.('online', listener);
  }

  /** Skips the current backoff delay (e.g. the browser went back online). */
  reconnectNow(): void {
    if (this.state !== 'reconnecting') return;
    if (this.#reconnectTimer !== undefined) this.#clock.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#machine.apply('retry');
    void this.#attemptConnect();
  }

  /**
   * Disconnects and stops reconnecting. Unacknowledged sends stay in the outbox (their
   * promises reject with `disconnected`) and go out on the next connect(), also after an
   * app restart with a persistent store. The store stays open: it belongs to the caller.
   */
  async close(): Promise<void> {
    this.#generation++;
    const connection = this.#connection;
    this.#connection = undefined;
    if (this.#machine.can('close') && this.state !== 'closed') this.#machine.apply('close');
    this.#clearTimers();
    this.#typing.dispose();
    this.#removeOnlineListener?.();
    this.#removeOnlineListener = undefined;
    const closed = new ChatError('disconnected', 'client closed');
    for (const waiter of this.#connectWaiters.splice(0)) waiter.reject(closed);
    this.#rpcs.rejectAll((request) => new ChatError('disconnected', `client closed before ${request.method} was answered`, { ref: request.id }));
    this.#outbox.rejectWaiters((id) => new ChatError('disconnected', 'client closed; the message stays in the outbox', { ref: id }));
    for (const waiter of this.#syncWaiters.splice(0)) waiter.reject(closed);
    await connection?.close();
    // Let queued store writes finish so that the caller may close the store afterwards.
    await this.#ingestQueue.catch(() => undefined);
    await this.#outbox.flushWrites();
  }

  /**
   * Resolves once the catch-up after the current (or next) connection is done: outbox
   * published, conversations refreshed, sync complete. Rejects with `disconnected` on close().
   */
  whenSynced(): Promise<void> {
    const caughtUp =
      this.state === 'online' && this.#syncedGeneration === this.#generation
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => this.#syncWaiters.push({ resolve, reject }));
    // ... including group topics being switched (subscribe, then sync) right now.
    return caughtUp.then(async () => {
      await Promise.all([...this.#topicSwitches]);
    });
  }

  #clearTimers(): void {
    if (this.#reconnectTimer !== undefined) this.#clock.clearTimeout(this.#reconnectTimer);
    if (this.#refreshTimer !== undefined) this.#clock.clearTimeout(this.#refreshTimer);
    if (this.#receiptTimer !== undefined) this.#clock.clearTimeout(this.#receiptTimer);
    this.#reconnectTimer = this.#refreshTimer = this.#receiptTimer = undefined;
    this.#outbox.connectionChanged();
    for (const gap of this.#gapFills.values()) if (gap.timer !== undefined) this.#clock.clearTimeout(gap.timer);
    this.#gapFills.clear();
  }

  #ensureLoaded(): Promise<void> {
    this.#loaded ??= this.#loadLocalState().catch((error: unknown) => {
      const chatError = toChatError(error);
      this.#outbox.loadFailed(chatError);
      throw chatError;
    });
    return this.#loaded;
  }

  /** Reads what a previous run left: conversation cursors and the outbox. */
  async #loadLocalState(): Promise<void> {
    const account = `${this.user}:${this.device}`;
    const owner = await this.store.getMeta('account');
    if (owner !== undefined && owner !== account) {
      throw new ChatError('bad_request', `this store belongs to ${owner}, not ${account}`);
    }
    if (owner === undefined) await this.store.setMeta('account', account);
    await this.#book.load();
    await this.#outbox.load();
  }

  /**
   * One connect attempt, as named steps. Everything before "online" decides whether the
   * attempt succeeded; everything after runs on the live connection.
   */
  async #attemptConnect(): Promise<void> {
    const generation = ++this.#generation;
    const connectSteps: [string, () => Promise<void>][] = [
      ['get a fresh token', () => this.#ensureFreshToken()],
      ['open the MQTT connection', () => this.#openTransport(generation)],
      ['subscribe', () => this.#subscribeAll(generation)],
    ];
    try {
      for (const [name, step] of connectSteps) {
        if (generation !== this.#generation) return;
        try {
          await step();
        } catch (error) {
          if (error instanceof AttemptError) throw error;
          throw new AttemptError('failed', `${name}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    } catch (error) {
      if (generation !== this.#generation) return;
      const failure = error as AttemptError;
      const connection = this.#connection;
      this.#connection = undefined;
      void connection?.close();
      this.#machine.apply(failure.event, failure.message);
      if (failure.event === 'rejected') {
        const chatError = failure.chatError ?? new ChatError('forbidden', failure.message);
        for (const waiter of this.#connectWaiters.splice(0)) waiter.reject(chatError);
        this.emit('error', chatError);
      } else {
        this.#scheduleReconnect();
      }
      return;
    }
    if (generation !== this.#generation) return;
    if (!this.#connection) {
      // The connection dropped between the last step and here.
      this.#machine.apply('failed', 'connection lost while connecting');
      this.#scheduleReconnect();
      return;
    }
    this.#attempt = 0;
    this.#machine.apply('connected');
    this.#scheduleTokenRefresh();
    for (const waiter of this.#connectWaiters.splice(0)) waiter.resolve();
    void this.#runOnlineSteps(generation);
  }

  async #runOnlineSteps(generation: number): Promise<void> {
    const onlineSteps: [string, () => Promise<void>][] = [
      ['flush the outbox', async () => this.#flushOutbox()],
      ['publish waiting requests', async () => this.#publishWaitingRpcs()],
      ['send pending receipts', () => this.#sendPendingReceipts()],
      ['refresh conversations', () => this.#refreshConversations()],
      ['sync', () => this.#syncAll()],
    ];
    for (const [name, step] of onlineSteps) {
      if (generation !== this.#generation || this.state !== 'online') return;
      try {
        await step();
      } catch (error) {
        if (generation !== this.#generation || this.state !== 'online') return;
        const chatError = toChatError(error);
        this.emit('error', new ChatError(chatError.code, `${name} failed: ${chatError.message}`, { cause: error }));
      }
    }
    if (generation !== this.#generation) return;
    this.#syncedGeneration = generation;
    for (const waiter of this.#syncWaiters.splice(0)) waiter.resolve();
  }

  #scheduleReconnect(): void {
    const delay = backoffDelay(this.#attempt++, this.#options.backoff, this.#random);
    this.#reconnectTimer = this.#clock.setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.state !== 'reconnecting') return;
      this.#machine.apply('retry');
      void this.#attemptConnect();
    }, delay);
  }

  /** The live connection ended without close(). */
  #onConnectionLost(generation: number, reason: string): void {
    if (generation !== this.#generation) return;
    this.#connection = undefined;
    this.#outbox.connectionChanged();
    this.#rpcs.connectionLost();
    // Still connecting: the running attempt notices through its failing step.
    if (this.state !== 'online') return;
    this.#machine.apply('lost', reason);
    this.#scheduleReconnect();
  }

  // ---- token -------------------------------------------------------------------------

  async #ensureFreshToken(): Promise<void> {
    this.#token ??= await this.#getToken();
    const expiresAt = tokenExpiresAt(this.#token);
    if (expiresAt !== undefined && expiresAt - this.#clock.now() <= this.#options.tokenRefreshMarginMs) {
      this.#token = await this.#refreshToken();
    }
  }

  #scheduleTokenRefresh(): void {
    if (this.#refreshTimer !== undefined) this.#clock.clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    const expiresAt = this.#token === undefined ? undefined : tokenExpiresAt(this.#token);
    if (expiresAt === undefined) return;
    const delay = refreshDelay(expiresAt, this.#clock.now(), this.#options.tokenRefreshMarginMs);
    this.#refreshTimer = this.#clock.setTimeout(() => {
      this.#refreshTimer = undefined;
      if (this.state === 'closed') return;
      this.#refreshToken().then(
        (token) => {
          // MQTT 3.1.1 has no re-authentication: the new token is used by the next CONNECT.
          this.#token = token;
          // A callback that hands back a token expiring no later would make this loop hot;
          // the next connect asks again instead.
          if ((tokenExpiresAt(token) ?? Number.POSITIVE_INFINITY) > expiresAt) this.#scheduleTokenRefresh();
        },
        (error: unknown) => {
          this.emit('error', toChatError(error, 'disconnected'));
          this.#refreshTimer = this.#clock.setTimeout(() => this.#scheduleTokenRefresh(), 15_000);
        },
      );
    }, delay);
  }

  // ---- transport ---------------------------------------------------------------------

  async #openTransport(generation: number): Promise<void> {
    let refreshed = false;
    for (;;) {
      try {
        const connection = await this.#transport.open(
          {
            url: this.#url,
            clientId: `${this.user}:${this.device}`,
            username: this.user,
            password: this.#token ?? '',
            clean: false,
            keepaliveSeconds: this.#options.keepaliveSeconds,
            connectTimeoutMs: this.#options.connectTimeoutMs,
            will: { topic: topics.presence(this.user), payload: JSON.stringify({ state: 'offline' }), qos: 1, retain: true },
            ...(this.#mqttOptions ? { mqttOptions: this.#mqttOptions } : {}),
          },
          {
            message: (topic, payload) => {
              if (generation === this.#generation) this.#onTransportMessage(topic, payload);
            },
            close: (reason) => this.#onConnectionLost(generation, reason),
          },
        );
        if (generation !== this.#generation) {
          void connection.close();
          return;
        }
        this.#connection = connection;
        return;
      } catch (error) {
        if (!(error instanceof ConnectRefusedError) || !error.isAuthFailure) throw error;
        if (refreshed) {
          throw new AttemptError('rejected', error.message, new ChatError('forbidden', `broker refused the credentials: ${error.message}`));
        }
        // The token may have expired or been revoked: one fresh token, one more try.
        refreshed = true;
        try {
          this.#token = await this.#refreshToken();
        } catch (refreshError) {
          throw new AttemptError('rejected', error.message, toChatError(refreshError, 'forbidden'));
        }
      }
    }
  }

  #requireConnection(): TransportConnection {
    if (!this.#connection) throw new ChatError('disconnected', 'not connected');
    return this.#connection;
  }

  /** Own topics, large-group topics, watched presence and typing — after every (re)connect. */
  async #subscribeAll(generation: number): Promise<void> {
    const connection = this.#requireConnection();
    const own = [topics.userIn(this.user), topics.deviceIn(this.user, this.device)];
    const grants = await connection.subscribe(own, 1);
    const refused = grants.filter((grant) => !grant.granted).map((grant) => grant.topic);
    if (refused.length > 0) {
      throw new AttemptError('rejected', `broker refused ${refused.join(', ')}`, new ChatError('forbidden', `subscription refused: ${refused.join(', ')}`));
    }
    const optional = [...this.#book.groupTopics(), ...[...this.#watchedPresence].map((user) => topics.presence(user))];
    const optionalGrants = await connection.subscribe(optional, 1);
    const typingGrants = await connection.subscribe([...this.#watchedTyping].map((conv) => topics.typing(conv)), 0);
    if (generation !== this.#generation) return;
    for (const grant of [...optionalGrants, ...typingGrants]) {
      if (!grant.granted) this.emit('error', new ChatError('forbidden', `subscription refused: ${grant.topic}`));
    }
  }

  /** Publishes a request on `chat/{user}/{device}/out` (QoS 1, resolves at PUBACK). */
  #publishRequest(request: SendRequest | RpcRequest | { type: 'receipt'; conv: string; seq: number; status: ReceiptStatus }): Promise<void> {
    const connection = this.#requireConnection();
    return connection.publish(topics.out(this.user, this.device), JSON.stringify(request), 1);
  }

  // =====================================================================================
  // Incoming

  #onTransportMessage(topic: string, payload: Uint8Array): void {
    const text = new TextDecoder().decode(payload);
    if (topic.startsWith('presence/')) {
      const user = topic.slice('presence/'.length);
      const presence = parsePresence(user, text);
      if (!presence || !this.#watchedPresence.has(user)) return;
      this.#presence.set(user, presence);
      this.emit('presence', presence);
      return;
    }
    if (topic.startsWith('typing/')) {
      const typing = parseTyping(text);
      if (!typing || typing.user === this.user) return;
      this.#typing.receive(topic.slice('typing/'.length), typing.user, typing.state);
      return;
    }
    const parsed = parseServerEvent(text);
    if (!parsed.ok) {
      this.emit('error', new ChatError('internal', `unreadable event on ${topic}: ${parsed.reason}`));
      return;
    }
    const event = parsed.event;
    switch (event.type) {
      case 'msg': {
        const { type: _type, ...message } = event;
        void this.#ingest([message], 'live');
        return;
      }
      case 'ack':
        this.#settleSend({ id: event.id, conv: event.conv, seq: event.seq, ts: event.ts });
        return;
      case 'receipt':
        void this.#onReceipt(event);
        return;
      case 'conv': {
        // Conversation events are stored entries of the sequence: ordered and deduplicated like messages.
        const entry = convEventToMessage(event);
        if (entry) void this.#ingest([entry], 'live');
        else void this.#serial(() => this.#applyConvEvent(event, 'live'));
        return;
      }
      case 'error':
        this.#onServerError(event);
        return;
      case 'rpc':
        this.#rpcs.resolve(event.ref, event.result);
        return;
    }
  }

  #onServerError(event: ErrorEvent): void {
    const error = chatErrorFromWire(event);
    if (event.ref !== undefined) {
      if (this.#rpcs.reject(event.ref, error)) return;
      if (this.#outbox.has(event.ref)) {
        this.#onSendError(event.ref, error);
        return;
      }
    }
    this.emit('error', error);
  }

  /**
   * Runs `work` after every earlier store write of incoming data. Failures are reported,
   * not thrown: the queue must keep going.
   */
  #serial<T>(work: () => Promise<T>): Promise<T | undefined> {
    const run = this.#ingestQueue.then(work);
    this.#ingestQueue = run.catch((error: unknown) => {
      this.emit('error', toChatError(error));
    });
    return run.catch(() => undefined);
  }

  /**
   * The receive path: own sends recognised by id, then per-conversation reordering,
   * duplicate drop and gap detection, then store, then events.
   */
  #ingest(messages: readonly ChatMessage[], source: MessageSource, settleThrough?: Map<string, number>): Promise<void> {
    return this.#serial(async () => {
      await this.#ensureLoaded();
      const released = new Map<string, Arrival[]>();
      const release = (conv: string, arrivals: Arrival[]): void => {
        if (arrivals.length === 0) return;
        const list = released.get(conv);
        if (list) list.push(...arrivals);
        else released.set(conv, arrivals);
      };
      for (const message of messages) {
        if (message.from === this.user && message.id !== undefined && this.#outbox.has(message.id)) {
          // The echo of our own send can overtake its ack: it proves the commit just as well.
          this.#settleSend({ id: message.id, conv: message.conv, seq: message.seq, ts: message.ts });
        }
        const record = this.#book.ensure(message.conv, message.seq);
        record.last_seq = Math.max(record.last_seq, message.seq);
        const result = this.#book.sequencer(message.conv).accept({ seq: message.seq, message, source });
        release(message.conv, result.ready);
      }
      // A complete answer from the server settles every hole below what it returned.
      for (const [conv, through] of settleThrough ?? []) {
        release(conv, this.#book.sequencer(conv).skipThrough(through));
      }
      const touched = new Set([...released.keys(), ...messages.map((message) => message.conv), ...(settleThrough?.keys() ?? [])]);
      for (const conv of touched) {
        const record = this.#book.get(conv)!;
        const ready = released.get(conv) ?? [];
        const sourceOf = new Map(ready.map((arrival) => [arrival.seq, arrival.source]));
        const inserted = ready.length > 0 ? await this.store.putMessages(ready.map((arrival) => arrival.message)) : [];
        record.synced_seq = this.#book.sequencer(conv).contiguous;
        await this.#book.persist(conv);
        for (const message of inserted) {
          const arrivedBy = sourceOf.get(message.seq) ?? source;
          if (message.kind === 'conv') {
            await this.#applyConvEvent(messageToConvEvent(message), arrivedBy);
            continue;
          }
          const own = message.from === this.user;
          if (!own) this.#deliveredDue.add(conv);
          this.emit('message', { ...message, own, source: arrivedBy });
        }
        if (this.#book.sequencer(conv).gap) this.#requestGapFill(conv);
      }
      this.#scheduleDeliveredReceipts();
    });
  }

  // ---- gaps and sync -----------------------------------------------------------------

  /** A message arrived above a hole: fetch the hole with `sync` unless it fills itself first. */
  #requestGapFill(conv: string): void {
    const existing = this.#gapFills.get(conv);
    if (existing?.timer !== undefined) return;
    const retries = existing?.retries ?? 0;
    const delay = retries === 0 ? GAP_FILL_DELAY_MS : backoffDelay(retries, this.#options.backoff, this.#random);
    const timer = this.#clock.setTimeout(() => {
      const entry = this.#gapFills.get(conv);
      if (entry) entry.timer = undefined;
      void this.#fillGap(conv);
    }, delay);
    this.#gapFills.set(conv, { timer, retries });
  }

  async #fillGap(conv: string): Promise<void> {
    const sequencer = this.#book.sequencer(conv);
    if (!sequencer.gap) {
      this.#gapFills.delete(conv);
      return;
    }
    if (this.state !== 'online') return; // the sync after the next connect covers it
    try {
      await this.#syncAll();
    } catch (error) {
      this.emit('error', toChatError(error));
    }
    await this.#ingestQueue;
    const gap = sequencer.gap;
    const entry = this.#gapFills.get(conv) ?? { timer: undefined, retries: 0 };
    if (!gap) {
      this.#gapFills.delete(conv);
      return;
    }
    entry.retries++;
    this.#gapFills.set(conv, entry);
    if (entry.retries >= MAX_GAP_RETRIES) {
      // The server keeps not returning these seqs: they are not ours to see. Move on.
      this.#gapFills.delete(conv);
      const settle = new Map([[conv, gap.to]]);
      await this.#ingest([], 'sync', settle);
      return;
    }
    this.#requestGapFill(conv);
  }

  /**
   * Brings every known conversation up to date. Callers that ask while a sync runs share
   * one more run after it (a reconnect, a gap and a fan-out switch at once cost two syncs,
   * not three).
   */
  #syncAll(): Promise<void> {
    if (!this.#syncRunning) {
      const run = this.#runSync().finally(() => {
        if (this.#syncRunning === run) this.#syncRunning = undefined;
      });
      this.#syncRunning = run;
      return run;
    }
    this.#syncFollowUp ??= this.#syncRunning
      .catch(() => undefined)
      .then(() => {
        this.#syncFollowUp = undefined;
        return this.#syncAll();
      });
    return this.#syncFollowUp;
  }

  /**
   * `sync`, page by page. Every request carries the cursors of all known conversations:
   * the server answers unknown ones from seq 0.
   */
  async #runSync(): Promise<void> {
    await this.#ensureLoaded();
    for (let round = 0; round < MAX_SYNC_ROUNDS; round++) {
      await this.#ingestQueue;
      const result = await this.rpc('sync', { convs: this.#book.cursors(), limit: this.#options.syncLimit });
      const messages: ChatMessage[] = [];
      const settleThrough = new Map<string, number>();
      let more = false;
      for (const entry of result.convs ?? []) {
        more ||= entry.more === true;
        const page = this.#readSequenced(entry.messages);
        messages.push(...page);
        // Holes inside a page the server returned are seqs this member may not see.
        const top = page.reduce((max, message) => Math.max(max, message.seq), 0);
        if (top > 0) settleThrough.set(entry.conv, top);
      }
      await this.#ingest(messages, 'sync', settleThrough);
      if (result.gone?.length) await this.#serial(() => this.#forgetMembership(result.gone ?? []));
      if (!more) return;
    }
  }

  /** Asks the server for everything missed (runs by itself after every connect). */
  async sync(): Promise<void> {
    await this.#syncAll();
    await this.#ingestQueue;
  }

  // ---- conversation events -----------------------------------------------------------

  /**
   * Side effects of a conversation event, applied when it is released in seq order (so a
   * replayed history ends in the current state): follow fan-out changes, learn names, stop
   * following a group this user left. Runs inside the ingest queue.
   */
  async #applyConvEvent(event: ConvEvent, source: MessageSource): Promise<void> {
    const record = this.#book.ensure(event.conv, event.seq ?? 0);
    if (event.seq !== undefined) record.last_seq = Math.max(record.last_seq, event.seq);
    this.#eventsApplied.set(event.conv, (this.#eventsApplied.get(event.conv) ?? 0) + 1);
    const previousTopic = record.topic ?? null;
    const aboutMe = event.user === this.user;
    switch (event.event) {
      case 'fanout_changed':
        record.topic = event.topic ?? null;
        break;
      case 'created':
        if (event.extra.kind === 'group' || event.extra.kind === 'channel') record.kind = event.extra.kind;
        if (typeof event.extra.name === 'string') record.name = event.extra.name;
        // The event does not say whether the new group uses fan-out on read: ask.
        if (source === 'live') void this.#learnTopic(event.conv);
        break;
      case 'settings_changed':
        if (typeof event.extra.name === 'string') record.name = event.extra.name;
        break;
      case 'member_removed':
      case 'member_left':
        if (aboutMe) record.topic = null;
        break;
      case 'member_added':
        // A large group announces no topic to a newcomer: ask for it.
        if (aboutMe && source === 'live') void this.#learnTopic(event.conv);
        break;
    }
    await this.#book.persist(event.conv);
    const nextTopic = record.topic ?? null;
    if (previousTopic !== nextTopic) void this.#switchGroupTopic(previousTopic, nextTopic);
    const { type: _type, ...info } = event;
    this.emit('conversation', info);
  }

  /** Asks group.info for the fan-out topic of a conversation this user just joined. */
  async #learnTopic(conv: string): Promise<void> {
    try {
      const eventsBefore = this.#eventsApplied.get(conv) ?? 0;
      const info = await this.group.info(conv);
      await this.#serial(async () => {
        if ((this.#eventsApplied.get(conv) ?? 0) !== eventsBefore) return; // newer events decided
        const record = this.#book.ensure(conv, 0);
        const previous = record.topic ?? null;
        const next = info.topic ?? null;
        record.kind = info.kind;
        record.name = info.name;
        record.topic = next;
        await this.#book.persist(conv);
        if (previous !== next) void this.#switchGroupTopic(previous, next);
      });
    } catch (error) {
      // Removed again meanwhile, or offline: the `conversations` refresh of the next connect settles it.
      if (this.state === 'online' && !(error instanceof ChatError && (error.code === 'not_member' || error.code === 'not_found'))) {
        this.emit('error', toChatError(error));
      }
    }
  }

  /** `sync` says this user no longer belongs to these conversations. */
  async #forgetMembership(convs: readonly string[]): Promise<void> {
    for (const conv of convs) {
      const record = this.#book.get(conv);
      if (!record?.topic) continue;
      const previous = record.topic;
      record.topic = null;
      await this.#book.persist(conv);
      void this.#switchGroupTopic(previous, null);
    }
  }

  /** Entries of a sync/history answer; malformed ones are reported and skipped. */
  #readSequenced(raw: readonly unknown[] | undefined): ChatMessage[] {
    const entries: ChatMessage[] = [];
    for (const value of raw ?? []) {
      const entry = parseSequenced(value);
      if (entry) entries.push(entry);
      else this.emit('error', new ChatError('internal', `unreadable entry in a server answer: ${JSON.stringify(value).slice(0, 200)}`));
    }
    return entries;
  }

  /**
   * A group switched fan-out mode (or this user left it): follow the new topic, then sync
   * the conversation so that nothing published during the switch is missed.
   */
  #switchGroupTopic(previous: string | null, next: string | null): Promise<void> {
    const running = this.#runTopicSwitch(previous, next).finally(() => this.#topicSwitches.delete(running));
    this.#topicSwitches.add(running);
    return running;
  }

  async #runTopicSwitch(previous: string | null, next: string | null): Promise<void> {
    const connection = this.#connection;
    if (!connection || this.state !== 'online') return; // resubscribed at the next connect
    try {
      if (next) {
        const [grant] = await connection.subscribe([next], 1);
        if (grant && !grant.granted) this.emit('error', new ChatError('forbidden', `subscription refused: ${next}`));
      }
      if (previous) await connection.unsubscribe([previous]);
      await this.#syncAll();
    } catch (error) {
      if (this.state === 'online') this.emit('error', toChatError(error, 'disconnected'));
    }
  }

  async #refreshConversations(): Promise<void> {
    await this.conversations();
  }

  // =====================================================================================
  // Sending

  /**
   * Sends a message to a conversation (`{conv}`) or opens/reuses the 1:1 with a user
   * (`{to}`). The message goes into the outbox first and is resent with the same id until
   * the server acknowledges it — across reconnects and app restarts — so it is stored
   * exactly once. Resolves with the ack; rejects when the server refuses it (the entry is
   * then dropped) or with `disconnected` when the client is closed (the entry stays).
   */
  send(target: SendTarget, body: JsonObject, options: SendOptions = {}): Promise<SendAck> {
    const id = options.id ?? newId(this.#clock.now());
    if (id.length < 1 || id.length > 64) return Promise.reject(new ChatError('bad_request', 'message id must be 1-64 characters'));
    const hasConv = typeof target.conv === 'string' && target.conv.length > 0;
    const hasTo = typeof target.to === 'string' && target.to.length > 0;
    if (hasConv === hasTo) return Promise.reject(new ChatError('bad_request', 'send needs exactly one of {conv} or {to}'));
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return Promise.reject(new ChatError('bad_request', 'body must be a JSON object'));
    }
    const pending = this.#outbox.pending(id);
    if (pending) return pending;
    const entry: OutboxEntry = { id, body, created_at: this.#clock.now() };
    if (hasConv) entry.conv = target.conv!;
    else entry.to = target.to!;
    if (options.reply_to !== undefined) entry.reply_to = options.reply_to;
    if (options.media !== undefined) entry.media = options.media;
    if (entry.conv !== undefined) this.#typing.stop(entry.conv);
    // Loading reads the previous run's outbox, which goes out before this entry.
    this.#ensureLoaded().catch(() => undefined);
    return this.#outbox.add(
      entry,
      (queued) => {
        if (this.state === 'online') this.#publishSend(queued);
      },
      (error) => toChatError(error),
    );
  }

  /** Reply to message `seq` of `conv`. */
  reply(conv: string, seq: number, body: JsonObject, options: Omit<SendOptions, 'reply_to'> = {}): Promise<SendAck> {
    return this.send({ conv }, body, { ...options, reply_to: seq });
  }

  /** Edit message `seq` (a new message `{"edit":{"seq","text"}}`). */
  edit(conv: string, seq: number, text: string, options: SendOptions = {}): Promise<SendAck> {
    return this.send({ conv }, { edit: { seq, text } }, options);
  }

  /** Delete message `seq` for everyone (a new message `{"delete":{"seq"}}`). */
  deleteForEveryone(conv: string, seq: number, options: SendOptions = {}): Promise<SendAck> {
    return this.send({ conv }, { delete: { seq } }, options);
  }

  /** React to message `seq` (a new message `{"react":{"seq","emoji"}}`); emoji "" withdraws the reaction. */
  react(conv: string, seq: number, emoji: string, options: SendOptions = {}): Promise<SendAck> {
    return this.send({ conv }, { react: { seq, emoji } }, options);
  }

  /** Sends that wait for their ack, oldest first. */
  pendingSends(): OutboxEntry[] {
    return this.#outbox.entries();
  }

  /** Publishes one outbox entry on the current connection (synchronously, to keep order). */
  #publishSend(entry: OutboxEntry): void {
    if (this.#outbox.isPublished(entry.id) || !this.#connection || this.state !== 'online') return;
    const generation = this.#generation;
    this.#outbox.markPublished(entry.id);
    const request: SendRequest = { type: 'send', id: entry.id, body: entry.body };
    if (entry.conv !== undefined) request.conv = entry.conv;
    if (entry.to !== undefined) request.to = entry.to;
    if (entry.reply_to !== undefined) request.reply_to = entry.reply_to;
    if (entry.media !== undefined) request.media = entry.media;
    this.#publishRequest(request).then(
      () => {
        if (generation !== this.#generation || !this.#outbox.has(entry.id)) return;
        // PUBACK means committed (DESIGN 3.1); the ack event should follow. If it does
        // not, publish again: the server answers a known id with the original seq.
        this.#outbox.scheduleResend(entry.id, this.#options.ackTimeoutMs, (again) => this.#publishSend(again));
      },
      () => {
        // Connection gone: the flush after the next connect publishes it again.
      },
    );
  }

  #flushOutbox(): void {
    for (const entry of this.#outbox.unpublished()) this.#publishSend(entry);
  }

  /** The send `ack.id` is committed (ack event, or the echo of our own message): report it once. */
  #settleSend(ack: SendAck): void {
    if (this.#outbox.settle(ack)) this.emit('ack', ack);
  }

  #onSendError(id: string, error: ChatError): void {
    if (error.retryable) {
      // rate_limited / internal: nothing was stored; try the same id again later.
      const delay = backoffDelay(this.#outbox.countRetry(id), this.#options.backoff, this.#random);
      this.#outbox.scheduleResend(id, delay, (again) => this.#publishSend(again));
      return;
    }
    // The request itself is refused (not a member, blocked, too large ...): it never will pass.
    if (!this.#outbox.fail(id, error)) this.emit('error', error);
  }

  // =====================================================================================
  // Receipts

  /** Marks everything up to `seq` of `conv` as read and tells the other members (cumulative). */
  async markRead(conv: string, seq: number): Promise<void> {
    await this.#ensureLoaded();
    await this.#serial(async () => {
      const record = this.#book.ensure(conv, seq);
      if (seq <= record.read_seq) return;
      record.read_seq = seq;
      record.last_seq = Math.max(record.last_seq, seq);
      await this.#book.persist(conv);
    });
    if (this.state === 'online') await this.#sendReceipt(conv, 'read').catch(() => undefined);
  }

  /** Publishes the receipt mark not yet sent for `conv`, then records it as sent. */
  async #sendReceipt(conv: string, status: ReceiptStatus): Promise<void> {
    const record = this.#book.get(conv);
    if (!record) return;
    const seq = status === 'read' ? record.read_seq : record.synced_seq;
    const sent = status === 'read' ? record.read_sent : record.delivered_sent;
    if (seq <= sent || seq === 0) return;
    await this.#publishRequest({ type: 'receipt', conv, seq, status });
    await this.#serial(async () => {
      if (status === 'read') record.read_sent = Math.max(record.read_sent, seq);
      else record.delivered_sent = Math.max(record.delivered_sent, seq);
      await this.#book.persist(conv);
    });
  }

  #scheduleDeliveredReceipts(): void {
    if (!this.#options.autoDeliveredReceipts || this.#deliveredDue.size === 0 || this.#receiptTimer !== undefined) return;
    this.#receiptTimer = this.#clock.setTimeout(() => {
      this.#receiptTimer = undefined;
      if (this.state !== 'online') return; // sent by the connect steps
      const due = [...this.#deliveredDue];
      this.#deliveredDue.clear();
      for (const conv of due) void this.#sendReceipt(conv, 'delivered').catch(() => this.#deliveredDue.add(conv));
    }, this.#options.receiptDelayMs);
  }

  /** After a connect: receipts recorded while offline. */
  async #sendPendingReceipts(): Promise<void> {
    for (const record of this.#book.all()) {
      if (record.read_seq > record.read_sent) await this.#sendReceipt(record.conv, 'read');
      if (this.#options.autoDeliveredReceipts && this.#deliveredDue.has(record.conv)) {
        this.#deliveredDue.delete(record.conv);
        await this.#sendReceipt(record.conv, 'delivered');
      }
    }
  }

  async #onReceipt(event: ReceiptEvent): Promise<void> {
    await this.#serial(async () => {
      const record = this.#book.ensure(event.conv, event.seq);
      if (event.user === this.user) {
        // Another device of this user: its marks are ours too.
        if (event.status === 'read') {
          record.read_seq = Math.max(record.read_seq, event.seq);
          record.read_sent = Math.max(record.read_sent, event.seq);
        }
        record.delivered_sent = Math.max(record.delivered_sent, event.seq);
      } else {
        const member = (record.members[event.user] ??= { delivered: 0, read: 0 });
        member.delivered = Math.max(member.delivered, event.seq);
        if (event.status === 'read') member.read = Math.max(member.read, event.seq);
      }
      await this.#book.persist(event.conv);
    });
    const { type: _type, ...receipt } = event;
    this.emit('receipt', receipt);
  }

  /** Receipt marks, unread count and fan-out topic of one conversation (synchronous). */
  conversationState(conv: string): ConversationState | undefined {
    return this.#book.state(conv);
  }

  /** conversationState of every conversation known locally. */
  conversationStates(): ConversationState[] {
    return this.#book.all().map((record) => this.#book.state(record.conv)!);
  }

  // =====================================================================================
  // Presence and typing

  /** Follows `presence/{user}` (the retained state arrives at once as a `presence` event). */
  async watchPresence(user: string): Promise<void> {
    this.#watchedPresence.add(user);
    const connection = this.#connection;
    if (!connection || this.state !== 'online') return;
    const [grant] = await connection.subscribe([topics.presence(user)], 1);
    if (grant && !grant.granted) {
      this.#watchedPresence.delete(user);
      throw new ChatError('forbidden', `not allowed to watch the presence of ${user}`);
    }
  }

  async unwatchPresence(user: string): Promise<void> {
    if (!this.#watchedPresence.delete(user)) return;
    this.#presence.delete(user);
    if (this.#connection && this.state === 'online') await this.#connection.unsubscribe([topics.presence(user)]);
  }

  /** The last presence received for a watched user. */
  presence(user: string): PresenceState | undefined {
    return this.#presence.get(user);
  }

  /** Call on every keystroke: publishes `typing` at most once per second, `idle` ~3 s after the last call. */
  typing(conv: string): void {
    this.#typing.typing(conv);
  }

  /** Publishes `idle` now (the user cleared the input). send() does it by itself. */
  stopTyping(conv: string): void {
    this.#typing.stop(conv);
  }

  /** Receives typing indicators of `conv` (as `typing` events). */
  async watchTyping(conv: string): Promise<void> {
    this.#watchedTyping.add(conv);
    if (this.#connection && this.state === 'online') {
      const [grant] = await this.#connection.subscribe([topics.typing(conv)], 0);
      if (grant && !grant.granted) {
        this.#watchedTyping.delete(conv);
        throw new ChatError('forbidden', `not allowed to watch typing in ${conv}`);
      }
    }
  }

  async unwatchTyping(conv: string): Promise<void> {
    if (!this.#watchedTyping.delete(conv)) return;
    this.#typing.forget(conv);
    if (this.#connection && this.state === 'online') await this.#connection.unsubscribe([topics.typing(conv)]);
  }

  /** Members typing in `conv` right now. */
  typingUsers(conv: string): string[] {
    return this.#typing.typingUsers(conv);
  }

  #publishTyping(conv: string, state: 'typing' | 'idle'): void {
    // Ephemeral by design (QoS 0, never stored): offline means nobody needs to know.
    if (!this.#connection || this.state !== 'online') return;
    this.#connection.publish(topics.typing(conv), JSON.stringify({ user: this.user, state }), 0).catch(() => undefined);
  }

  // =====================================================================================
  // RPC

  /**
   * Calls an RPC method of DESIGN section 4. Waits for a connection while (re)connecting;
   * rejects with `timeout` after `timeoutMs`, `disconnected` when closed, or the server's
   * error.
   */
  async rpc<M extends RpcMethod>(method: M, params: RpcParams<M>, options: { timeoutMs?: number } = {}): Promise<RpcResult<M>> {
    if (this.state === 'closed' || this.state === 'idle') {
      throw new ChatError('disconnected', `${method}: the client is not connected (call connect())`);
    }
    const request: RpcRequest = { type: 'rpc', id: `r${newId(this.#clock.now())}`, method, params: params as RpcParams<RpcMethod> };
    const answer = this.#rpcs.add(request, options.timeoutMs ?? this.#options.rpcTimeoutMs);
    if (this.state === 'online') this.#publishRpc(request);
    // The result is the server's JSON; its shape is the method's documented result.
    return (await answer) as unknown as RpcResult<M>;
  }

  #publishRpc(request: RpcRequest): void {
    if (!this.#connection) return;
    this.#rpcs.markPublished(request.id);
    this.#publishRequest(request).catch(() => {
      // Connection lost: RpcTable.connectionLost decides between re-publish and `disconnected`.
    });
  }

  #publishWaitingRpcs(): void {
    for (const request of this.#rpcs.unpublished()) this.#publishRpc(request);
  }

  /** The conversations of this user; also refreshes local cursors and large-group subscriptions. */
  async conversations(): Promise<ConversationSummary[]> {
    const eventsBefore = new Map(this.#eventsApplied);
    const unchanged = (conv: string): boolean => (this.#eventsApplied.get(conv) ?? 0) === (eventsBefore.get(conv) ?? 0);
    const { convs } = await this.rpc('conversations', {});
    const summaries = convs ?? [];
    await this.#serial(async () => {
      const listed = new Set<string>();
      for (const summary of summaries) {
        listed.add(summary.conv);
        const before = this.#book.get(summary.conv)?.topic ?? null;
        const record = this.#book.mergeSummary(summary, unchanged(summary.conv));
        this.#book.sequencer(summary.conv);
        await this.#book.persist(summary.conv);
        const after = record.topic ?? null;
        if (before !== after) void this.#switchGroupTopic(before, after);
      }
      // No longer a member: stop following its large-group topic.
      for (const record of this.#book.all()) {
        if (!listed.has(record.conv) && record.topic && unchanged(record.conv)) {
          const before = record.topic;
          record.topic = null;
          await this.#book.persist(record.conv);
          void this.#switchGroupTopic(before, null);
        }
      }
    });
    return summaries;
  }

  /**
   * Older messages of `conv`, newest last: from the local store when it holds the whole page,
   * otherwise from the server (`history` RPC), whose answer is stored.
   */
  async history(conv: string, query: { before?: number; limit?: number } = {}): Promise<HistoryPage> {
    await this.#ensureLoaded();
    const limit = Math.min(Math.max(1, query.limit ?? 50), 1000);
    const record = this.#book.get(conv);
    const top = query.before ?? (record ? record.synced_seq + 1 : 1);
    const local = await this.store.listMessages(conv, { before: top, limit });
    const first = local[0];
    const contiguous = local.every((message, index) => message.seq === (first?.seq ?? 0) + index);
    const reachesTop = local.length > 0 && local[local.length - 1]!.seq === top - 1;
    if (first && contiguous && reachesTop && (local.length === limit || first.seq === 1)) {
      return { messages: local, more: first.seq > 1 };
    }
    const params: RpcParams<'history'> = { conv, limit };
    if (query.before !== undefined) params.before = query.before;
    const result = await this.rpc('history', params);
    const messages = this.#readSequenced(result.messages);
    const synced = this.#book.get(conv)?.synced_seq ?? 0;
    const older = messages.filter((message) => message.seq <= synced);
    const newer = messages.filter((message) => message.seq > synced);
    if (older.length > 0) await this.#serial(() => this.store.putMessages(older));
    if (newer.length > 0) await this.#ingest(newer, 'history');
    return { messages, more: result.more === true };
  }

  /** Messages held locally (no network), ascending seq. */
  localMessages(conv: string, query?: MessagePageQuery): Promise<StoredMessage[]> {
    return this.store.listMessages(conv, query);
  }

  /** Full-text search over local messages (see LocalStore.searchMessages). */
  search(query: string, options?: SearchQuery): Promise<StoredMessage[]> {
    return this.store.searchMessages(query, options);
  }

  readonly group = {
    /** Creates a group (or a broadcast channel with kind "channel"); resolves to its conv id. */
    create: async (name: string, members: string[], kind?: 'group' | 'channel'): Promise<string> => {
      const params: RpcParams<'group.create'> = { name, members };
      if (kind !== undefined) params.kind = kind;
      return (await this.rpc('group.create', params)).conv;
    },
    add: async (conv: string, users: string[]): Promise<void> => {
      await this.rpc('group.add', { conv, users });
    },
    remove: async (conv: string, users: string[]): Promise<void> => {
      await this.rpc('group.remove', { conv, users });
    },
    leave: async (conv: string): Promise<void> => {
      await this.rpc('group.leave', { conv });
    },
    role: async (conv: string, user: string, role: MemberRole): Promise<void> => {
      await this.rpc('group.role', { conv, user, role });
    },
    settings: async (conv: string, settings: { name?: string; announce_only?: boolean }): Promise<void> => {
      await this.rpc('group.settings', { conv, ...settings });
    },
    info: async (conv: string): Promise<GroupInfo> => this.rpc('group.info', { conv }),
  };

  async block(user: string): Promise<void> {
    await this.rpc('block', { user });
  }

  async unblock(user: string): Promise<void> {
    await this.rpc('unblock', { user });
  }

  readonly profile = {
    get: async (user: string): Promise<Profile> => this.rpc('profile.get', { user }),
    set: async (profile: { name?: string; about?: string; avatar?: string }): Promise<Profile> => this.rpc('profile.set', profile),
  };

  readonly media = {
    /** Registers an upload (RPC); PUT the bytes to `upload_url`, then complete it over HTTP. `media.send` does all three. */
    upload: async (params: RpcParams<'media.upload'>): Promise<MediaUploadTicket> => this.rpc('media.upload', params),
    /** A signed download URL for a media id (RPC). */
    get: async (media: string): Promise<MediaDownload> => this.rpc('media.get', { id: media }),
    /**
     * Uploads bytes for `conv` and returns the completed record; attach it with
     * `send({conv}, body, { media: [record.id] })`. Needs the `httpUrl` option.
     */
    send: async (conv: string, bytes: Uint8Array, contentType: string): Promise<MediaRecord> => this.#uploadMedia(conv, bytes, contentType),
  };

  /** DESIGN section 7: ticket (RPC), PUT to the signed URL, POST complete (bearer token). */
  async #uploadMedia(conv: string, bytes: Uint8Array, contentType: string): Promise<MediaRecord> {
    const httpUrl = this.#httpUrl;
    if (!httpUrl) throw new ChatError('bad_request', 'media.send needs the httpUrl option (the HTTP API origin)');
    // A private copy on a plain ArrayBuffer: what WebCrypto and fetch accept everywhere.
    const body = new Uint8Array(bytes);
    const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', body));
    const sha256 = Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
    const ticket = await this.media.upload({ conv, content_type: contentType, size: bytes.byteLength, sha256 });
    const put = await fetch(new URL(ticket.upload_url, httpUrl), {
      method: 'PUT',
      headers: { 'content-type': contentType, ...ticket.upload_headers },
      body,
    });
    if (!put.ok) throw await httpError(put, 'media upload');
    const token = this.#token ?? (await this.#getToken());
    const complete = await fetch(new URL(`/v1/media/${encodeURIComponent(ticket.media.id)}/complete`, httpUrl), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    if (!complete.ok) throw await httpError(complete, 'media completion');
    return (await complete.json()) as MediaRecord;
  }
}
