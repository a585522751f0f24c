/**
 * Connection-level protections of the MQTT listener that aedes does not have itself
 * (docs/hardening.md): the source address of a client, a CONNACK refusal written from
 * preConnect, the empty clientId rule of MQTT 3.1.1, and a maximum packet size checked
 * as soon as a packet's remaining length is decoded, before its body is buffered.
 */
import type { Client, ConnectPacket } from 'aedes';
import type { Socket } from 'node:net';

/** The client's address: the socket's for TCP and TLS, the HTTP request's for WebSocket. */
export function clientIp(client: Client): string | undefined {
  const raw = (client.conn as Partial<Socket>).remoteAddress ?? client.req?.socket?.remoteAddress;
  return raw === undefined ? undefined : normalizeIp(raw);
}

/** `::ffff:10.0.0.1` is 10.0.0.1. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.');
}

/** CONNACK return codes of MQTT 3.1.1 (section 3.2.2.3). */
export const connackCodes = { identifierRejected: 2, serverUnavailable: 3, notAuthorized: 5 } as const;

/**
 * [MQTT-3.1.3-8]: a zero-byte ClientId with CleanSession 0 gets CONNACK 2 (identifier
 * rejected) and the connection is closed. MQTT 3.1 (level 3) has no zero-byte ClientId
 * at all. aedes gives such a client a generated id instead.
 */
export function emptyClientIdRefused(packet: ConnectPacket): boolean {
  if (packet.clientId !== '') return false;
  return packet.protocolVersion === 3 || (packet.protocolVersion === 4 && !packet.clean);
}

export type PreConnectDone = (error: Error | null, success: boolean) => void;

/**
 * Answers a CONNECT from preConnect with a refusing CONNACK, then fails the connect so
 * that aedes closes the connection [MQTT-3.2.2-5]. The CONNACK is written first and the
 * failure reported once it is flushed, so the client reads the code before the close.
 */
export function refuseConnect(client: Client, returnCode: number, message: string, done: PreConnectDone): void {
  const err = Object.assign(new Error(message), { errorCode: returnCode, returnCode });
  const conn = client.conn;
  if (conn.destroyed || !conn.writable) return done(err, false);
  conn.write(Buffer.from([0x20, 0x02, 0x00, returnCode]), () => done(err, false));
}

interface PacketParser {
  packet: { length: number; cmd?: string };
  error: Error | null;
  _parseLength(): boolean;
  _emitError(err: Error): void;
}

/**
 * Refuses a packet whose remaining length is over the limit the moment the length is
 * decoded: the parser errors, aedes closes the connection, and nothing of the body is
 * buffered (mqtt-packet would otherwise buffer up to 256 MB for one declared packet).
 * Hooks aedes' parser of this client (mqtt-packet 9); returns false if its shape is not
 * the expected one, and the caller warns.
 */
export function guardPacketSize(client: Client, limit: (client: Client) => number, onTooLarge: (client: Client, length: number, cmd?: string) => void): boolean {
  const parser = (client as unknown as { _parser?: PacketParser })._parser;
  if (!parser || typeof parser._parseLength !== 'function' || typeof parser._emitError !== 'function') return false;
  const parseLength = parser._parseLength;
  parser._parseLength = function guardedParseLength(this: PacketParser): boolean {
    const done = parseLength.call(this);
    if (done && this.packet.length > limit(client)) {
      const { length, cmd } = this.packet;
      this._emitError(new Error(`packet too large: ${cmd ?? 'packet'} of ${length} bytes`));
      onTooLarge(client, length, cmd);
      return false;
    }
    return done;
  };
  return true;
}
