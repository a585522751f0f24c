/**
 * A raw mqtt.js chat device that follows only DESIGN section 4: it publishes requests on
 * its out topic and collects the events of its in topics.
 */
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import { randomUUID } from 'node:crypto';

export type Event = Record<string, unknown> & { type?: string };

export class Device {
  readonly events: Event[] = [];
  readonly byTopic = new Map<string, Event[]>();
  private waiters: { pred: (e: Event, topic: string) => boolean; resolve: (e: Event) => void }[] = [];

  private constructor(readonly client: MqttClient, readonly user: string, readonly device: string) {
    client.on('message', (topic, payload) => {
      let e: Event;
      try {
        e = JSON.parse(payload.toString()) as Event;
      } catch {
        e = { raw: payload.toString() };
      }
      e._topic = topic;
      this.events.push(e);
      const list = this.byTopic.get(topic) ?? [];
      list.push(e);
      this.byTopic.set(topic, list);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(e, topic)) return true;
        w.resolve(e);
        return false;
      });
    });
  }

  static async connect(url: string, user: string, token: string, opts: { device?: string; subscribe?: boolean; options?: IClientOptions } = {}): Promise<Device> {
    const device = opts.device ?? 'default';
    const client = await mqtt.connectAsync(url, {
      clientId: `${user}:${device}`,
      username: user,
      password: token,
      clean: false,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      ...opts.options,
    });
    const d = new Device(client, user, device);
    if (opts.subscribe !== false) {
      await client.subscribeAsync({ [`chat/${user}/in`]: { qos: 1 }, [`chat/${user}/${device}/in`]: { qos: 1 } });
    }
    return d;
  }

  get outTopic(): string {
    return `chat/${this.user}/${this.device}/out`;
  }

  async request(req: Record<string, unknown>): Promise<void> {
    await this.client.publishAsync(this.outTopic, JSON.stringify(req), { qos: 1 });
  }

  waitFor(pred: (e: Event, topic: string) => boolean, timeoutMs = 10_000, what = 'event'): Promise<Event> {
    const found = this.events.find((e) => pred(e, e._topic as string));
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.user}: timed out waiting for ${what}; got ${JSON.stringify(this.events.slice(-5))}`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(t);
          resolve(e);
        },
      });
    });
  }

  /** Sends a message and resolves with its ack (or rejects with the error event). */
  async send(target: { to: string } | { conv: string }, body: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<Event> {
    const id = (extra.id as string | undefined) ?? randomUUID();
    const reply = this.waitFor((e) => (e.type === 'ack' && e.id === id) || (e.type === 'error' && e.ref === id), 15_000, `ack of ${id}`);
    await this.request({ type: 'send', id, ...target, body, ...extra });
    const e = await reply;
    if (e.type === 'error') throw Object.assign(new Error(`${e.code}: ${e.message}`), { event: e });
    return e;
  }

  async rpc(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = randomUUID();
    const reply = this.waitFor((e) => (e.type === 'rpc' || e.type === 'error') && e.ref === id, 15_000, `rpc ${method}`);
    await this.request({ type: 'rpc', id, method, params });
    const e = await reply;
    if (e.type === 'error') throw Object.assign(new Error(`${e.code}: ${e.message}`), { code: e.code, event: e });
    return e.result as Record<string, unknown>;
  }

  messages(conv?: string): Event[] {
    return this.events.filter((e) => e.type === 'msg' && (conv === undefined || e.conv === conv));
  }

  async close(): Promise<void> {
    await this.client.endAsync(true).catch(() => {});
  }
}

export async function rawConnect(url: string, options: IClientOptions): Promise<MqttClient> {
  return mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5_000, ...options });
}

/**
 * SUBSCRIBE and the SUBACK return codes as sent (mqtt.js rejects a SUBACK that has
 * 0x80 in it, which is exactly what ACL tests look at).
 */
export function subscribeCodes(client: MqttClient, topics: Record<string, { qos: 0 | 1 | 2 }>): Promise<number[]> {
  return new Promise((resolve) => {
    const onPacket = (packet: { cmd: string; granted?: (number | object)[] }) => {
      if (packet.cmd !== 'suback') return;
      client.off('packetreceive', onPacket);
      resolve((packet.granted ?? []).map((g) => (typeof g === 'number' ? g : 128)));
    };
    client.on('packetreceive', onPacket);
    client.subscribe(topics, () => {});
  });
}
