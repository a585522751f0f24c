/**
 * Time as a dependency (STYLE 10): every timer of the SDK (backoff, RPC timeouts, token
 * refresh, typing throttle and expiry, receipt batching) goes through a Clock so that
 * tests run on fake time.
 */

export type TimerHandle = { readonly __timer: unique symbol };

export interface Clock {
  /** Unix milliseconds. */
  now(): number;
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: Date.now and the global timers. Timers do not keep Node alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, delayMs) {
    const handle = globalThis.setTimeout(callback, Math.max(0, delayMs)) as unknown as { unref?: () => void };
    // A pending reconnect or refresh must not keep a Node process from exiting.
    if (typeof handle.unref === 'function') handle.unref();
    return handle as unknown as TimerHandle;
  },
  clearTimeout(handle) {
    globalThis.clearTimeout(handle as unknown as ReturnType<typeof globalThis.setTimeout>);
  },
};
