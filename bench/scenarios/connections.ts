// Scenario 5, connections: idle MQTT connections against Mosquitto (own instance,
// max_connections -1), bare aedes and ours: broker RSS per connection and connect rate
// at --conns (10,000), then a ramp in --step increments until the machine refuses
// (file limit, memory, errors), --max, or --budget seconds per target.
import { int, seconds, targets as parseTargets } from '../lib/args.ts';
import { cpuFigures, type Ctx, type CpuFigures } from '../lib/context.ts';
import { measuredLabel } from './relay.ts';
import { startWorker, type GenWorker } from '../lib/gen.ts';
import { bytes, num, pct, times, type Table } from '../lib/markdown.ts';
import { cpuWindow, fdUsage, maxNofile, memAvailable, readRss } from '../lib/proc.ts';
import type { ScenarioOutput } from '../lib/report.ts';
import { sleep } from '../lib/spawn.ts';
import { perItem, perSecond, ratio } from '../lib/stats.ts';
import type { Panel } from '../lib/svg.ts';
import { NotAvailableError, startTarget, type Target, type TargetName } from '../lib/targets.ts';

export interface Checkpoint {
  connections: number;
  rssBytes: number;
  /** Node brokers: JS heap in use after a full GC (null for Mosquitto). */
  heapBytes: number | null;
  rssPerConnection: number | null;
  /** Connections added in this step per second (CONNECT -> CONNACK, CONNECT_CONCURRENCY in flight per worker). */
  connectRate: number;
  stepMs: number;
  failed: number;
  cpu: CpuFigures;
}

export interface TargetConnections {
  target: TargetName;
  label: string;
  rssIdleBytes: number;
  heapIdleBytes: number | null;
  /** JS heap growth per connection from idle to the first step (after full GCs). */
  heapPerConnection: number | null;
  /**
   * RSS growth per connection between the first checkpoint and the largest one: robust to
   * a Node broker's start-up garbage, which its first GC under load gives back.
   */
  marginalPerConnection: number | null;
  checkpoints: Checkpoint[];
  maxConnections: number;
  stopReason: string;
  lastError: string;
}

export interface ConnectionsData {
  nofileLimit: number;
  nofileWhy: string;
  targets: TargetConnections[];
  ratios: Array<{
    target: TargetName;
    atConnections: number;
    perConnVsMosquitto: number | null;
    perConnVsAedes: number | null;
    marginalVsMosquitto: number | null;
    marginalVsAedes: number | null;
    rateVsMosquitto: number | null;
  }>;
}

/** CONNECTs in flight per generator worker. */
const CONNECT_CONCURRENCY = 64;

/** How many connections worker k holds when the total is n and each holds at most `per`. */
export function perWorkerTargets(n: number, per: number, workers: number): number[] {
  return Array.from({ length: workers }, (_, k) => Math.max(0, Math.min(per, n - k * per)));
}

/** The connection counts to step through: first, then +step up to max. */
export function rampSteps(first: number, step: number, max: number): number[] {
  const out = [Math.min(first, max)];
  while (step > 0 && out[out.length - 1] < max) out.push(Math.min(max, out[out.length - 1] + step));
  return out;
}

/**
 * RSS once it has stopped moving: sampled every 500 ms until two samples in a row differ
 * by less than 0.5 % (at most 10 s). A Node broker still initialising (PGlite) or
 * collecting garbage would otherwise give a baseline that is off by tens of MiB.
 */
async function settledMemory(target: Target): Promise<{ rss: number; heap: number | null }> {
  const pid = target.pid;
  // Node brokers: a full GC first (V8 inspector), so that RSS is live memory, not garbage.
  const heap = await target.gc();
  let prev = readRss(pid);
  let stable = 0;
  for (let i = 0; i < 20 && stable < 2; i++) {
    await sleep(500);
    const now = readRss(pid);
    stable = prev > 0 && Math.abs(now - prev) / prev < 0.005 ? stable + 1 : 0;
    prev = now;
  }
  return { rss: prev, heap };
}

