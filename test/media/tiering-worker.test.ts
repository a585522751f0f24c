/**
 * The tiering worker's scheduling: one run per cluster under a Postgres advisory lock
 * (real PostgreSQL with two connections pools standing for two nodes, and PGlite), and the
 * node-cron job wired to the configured schedule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../core/clock.ts';
import { openDb, type Db } from '../../core/db.ts';
import { migrate } from '../../core/migrate.ts';
import { defaultMediaConfig } from '../../workers/media/config.ts';
import { LocalObjectStore } from '../../workers/media/local-store.ts';
import { createMediaMetrics } from '../../workers/media/metrics.ts';
import { withRunLock } from '../../workers/media/run-lock.ts';
import { TieringWorker, tieringLockKey } from '../../workers/media/tiering.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/services.ts';

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

describe('tiering run lock', () => {
  let pg: TestDatabase;
  let nodeA: Db;
  let nodeB: Db;
  let lite: Db;
  let dataDir: string;

  beforeAll(async () => {
    pg = await createTestDatabase();
    nodeA = await openDb({ databaseUrl: pg.url });
    nodeB = await openDb({ databaseUrl: pg.url });
    await migrate(nodeA);
    lite = await openDb({});
    await migrate(lite);
    dataDir = await mkdtemp(join(tmpdir(), 'media-worker-'));
  });
  afterAll(async () => {
    await nodeA?.close();
    await nodeB?.close();
    await lite?.close();
    await pg?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('PostgreSQL: while one node runs, the other skips; afterwards it runs', async () => {
    const g = gate();
    const running = withRunLock(nodeA, tieringLockKey, async () => {
      await g.opened;
      return 'a';
    });
    await new Promise((r) => setTimeout(r, 50));
    const objects = await LocalObjectStore.open(defaultMediaConfig(), dataDir);
    const workerB = new TieringWorker({ db: nodeB, objects, config: defaultMediaConfig() });
    expect(await workerB.run()).toBe('locked');
    expect(await withRunLock(nodeB, tieringLockKey, async () => 'b')).toEqual({ acquired: false });
    g.open();
    expect(await running).toEqual({ acquired: true, value: 'a' });
    const report = await workerB.run();
    expect(report).not.toBe('locked');
  });

  it('PostgreSQL: the lock is released when the run throws', async () => {
    await expect(withRunLock(nodeA, tieringLockKey, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await withRunLock(nodeB, tieringLockKey, async () => 'ok')).toEqual({ acquired: true, value: 'ok' });
  });

  it('PGlite: a second run of the same process skips while the first runs', async () => {
    const g = gate();
    const first = withRunLock(lite, tieringLockKey, async () => {
      await g.opened;
      return 1;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(await withRunLock(lite, tieringLockKey, async () => 2)).toEqual({ acquired: false });
    g.open();
    expect(await first).toEqual({ acquired: true, value: 1 });
    expect(await withRunLock(lite, tieringLockKey, async () => 3)).toEqual({ acquired: true, value: 3 });
  });

  it('schedules the run with node-cron at the configured expression', async () => {
    const config = defaultMediaConfig({ tiering: { schedule: '*/5 * * * *' } });
    const objects = await LocalObjectStore.open(config, dataDir);
    const registry = new Registry();
    const clock = new FakeClock();
    const worker = new TieringWorker({ db: lite, objects, config, clock, metrics: createMediaMetrics(registry) });
    const task = worker.start();
    try {
      expect(task?.getPattern()).toBe('*/5 * * * *');
      await task!.execute();
      const lastRun = (await registry.getMetricsAsJSON()).find((m) => m.name === 'chat_media_tiering_last_run_timestamp_seconds');
      expect(lastRun?.values[0]?.value).toBe(clock.now() / 1000);
    } finally {
      await worker.stop();
    }
    expect(new TieringWorker({ db: lite, objects, config: defaultMediaConfig({ tiering: { enabled: false } }) }).start()).toBeUndefined();
    expect(() => new TieringWorker({ db: lite, objects, config: defaultMediaConfig({ tiering: { schedule: 'every tuesday' } }) }).start())
      .toThrow(/media\.tiering\.schedule/);
  });
});
