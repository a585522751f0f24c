/**
 * Boot file: loads config, starts the platform, says where it listens, and shuts down
 * cleanly on SIGINT/SIGTERM. Composition lives in platform.ts.
 */
import { ConfigError } from '../config/index.ts';
import { MigrationError } from '../core/migrate.ts';
import { startPlatform } from './platform.ts';

async function main(): Promise<void> {
  const platform = await startPlatform();
  const { urls, log } = platform;
  const lines = [
    `MQTT           ${urls.mqtt}`,
    `MQTT over WS   ${urls.ws}`,
    `HTTP API       ${urls.http}  (web client at ${urls.http}/)`,
    ...(urls.mqtts ? [`MQTTS          ${urls.mqtts}`, `MQTT over WSS  ${urls.wss}`] : []),
    `store          ${platform.config.databaseUrl ? 'PostgreSQL' : `PGlite in ${platform.config.dataDir}`}`,
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
