/**
 * `npm run worker` (cluster mode): consumes the delivery queue (Redis Streams) and
 * routes each job's publishes to the broker nodes holding the recipients, handles dead
 * letters (`npm run worker -- dead-letters` lists them, `-- replay ID` replays one), and
 * runs the media tiering cron (once per cluster).
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ConfigError, loadConfig } from '../config/index.ts';
import { openDb } from '../core/db.ts';
import { migrate, MigrationError } from '../core/migrate.ts';
import { ChatStore } from '../core/store.ts';
import { systemClock } from '../core/clock.ts';
import { createLogger } from '../core/log.ts';
import { createMetrics } from '../core/metrics.ts';
import { MembershipCache } from '../broker/membership.ts';
import { MembersBus, brokersKey } from '../broker/cluster.ts';
import { createPresenceStore } from '../broker/presence.ts';
import { createDeliveryQueue, withChaos } from './queues.ts';
import { Deliverer } from './deliverer.ts';
import { NodeRegistry, redisRouter } from './router.ts';
import { openObjectStore, TieringWorker, createMediaMetrics } from './media/index.ts';

async function main(argv: string[]): Promise<void> {
  const config = loadConfig();
  if (!config.databaseUrl || !config.redisUrl) {
    throw new ConfigError(['npm run worker is cluster mode: set DATABASE_URL and REDIS_URL (npm start runs delivery in-process)']);
  }
  const log = createLogger(config.logLevel, { role: 'worker' });
  const metrics = createMetrics();
  const clock = systemClock;
  const consumer = config.nodeId ?? `worker-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const queue = createDeliveryQueue({ config, clock, metrics, log, consumer });

  const command = argv[0];
  if (command === 'dead-letters') {
    for (const d of await queue.deadLetters(1000)) process.stdout.write(`${JSON.stringify(d)}\n`);
    await queue.close();
    return;
  }
  if (command === 'replay') {
    const ids = argv.slice(1);
    if (ids.length === 0) throw new ConfigError(['replay: give the dead-letter ids to replay (npm run worker -- dead-letters lists them)']);
    for (const id of ids) process.stdout.write(`${id}: ${(await queue.replay(id)) ? 'replayed' : 'not found'}\n`);
    await queue.close();
    return;
  }
  if (command !== undefined) throw new ConfigError([`unknown command ${command}: expected dead-letters or replay`]);

  const db = await openDb({ databaseUrl: config.databaseUrl });
  await migrate(db);
  const store = new ChatStore(db);
  const members = new MembershipCache(store, clock, 10_000);
  const bus = await MembersBus.open(config.redisUrl, config.redisPrefix, (conv) => members.invalidate(conv), log);
  const redis = new Redis(config.redisUrl);
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'worker: redis error'));
  const presenceStore = createPresenceStore({ redisUrl: config.redisUrl, redisPrefix: config.redisPrefix, log });
  const nodes = new NodeRegistry(redis, brokersKey(config.redisPrefix), clock);
  const route = redisRouter(redis, config.redisPrefix, { nodesOf: async (u) => [...new Set((await presenceStore.devices(u)).map((d) => d.node))] }, nodes);
  const deliverer = new Deliverer(members, route, metrics);
  queue.start(withChaos(config, (job) => deliverer.topicsOf(job), (job) => deliverer.deliver(job)));
  // Media tiering: every worker schedules it; an advisory lock makes it run once per cluster.
  const objects = await openObjectStore(config, clock);
  const tiering = new TieringWorker({ db, objects, config: config.media, clock, log, metrics: createMediaMetrics(metrics.registry) });
  tiering.start();
  process.stdout.write(`chat worker ready (${consumer})\n`);
  log.info({ consumer }, 'worker ready');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'worker shutting down');
    setTimeout(() => process.exit(1), 10_000).unref();
    void (async () => {
      await queue.close();
      await tiering.stop();
      await objects.close();
      await bus.close();
      await presenceStore.close();
      await redis.quit().catch(() => {});
      await db.close();
      process.exit(0);
    })();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof MigrationError) process.stderr.write(`${err.message}\n`);
  else process.stderr.write(`worker failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
