/**
 * Operator CLI for media (`npm run media -- <command>`), on the configured store
 * (config/*.json and the environment: DATA_DIR or DATABASE_URL, S3_ENDPOINT, S3_BUCKET).
 *
 *   tiering --dry-run    what the rules would move, bytes and monthly cost per tier
 *   tiering              apply: move, delete past retention, drop abandoned uploads
 *                        (takes the cluster lock; exits 2 when another node holds it)
 *   report               bytes, objects and monthly cost per tier (no rule evaluation)
 *
 * Options: --json (machine-readable), --limit N (changes listed, default 20),
 * --metrics (print the same figures in Prometheus text format). Progress goes to stderr.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Registry } from 'prom-client';
import { loadConfig } from '../config/index.ts';
import { openDb } from '../core/db.ts';
import { migrate } from '../core/migrate.ts';
import { mediaDriverOf, openObjectStore } from './media/index.ts';
import { createMediaMetrics } from './media/metrics.ts';
import { formatBytes, formatTieringReport, progressBar } from './media/report.ts';
import { tierTotals } from './media/repository.ts';
import { costOf, TieringWorker } from './media/tiering.ts';

const usage = `usage: npm run media -- <tiering [--dry-run] | report> [--json] [--limit N] [--metrics]`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      metrics: { type: 'boolean', default: false },
      limit: { type: 'string', default: '20' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const command = positionals[0];
  if (values.help || !command || !['tiering', 'report'].includes(command)) {
    process.stderr.write(`${usage}\n`);
    return values.help ? 0 : 64;
  }
  const config = loadConfig();
  const driver = mediaDriverOf(config);
  const db = await openDb({ databaseUrl: config.databaseUrl, pgliteDir: join(config.dataDir, 'pglite') });
  const objects = await openObjectStore(config);
  const registry = new Registry();
  const metrics = createMediaMetrics(registry);
  try {
    await migrate(db);
    if (command === 'report') {
      const totals = await tierTotals(db);
      const cost = costOf(totals.bytes, config.media);
      if (values.json) process.stdout.write(`${JSON.stringify({ driver, ...totals, monthlyCost: cost, currency: config.media.prices.currency }, null, 2)}\n`);
      else {
        process.stdout.write(`media store, driver ${driver}\n`);
        for (const t of ['hot', 'warm', 'cold'] as const) {
          process.stdout.write(`  ${t.padEnd(4)}  ${String(totals.objects[t]).padStart(8)} objects  ${formatBytes(totals.bytes[t]).padStart(10)}  ${cost[t].toFixed(2)} ${config.media.prices.currency}/month\n`);
        }
      }
      return 0;
    }
    const log = pino({ level: 'warn', base: { cmd: 'media-cli' } }, pino.destination(2));
    const worker = new TieringWorker({ db, objects, config: config.media, log, metrics });
    const bar = progressBar(process.stderr, values['dry-run'] ? 'evaluating' : 'tiering');
    const options = { dryRun: values['dry-run'], detailLimit: Number(values.limit), onProgress: bar.update };
    const report = values['dry-run'] ? await worker.runUnlocked(options) : await worker.run(options);
    bar.finish();
    if (report === 'locked') {
      process.stderr.write('another node holds the tiering lock (a run is in progress); try again later\n');
      return 2;
    }
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatTieringReport(report, { driver })}\n`);
    if (values.metrics) process.stdout.write(`\n${await registry.metrics()}`);
    return report.outcome.failed > 0 ? 1 : 0;
  } finally {
    await objects.close();
    await db.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`media: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
