// The load generator's MQTT client interface, with two implementations: a lean raw client
// on mqtt-packet (default) and MQTT.js. Both speak MQTT 3.1.1.
import { connectRaw } from './raw-client.ts';
import { connectMqttJs } from './mqttjs-client.ts';

export type ClientKind = 'raw' | 'mqttjs';
export type QoS = 0 | 1;

export interface ConnectOptions {
  host: string;
  port: number;
  clientId: string;
  username?: string;
  password?: string;
  clean?: boolean;
  keepalive?: number;
  /** Source address (127.0.0.x): more than ~28k connections to one port need several. */
  localAddress?: string;
  timeoutMs?: number;
}

export type MessageHandler = (topic: string, payload: Buffer) => void;

export interface GenClient {
  /** Resolves with the granted QoS (0x80 for a refusal). */
  subscribe(topic: string, qos: QoS): Promise<number>;
  /** QoS 1: onAck runs on PUBACK. */
  publish(topic: string, payload: Buffer, qos: QoS, onAck?: () => void): void;
  onMessage(handler: MessageHandler): void;
  /** Called once when the connection is lost (not after end()). */
  onClose(handler: (err?: Error) => void): void;
  end(): Promise<void>;
  /**
   * Close at once with a TCP RST: no TIME_WAIT is left behind. Used for thousands of idle
   * connections, whose TIME_WAIT entries would otherwise hold ephemeral ports for 60 s.
   */
  abort(): void;
}

export function connectClient(kind: ClientKind, o: ConnectOptions): Promise<GenClient> {
  return kind === 'raw' ? connectRaw(o) : connectMqttJs(o);
}
