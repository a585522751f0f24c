// Scenario 4, fanout: one sender into groups of --sizes members (sender included), with
// fan-out on write (FANOUT_WRITE_MAX above the size: one publish per member inbox) and on
// read (FANOUT_WRITE_MAX=1: one publish on group/{conv}, members subscribe to it).
// Reference: Mosquitto with the same number of subscribers on one plain topic.
import { rmSync } from 'node:fs';
import { int, list, oneOf, seconds, targets as parseTargets } from '../lib/args.ts';
import { cpuFigures, cpuLine, type Ctx, type CpuFigures } from '../lib/context.ts';
import { collectResults, startJobs } from '../lib/gen.ts';
import { ms, num, pct, times, type Table } from '../lib/markdown.ts';
import { cpuWindow, maxNofile } from '../lib/proc.ts';
import type { ChatUser, FanoutJob, FanoutResult } from '../lib/protocol.ts';
import type { ScenarioOutput } from '../lib/report.ts';
import { seedInChild } from '../lib/seeding.ts';
import { tempDir } from '../lib/spawn.ts';
import { fromData, perSecond, ratio, summarizeMs, type LatencySummary } from '../lib/stats.ts';
import type { Panel } from '../lib/svg.ts';
import { NotAvailableError, createDatabase, startTarget, type Target, type TargetName } from '../lib/targets.ts';
import { createGroup } from '../gen/rpc.ts';
import { measuredLabel } from './relay.ts';
import { startOursOn, type Store } from './chat-1to1.ts';

type Mode = 'write' | 'read' | 'plain';

export interface FanoutRow {
  target: TargetName;
  mode: Mode;
  size: number;
  receivers: number;
  messages: number;
  complete: number;
  deliveries: number;
  deliveriesPerSec: number;
  deliveryMs: LatencySummary;
  completeMs: LatencySummary;
  ackMs: LatencySummary | null;
  duplicates: number;
  errors: Record<string, number>;
  connectMs: number;
  setupMs: number;
  cpu: CpuFigures;
}

/** Messages per size: about `deliveries` deliveries in all, between min and max messages. */
export function messagesFor(size: number, deliveries: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, Math.round(deliveries / Math.max(1, size - 1))));
}

async function runFanoutJob(ctx: Ctx, target: Target, job: FanoutJob, maxMs: number): Promise<{ r: FanoutResult; cpu: CpuFigures }> {
  const nofile = maxNofile().limit;
  const run = await startJobs([job], ctx.genCpus, 300000, nofile);
  await target.prepare();
  const startAt = Date.now() + 300;
  run.workers[0].send({ type: 'go', startAt, warmupMs: 0, durationMs: maxMs, drainMs: 5000 });
  await new Promise((r) => setTimeout(r, 300));
  const close = cpuWindow([
    { name: 'generator', cores: ctx.genCores, pids: () => run.pids },
    { name: 'broker', cores: ctx.brokerCores, pids: target.pids },
    { name: 'orchestrator', cores: ctx.genCores, pids: () => [process.pid] },
  ]);
  let cpu: CpuFigures | undefined;
  const [r] = await collectResults<FanoutResult>(run, maxMs + 120000, 'fanout', () => {
    cpu = cpuFigures(ctx, close());
  });
  return { r, cpu: cpu ?? cpuFigures(ctx, close()) };
}

function toRow(target: TargetName, mode: Mode, size: number, r: FanoutResult, cpu: CpuFigures, setupMs: number): FanoutRow {
  const ack = fromData(r.ackUs);
  return {
    target,
    mode,
    size,
    receivers: r.receivers,
    messages: r.sent,
    complete: r.complete,
    deliveries: r.deliveries,
    deliveriesPerSec: Math.round(perSecond(r.deliveries, r.spanMs)),
    deliveryMs: summarizeMs(fromData(r.deliveryUs)),
    completeMs: summarizeMs(fromData(r.completeUs)),
    ackMs: ack.total ? summarizeMs(ack) : null,
    duplicates: r.duplicates,
    errors: r.errors,
    connectMs: Math.round(r.connectMs),
    setupMs: Math.round(setupMs),
    cpu,
  };
}

