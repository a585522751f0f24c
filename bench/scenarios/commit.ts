// Scenario 3, commit: durable acks/s of chat-1to1 (group commit) against the
// single-commit limit of the same database: single-row INSERT transactions on a table the
// bench creates, one at a time (the limit a one-commit-per-message design would have) and,
// for Postgres, from as many connections as there are senders.
import path from 'node:path';
import { rmSync } from 'node:fs';
import pg from 'pg';
import { int, seconds } from '../lib/args.ts';
import type { Ctx } from '../lib/context.ts';
import { ms, num, times, type Table } from '../lib/markdown.ts';
import { pin, renice } from '../lib/proc.ts';
import type { ScenarioOutput } from '../lib/report.ts';
import { ROOT, getNice, nextMessage, spawnTs, tempDir } from '../lib/spawn.ts';
import { createHistogram, fromData, perSecond, ratio, record, summarizeMs, type HistogramData, type LatencySummary } from '../lib/stats.ts';
import type { Panel } from '../lib/svg.ts';
import { createDatabase, type BenchDatabase } from '../lib/targets.ts';
import { chatPairs, runChatPhase, startOursOn, stores, type ChatRow, type Store } from './chat-1to1.ts';

export interface RawCommit {
  connections: number;
  txPerSec: number;
  latencyMs: LatencySummary;
}

export interface CommitRow {
  store: Store;
  settings: Record<string, string>;
  single: RawCommit;
  concurrent: RawCommit | null;
  chat: ChatRow;
  ackedVsSingle: number | null;
  ackedVsConcurrent: number | null;
}

const TABLE = `create table if not exists bench_commit (
  id bigserial primary key, conv text not null, seq int not null, sender text not null, body jsonb not null, ts bigint not null)`;

async function pgInsertLoop(url: string, connections: number, warmupMs: number, durationMs: number, cpus: string): Promise<RawCommit> {
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const r = await c.query<{ pid: number }>('select pg_backend_pid() as pid');
      // The backends do the server's work: they run where the broker would.
      if (cpus) pin(r.rows[0].pid, cpus);
      if (getNice() !== 0) renice(r.rows[0].pid, getNice());
      return c;
    }),
  );
  try {
    await clients[0].query(TABLE);
    const body = JSON.stringify({ text: 'x'.repeat(100) });
    const h = createHistogram();
    const t0 = performance.now();
    const warmEnd = t0 + warmupMs;
    const end = warmEnd + durationMs;
    let n = 0;
    await Promise.all(
      clients.map(async (c, k) => {
        let i = 0;
        while (performance.now() < end) {
          const s = performance.now();
          await c.query('insert into bench_commit (conv, seq, sender, body, ts) values ($1, $2, $3, $4, $5)', [`c_${k}`, i++, 'bench', body, Date.now()]);
          const e = performance.now();
          if (s >= warmEnd && e < end) {
            n++;
            record(h, (e - s) * 1000);
          }
        }
      }),
    );
    await clients[0].query('drop table bench_commit');
    return { connections, txPerSec: Math.round(perSecond(n, durationMs)), latencyMs: summarizeMs(h) };
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

async function pgliteInsertLoop(dir: string, warmupMs: number, durationMs: number, cpus: string): Promise<RawCommit> {
  const child = spawnTs(path.join(ROOT, 'bench', 'servers', 'pglite-commit.ts'), { cpus });
  type Answer = { type: 'committed'; transactions: number; ms: number; latencyUs: HistogramData } | { type: 'commit-failed'; message: string };
  const isAnswer = (m: unknown): m is Answer => {
    const t = typeof m === 'object' && m !== null ? (m as { type?: unknown }).type : undefined;
    return t === 'committed' || t === 'commit-failed';
  };
  try {
    child.proc.send({ type: 'commit', dir, warmupMs, durationMs });
    const a = await nextMessage(child.proc, isAnswer, warmupMs + durationMs + 120000, 'PGlite commit loop');
    if (a.type === 'commit-failed') throw new Error(`PGlite commit loop: ${a.message}`);
    return { connections: 1, txPerSec: Math.round(perSecond(a.transactions, a.ms)), latencyMs: summarizeMs(fromData(a.latencyUs)) };
  } finally {
    await child.stop(2000);
  }
}

async function pgSettings(url: string): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const out: Record<string, string> = {};
    for (const k of ['fsync', 'synchronous_commit', 'wal_sync_method', 'commit_delay']) {
      const r = await c.query<Record<string, string>>(`show ${k}`);
      out[k] = Object.values(r.rows[0])[0];
    }
    return out;
  } finally {
    await c.end();
  }
}

