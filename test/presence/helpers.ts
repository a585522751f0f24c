/** Helpers of the presence integration tests: users, observers, and a silent raw MQTT socket. */
import { connect as tcpConnect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { IClientOptions } from 'mqtt';
import { registerUser, type TestPlatform } from '../helpers/platform.ts';
import { Device, subscribeCodes, type Event } from '../helpers/mqtt.ts';

/** A user name unique to this run (the platform is shared by the tests of a file). */
export function uid(name: string): string {
  return `${name}_${randomBytes(3).toString('hex')}`;
}

export interface User {
  user: string;
  token: string;
  /** A device of the user, on `mqttUrl` (default: the platform it was registered on). */
  connect(device?: string, options?: IClientOptions, mqttUrl?: string): Promise<Device>;
}

export async function newUser(p: TestPlatform, name: string): Promise<User> {
  const user = uid(name);
  const r = await registerUser(p.httpUrl, user);
  return {
    user,
    token: r.token,
    // tokens are per device: one for the default device, others by login
    connect: async (device = 'default', options = {}, mqttUrl = p.mqttUrl) => {
      const token = device === 'default' ? r.token : await login(p.httpUrl, user, device);
      return Device.connect(mqttUrl, user, token, { device, options });
    },
  };
}

async function login(httpUrl: string, user: string, device: string): Promise<string> {
  const res = await fetch(`${httpUrl}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, password: 'correct-horse-battery', device }),
  });
  if (res.status !== 200) throw new Error(`login ${user}/${device}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

/** Opens (or reuses) the 1:1 conversation of `from` with `to`: they share it from now on. */
export async function shareDm(from: Device, to: string): Promise<string> {
  const ack = await from.send({ to }, { text: 'hi' });
  return ack.conv as string;
}

/** Presence states of `user` that `observer` received, in order. */
export function presenceOf(observer: Device, user: string): Event[] {
  return observer.events.filter((e) => e._topic === `presence/${user}`);
}

export function waitPresence(observer: Device, user: string, state: 'online' | 'offline', nth = 1, timeoutMs = 10_000): Promise<Event> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = () => {
      const found = presenceOf(observer, user).filter((e) => e.state === state);
      if (found.length >= nth) return resolve(found[nth - 1]!);
      if (Date.now() - started > timeoutMs) {
        return reject(new Error(`no ${state} #${nth} for ${user}; got ${JSON.stringify(presenceOf(observer, user))}`));
      }
      setTimeout(check, 20);
    };
    check();
  });
}

/** Subscribes `observer` to presence/{user}; returns the granted QoS (128: refused). */
export async function watch(observer: Device, user: string): Promise<number> {
  const [code] = await subscribeCodes(observer.client, { [`presence/${user}`]: { qos: 1 } });
  return code!;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const started = Date.now();
  while (!pred()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function mqttString(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

/**
 * A client that sends CONNECT (MQTT 3.1.1, clean session, the given keepalive) and then
 * nothing at all - not even PINGREQ: the broker must close it after 1.5 x keepalive
 * [MQTT-3.1.2-24]. Resolves once CONNACK 0 arrived.
 */
export async function silentClient(mqttUrl: string, user: string, device: string, token: string, keepaliveSeconds: number): Promise<Socket> {
  const url = new URL(mqttUrl);
  const socket = tcpConnect(Number(url.port), url.hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const ka = Buffer.alloc(2);
  ka.writeUInt16BE(keepaliveSeconds);
  const variable = Buffer.concat([mqttString('MQTT'), Buffer.from([4, 0x80 | 0x40 | 0x02]), ka]);
  const payload = Buffer.concat([mqttString(`${user}:${device}`), mqttString(user), mqttString(token)]);
  socket.write(Buffer.concat([Buffer.from([0x10]), remainingLength(variable.length + payload.length), variable, payload]));
  const connack = await new Promise<Buffer>((resolve, reject) => {
    socket.once('data', resolve);
    socket.once('close', () => reject(new Error('closed before CONNACK')));
  });
  if (connack[0] !== 0x20 || connack[3] !== 0) throw new Error(`CONNACK refused: ${connack.toString('hex')}`);
  return socket;
}
