/**
 * The aedes `mq` of a broker in cluster mode. Topics under chat/ (inboxes, device
 * topics, requests) stay on this node's in-process emitter: the delivery router sends
 * each of them only to the broker(s) holding the recipient's connections, so they never
 * need Redis pub/sub. Every other topic (group/{conv}, presence/, typing/, $SYS and the
 * anonymous namespace) goes through mqemitter-redis to the nodes that subscribed to it.
 */
import mqemitter from 'mqemitter';

type Message = { topic: string; [key: string]: unknown };
type Handler = (message: Message, done: () => void) => void;
type Done = (err?: Error) => void;

export interface Emitter {
  on(topic: string, handler: Handler, done?: () => void): unknown;
  removeListener(topic: string, handler: Handler, done?: () => void): unknown;
  emit(message: Message, done?: Done): unknown;
  close(cb: () => void): unknown;
}

export function isNodeLocalTopic(topic: string): boolean {
  return topic.startsWith('chat/') || topic.startsWith('$chat/');
}

export class RoutingEmitter implements Emitter {
  private readonly local: Emitter;

  constructor(private readonly shared: Emitter) {
    // As aedes makes its default emitter [MQTT-4.7.1-3].
    this.local = mqemitter({ concurrency: 100, matchEmptyLevels: true }) as unknown as Emitter;
  }

  private pick(topic: string): Emitter {
    return isNodeLocalTopic(topic) ? this.local : this.shared;
  }

  on(topic: string, handler: Handler, done?: () => void): this {
    this.pick(topic).on(topic, handler, done);
    return this;
  }

  removeListener(topic: string, handler: Handler, done?: () => void): this {
    this.pick(topic).removeListener(topic, handler, done);
    return this;
  }

  emit(message: Message, done?: Done): this {
    this.pick(message.topic).emit(message, done);
    return this;
  }

  close(cb: () => void): this {
    this.local.close(() => this.shared.close(cb));
    return this;
  }
}
