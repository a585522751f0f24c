// A lean MQTT 3.1.1 client for load generation, built on mqtt-packet (which ships with
// MQTT.js). What it leaves out compared with MQTT.js: reconnects, stores, topic
// validation, MQTT 5, QoS 2, keepalive pings (benchmarks run with keepalive 0 or
// shorter than the keepalive). PUBLISH frames are written by hand and outgoing bytes are
// coalesced per event-loop turn, so one write(2) carries many packets.
import { connect as netConnect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import type { ConnectOptions, GenClient, MessageHandler, QoS } from './client.ts';

export async function connectRaw(o: ConnectOptions): Promise<GenClient> {
  const socket = netConnect({ host: o.host, port: o.port, localAddress: o.localAddress });
  socket.setNoDelay(true);
  const client = new RawClient(socket);
  await client.handshake(o);
  return client;
}

/** Remaining Length of MQTT 3.1.1 [MQTT-2.2.3]: 1-4 bytes, 7 bits each. */
export function encodeRemainingLength(n: number): Buffer {
  const bytes: number[] = [];
  let x = n;
  do {
    let b = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) b |= 0x80;
    bytes.push(b);
  } while (x > 0);
  return Buffer.from(bytes);
}

/** A PUBLISH packet [MQTT-3.3]: fixed header, topic, packet id for QoS > 0, payload. */
export function encodePublish(topic: Buffer, payload: Buffer, qos: QoS, messageId: number): Buffer {
  const idLen = qos > 0 ? 2 : 0;
  const remaining = 2 + topic.length + idLen + payload.length;
  const rl = encodeRemainingLength(remaining);
  const buf = Buffer.allocUnsafe(1 + rl.length + remaining);
  let o = 0;
  buf[o++] = 0x30 | (qos << 1);
  rl.copy(buf, o);
  o += rl.length;
  buf.writeUInt16BE(topic.length, o);
  o += 2;
  topic.copy(buf, o);
  o += topic.length;
  if (qos > 0) {
    buf.writeUInt16BE(messageId, o);
    o += 2;
  }
  payload.copy(buf, o);
  return buf;
}

type Waiter = (value: number) => void;

class RawClient implements GenClient {
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });
  private readonly outbox: Buffer[] = [];
  private flushScheduled = false;
  private nextId = 1;
  private readonly pubAcks = new Map<number, () => void>();
  private readonly subAcks = new Map<number, Waiter>();
  private readonly topicCache = new Map<string, Buffer>();
  private messageHandler: MessageHandler = () => {};
  private closeHandler: (err?: Error) => void = () => {};
  private ended = false;

  constructor(private readonly socket: Socket) {}

  handshake(o: ConnectOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => fail(new Error(`CONNACK timeout after ${o.timeoutMs ?? 30000} ms`)), o.timeoutMs ?? 30000);
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.socket.destroy();
        reject(err);
      };
      this.socket.once('error', fail);
      this.socket.on('close', () => {
        if (!settled) fail(new Error('connection closed before CONNACK'));
        else if (!this.ended) this.closeHandler(new Error('connection closed by broker'));
      });
      this.parser.on('error', (err: Error) => {
        if (!settled) fail(err);
        else this.socket.destroy(err);
      });
      this.parser.on('packet', (p) => {
        if (p.cmd === 'connack') {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          this.socket.off('error', fail);
          this.socket.on('error', () => {}); // 'close' follows and reports
          if (p.returnCode === 0) resolve();
          else {
            this.socket.destroy();
            reject(new Error(`CONNACK return code ${p.returnCode}`));
          }
          return;
        }
        this.onPacket(p);
      });
      this.socket.on('data', (chunk: Buffer) => this.parser.parse(chunk));
      this.socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: o.clientId,
          clean: o.clean ?? true,
          keepalive: o.keepalive ?? 0,
          username: o.username,
          password: o.password === undefined ? undefined : Buffer.from(o.password),
        }),
      );
    });
  }

  private onPacket(p: mqttPacket.Packet): void {
    switch (p.cmd) {
      case 'publish': {
        if (p.qos === 1 && p.messageId !== undefined) {
          this.enqueue(Buffer.from([0x40, 0x02, p.messageId >> 8, p.messageId & 0xff]));
        }
        const payload = typeof p.payload === 'string' ? Buffer.from(p.payload) : p.payload;
        this.messageHandler(p.topic, payload);
        return;
      }
      case 'puback': {
        const id = p.messageId ?? 0;
        const cb = this.pubAcks.get(id);
        if (cb) {
          this.pubAcks.delete(id);
          cb();
        }
        return;
      }
      case 'suback': {
        const id = p.messageId ?? 0;
        const w = this.subAcks.get(id);
        if (w) {
          this.subAcks.delete(id);
          w(p.granted[0] as number);
        }
        return;
      }
      default:
        return;
    }
  }

  private allocId(): number {
    for (let i = 0; i < 65535; i++) {
      const id = this.nextId;
      this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
      if (!this.pubAcks.has(id) && !this.subAcks.has(id)) return id;
    }
    throw new Error('no free packet identifier: 65535 in flight');
  }

  private enqueue(buf: Buffer): void {
    this.outbox.push(buf);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.outbox.length === 0 || this.socket.destroyed) {
      this.outbox.length = 0;
      return;
    }
    const data = this.outbox.length === 1 ? this.outbox[0] : Buffer.concat(this.outbox);
    this.outbox.length = 0;
    this.socket.write(data);
  }

  subscribe(topic: string, qos: QoS): Promise<number> {
    const messageId = this.allocId();
    return new Promise((resolve) => {
      this.subAcks.set(messageId, resolve);
      this.enqueue(mqttPacket.generate({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] }));
    });
  }

  publish(topic: string, payload: Buffer, qos: QoS, onAck?: () => void): void {
    let t = this.topicCache.get(topic);
    if (!t) {
      t = Buffer.from(topic);
      if (this.topicCache.size < 1000) this.topicCache.set(topic, t);
    }
    let id = 0;
    if (qos === 1) {
      id = this.allocId();
      this.pubAcks.set(id, onAck ?? noop);
    }
    this.enqueue(encodePublish(t, payload, qos, id));
  }

  onMessage(handler: MessageHandler): void {
    this.messageHandler = handler;
  }

  onClose(handler: (err?: Error) => void): void {
    this.closeHandler = handler;
  }

  abort(): void {
    this.ended = true;
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  end(): Promise<void> {
    this.ended = true;
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.flush();
      this.socket.end(Buffer.from([0xe0, 0x00]), () => resolve()); // DISCONNECT [MQTT-3.14]
      setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 1000).unref();
    });
  }
}

function noop(): void {}