export async function connections(ctx: Ctx): Promise<ScenarioOutput<ConnectionsData>> {
  const v = ctx.values;
  const names = parseTargets(v.targets, ['mosquitto', 'aedes', 'ours']);
  const first = int(v.conns, 'conns', 10000);
  const max = Math.max(first, int(v.max, 'max', 200000));
  const step = int(v.step, 'step', 25000);
  const budgetMs = seconds(v.budget, 'budget', 30);
  const nofile = maxNofile();
  // Each generator worker stays below the file limit; several of them hold the load.
  const perWorker = Math.max(1000, nofile.limit - 200);
  // One source address gives ~28k ephemeral ports per broker port. Beyond that the
  // generator binds 127.0.0.2, .3, ...: explicitly bound ports cannot be shared with other
  // programs' outgoing connections until their TIME_WAIT ends, so only when needed.
  const perSourceAddress = Math.min(max, nofile.limit) > 25000 ? 20000 : 0;
  const incomplete: string[] = [];
  const notes: string[] = [];
  const results: TargetConnections[] = [];

  for (const name of names) {
    let target: Target;
    try {
      ctx.log(`starting ${name}`);
      target = await startTarget(name, {
        cpus: ctx.brokerCpus,
        mosquitto: v.mosquitto === 'system' ? 'system' : 'own',
        nofile: nofile.limit,
        nodeArgs: ['--max-old-space-size=16384'],
        inspect: true,
        ...(name === 'ours' ? ctx.oursOptions() : {}),
      });
    } catch (err) {
      if (!(err instanceof NotAvailableError)) throw err;
      incomplete.push(`${name}: ${err.message}`);
      ctx.log(`NOT RUN ${name}: ${err.message}`);
      continue;
    }
    notes.push(...target.notes.map((n) => `${name}: ${n}`));
    const workers: GenWorker[] = [];
    try {
      results.push(await rampTarget(ctx, target, { first, step, max, budgetMs, perWorker, workers, perSourceAddress }));
    } finally {
      // 'close' makes the workers reset their connections (RST) before they exit.
      for (const w of workers) w.send({ type: 'close' });
      await Promise.all(workers.map((w) => w.child.exited));
      await Promise.all(workers.map((w) => w.child.stop(2000)));
      await target.close();
    }
  }

  const ratios = connectionRatios(results, first);
  return {
    scenario: 'connections',
    title: 'Idle connections: memory per connection and connect rate',
    options: { targets: names, conns: first, max, step, budgetMs, perWorker, client: ctx.client },
    data: { nofileLimit: nofile.limit, nofileWhy: nofile.why, targets: results, ratios },
    tables: connectionTables(results, ratios, first),
    panels: connectionPanels(results, first),
    notes: [
      `Idle = CONNECT (clean session, keepalive 300 s, no subscription) and CONNACK, then nothing; anonymous clients (ours runs with MQTT_ANONYMOUS=true, so no token check at connect). RSS of the broker process from /proc/PID/status once it has settled after each step. "from idle" = (RSS − RSS before the first connection) / connections; "marginal" = RSS growth per connection from the first step to the largest one. The Node brokers run with --inspect on a loopback port and get a full GC through the V8 inspector (HeapProfiler.collectGarbage) before every RSS reading, so that their figures are live memory rather than garbage waiting for the next GC. V8 still keeps freed pages and grows its heap in steps, so their RSS figures move by several KiB per connection between runs; "JS heap per conn" (heap in use after the GC, from the inspector's Runtime.getHeapUsage) is the stable part of a Node broker's cost; the rest is native (sockets, buffers). Ratios use the marginal RSS figure. Node brokers run with --max-old-space-size=16384 so that the V8 heap limit is not what stops them.`,
      `File limit of every process here: ${nofile.why}. A broker is one process, so it cannot hold more connections than that; the generator spreads its connections over worker processes of ${num(perWorker)} each${perSourceAddress ? ', and over source addresses 127.0.0.2.. (about 28k ephemeral ports per source address)' : ''}. Connections are closed with RST at the end (no TIME_WAIT left on the shared machine).`,
      `Connect rate: connections added per second during a step, ${CONNECT_CONCURRENCY} CONNECTs in flight per generator worker (below Mosquitto's listen backlog of 100: more would measure SYN drops and 1 s retransmits); the CPU columns are for the first step. On loopback the kernel's TCP work for both ends of a handshake mostly runs in the connecting process, so the generator tends to saturate first: then the rate is a floor for the broker.`,
      ...notes,
    ],
    incomplete,
  };
}

