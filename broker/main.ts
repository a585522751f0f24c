/**
 * Boot file: loads config, starts the platform, says where it listens, and shuts down
 * cleanly on SIGINT/SIGTERM. Composition lives in platform.ts.
 */
import { ConfigError } from '../config/index.ts';
import { MigrationError } from '../core/migrate.ts';
import { startPlatform } from './platform.ts';

/** `--role broker` (npm run broker): listeners and ingest only; workers deliver. */
function roleFromArgs(argv: string[]): 'all' | 'broker' | undefined {
  const i = argv.indexOf('--role');
  const role = i >= 0 ? argv[i + 1] : undefined;
  if (role === undefined) return undefined;
  if (role !== 'all' && role !== 'broker') throw new ConfigError([`--role: expected "all" or "broker", got ${JSON.stringify(role)}`]);
  return role;
}

async function main(): Promise<void> {
  const role = roleFromArgs(process.argv.slice(2));
  if (role === 'broker' && (!process.env.DATABASE_URL || !process.env.REDIS_URL)) {
    throw new ConfigError(['npm run broker is cluster mode: set DATABASE_URL and REDIS_URL (or run npm start for one process)']);
  }
  const platform = await startPlatform(role ? { config: { role } } : {});
  const { urls, log } = platform;
  const lines = [
    `MQTT           ${urls.mqtt}`,
    `MQTT over WS   ${urls.ws}`,
    `HTTP API       ${urls.http}  (web client at ${urls.http}/)`,
    ...(urls.mqtts ? [`MQTTS          ${urls.mqtts}`, `MQTT over WSS  ${urls.wss}`] : []),
    `store          ${platform.config.databaseUrl ? 'PostgreSQL' : `PGlite in ${platform.config.dataDir}`}`,
    `mode           ${platform.config.redisUrl ? `cluster (Redis), role ${platform.config.role}` : 'embedded, one process'}`,
  ];
  process.stdout.write(`chat platform ready\n  ${lines.join('\n  ')}\n`);
  log.info({ urls }, 'ready');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown took more than 10 s: exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    platform.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof MigrationError) {
    process.stderr.write(`${err.message}\n`);
  } else {
    process.stderr.write(`failed to start: ${(err as Error).stack ?? String(err)}\n`);
  }
  process.exit(1);
});
