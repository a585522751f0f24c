// The worker side of the IPC channel: a typed inbox and outbox.
import { isToWorker, type FromWorker, type ToWorker } from '../lib/protocol.ts';

export interface WorkerIO {
  send(m: FromWorker): void;
  /** The next message of that type from the orchestrator. */
  next<T extends ToWorker['type']>(type: T): Promise<Extract<ToWorker, { type: T }>>;
  /** The next message of any of these types (one waiter: nothing is left registered). */
  nextOf<T extends ToWorker['type']>(types: readonly T[]): Promise<Extract<ToWorker, { type: T }>>;
  /** Called for every 'connect' command (idle job). */
  onMessage(handler: (m: ToWorker) => void): void;
}

export function processIO(): WorkerIO {
  const queue: ToWorker[] = [];
  const waiters: Array<{ types: readonly string[]; resolve: (m: ToWorker) => void }> = [];
  let handler: ((m: ToWorker) => void) | null = null;
  process.on('message', (m: unknown) => {
    if (!isToWorker(m)) return;
    if (handler) handler(m);
    const w = waiters.findIndex((x) => x.types.includes(m.type));
    if (w >= 0) {
      const [waiter] = waiters.splice(w, 1);
      waiter.resolve(m);
    } else queue.push(m);
  });
  return {
    send(m) {
      process.send?.(m);
    },
    next<T extends ToWorker['type']>(type: T): Promise<Extract<ToWorker, { type: T }>> {
      return this.nextOf([type]);
    },
    nextOf<T extends ToWorker['type']>(types: readonly T[]): Promise<Extract<ToWorker, { type: T }>> {
      const i = queue.findIndex((x) => (types as readonly string[]).includes(x.type));
      if (i >= 0) {
        const [m] = queue.splice(i, 1);
        return Promise.resolve(m as Extract<ToWorker, { type: T }>);
      }
      return new Promise((resolve) => waiters.push({ types, resolve: (m) => resolve(m as Extract<ToWorker, { type: T }>) }));
    },
    onMessage(h) {
      handler = h;
    },
  };
}

/** performance.now() on the epoch time base, comparable across processes of one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export async function sleepUntil(epochMs: number): Promise<void> {
  const d = epochMs - nowMs();
  if (d > 0) await new Promise((r) => setTimeout(r, d));
}

export { pool } from '../lib/pool.ts';
