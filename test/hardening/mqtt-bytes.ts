/**
 * Hand-made MQTT 3.1.1 bytes for tests over raw sockets (valid ones built here, broken
 * ones by hand in the tests), and a raw client that sends anything and records what comes back.
 */
import { connect, type Socket } from 'node:net';

/** Remaining length, MQTT 3.1.1 section 2.2.3. */
export function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

const str = (s: string | Buffer) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};

export function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte, ...varint(body.length)]), body]);
}

export function connectPacket(opts: { clientId: string; clean?: boolean; keepalive?: number; username?: string; password?: string; protocolVersion?: 3 | 4; reservedFlag?: boolean }): Buffer {
  const v3 = opts.protocolVersion === 3;
  let flags = (opts.clean ?? true ? 0x02 : 0) | (opts.reservedFlag ? 0x01 : 0);
  if (opts.username !== undefined) flags |= 0x80;
  if (opts.password !== undefined) flags |= 0x40;
  const keepalive = opts.keepalive ?? 0;
  return packet(0x10, Buffer.concat([
    str(v3 ? 'MQIsdp' : 'MQTT'),
    Buffer.from([v3 ? 3 : 4, flags, keepalive >> 8, keepalive & 0xff]),
    str(opts.clientId),
    ...(opts.username !== undefined ? [str(opts.username)] : []),
    ...(opts.password !== undefined ? [str(opts.password)] : []),
  ]));
}

export function subscribePacket(topic: string, qos: 0 | 1 = 0, messageId = 1, firstByte = 0x82): Buffer {
  return packet(firstByte, Buffer.concat([Buffer.from([messageId >> 8, messageId & 0xff]), str(topic), Buffer.from([qos])]));
}

export function publishPacket(topic: string, payload: string | Buffer, qos: 0 | 1 = 0, messageId = 1): Buffer {
  const id = qos > 0 ? Buffer.from([messageId >> 8, messageId & 0xff]) : Buffer.alloc(0);
  return packet(0x30 | (qos << 1), Buffer.concat([str(topic), id, Buffer.isBuffer(payload) ? payload : Buffer.from(payload)]));
}

export interface RawClient {
  socket: Socket;
  received(): Buffer;
  /** Resolves when the server closes the connection (or the timeout passes: false). */
  closed(timeoutMs?: number): Promise<boolean>;
  write(bytes: Buffer | number[]): void;
  end(): void;
}

export function rawClient(port: number, host = '127.0.0.1'): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    const chunks: Buffer[] = [];
    let isClosed = false;
    const closedWaiters: (() => void)[] = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      isClosed = true;
      for (const w of closedWaiters) w();
    });
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => Buffer.concat(chunks),
        closed: (timeoutMs = 5_000) =>
          new Promise<boolean>((res) => {
            if (isClosed) return res(true);
            const t = setTimeout(() => res(false), timeoutMs);
            closedWaiters.push(() => {
              clearTimeout(t);
              res(true);
            });
          }),
        write: (bytes) => {
          if (!socket.destroyed) socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
        },
        end: () => socket.destroy(),
      }),
    );
    socket.once('error', reject);
  });
}
