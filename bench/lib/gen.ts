// The orchestrator's handle on generator workers: pinned child processes running
// bench/gen/worker.ts, one job each.
import path from 'node:path';
import { messageOf, type FromWorker, type Job, type JobResult, type ToWorker } from './protocol.ts';
import { ROOT, nextMessage, spawnTs, type Child } from './spawn.ts';

export interface GenWorker {
  child: Child;
  send(m: ToWorker): void;
  expect<T extends Exclude<FromWorker['type'], 'failed'>>(type: T, timeoutMs: number): Promise<Extract<FromWorker, { type: T }>>;
}

export function startWorker(cpus: string, nofile = 0): GenWorker {
  const child = spawnTs(path.join(ROOT, 'bench', 'gen', 'worker.ts'), {
    cpus,
    nofile: nofile || undefined,
    // The heap limit would cut a 100k-connection generator short.
    nodeArgs: ['--max-old-space-size=8192'],
  });
  return {
    child,
    send(m) {
      child.proc.send(m);
    },
    async expect<T extends Exclude<FromWorker['type'], 'failed'>>(type: T, timeoutMs: number) {
      const m: FromWorker = await nextMessage(child.proc, messageOf(type), timeoutMs, `generator worker ${child.pid} (${type})`);
      if (m.type === 'failed') throw new Error(`generator worker ${child.pid}: ${m.message}`);
      return m as Extract<FromWorker, { type: T }>;
    },
  };
}

export interface RunOnce {
  workers: GenWorker[];
  /** pids of the generator processes, for CPU accounting. */
  pids: number[];
}

/** Start one worker per job, hand out the jobs and wait until every worker is ready. */
export async function startJobs(jobs: readonly Job[], cpus: string, readyTimeoutMs: number, nofile = 0): Promise<RunOnce> {
  const workers = jobs.map(() => startWorker(cpus, nofile));
  try {
    jobs.forEach((job, i) => workers[i].send({ type: 'job', job }));
    await Promise.all(workers.map((w) => w.expect('ready', readyTimeoutMs)));
  } catch (err) {
    await Promise.all(workers.map((w) => w.child.stop(1000)));
    throw err;
  }
  return { workers, pids: workers.map((w) => w.child.pid) };
}

/**
 * Wait for every worker's result, then stop the workers. `beforeStop` runs while they are
 * still alive (close CPU windows there: a dead process's CPU time can no longer be read).
 */
export async function collectResults<R extends JobResult>(run: RunOnce, timeoutMs: number, kind: R['kind'], beforeStop?: () => void): Promise<R[]> {
  try {
    const results = await Promise.all(run.workers.map((w) => w.expect('result', timeoutMs)));
    beforeStop?.();
    return results.map((m) => {
      if (m.result.kind !== kind) throw new Error(`expected a ${kind} result, got ${m.result.kind}`);
      return m.result as R;
    });
  } finally {
    await Promise.all(run.workers.map((w) => w.child.stop(3000)));
  }
}
