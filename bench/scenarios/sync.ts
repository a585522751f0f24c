// Scenario 6, sync: a member returns after --missed messages (default 10,000) were sent to
// it while it was offline, and catches up with the sync RPC, --limit per page.
import { int } from '../lib/args.ts';
import { cpuFigures, cpuLine, type Ctx, type CpuFigures } from '../lib/context.ts';
import { collectResults, startJobs } from '../lib/gen.ts';
import { bytes, ms, num, pct, type Table } from '../lib/markdown.ts';
import { cpuWindow } from '../lib/proc.ts';
import type { SyncJob, SyncResult } from '../lib/protocol.ts';
import type { ScenarioOutput } from '../lib/report.ts';
import { fromData, perSecond, summarizeMs, type LatencySummary } from '../lib/stats.ts';
import type { Panel } from '../lib/svg.ts';
import { chatPairs, startOursOn, stores, type Store } from './chat-1to1.ts';
import { createGroup } from '../gen/rpc.ts';

export interface SyncRow {
  store: Store;
  missed: number;
  limit: number;
  fillMs: number;
  fillPerSec: number;
  connectMs: number;
  catchUpMs: number;
  pages: number;
  messages: number;
  messagesPerSec: number;
  bytes: number;
  pageMs: LatencySummary;
  gaps: number;
  duplicates: number;
  complete: boolean;
  errors: string[];
  cpu: CpuFigures;
}

