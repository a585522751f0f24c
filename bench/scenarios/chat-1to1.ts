// Scenario 2, chat-1to1: durable sends between N pairs of chat users over wire protocol
// v1, on embedded PGlite and on Postgres; reference: bare aedes QoS 1 relay with the same
// pairs and window, in the same run.
import { int, list, oneOf, seconds } from '../lib/args.ts';
import { cpuLine, measureCpu, type Ctx, type CpuFigures } from '../lib/context.ts';
import { collectResults, startJobs } from '../lib/gen.ts';
import { ms, num, pct, times, type Table } from '../lib/markdown.ts';
import { commitStats, registerMany, scrapeMetrics, type CommitStats } from '../lib/ours.ts';
import type { ChatJob, ChatResult, ChatUser } from '../lib/protocol.ts';
import type { ScenarioOutput } from '../lib/report.ts';
import { fromData, mergeHistograms, perSecond, ratio, shares, summarizeMs, type LatencySummary } from '../lib/stats.ts';
import type { Panel } from '../lib/svg.ts';
import { createDatabase, startTarget, type BenchDatabase, type Target } from '../lib/targets.ts';
import { measuredLabel, runRelayPhase, type RelayRow } from './relay.ts';

export type Store = 'pglite' | 'postgres';

export interface ChatRow {
  store: Store;
  label: string;
  pairs: number;
  window: number;
  ackedPerSec: number;
  deliveredPerSec: number;
  pubackMs: LatencySummary;
  ackMs: LatencySummary;
  deliverMs: LatencySummary;
  missingAcks: number;
  missingDeliveries: number;
  errors: Record<string, number>;
  commit: CommitStats;
  registrationsPerSec: number;
  cpu: CpuFigures;
}

export interface ChatData {
  relay: Omit<RelayRow, 'target' | 'label'> & { label: string };
  rows: ChatRow[];
  ratios: Array<{ store: Store; ackedVsAedesQos1: number | null }>;
}

export function stores(v: string | undefined): Store[] {
  return list(v, ['pglite', 'postgres']).map((s) => oneOf(s, ['pglite', 'postgres'] as const, 'store'));
}

/** Start our broker on a store: a fresh PGlite dir, or a fresh Postgres database. */
export async function startOursOn(ctx: Ctx, store: Store, extra: { fanoutWriteMax?: number; env?: Record<string, string>; dataDir?: string; database?: BenchDatabase } = {}): Promise<{ target: Target; database?: BenchDatabase }> {
  const database = store === 'postgres' ? (extra.database ?? (await createDatabase(`${ctx.runId}_${Math.random().toString(36).slice(2, 6)}`))) : undefined;
  try {
    const target = await startTarget('ours', {
      cpus: ctx.brokerCpus,
      nofile: 65536,
      store,
      fanoutWriteMax: extra.fanoutWriteMax,
      dataDir: extra.dataDir,
      ...ctx.oursOptions(),
      env: { ...(database ? { DATABASE_URL: database.url } : {}), ...(extra.env ?? {}) },
    });
    return { target, database };
  } catch (err) {
    if (!extra.database) await database?.drop();
    throw err;
  }
}

/** Register 2N users over HTTP and pair them up: sender i -> peer i. */
export async function chatPairs(target: Target, runId: string, n: number, tag: string): Promise<{ pairs: Array<{ sender: ChatUser; peer: ChatUser }>; perSec: number }> {
  if (!target.httpUrl) throw new Error('target has no HTTP API');
  const names = Array.from({ length: n }, (_, i) => [`b${runId}${tag}s${i}`, `b${runId}${tag}p${i}`]).flat();
  const { users, perSec } = await registerMany(target.httpUrl, names, 'd1', 8);
  return { pairs: Array.from({ length: n }, (_, i) => ({ sender: users[2 * i], peer: users[2 * i + 1] })), perSec };
}

