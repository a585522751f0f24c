// Scenario 1, relay: the same raw MQTT load against Mosquitto, bare aedes and our broker,
// side by side in one run. Per target, QoS and load: messages/s, latency, CPU of both sides.
import { clientKind, int, list, qosList, seconds, targets as parseTargets } from '../lib/args.ts';
import type { ClientKind } from '../gen/client.ts';
import { DISTURBED_PCT, cpuLine, measureCpu, type Ctx, type CpuFigures } from '../lib/context.ts';
import { collectResults, startJobs } from '../lib/gen.ts';
import { ms, num, pct, times, type Table } from '../lib/markdown.ts';
import type { RelayJob, RelayResult } from '../lib/protocol.ts';
import type { ScenarioOutput } from '../lib/report.ts';
import { fromData, mergeHistograms, perSecond, ratio, shares, summarizeMs, type LatencySummary } from '../lib/stats.ts';
import type { Panel } from '../lib/svg.ts';
import { NotAvailableError, startTarget, type Target, type TargetName } from '../lib/targets.ts';

export type Load = 'max' | 'fixed';

export interface RelayParams {
  client?: ClientKind;
  pairs: number;
  payloadBytes: number;
  qos: 0 | 1;
  /** closed loop window per pair ('max'), or total messages/s ('fixed') */
  window: number;
  rate: number;
  warmupMs: number;
  durationMs: number;
}

export interface RelayRow {
  target: TargetName;
  /** The generator's MQTT client. */
  client: ClientKind;
  label: string;
  qos: 0 | 1;
  load: Load;
  /** 'max': messages in flight per pair; 'fixed': offered messages/s. */
  offered: number;
  msgsPerSec: number;
  latencyMs: LatencySummary;
  sent: number;
  lost: number;
  duplicates: number;
  cpu: CpuFigures;
}

export async function runRelayPhase(ctx: Ctx, target: Target, p: RelayParams, topicPrefix: string): Promise<Omit<RelayRow, 'target' | 'label'>> {
  const load: Load = p.rate > 0 ? 'fixed' : 'max';
  const jobs: RelayJob[] = shares(p.pairs, ctx.workers).map(([from, to]) => ({
    kind: 'relay',
    endpoint: target.endpoint,
    client: p.client ?? ctx.client,
    runId: ctx.runId,
    from,
    to,
    qos: p.qos,
    payloadBytes: p.payloadBytes,
    window: p.window,
    rate: p.rate > 0 ? (p.rate * (to - from)) / p.pairs : 0,
    topicPrefix,
  }));
  const run = await startJobs(jobs, ctx.genCpus, 120000);
  await target.prepare();
  const startAt = Date.now() + 300;
  const drainMs = 3000;
  for (const w of run.workers) w.send({ type: 'go', startAt, warmupMs: p.warmupMs, durationMs: p.durationMs, drainMs });
  const cpu = await measureCpu(ctx, { genPids: () => run.pids, brokerPids: target.pids, startAt, warmupMs: p.warmupMs, durationMs: p.durationMs });
  const results = await collectResults<RelayResult>(run, p.warmupMs + p.durationMs + drainMs + 60000, 'relay');
  const received = results.reduce((a, r) => a + r.receivedDuringWindow, 0);
  const sent = results.reduce((a, r) => a + r.sentInWindow, 0);
  const lost = results.reduce((a, r) => a + (r.sentInWindow - r.receivedOfWindow), 0);
  const latency = summarizeMs(mergeHistograms(results.map((r) => fromData(r.latencyUs))));
  const row = {
    client: p.client ?? ctx.client,
    qos: p.qos,
    load,
    offered: load === 'fixed' ? p.rate : p.window,
    msgsPerSec: Math.round(perSecond(received, p.durationMs)),
    latencyMs: latency,
    sent,
    lost,
    duplicates: results.reduce((a, r) => a + r.duplicates, 0),
    cpu,
  };
  ctx.log(
    `  ${target.name} [${row.client}] qos${p.qos} ${load}${load === 'fixed' ? ` ${p.rate}/s` : ` window ${p.window}`}: ${num(row.msgsPerSec)} msg/s, ` +
      `p50 ${ms(latency.p50)} p99 ${ms(latency.p99)} p999 ${ms(latency.p999)} ms, lost ${lost}; ${cpuLine(cpu)}`,
  );
  return row;
}