export async function commit(ctx: Ctx): Promise<ScenarioOutput<{ rows: CommitRow[] }>> {
  // Every figure here needs our broker: fail now, before any reference run, if it is not there.
  ctx.ours();
  const v = ctx.values;
  const pairs = int(v.pairs, 'pairs', 50);
  const window = int(v.window, 'window', 4);
  const warmupMs = seconds(v.warmup, 'warmup', 2);
  const durationMs = seconds(v.duration, 'duration', 8);
  const textBytes = Math.max(0, int(v.payload, 'payload', 200) - 100);
  const rows: CommitRow[] = [];
  for (const store of stores(v.store)) {
    let database: BenchDatabase | undefined;
    const dataDir = tempDir('bench-commit-');
    try {
      let single: RawCommit;
      let concurrent: RawCommit | null = null;
      let settings: Record<string, string> = {};
      if (store === 'postgres') {
        database = await createDatabase(`${ctx.runId}_commit`);
        settings = await pgSettings(database.url);
        ctx.log(`postgres: single-row INSERT transactions, 1 connection`);
        single = await pgInsertLoop(database.url, 1, warmupMs, durationMs, ctx.brokerCpus);
        ctx.log(`  ${num(single.txPerSec)} tx/s, p50 ${ms(single.latencyMs.p50)} ms; now ${pairs} connections`);
        concurrent = await pgInsertLoop(database.url, pairs, warmupMs, durationMs, ctx.brokerCpus);
        ctx.log(`  ${num(concurrent.txPerSec)} tx/s with ${pairs} connections`);
      } else {
        ctx.log('pglite: single-row INSERT transactions');
        single = await pgliteInsertLoop(path.join(dataDir, 'pglite'), warmupMs, durationMs, ctx.brokerCpus);
        ctx.log(`  ${num(single.txPerSec)} tx/s, p50 ${ms(single.latencyMs.p50)} ms`);
        settings = { engine: 'PGlite (WASM Postgres in the broker process)' };
      }
      ctx.log(`ours on ${store}: chat-1to1 on the same database`);
      const { target } = await startOursOn(ctx, store, { database, dataDir });
      let chat: ChatRow;
      try {
        const { pairs: users, perSec } = await chatPairs(target, ctx.runId, pairs, `k${store[0]}`);
        chat = await runChatPhase(ctx, target, store, { pairs: users, window, textBytes, warmupMs, durationMs, registrationsPerSec: perSec });
      } finally {
        await target.close();
      }
      rows.push({
        store,
        settings,
        single,
        concurrent,
        chat,
        ackedVsSingle: ratio(chat.ackedPerSec, single.txPerSec),
        ackedVsConcurrent: concurrent ? ratio(chat.ackedPerSec, concurrent.txPerSec) : null,
      });
    } finally {
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  return {
    scenario: 'commit',
    title: 'Group commit: durable acks/s against the single-commit limit',
    options: { pairs, window, warmupMs, durationMs, stores: rows.map((r) => r.store) },
    data: { rows },
    tables: [commitTable(rows)],
    panels: commitPanels(rows),
    notes: [
      'single-commit limit = single-row INSERT transactions (autocommit) one after another on a table the bench creates in the same database, 100-byte JSON body; the client waits for each commit. Postgres is also measured from as many connections as chat-1to1 has senders (Postgres flushes the WAL of concurrent commits together).',
      `acked/s = chat-1to1 on that database (${pairs} pairs, window ${window}): every ack means the message is committed. A ratio above ×1 against the single-commit limit is what group commit buys.`,
      'Postgres backends are pinned to the broker CPU in both measurements; PGlite runs inside the measuring process (raw loop) or inside the broker (chat).',
      ...rows.filter((r) => r.store === 'postgres').map((r) => `Postgres settings: ${Object.entries(r.settings).map(([k, x]) => `${k}=${x}`).join(', ')}.`),
    ],
    incomplete: [],
  };
}

function commitTable(rows: readonly CommitRow[]): Table {
  return {
    headers: ['store', 'single-commit tx/s (1 conn)', 'commit p50/p99 ms', `tx/s, N conns`, 'chat acked/s', 'batch', 'send->ack p99 ms', 'acked vs single', 'acked vs N conns'],
    rows: rows.map((r) => [
      r.store,
      num(r.single.txPerSec),
      `${ms(r.single.latencyMs.p50)} / ${ms(r.single.latencyMs.p99)}`,
      r.concurrent ? `${num(r.concurrent.txPerSec)} (${r.concurrent.connections})` : '—',
      num(r.chat.ackedPerSec),
      num(r.chat.commit.meanBatch, 1),
      ms(r.chat.ackMs.p99),
      times(r.ackedVsSingle),
      times(r.ackedVsConcurrent),
    ]),
  };
}

function commitPanels(rows: readonly CommitRow[]): Panel[] {
  return [
    {
      title: 'Durable messages per second',
      unit: 'per second',
      groups: rows.map((r) => ({
        label: r.store,
        bars: [
          { series: 'single-row INSERT tx, 1 conn', value: r.single.txPerSec },
          ...(r.concurrent ? [{ series: 'single-row INSERT tx, N conns', value: r.concurrent.txPerSec }] : []),
          { series: 'chat acked/s (group commit)', value: r.chat.ackedPerSec, note: `batch ${num(r.chat.commit.meanBatch, 1)}` },
        ],
      })),
    },
  ];
}
