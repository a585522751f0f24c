/**
 * Injected time (STYLE 10): presence debounce, typing throttles, token expiry and cron
 * take a Clock so their tests run on fake time.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

/** A manual clock for tests: time moves only when `advance` is called. */
export class FakeClock implements Clock {
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 0;
  constructor(private time = 1_700_000_000_000) {}
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.push({ at: this.time + ms, fn, id });
    return { cancel: () => (this.timers = this.timers.filter((t) => t.id !== id)) };
  }
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > until) break;
      this.timers.shift();
      this.time = next.at;
      next.fn();
    }
    this.time = until;
  }
  pending(): number {
    return this.timers.length;
  }
}