export async function sync(ctx: Ctx): Promise<ScenarioOutput<{ rows: SyncRow[] }>> {
  // Every figure here needs our broker: fail now, before any reference run, if it is not there.
  ctx.ours();
  const v = ctx.values;
  const missed = int(v.missed, 'missed', 10000);
  const limit = int(v.limit, 'limit', 1000);
  const window = int(v.window, 'window', 20);
  // The default rate limits give a connection a burst of 2,000 sends (then 100/s): the
  // conversation is filled by as many senders as keep each of them inside that burst.
  const senders = Math.max(1, Math.ceil(missed / 1500));
  const textBytes = Math.max(0, int(v.payload, 'payload', 200) - 100);
  const rows: SyncRow[] = [];
  for (const store of stores(v.store ?? 'pglite')) {
    ctx.log(`ours on ${store}: filling ${num(missed)} messages for an offline member`);
    const { target, database } = await startOursOn(ctx, store);
    try {
      const { pairs } = await chatPairs(target, ctx.runId, senders, `y${store[0]}`);
      // pairs: senders[i] -> peers[i]; the member is peer 0, the others only fill.
      const senderUsers = pairs.map((p) => p.sender);
      const member = pairs[0].peer;
      const { conv } = await createGroup(target.endpoint, senderUsers[0], [...senderUsers.slice(1), member], `sync-${ctx.runId}`);
      const job: SyncJob = { kind: 'sync', endpoint: target.endpoint, client: ctx.client, runId: ctx.runId, senders: senderUsers, conv, member, missed, window, limit, textBytes };
      const run = await startJobs([job], ctx.genCpus, 300000);
      await target.prepare();
      const close = cpuWindow([
        { name: 'generator', cores: ctx.genCores, pids: () => run.pids },
        { name: 'broker', cores: ctx.brokerCores, pids: target.pids },
        { name: 'orchestrator', cores: ctx.genCores, pids: () => [process.pid] },
      ]);
      run.workers[0].send({ type: 'go', startAt: Date.now(), warmupMs: 0, durationMs: 0, drainMs: 0 });
      let cpu: CpuFigures | undefined;
      const [r] = await collectResults<SyncResult>(run, 300000, 'sync', () => {
        cpu = cpuFigures(ctx, close());
      });
      const catchUpMs = r.connectMs + r.syncMs;
      const row: SyncRow = {
        store,
        missed,
        limit,
        fillMs: Math.round(r.fillMs),
        fillPerSec: Math.round(perSecond(r.filled, r.fillMs)),
        connectMs: Math.round(r.connectMs * 10) / 10,
        catchUpMs: Math.round(catchUpMs),
        pages: r.pages,
        messages: r.messages,
        messagesPerSec: Math.round(perSecond(r.messages, r.syncMs)),
        bytes: r.bytes,
        pageMs: summarizeMs(fromData(r.pageUs)),
        gaps: r.gaps,
        duplicates: r.duplicates,
        complete: r.messages >= missed && r.gaps === 0,
        errors: r.errors,
        cpu: cpu ?? cpuFigures(ctx, close()),
      };
      rows.push(row);
      ctx.log(
        `  ${store}: filled in ${num(row.fillMs)} ms (${num(row.fillPerSec)}/s); caught up ${num(row.messages)} messages in ${num(row.catchUpMs)} ms ` +
          `(${row.pages} pages, page p50 ${ms(row.pageMs.p50)} p99 ${ms(row.pageMs.p99)} ms, ${bytes(row.bytes)}), gaps ${row.gaps}, dup ${row.duplicates}; ${cpuLine(row.cpu)}`,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- broker log (tail) ---\n${target.logTail()}`);
    } finally {
      await target.close();
      await database?.drop();
    }
  }
  return {
    scenario: 'sync',
    title: `sync: a member catching up on ${num(missed)} missed messages`,
    options: { missed, limit, window, senders, textBytes, stores: rows.map((r) => r.store), client: ctx.client },
    data: { rows },
    tables: [syncTable(rows)],
    panels: syncPanels(rows),
    notes: [
      `${senders} senders send ${num(missed)} messages in all (${window} in flight each, ${textBytes}-byte text) into a group of ${senders + 1} while its last member is offline (several senders because the default rate limits give one connection a burst of 2,000 sends, then 100/s). Then the member connects (clean session: nothing waits in a broker session) and calls sync {"convs":{conv:last_seq_seen},"limit":${limit}} until "more" is false. Catch-up = CONNECT → last page; the CPU columns cover the catch-up.`,
      'gaps / dup: seqs missing between the first and the last received, and seqs received twice (both must be 0, DESIGN 3.2 and 3.4).',
    ],
    incomplete: rows.filter((r) => !r.complete).map((r) => `${r.store}: caught up ${r.messages} of ${r.missed} messages (gaps ${r.gaps}; ${r.errors.join('; ') || 'no error'})`),
  };
}

function syncTable(rows: readonly SyncRow[]): Table {
  return {
    headers: ['store', 'missed', 'catch-up ms', 'messages/s', 'pages', 'page p50/p99 ms', 'received', 'gaps/dup', 'connect ms', 'fill (acked/s)', 'gen CPU', 'broker CPU', 'other CPU'],
    rows: rows.map((r) => [
      r.store,
      num(r.missed),
      num(r.catchUpMs),
      num(r.messagesPerSec),
      String(r.pages),
      `${ms(r.pageMs.p50)} / ${ms(r.pageMs.p99)}`,
      bytes(r.bytes),
      `${r.gaps} / ${r.duplicates}`,
      ms(r.connectMs),
      num(r.fillPerSec),
      pct(r.cpu.generatorPct),
      pct(r.cpu.brokerPct),
      pct(r.cpu.otherPct),
    ]),
  };
}

function syncPanels(rows: readonly SyncRow[]): Panel[] {
  return [
    { title: 'Time to catch up', unit: 'ms', groups: rows.map((r) => ({ label: r.store, bars: [{ series: 'catch-up', value: r.catchUpMs, note: `${r.pages} pages` }] })) },
    { title: 'sync page latency', unit: 'ms', groups: rows.map((r) => ({ label: r.store, bars: [{ series: 'p50', value: r.pageMs.p50 }, { series: 'p99', value: r.pageMs.p99 }] })) },
  ];
}
