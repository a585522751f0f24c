// The same GenClient interface over MQTT.js, to compare the generators' own cost.
import mqtt from 'mqtt';
import type { ConnectOptions, GenClient, MessageHandler, QoS } from './client.ts';

export async function connectMqttJs(o: ConnectOptions): Promise<GenClient> {
  if (o.localAddress) throw new Error('MQTT.js cannot choose a source address: use --client raw');
  const client = mqtt.connect({
    host: o.host,
    port: o.port,
    protocol: 'mqtt',
    protocolVersion: 4,
    clientId: o.clientId,
    username: o.username,
    password: o.password,
    clean: o.clean ?? true,
    keepalive: o.keepalive ?? 0,
    reconnectPeriod: 0,
    connectTimeout: o.timeoutMs ?? 30000,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
    client.once('close', () => reject(new Error('connection closed before CONNACK')));
  });
  return new MqttJsClient(client);
}

class MqttJsClient implements GenClient {
  private ended = false;
  constructor(private readonly client: mqtt.MqttClient) {
    client.on('error', () => {});
  }

  async subscribe(topic: string, qos: QoS): Promise<number> {
    const granted = await this.client.subscribeAsync(topic, { qos });
    return granted[0]?.qos ?? 0x80;
  }

  publish(topic: string, payload: Buffer, qos: QoS, onAck?: () => void): void {
    this.client.publish(topic, payload, { qos }, onAck ? () => onAck() : undefined);
  }

  onMessage(handler: MessageHandler): void {
    this.client.on('message', (topic, payload) => handler(topic, payload));
  }

  onClose(handler: (err?: Error) => void): void {
    this.client.once('close', () => {
      if (!this.ended) handler(new Error('connection closed by broker'));
    });
  }

  abort(): void {
    this.ended = true;
    this.client.end(true);
  }

  async end(): Promise<void> {
    this.ended = true;
    await this.client.endAsync();
  }
}
