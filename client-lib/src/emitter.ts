/**
 * A small typed event emitter (STYLE 11, after MQTT.js TypedEmitter) that runs the same in
 * Node and browsers. Event names and payload types come from one map.
 *
 * A listener that throws does not break the SDK's pipeline (the message is already stored,
 * other listeners still run): the exception is rethrown on a fresh task so that it surfaces
 * as an uncaught error, like any bug in app code.
 */

export type Listener<T> = (payload: T) => void;

/** `Events` maps each event name to its payload type. */
export class TypedEmitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();

  on<E extends keyof Events>(event: E, listener: Listener<Events[E]>): this {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as Listener<never>);
    return this;
  }

  off<E extends keyof Events>(event: E, listener: Listener<Events[E]>): this {
    this.#listeners.get(event)?.delete(listener as Listener<never>);
    return this;
  }

  /** Calls `listener` for the next `event` only. Returns a function that removes it before then. */
  once<E extends keyof Events>(event: E, listener: Listener<Events[E]>): () => void {
    const wrapper: Listener<Events[E]> = (payload) => {
      this.off(event, wrapper);
      listener(payload);
    };
    this.on(event, wrapper);
    return () => this.off(event, wrapper);
  }

  listenerCount<E extends keyof Events>(event: E): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  protected emit<E extends keyof Events>(event: E, payload: Events[E]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[E]>)(payload);
      } catch (error) {
        setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }
}