export async function fanout(ctx: Ctx): Promise<ScenarioOutput<{ rows: FanoutRow[]; ratios: Array<{ mode: Mode; size: number; vsMosquitto: number | null }> }>> {
  // Our broker is needed unless only plain brokers were asked for: fail now if it is not there.
  if (ctx.values.targets === undefined || ctx.values.targets.split(',').includes('ours')) ctx.ours();
  const v = ctx.values;
  const sizes = list(v.sizes, ['100', '1000', '10000']).map((s) => int(s, 'sizes', 0)).filter((n) => n >= 2);
  const modes = list(v.modes, ['write', 'read']).map((m) => oneOf(m, ['write', 'read'] as const, 'modes'));
  const names = parseTargets(v.targets, ['mosquitto', 'ours']);
  const store = oneOf(list(v.store, ['pglite'])[0], ['pglite', 'postgres'] as const, 'store') as Store;
  const window = int(v.window, 'window', 4);
  const fixedMessages = v.messages ? int(v.messages, 'messages', 20) : 0;
  const maxMs = seconds(v.duration, 'duration', 30);
  const payloadBytes = int(v.payload, 'payload', 200);
  const maxSize = Math.max(...sizes);
  const rows: FanoutRow[] = [];
  const incomplete: string[] = [];
  const notes: string[] = [];
  const msgs = (size: number): number => fixedMessages || messagesFor(size, 200000, 20, 1000);

  if (names.includes('mosquitto') || names.includes('aedes')) {
    for (const name of names.filter((n): n is 'mosquitto' | 'aedes' => n !== 'ours')) {
      const target = await startTarget(name, { cpus: ctx.brokerCpus, mosquitto: v.mosquitto === 'system' ? 'system' : 'own', nofile: maxNofile().limit });
      notes.push(...target.notes.map((n) => `${name}: ${n}`));
      try {
        for (const size of sizes) {
          const job: FanoutJob = {
            kind: 'fanout',
            endpoint: target.endpoint,
            client: ctx.client,
            runId: ctx.runId,
            qos: 1,
            idPrefix: `${ctx.runId}-${name}-${size}`,
            plain: { topic: `bench/${ctx.runId}/fan/${size}`, receivers: size - 1 },
            payloadBytes,
            messages: msgs(size),
            window,
            timeoutMs: 20000,
            connectConcurrency: 100,
            perSourceAddress: 0,
          };
          const { r, cpu } = await runFanoutJob(ctx, target, job, maxMs);
          const row = toRow(name, 'plain', size, r, cpu, 0);
          rows.push(row);
          logRow(ctx, row);
        }
      } finally {
        await target.close();
      }
    }
  }

  if (names.includes('ours')) {
    const dataDir = tempDir('bench-fanout-');
    const database = store === 'postgres' ? await createDatabase(`${ctx.runId}_fan`) : undefined;
    try {
      ctx.log(`seeding ${num(maxSize)} users (store API + device tokens, see bench/lib/seed.ts)`);
      const senderName = `b${ctx.runId}snd`;
      const memberNames = Array.from({ length: maxSize - 1 }, (_, i) => `b${ctx.runId}m${i}`);
      const seeded = await seedInChild(ctx.ours().root, ctx.brokerCpus, {
        dataDir: database ? undefined : dataDir,
        databaseUrl: database?.url,
        names: [senderName, ...memberNames],
        device: 'd1',
      });
      ctx.log(`  seeded in ${num(seeded.ms / 1000, 1)} s`);
      const [sender, ...members] = seeded.users;
      for (const mode of modes) {
        const { target } = await startOursOn(ctx, store, {
          dataDir,
          database,
          fanoutWriteMax: mode === 'write' ? maxSize + 1 : 1,
          // 10,000 member names do not fit the default 64 KiB request.
          env: { JWT_SECRET: seeded.jwtSecret, MAX_PAYLOAD_BYTES: String(4 * 1024 * 1024) },
        });
        try {
          for (const size of sizes) {
            const t0 = performance.now();
            const { conv, topic } = await createGroup(target.endpoint, sender, members.slice(0, size - 1), `fan-${mode}-${size}`);
            if (mode === 'read' && !topic) {
              incomplete.push(`ours read ${size}: group.info of a ${size}-member group with FANOUT_WRITE_MAX=1 carries no "topic" (DESIGN 5 says it should)`);
              continue;
            }
            if (mode === 'write' && topic) notes.push(`ours write ${size}: group.info carried topic ${topic} although FANOUT_WRITE_MAX=${maxSize + 1}`);
            const setupMs = performance.now() - t0;
            const job: FanoutJob = {
              kind: 'fanout',
              endpoint: target.endpoint,
              client: ctx.client,
              runId: ctx.runId,
              qos: 1,
              // Send ids must be unique per sender: a repeated id is a resend (DESIGN 3.3).
              idPrefix: `${ctx.runId}-${mode}-${size}`,
              chat: { sender, conv, receivers: members.slice(0, size - 1), extraTopics: mode === 'read' && topic ? [topic] : [], inbox: true },
              payloadBytes,
              messages: msgs(size),
              window,
              timeoutMs: 20000,
              connectConcurrency: 100,
              perSourceAddress: 0,
            };
            const { r, cpu } = await runFanoutJob(ctx, target, job, maxMs);
            const row = toRow('ours', mode, size, r, cpu, setupMs);
            rows.push(row);
            logRow(ctx, row);
          }
        } catch (err) {
          throw new Error(`${(err as Error).message}\n--- broker log (tail) ---\n${target.logTail()}`);
        } finally {
          await target.close();
        }
      }
    } catch (err) {
      if (err instanceof NotAvailableError) incomplete.push(`ours: ${err.message}`);
      else throw err;
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      await database?.drop();
    }
  }

  const ratios = rows
    .filter((r) => r.target === 'ours')
    .map((r) => ({ mode: r.mode, size: r.size, vsMosquitto: ratio(r.deliveriesPerSec, rows.find((m) => m.target === 'mosquitto' && m.size === r.size)?.deliveriesPerSec) }));
  return {
    scenario: 'fanout',
    title: 'Fan-out: one sender into a group',
    options: { sizes, modes, targets: names, store, window, messages: sizes.map(msgs), payloadBytes, maxMs, client: ctx.client },
    data: { rows, ratios },
    tables: [fanoutTable(rows, ratios)],
    panels: fanoutPanels(rows),
    notes: [
      `A group of N members = the sender + N−1 receivers, every receiver connected (clean session) in one generator process, QoS 1 subscriptions. The sender keeps ${window} messages in flight; a message is complete when all N−1 receivers have it. deliveries/s = deliveries / (first send → last delivery). Latency = send → each delivery.`,
      'Ours: write = FANOUT_WRITE_MAX above the size (one publish per member inbox chat/{user}/in), read = FANOUT_WRITE_MAX=1 (one publish on group/{conv}; receivers subscribe to the topic group.info names). Receivers subscribe to their inbox in both modes, as client-lib does. Members were seeded through the store with device tokens (bench/lib/seed.ts), the group made with one group.create RPC (MAX_PAYLOAD_BYTES raised to 4 MiB for the 10,000-name request) before receivers connect.',
      `Mosquitto reference: the same number of subscribers on one plain topic, ${payloadBytes}-byte payloads, QoS 1.`,
      '"receivers connected in s": CONNECT + SUBSCRIBEs of all receivers, 100 at a time, before the measurement: anonymous for Mosquitto, token-authenticated chat users (inbox, device topic, group topic) for ours.',
      ...notes,
    ],
    incomplete,
  };
}