export interface RelayData {
  rows: RelayRow[];
  ratios: Array<{ qos: 0 | 1; load: Load; target: TargetName; msgsPerSecVsMosquitto: number | null; msgsPerSecVsAedes: number | null; p99VsMosquitto: number | null; p99VsAedes: number | null }>;
}

export async function relay(ctx: Ctx): Promise<ScenarioOutput<RelayData>> {
  const v = ctx.values;
  const names = parseTargets(v.targets, ['mosquitto', 'aedes', 'ours']);
  const qoses = qosList(v.qos, ['0', '1']);
  const pairs = int(v.pairs, 'pairs', 100);
  const payloadBytes = int(v.payload, 'payload', 200);
  const window = int(v.window, 'window', 10);
  // 'fixed' load: the same offered rate for every target, far below saturation, so that
  // latencies compare brokers and not queue lengths. --rate 0 skips it.
  const rate = int(v.rate, 'rate', 5000);
  const loads: Load[] = rate > 0 ? ['max', 'fixed'] : ['max'];
  const warmupMs = seconds(v.warmup, 'warmup', 2);
  const durationMs = seconds(v.duration, 'duration', 6);
  // --client raw,mqttjs runs every phase with each generator client: the generator's own
  // cost, side by side.
  const clients = list(v.client, ['raw']).map(clientKind);
  const incomplete: string[] = [];
  const notes: string[] = [];

  const started: Target[] = [];
  try {
    for (const name of names) {
      try {
        ctx.log(`starting ${name}`);
        const t = await startTarget(name, {
          cpus: ctx.brokerCpus,
          mosquitto: v.mosquitto === 'system' ? 'system' : 'own',
          nofile: 65536,
          ...(name === 'ours' ? ctx.oursOptions() : {}),
        });
        started.push(t);
        notes.push(...t.notes.map((n) => `${name}: ${n}`));
      } catch (err) {
        if (!(err instanceof NotAvailableError)) throw err;
        incomplete.push(`${name}: ${err.message}`);
        ctx.log(`NOT RUN ${name}: ${err.message}`);
      }
    }
    const rows: RelayRow[] = [];
    // Interleaved: for each QoS and load, every target in turn, so that drift on the
    // machine hits all targets alike.
    for (const client of clients) {
      for (const qos of qoses) {
        for (const load of loads) {
          for (const t of started) {
            const r = await runRelayPhase(
              ctx,
              t,
              { client, pairs, payloadBytes, qos, window, rate: load === 'fixed' ? rate : 0, warmupMs, durationMs },
              `bench/${ctx.runId}/${client}${qos}${load}`,
            );
            rows.push({ target: t.name, label: t.label, ...r });
          }
        }
      }
    }
    const data: RelayData = { rows, ratios: relayRatios(rows) };
    return {
      scenario: 'relay',
      title: 'Relay: raw MQTT load, side by side',
      options: { targets: names, qos: qoses, pairs, payloadBytes, window, rate, warmupMs, durationMs, clients, workers: ctx.workers },
      data,
      tables: [relayTable(rows, data.ratios, { pairs, payloadBytes, window, rate, durationMs, clients })],
      panels: relayPanels(rows),
      notes: [
        `${pairs} pairs (publisher + subscriber on bench/{run}/{i}), ${payloadBytes}-byte payloads, clean sessions. "max" = closed loop with ${window} messages in flight per pair (throughput at saturation; latency there is mostly queueing). "fixed" = open loop at ${num(rate)} msg/s in total, the same for every target (latency at equal load).`,
        'Latency = publish by the generator to delivery at the subscriber, both in the same generator process; msg/s = deliveries during the measured window.',
        '"measured" names the side that used ≥ 90 % of its pinned core(s): "generator" means the figure is a floor for the broker, not the broker\'s limit. "other CPU" is what the rest of the machine used meanwhile (other users\' builds and tests, kernel softirq); "(disturbed)" marks rows where it exceeded 15 % of a core.',
        `Generator client: ${clients.map((c) => (c === 'raw' ? 'raw = lean MQTT 3.1.1 client on mqtt-packet (bench/gen/raw-client.ts)' : 'mqttjs = MQTT.js 5')).join('; ')}; ${ctx.workers} worker process(es) on CPU ${ctx.genCpus}.`,
        ...notes,
      ],
      incomplete,
    };
  } finally {
    for (const t of started) await t.close();
  }
}