export async function runChatPhase(
  ctx: Ctx,
  target: Target,
  store: Store,
  o: { pairs: Array<{ sender: ChatUser; peer: ChatUser }>; window: number; textBytes: number; warmupMs: number; durationMs: number; registrationsPerSec: number },
): Promise<ChatRow> {
  const jobs: ChatJob[] = shares(o.pairs.length, ctx.workers).map(([from, to]) => ({
    kind: 'chat',
    endpoint: target.endpoint,
    client: ctx.client,
    runId: ctx.runId,
    pairs: o.pairs.slice(from, to),
    window: o.window,
    textBytes: o.textBytes,
  }));
  const run = await startJobs(jobs, ctx.genCpus, 120000);
  await target.prepare();
  const startAt = Date.now() + 300;
  const drainMs = 10000;
  for (const w of run.workers) w.send({ type: 'go', startAt, warmupMs: o.warmupMs, durationMs: o.durationMs, drainMs });
  // Group-commit figures over the measured window, from the broker's own /metrics.
  const waitWarm = startAt + o.warmupMs - Date.now();
  const metricsBefore = new Promise<string>((resolve) => setTimeout(() => resolve(scrapeMetrics(target.httpUrl ?? '')), Math.max(0, waitWarm)));
  const cpu = await measureCpu(ctx, { genPids: () => run.pids, brokerPids: target.pids, startAt, warmupMs: o.warmupMs, durationMs: o.durationMs });
  const metricsAfter = await scrapeMetrics(target.httpUrl ?? '');
  const results = await collectResults<ChatResult>(run, o.warmupMs + o.durationMs + drainMs + 60000, 'chat');
  await target.prepare();
  const sum = (f: (r: ChatResult) => number): number => results.reduce((a, r) => a + f(r), 0);
  const errors: Record<string, number> = {};
  for (const r of results) for (const [k, n] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + n;
  const row: ChatRow = {
    store,
    label: target.label,
    pairs: o.pairs.length,
    window: o.window,
    ackedPerSec: Math.round(perSecond(sum((r) => r.ackedDuringWindow), o.durationMs)),
    deliveredPerSec: Math.round(perSecond(sum((r) => r.deliveredDuringWindow), o.durationMs)),
    pubackMs: summarizeMs(mergeHistograms(results.map((r) => fromData(r.pubackUs)))),
    ackMs: summarizeMs(mergeHistograms(results.map((r) => fromData(r.ackUs)))),
    deliverMs: summarizeMs(mergeHistograms(results.map((r) => fromData(r.deliverUs)))),
    missingAcks: sum((r) => r.missingAcks),
    missingDeliveries: sum((r) => r.missingDeliveries),
    errors,
    commit: commitStats(await metricsBefore, metricsAfter),
    registrationsPerSec: Math.round(o.registrationsPerSec * 10) / 10,
    cpu,
  };
  ctx.log(
    `  ours/${store}: ${num(row.ackedPerSec)} acked/s, send->ack p50 ${ms(row.ackMs.p50)} p99 ${ms(row.ackMs.p99)} ms, ` +
      `send->deliver p50 ${ms(row.deliverMs.p50)} p99 ${ms(row.deliverMs.p99)} ms, batch ${num(row.commit.meanBatch, 1)}, ` +
      `missing ${row.missingAcks}/${row.missingDeliveries}, errors ${JSON.stringify(errors)}; ${cpuLine(cpu)}`,
  );
  return row;
}

export async function chat1to1(ctx: Ctx): Promise<ScenarioOutput<ChatData>> {
  // Every figure here needs our broker: fail now, before any reference run, if it is not there.
  ctx.ours();
  const v = ctx.values;
  const pairs = int(v.pairs, 'pairs', 50);
  const window = int(v.window, 'window', 4);
  const textBytes = Math.max(0, int(v.payload, 'payload', 200) - 100);
  const warmupMs = seconds(v.warmup, 'warmup', 2);
  const durationMs = seconds(v.duration, 'duration', 8);
  const storeList = stores(v.store);

  ctx.log('reference: bare aedes, QoS 1 relay, same pairs and window');
  const aedes = await startTarget('aedes', { cpus: ctx.brokerCpus, nofile: 65536 });
  let relay: ChatData['relay'];
  try {
    const r = await runRelayPhase(ctx, aedes, { pairs, payloadBytes: textBytes + 100, qos: 1, window, rate: 0, warmupMs, durationMs }, `bench/${ctx.runId}/c`);
    relay = { ...r, label: aedes.label };
  } finally {
    await aedes.close();
  }

  const rows: ChatRow[] = [];
  for (const store of storeList) {
    ctx.log(`ours on ${store}`);
    const { target, database } = await startOursOn(ctx, store);
    try {
      const { pairs: users, perSec } = await chatPairs(target, ctx.runId, pairs, store[0]);
      rows.push(await runChatPhase(ctx, target, store, { pairs: users, window, textBytes, warmupMs, durationMs, registrationsPerSec: perSec }));
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- broker log (tail) ---\n${target.logTail()}`);
    } finally {
      await target.close();
      await database?.drop();
    }
  }
  const ratios = rows.map((r) => ({ store: r.store, ackedVsAedesQos1: ratio(r.ackedPerSec, relay.msgsPerSec) }));
  return {
    scenario: 'chat-1to1',
    title: 'chat-1to1: durable sends (ack after commit)',
    options: { pairs, window, textBytes, warmupMs, durationMs, stores: storeList, client: ctx.client, workers: ctx.workers },
    data: { relay, rows, ratios },
    tables: chatTables(rows, relay, ratios),
    panels: chatPanels(rows, relay),
    notes: [
      `${pairs} pairs of registered users (clientId {user}:d1, token from POST /v1/auth/register); each sender keeps ${window} sends in flight on chat/{user}/d1/out (QoS 1) and sends the next one when the \`ack\` event of one arrives; the peer receives \`msg\` on chat/{peer}/in. Body text ${textBytes} bytes (request ≈ ${textBytes + 70} bytes of JSON). Clean sessions.`,
      'send->PUBACK: the broker holds the PUBACK until the message is committed (DESIGN 3.1); send->ack: the `ack` event; send->deliver: `msg` at the peer. acked/s counts ack events during the measured window.',
      'Reference: bare aedes relaying QoS 1 publishes of the same size between the same number of pairs with the same window, in this run.',
      'batch = mean messages per group commit over the window, from the broker\'s /metrics (chat_commit_batch_size); commit ms = mean time per batch commit (chat_store_commit_seconds).',
      `Registrations over HTTP during setup ran at ${rows.map((r) => `${r.registrationsPerSec}/s (${r.store})`).join(', ')} (scrypt on the broker core).`,
    ],
    incomplete: [],
  };
}

function chatTables(rows: readonly ChatRow[], relay: ChatData['relay'], ratios: ChatData['ratios']): Table[] {
  return [
    {
      title: 'Durable 1:1 sends vs bare aedes QoS 1 relay (same pairs, window, run)',
      headers: ['target', 'acked/s', 'send->PUBACK p50/p99 ms', 'send->ack p50/p99 ms', 'send->deliver p50/p99 ms', 'batch', 'commit ms', 'missing ack/deliver', 'errors', 'gen CPU', 'broker CPU', 'other CPU', 'measured', 'vs aedes QoS 1'],
      rows: [
        [
          'bare aedes QoS 1 relay',
          num(relay.msgsPerSec),
          '',
          '',
          `${ms(relay.latencyMs.p50)} / ${ms(relay.latencyMs.p99)}`,
          '',
          '',
          `${relay.lost}`,
          '',
          pct(relay.cpu.generatorPct),
          pct(relay.cpu.brokerPct),
          pct(relay.cpu.otherPct),
          measuredLabel(relay.cpu),
          '×1',
        ],
        ...rows.map((r, i) => [
          `ours, ${r.store}`,
          num(r.ackedPerSec),
          `${ms(r.pubackMs.p50)} / ${ms(r.pubackMs.p99)}`,
          `${ms(r.ackMs.p50)} / ${ms(r.ackMs.p99)}`,
          `${ms(r.deliverMs.p50)} / ${ms(r.deliverMs.p99)}`,
          num(r.commit.meanBatch, 1),
          ms(r.commit.meanCommitMs),
          `${r.missingAcks} / ${r.missingDeliveries}`,
          Object.entries(r.errors).map(([k, n]) => `${k} ${n}`).join(', ') || '0',
          pct(r.cpu.generatorPct),
          pct(r.cpu.brokerPct),
          pct(r.cpu.otherPct),
          measuredLabel(r.cpu),
          times(ratios[i].ackedVsAedesQos1),
        ]),
      ],
    },
  ];
}

function chatPanels(rows: readonly ChatRow[], relay: ChatData['relay']): Panel[] {
  return [
    {
      title: 'Durable sends acknowledged per second',
      unit: 'messages/s',
      groups: [
        { label: 'bare aedes QoS 1 relay', bars: [{ series: 'aedes', value: relay.msgsPerSec }] },
        ...rows.map((r) => ({ label: `ours, ${r.store}`, bars: [{ series: `ours`, value: r.ackedPerSec, note: `batch ${num(r.commit.meanBatch, 1)}` }] })),
      ],
    },
    {
      title: 'p99 latency',
      unit: 'ms',
      log: true,
      groups: [
        { label: 'aedes relay', bars: [{ series: 'send->deliver', value: relay.latencyMs.p99 }] },
        ...rows.map((r) => ({
          label: `ours, ${r.store}`,
          bars: [
            { series: 'send->ack', value: r.ackMs.p99 },
            { series: 'send->deliver', value: r.deliverMs.p99 },
          ],
        })),
      ],
    },
  ];
}