function logRow(ctx: Ctx, r: FanoutRow): void {
  ctx.log(
    `  ${r.target} ${r.mode} ${num(r.size)}: ${r.complete}/${r.messages} complete, ${num(r.deliveriesPerSec)} deliveries/s, ` +
      `delivery p50 ${ms(r.deliveryMs.p50)} p99 ${ms(r.deliveryMs.p99)} ms, all-members p99 ${ms(r.completeMs.p99)} ms` +
      `${r.ackMs ? `, ack p99 ${ms(r.ackMs.p99)} ms` : ''}, dup ${r.duplicates}, errors ${JSON.stringify(r.errors)}, connect ${num(r.connectMs)} ms; ${cpuLine(r.cpu)}`,
  );
}

function fanoutTable(rows: readonly FanoutRow[], ratios: Array<{ mode: Mode; size: number; vsMosquitto: number | null }>): Table {
  return {
    headers: ['target', 'fan-out', 'members', 'receivers connected in s', 'messages complete', 'deliveries/s', 'delivery p50/p99 ms', 'all members p99 ms', 'send->ack p99 ms', 'gen CPU', 'broker CPU', 'other CPU', 'measured', 'vs mosquitto'],
    rows: rows.map((r) => [
      r.target,
      r.mode,
      num(r.size),
      num(r.connectMs / 1000, 1),
      `${r.complete} / ${r.messages}`,
      num(r.deliveriesPerSec),
      `${ms(r.deliveryMs.p50)} / ${ms(r.deliveryMs.p99)}`,
      ms(r.completeMs.p99),
      r.ackMs ? ms(r.ackMs.p99) : '',
      pct(r.cpu.generatorPct),
      pct(r.cpu.brokerPct),
      pct(r.cpu.otherPct),
      measuredLabel(r.cpu),
      r.target === 'ours' ? times(ratios.find((x) => x.mode === r.mode && x.size === r.size)?.vsMosquitto) : '',
    ]),
  };
}

function fanoutPanels(rows: readonly FanoutRow[]): Panel[] {
  const sizes = [...new Set(rows.map((r) => r.size))];
  const series = (r: FanoutRow): string => (r.target === 'ours' ? `ours, ${r.mode}` : r.target);
  return [
    {
      title: 'Deliveries per second',
      unit: 'deliveries/s',
      groups: sizes.map((s) => ({
        label: `${num(s)} members`,
        bars: rows
          .filter((r) => r.size === s)
          .map((r) => ({ series: series(r), value: r.deliveriesPerSec, note: `gen ${Math.round(r.cpu.generatorPct)} % · broker ${Math.round(r.cpu.brokerPct)} %` })),
      })),
    },
    {
      title: 'p99 send -> delivery',
      unit: 'ms',
      log: true,
      groups: sizes.map((s) => ({ label: `${num(s)} members`, bars: rows.filter((r) => r.size === s).map((r) => ({ series: series(r), value: r.deliveryMs.p99 })) })),
    },
  ];
}