async function rampTarget(
  ctx: Ctx,
  target: Target,
  o: { first: number; step: number; max: number; budgetMs: number; perWorker: number; workers: GenWorker[]; perSourceAddress: number },
): Promise<TargetConnections> {
  const idle = await settledMemory(target);
  const rssIdle = idle.rss;
  const checkpoints: Checkpoint[] = [];
  const t0 = Date.now();
  let stopReason = `reached --max ${num(o.max)}`;
  let lastError = '';
  let have = 0;
  for (const n of rampSteps(o.first, o.step, o.max)) {
    const wantWorkers = Math.ceil(n / o.perWorker);
    while (o.workers.length < wantWorkers) {
      const k = o.workers.length;
      const w = startWorker(ctx.genCpus, o.perWorker + 200);
      w.send({
        type: 'job',
        job: {
          kind: 'idle',
          endpoint: target.endpoint,
          client: 'raw',
          runId: ctx.runId,
          concurrency: CONNECT_CONCURRENCY,
          keepalive: 300,
          perSourceAddress: o.perSourceAddress,
          offset: k * o.perWorker,
        },
      });
      await w.expect('ready', 60000);
      o.workers.push(w);
    }
    const shares = perWorkerTargets(n, o.perWorker, o.workers.length);
    const close = cpuWindow([
      { name: 'generator', cores: ctx.genCores, pids: () => o.workers.map((w) => w.child.pid) },
      { name: 'broker', cores: ctx.brokerCores, pids: target.pids },
      { name: 'orchestrator', cores: ctx.genCores, pids: () => [process.pid] },
    ]);
    const stepStart = performance.now();
    o.workers.forEach((w, k) => w.send({ type: 'connect', upTo: shares[k] }));
    const answers = await Promise.all(o.workers.map((w) => w.expect('connected', 180000)));
    const stepMs = performance.now() - stepStart;
    const cpu = cpuFigures(ctx, close());
    const total = answers.reduce((a, x) => a + x.total, 0);
    const failed = answers.reduce((a, x) => a + x.failed, 0);
    lastError = answers.map((x) => x.lastError).filter(Boolean).join('; ') || lastError;
    const mem = await settledMemory(target);
    const rss = mem.rss;
    const alive = rss > 0;
    const fds = fdUsage(target.pid);
    const cp: Checkpoint = {
      connections: total,
      rssBytes: rss,
      heapBytes: mem.heap,
      rssPerConnection: perItem(rssIdle, rss, total),
      connectRate: Math.round(perSecond(total - have, stepMs)),
      stepMs: Math.round(stepMs),
      failed,
      cpu,
    };
    checkpoints.push(cp);
    ctx.log(
      `  ${target.name}: ${num(total)} connections (${num(failed)} failed), RSS ${bytes(rss)} = ${bytes(cp.rssPerConnection)}/conn${mem.heap !== null ? `, JS heap ${bytes(mem.heap)}` : ''}, ` +
        `${num(cp.connectRate)} conn/s; gen ${Math.round(cpu.generatorPct)} % broker ${Math.round(cpu.brokerPct)} % other ${Math.round(cpu.otherPct)} %`,
    );
    have = total;
    if (!alive) {
      stopReason = 'broker process died';
      break;
    }
    if (total < n) {
      stopReason =
        fds && fds.open >= fds.limit - 16
          ? `the broker process's file limit: ${num(fds.open)} of RLIMIT_NOFILE ${num(fds.limit)} descriptors open; further connections were refused (${lastError || 'no error text'})`
          : `connections refused or timed out at ${num(total)} (broker has ${fds ? `${num(fds.open)} of ${num(fds.limit)}` : 'an unknown number of'} descriptors open; ${lastError || 'no error text'})`;
      break;
    }
    if (memAvailable() < 2 * 1024 ** 3) {
      stopReason = 'less than 2 GiB of memory left on the machine';
      break;
    }
    if (Date.now() - t0 > o.budgetMs) {
      stopReason = `time budget of ${o.budgetMs / 1000} s used up (the machine takes at least this many)`;
      break;
    }
  }
  const firstCp = checkpoints[0];
  const lastCp = checkpoints[checkpoints.length - 1];
  return {
    target: target.name,
    label: target.label,
    rssIdleBytes: rssIdle,
    heapIdleBytes: idle.heap,
    heapPerConnection: firstCp && firstCp.heapBytes !== null && idle.heap !== null ? perItem(idle.heap, firstCp.heapBytes, firstCp.connections) : null,
    marginalPerConnection:
      firstCp && lastCp && lastCp.connections > firstCp.connections ? (lastCp.rssBytes - firstCp.rssBytes) / (lastCp.connections - firstCp.connections) : null,
    checkpoints,
    maxConnections: checkpoints.length ? Math.max(...checkpoints.map((c) => c.connections)) : 0,
    stopReason,
    lastError,
  };
}

