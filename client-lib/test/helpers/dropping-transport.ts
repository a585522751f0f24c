/**
 * Wraps a Transport and swallows chosen incoming events — e.g. the `ack` and the echo of
 * one send — to put the sender in the state "sent, committed on the server, not yet
 * acknowledged" on purpose.
 */

import type { Transport, TransportConnection, TransportHandlers, TransportOpenOptions } from '../../src/transport.ts';

export class DroppingTransport implements Transport {
  /** Ids whose `ack` and `msg` events are dropped while listed. */
  readonly blockedIds = new Set<string>();
  dropped = 0;

  constructor(private readonly inner: Transport) {}

  open(options: TransportOpenOptions, handlers: TransportHandlers): Promise<TransportConnection> {
    return this.inner.open(options, {
      message: (topic, payload) => {
        if (this.blockedIds.size > 0) {
          try {
            const event = JSON.parse(new TextDecoder().decode(payload)) as { type?: unknown; id?: unknown };
            if ((event.type === 'ack' || event.type === 'msg') && typeof event.id === 'string' && this.blockedIds.has(event.id)) {
              this.dropped++;
              return;
            }
          } catch {
            // not JSON: pass it on
          }
        }
        handlers.message(topic, payload);
      },
      close: (reason) => handlers.close(reason),
    });
  }
}