export function relayRatios(rows: readonly RelayRow[]): RelayData['ratios'] {
  const out: RelayData['ratios'] = [];
  for (const r of rows) {
    const peer = (name: TargetName): RelayRow | undefined => rows.find((x) => x.target === name && x.client === r.client && x.qos === r.qos && x.load === r.load);
    const m = peer('mosquitto');
    const a = peer('aedes');
    out.push({
      qos: r.qos,
      load: r.load,
      target: r.target,
      msgsPerSecVsMosquitto: ratio(r.msgsPerSec, m?.msgsPerSec),
      msgsPerSecVsAedes: ratio(r.msgsPerSec, a?.msgsPerSec),
      p99VsMosquitto: ratio(r.latencyMs.p99, m?.latencyMs.p99),
      p99VsAedes: ratio(r.latencyMs.p99, a?.latencyMs.p99),
    });
  }
  return out;
}

function relayTable(rows: readonly RelayRow[], ratios: RelayData['ratios'], o: { pairs: number; payloadBytes: number; window: number; rate: number; durationMs: number; clients: ClientKind[] }): Table {
  return {
    title: `${o.pairs} pairs, ${o.payloadBytes} B, ${o.durationMs / 1000} s measured per row`,
    headers: ['target', 'generator', 'QoS', 'load', 'msg/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'lost', 'gen CPU', 'broker CPU', 'other CPU', 'measured', 'msg/s vs mosquitto', 'msg/s vs aedes'],
    rows: rows.map((r, i) => [
      r.target,
      r.client,
      String(r.qos),
      r.load === 'max' ? `max (window ${r.offered})` : `${num(r.offered)}/s`,
      num(r.msgsPerSec),
      ms(r.latencyMs.p50),
      ms(r.latencyMs.p99),
      ms(r.latencyMs.p999),
      num(r.lost),
      pct(r.cpu.generatorPct),
      pct(r.cpu.brokerPct),
      pct(r.cpu.otherPct),
      measuredLabel(r.cpu),
      r.target === 'mosquitto' ? '' : times(ratios[i].msgsPerSecVsMosquitto),
      r.target === 'aedes' ? '' : times(ratios[i].msgsPerSecVsAedes),
    ]),
  };
}

export function measuredLabel(c: CpuFigures): string {
  const base = c.bottleneck === 'neither' ? 'neither saturated' : c.bottleneck;
  return c.otherPct > DISTURBED_PCT ? `${base} (disturbed)` : base;
}

function relayPanels(rows: readonly RelayRow[]): Panel[] {
  const groups = (load: Load, value: (r: RelayRow) => number, note: (r: RelayRow) => string) =>
    [0, 1].flatMap((qos) => {
      const rs = rows.filter((r) => r.qos === qos && r.load === load);
      const several = new Set(rows.map((r) => r.client)).size > 1;
      return rs.length ? [{ label: `QoS ${qos}`, bars: rs.map((r) => ({ series: several ? `${r.target} [${r.client}]` : r.target, value: value(r), note: note(r) })) }] : [];
    });
  const panels: Panel[] = [
    {
      title: 'Throughput at saturation (closed loop)',
      unit: 'messages/s',
      groups: groups('max', (r) => r.msgsPerSec, (r) => `gen ${Math.round(r.cpu.generatorPct)} % · broker ${Math.round(r.cpu.brokerPct)} %`),
    },
  ];
  if (rows.some((r) => r.load === 'fixed')) {
    panels.push({
      title: `p99 latency at a fixed ${num(rows.find((r) => r.load === 'fixed')?.offered)} msg/s`,
      unit: 'ms',
      log: true,
      groups: groups('fixed', (r) => r.latencyMs.p99, (r) => `p50 ${ms(r.latencyMs.p50)} · p99.9 ${ms(r.latencyMs.p999)}`),
    });
  }
  return panels;
}