export function connectionRatios(results: readonly TargetConnections[], at: number): ConnectionsData['ratios'] {
  const firstCp = (t: TargetConnections | undefined): Checkpoint | undefined => t?.checkpoints.find((c) => c.connections >= at * 0.99) ?? t?.checkpoints[0];
  const mt = results.find((r) => r.target === 'mosquitto');
  const at_ = results.find((r) => r.target === 'aedes');
  const m = firstCp(mt);
  const a = firstCp(at_);
  return results.map((r) => {
    const c = firstCp(r);
    return {
      target: r.target,
      atConnections: c?.connections ?? 0,
      perConnVsMosquitto: ratio(c?.rssPerConnection, m?.rssPerConnection),
      perConnVsAedes: ratio(c?.rssPerConnection, a?.rssPerConnection),
      marginalVsMosquitto: ratio(r.marginalPerConnection, mt?.marginalPerConnection),
      marginalVsAedes: ratio(r.marginalPerConnection, at_?.marginalPerConnection),
      rateVsMosquitto: ratio(c?.connectRate, m?.connectRate),
    };
  });
}

function connectionTables(results: readonly TargetConnections[], ratios: ConnectionsData['ratios'], at: number): Table[] {
  const main: Table = {
    title: `At ${num(at)} idle connections`,
    headers: ['target', 'connections', 'RSS idle', 'RSS', 'RSS per conn (from idle)', 'RSS per conn (marginal)', 'JS heap per conn', 'connect rate /s', 'gen CPU', 'broker CPU', 'other CPU', 'rate measured', 'marginal vs mosquitto', 'marginal vs aedes', 'rate vs mosquitto'],
    rows: results.map((r, i) => {
      const c = r.checkpoints[0];
      return [
        r.target,
        num(c?.connections),
        bytes(r.rssIdleBytes),
        bytes(c?.rssBytes),
        bytes(c?.rssPerConnection),
        bytes(r.marginalPerConnection),
        r.heapPerConnection === null ? '' : bytes(r.heapPerConnection),
        num(c?.connectRate),
        pct(c?.cpu.generatorPct),
        pct(c?.cpu.brokerPct),
        pct(c?.cpu.otherPct),
        c ? measuredLabel(c.cpu) : '',
        r.target === 'mosquitto' ? '' : times(ratios[i].marginalVsMosquitto),
        r.target === 'aedes' ? '' : times(ratios[i].marginalVsAedes),
        r.target === 'mosquitto' ? '' : times(ratios[i].rateVsMosquitto),
      ];
    }),
  };
  const ramp: Table = {
    title: 'As many as the machine takes',
    headers: ['target', 'most connections held', 'RSS there', 'RSS per connection there', 'stopped because'],
    rows: results.map((r) => {
      const best = r.checkpoints.reduce<Checkpoint | undefined>((b, c) => (!b || c.connections > b.connections ? c : b), undefined);
      return [r.target, num(r.maxConnections), bytes(best?.rssBytes), bytes(best?.rssPerConnection), r.stopReason];
    }),
    alignRight: [false, true, true, true, false],
  };
  return [main, ramp];
}

function connectionPanels(results: readonly TargetConnections[], at: number): Panel[] {
  const group = (label: string, value: (c: Checkpoint | undefined, r: TargetConnections) => number | null) => ({
    label,
    bars: results.map((r) => ({ series: r.target, value: value(r.checkpoints[0], r) })),
  });
  return [
    {
      title: 'Broker RSS per idle connection',
      unit: 'bytes',
      groups: [
        group(`from idle to ${num(at)}`, (c) => c?.rssPerConnection ?? null),
        group('marginal, first → largest step', (_c, r) => r.marginalPerConnection),
      ],
    },
    { title: 'Connect rate (CONNECT -> CONNACK)', unit: 'connections/s', groups: [group('connections/s', (c) => c?.connectRate ?? null)] },
    { title: 'Most idle connections held', unit: 'connections', groups: [group('connections', (_c, r) => r.maxConnections)] },
  ];
}
