// npm run bench -- SCENARIO [options]
// Runs one benchmark scenario and writes bench/results/SCENARIO.{json,md,svg} and the
// README section. See bench/README.md for the scenarios and their options.
import { parse } from './lib/args.ts';
import { EXIT_INCOMPLETE, makeCtx, type Ctx } from './lib/context.ts';
import { boostAutogroup, pin, renice } from './lib/proc.ts';
import { setNice } from './lib/spawn.ts';
import { commandLine, gitInfo, machineInfo, writeReport, type Report, type ScenarioOutput } from './lib/report.ts';
import { NotAvailableError } from './lib/targets.ts';
import { relay } from './scenarios/relay.ts';
import { connections } from './scenarios/connections.ts';
import { chat1to1 } from './scenarios/chat-1to1.ts';
import { commit } from './scenarios/commit.ts';
import { fanout } from './scenarios/fanout.ts';
import { sync } from './scenarios/sync.ts';

type Runner = (ctx: Ctx) => Promise<ScenarioOutput<unknown>>;

const SCENARIOS: Record<string, { run: Runner; summary: string }> = {
  relay: { run: relay, summary: 'raw MQTT relay: Mosquitto vs bare aedes vs ours (msg/s, p50/p99/p99.9)' },
  connections: { run: connections, summary: 'idle connections: RSS per connection and connect rate, up to what the machine takes' },
  'chat-1to1': { run: chat1to1, summary: 'durable 1:1 sends on PGlite and Postgres (acked/s, send->ack, send->deliver) vs bare aedes QoS 1' },
  commit: { run: commit, summary: 'durable acks/s against the single-commit limit of the same database' },
  fanout: { run: fanout, summary: 'one sender into groups of 100 / 1,000 / 10,000 (write and read fan-out) vs Mosquitto' },
  sync: { run: sync, summary: 'a member catching up on 10,000 missed messages with the sync RPC' },
};

const HELP = `usage: npm run bench -- SCENARIO [options]

scenarios:
${Object.entries(SCENARIOS)
  .map(([k, v]) => `  ${k.padEnd(12)} ${v.summary}`)
  .join('\n')}

common options:
  --targets a,b,c       mosquitto, aedes, ours (default: all the scenario uses)
  --gen-cpus 0          CPUs of the load generator (taskset list)
  --broker-cpus 1       CPUs of the broker under test
  --workers 1           generator worker processes
  --client raw|mqttjs   generator MQTT client (default raw: mqtt-packet based; relay takes raw,mqttjs)
  --mosquitto own|system  a private Mosquitto (default; set_tcp_nodelay, pinned) or the system one on :1883
  --warmup 2 --duration S   seconds per measured phase
  --ours-ref tree|REV   run "ours" from the working tree (default) or from a commit (git archive)
  --nice=N              scheduling priority of the measured processes (e.g. --nice=-10 on a busy machine)
  --tag NAME            write results/SCENARIO-NAME.* and its own README section
  --no-readme           do not update bench/README.md
relay:        --pairs 100 --payload 200 --qos 0,1 --window 10 --rate 5000
connections:  --conns 10000 --max 200000 --step 25000 --budget 30 (s of ramp per target)
chat-1to1:    --pairs 50 --window 4 --store pglite,postgres
commit:       --store pglite,postgres --pairs 50
fanout:       --sizes 100,1000,10000 --modes write,read --window 4 --messages N --store pglite
sync:         --missed 10000 --limit 1000 --store pglite,postgres
`;

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const { values, positionals } = parse(argv);
  const name = positionals[0];
  if (values.help || !name) {
    process.stdout.write(HELP);
    return name || values.help ? 0 : 2;
  }
  const scenario = SCENARIOS[name];
  if (!scenario) {
    process.stderr.write(`unknown scenario "${name}"\n\n${HELP}`);
    return 2;
  }
  const ctx = makeCtx(argv, values);
  // The orchestrator is mostly idle; it shares the generator's CPUs.
  if (ctx.genCpus) pin(process.pid, ctx.genCpus);
  const nice = Number(values.nice);
  if (!Number.isInteger(nice) || nice < -20 || nice > 19) throw new Error(`--nice: expected an integer from -20 to 19, got "${values.nice}"`);
  let restoreAutogroup = (): void => {};
  if (nice !== 0) {
    setNice(nice);
    renice(process.pid, nice);
    restoreAutogroup = boostAutogroup(nice);
  }
  // Stop early cleanly: the 'exit' handler of lib/spawn.ts kills the children we started.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      restoreAutogroup();
      process.stderr.write(`\n${sig}: stopping; no figures were written.\n`);
      process.exit(130);
    });
  }
  ctx.log(`${name}: run ${ctx.runId}, generator on CPU ${ctx.genCpus}, broker on CPU ${ctx.brokerCpus}`);
  let out: ScenarioOutput<unknown>;
  try {
    out = await scenario.run(ctx);
  } catch (err) {
    if (err instanceof NotAvailableError) {
      process.stderr.write(`\n${name}: CANNOT RUN: ${err.message}\nNo figures were written.\n`);
      return EXIT_INCOMPLETE;
    }
    throw err;
  } finally {
    ctx.cleanup();
    restoreAutogroup();
  }
  const tag = values.tag ? `-${values.tag.replace(/[^\w-]/g, '_')}` : '';
  const report: Report<unknown> = {
    ...out,
    scenario: `${out.scenario}${tag}`,
    command: commandLine(argv),
    startedAt: ctx.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: machineInfo(ctx.genCpus, ctx.brokerCpus, nice),
    git: gitInfo(),
    ours: ctx.oursUsed(),
  };
  const files = writeReport(report, { readme: !values['no-readme'] });
  ctx.log(`wrote ${files.map((f) => f.replace(`${process.cwd()}/`, '')).join(', ')}`);
  if (report.incomplete.length) {
    process.stderr.write(`\n${name}: INCOMPLETE, not measured:\n${report.incomplete.map((s) => `  - ${s}`).join('\n')}\n`);
    return EXIT_INCOMPLETE;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
