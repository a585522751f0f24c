/**
 * The byte pipe under the ChatClient: one MQTT connection. The default implementation is
 * MQTT.js (TCP/TLS in Node, WebSocket/WSS in Node and browsers, chosen by the URL scheme);
 * tests may pass another one.
 *
 * A Transport connection is single-use: the client opens a new one for every attempt and
 * owns reconnecting (MQTT.js runs with reconnectPeriod 0). Reasons, in client.ts.
 */

// Default import: MQTT.js's browser ESM build exposes only a default export.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export type QoS = 0 | 1;

export interface TransportOpenOptions {
  url: string;
  clientId: string;
  username: string;
  password: string;
  /** false: keep the broker session (subscriptions, queued QoS 1) across connections. */
  clean: boolean;
  keepaliveSeconds: number;
  connectTimeoutMs: number;
  will: { topic: string; payload: string; qos: QoS; retain: boolean };
  /** Extra MQTT.js options (TLS material, wsOptions ...); the fields above win. */
  mqttOptions?: IClientOptions;
}

export interface TransportHandlers {
  message(topic: string, payload: Uint8Array): void;
  /** The connection ended (network, keepalive, server, or our close()). Called once. */
  close(reason: string): void;
}

export interface SubscribeGrant {
  topic: string;
  /** False when the broker answered SUBACK 0x80 (not allowed). */
  granted: boolean;
}

export interface TransportConnection {
  /** Resolves once delivered at `qos` (PUBACK for QoS 1, written for QoS 0); rejects if the connection ends first. */
  publish(topic: string, payload: string, qos: QoS, retain?: boolean): Promise<void>;
  subscribe(topics: readonly string[], qos: QoS): Promise<SubscribeGrant[]>;
  unsubscribe(topics: readonly string[]): Promise<void>;
  /** Ends the connection now (no last will is sent on a clean disconnect). */
  close(): Promise<void>;
}

/** The broker refused the CONNECT (CONNACK return code != 0). */
export class ConnectRefusedError extends Error {
  override readonly name = 'ConnectRefusedError';
  constructor(
    /** MQTT 3.1.1 CONNACK return code: 4 bad user name or password, 5 not authorized. */
    readonly returnCode: number,
    message: string,
  ) {
    super(message);
  }

  /** The credentials were refused: a fresh token may help. */
  get isAuthFailure(): boolean {
    return this.returnCode === 4 || this.returnCode === 5;
  }
}

export interface Transport {
  /** Connects; resolves after CONNACK 0, rejects with ConnectRefusedError or a network error. */
  open(options: TransportOpenOptions, handlers: TransportHandlers): Promise<TransportConnection>;
}

class TransportClosedError extends Error {
  override readonly name = 'TransportClosedError';
}

class MqttConnection implements TransportConnection {
  /** Rejecters of operations waiting for the broker, failed together when the connection ends. */
  readonly #pending = new Set<(error: Error) => void>();
  #closed = false;

  constructor(private readonly client: MqttClient) {}

  markClosed(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = new TransportClosedError(`connection closed: ${reason}`);
    for (const reject of this.#pending) reject(error);
    this.#pending.clear();
  }

  #track<T>(run: (resolve: (value: T) => void, reject: (error: Error) => void) => void): Promise<T> {
    if (this.#closed) return Promise.reject(new TransportClosedError('connection closed'));
    return new Promise<T>((resolve, reject) => {
      const settle = (error: Error | undefined, value?: T): void => {
        if (!this.#pending.delete(fail)) return;
        if (error) reject(error);
        else resolve(value as T);
      };
      const fail = (error: Error): void => reject(error);
      this.#pending.add(fail);
      run(
        (value) => settle(undefined, value),
        (error) => settle(error),
      );
    });
  }

  publish(topic: string, payload: string, qos: QoS, retain = false): Promise<void> {
    return this.#track<void>((resolve, reject) => {
      this.client.publish(topic, payload, { qos, retain }, (error) => (error ? reject(error) : resolve()));
    });
  }

  subscribe(topics: readonly string[], qos: QoS): Promise<SubscribeGrant[]> {
    if (topics.length === 0) return Promise.resolve([]);
    return this.#track<SubscribeGrant[]>((resolve, reject) => {
      this.client.subscribe([...topics], { qos }, (error, granted) => {
        // MQTT.js reports a SUBACK 0x80 both as an error and in `granted`; the grant list is what we need.
        if (granted) {
          const byTopic = new Map(granted.map((grant) => [grant.topic, grant.qos !== 128]));
          resolve(topics.map((topic) => ({ topic, granted: byTopic.get(topic) ?? false })));
        } else if (error) {
          reject(error);
        } else {
          resolve(topics.map((topic) => ({ topic, granted: false })));
        }
      });
    });
  }

  unsubscribe(topics: readonly string[]): Promise<void> {
    if (topics.length === 0) return Promise.resolve();
    return this.#track<void>((resolve, reject) => {
      this.client.unsubscribe([...topics], (error) => (error ? reject(error) : resolve()));
    });
  }

  close(): Promise<void> {
    this.markClosed('closed by the client');
    return new Promise((resolve) => this.client.end(true, {}, () => resolve()));
  }
}

/** MQTT.js transport: `mqtt://`, `mqtts://` (Node), `ws://`, `wss://` (Node and browsers). */
export class MqttTransport implements Transport {
  open(options: TransportOpenOptions, handlers: TransportHandlers): Promise<TransportConnection> {
    const client = mqtt.connect(options.url, {
      ...options.mqttOptions,
      clientId: options.clientId,
      username: options.username,
      password: options.password,
      clean: options.clean,
      keepalive: options.keepaliveSeconds,
      connectTimeout: options.connectTimeoutMs,
      protocolVersion: 4,
      // The ChatClient reconnects itself (fresh token, backoff with jitter, resubscribe,
      // outbox flush, sync); MQTT.js must not race it with its own fixed-period reconnect.
      reconnectPeriod: 0,
      resubscribe: false,
      will: {
        topic: options.will.topic,
        payload: options.will.payload,
        qos: options.will.qos,
        retain: options.will.retain,
      },
    });
    const connection = new MqttConnection(client);
    return new Promise((resolve, reject) => {
      let connected = false;
      let closeReason = 'connection closed';
      client.on('message', (topic, payload) => handlers.message(topic, payload));
      client.on('error', (error) => {
        const code = (error as { code?: unknown }).code;
        if (!connected && typeof code === 'number' && code > 0) {
          closeReason = error.message;
          reject(new ConnectRefusedError(code, error.message));
          client.end(true);
          return;
        }
        closeReason = error.message;
      });
      client.once('connect', () => {
        connected = true;
        resolve(connection);
      });
      client.once('close', () => {
        connection.markClosed(closeReason);
        if (!connected) {
          reject(new Error(`could not connect to ${options.url}: ${closeReason}`));
          client.end(true);
          return;
        }
        handlers.close(closeReason);
        client.end(true);
      });
    });
  }
}
