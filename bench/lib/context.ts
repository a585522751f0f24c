// What every scenario gets: parsed options, CPU split, a run id, and the helpers that
// measure a window of a run (CPU of generator and broker, which side was saturated).
import { randomBytes } from 'node:crypto';
import { clientKind, int, type Values } from './args.ts';
import { cpuWindow, type CpuWindowResult } from './proc.ts';
import { bottleneck, parseCpuList, type Bottleneck } from './stats.ts';
import { sleep } from './spawn.ts';
import { oursSource, type OursSource } from './source.ts';
import type { ClientKind } from '../gen/client.ts';

export interface Ctx {
  argv: string[];
  values: Values;
  runId: string;
  genCpus: string;
  brokerCpus: string;
  genCores: number;
  brokerCores: number;
  workers: number;
  client: ClientKind;
  startedAt: Date;
  log(msg: string): void;
  /** The code "ours" runs (--ours-ref), prepared on first use. */
  ours(): OursSource;
  /** The code "ours" ran from, when it ran at all. */
  oursUsed(): string | undefined;
  /** Target options common to every start of "ours". */
  oursOptions(): { oursRoot: string; oursDescribe: string };
  cleanup(): void;
}

export function makeCtx(argv: string[], values: Values): Ctx {
  const genCpus = values['gen-cpus'];
  const brokerCpus = values['broker-cpus'];
  let source: OursSource | undefined;
  const ours = (): OursSource => (source ??= oursSource(values['ours-ref']));
  return {
    ours,
    oursUsed: () => source?.describe,
    oursOptions: () => ({ oursRoot: ours().root, oursDescribe: ours().describe }),
    cleanup: () => source?.cleanup(),
    argv,
    values,
    runId: randomBytes(3).toString('hex'),
    genCpus,
    brokerCpus,
    genCores: genCpus ? parseCpuList(genCpus).length : 0,
    brokerCores: brokerCpus ? parseCpuList(brokerCpus).length : 0,
    workers: Math.max(1, int(values.workers, 'workers', 1)),
    client: clientKind(values.client),
    startedAt: new Date(),
    log: (msg) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`),
  };
}

export interface CpuFigures {
  generatorPct: number;
  brokerPct: number;
  orchestratorPct: number;
  /** Busy percent of each core over the window, every process included. */
  cores: Record<string, number>;
  /** CPU used by everything else on the machine (other users' builds, tests, softirq), % of one core. */
  otherPct: number;
  /** Which side was saturated: the figure measured that side. */
  bottleneck: Bottleneck;
}

export function cpuFigures(ctx: Ctx, w: CpuWindowResult): CpuFigures {
  const g = w.groups.generator?.cpuPct ?? 0;
  const b = w.groups.broker?.cpuPct ?? 0;
  const o = w.groups.orchestrator?.cpuPct ?? 0;
  const busy = Object.values(w.cores).reduce((a, x) => a + x, 0);
  return {
    generatorPct: g,
    brokerPct: b,
    orchestratorPct: o,
    cores: w.cores,
    otherPct: Math.max(0, Math.round((busy - g - b - o) * 10) / 10),
    bottleneck: bottleneck({ cpuPct: g, cores: Math.max(1, ctx.genCores) }, { cpuPct: b, cores: Math.max(1, ctx.brokerCores) }),
  };
}

/** Sleep until startAt + warmup, then measure CPU over durationMs. */
export async function measureCpu(
  ctx: Ctx,
  o: { genPids: () => number[]; brokerPids: () => number[]; startAt: number; warmupMs: number; durationMs: number },
): Promise<CpuFigures> {
  const wait = o.startAt + o.warmupMs - Date.now();
  if (wait > 0) await sleep(wait);
  const close = cpuWindow([
    { name: 'generator', cores: ctx.genCores, pids: o.genPids },
    { name: 'broker', cores: ctx.brokerCores, pids: o.brokerPids },
    { name: 'orchestrator', cores: ctx.genCores, pids: () => [process.pid] },
  ]);
  await sleep(o.durationMs);
  return cpuFigures(ctx, close());
}

/** One line for the progress log: "gen 98 % / broker 41 % -> generator-bound". */
export function cpuLine(c: CpuFigures): string {
  return (
    `gen ${Math.round(c.generatorPct)} % / broker ${Math.round(c.brokerPct)} % / other ${Math.round(c.otherPct)} % -> ` +
    `${c.bottleneck === 'neither' ? 'neither saturated' : `${c.bottleneck}-bound`}${c.otherPct > DISTURBED_PCT ? ' (DISTURBED by other load)' : ''}`
  );
}

/** Above this much CPU of other processes a figure is flagged as disturbed. */
export const DISTURBED_PCT = 15;

/** Exit status of a run with parts that could not run. */
export const EXIT_INCOMPLETE = 3;
