// npx tsx bench/cluster.ts [options]      (issue 10: "routing, not broadcast"; --help)
//
// A standalone benchmark of cluster mode, in one run, side by side:
//
// 1. CPU per delivered 1:1 message, the same load on three deployments:
//      single         broker/main.ts (role all) on PostgreSQL, no REDIS_URL (embedded delivery)
//      single-redis   broker/main.ts (role all) on PostgreSQL and Redis (the Redis path in one process)
//      cluster        two broker/main.ts --role broker + one workers/main.ts; senders on broker A,
//                     receivers on broker B, so every message crosses nodes
//    N pairs of registered users, a fixed number of messages at a fixed rate well below
//    saturation; CPU time of every process involved (our brokers and worker, redis-server,
//    the Postgres backends of the bench database, the generator) from /proc over the
//    measured window, divided by the messages delivered in it.
// 2. Redis memory per connected device: K clean:false devices with 2 subscriptions each on
//    broker A of the cluster; INFO memory and MEMORY USAGE of every key under the run's
//    prefix, before and after, split by kind of key (aedes sessions, presence, ...).
//
// Writes bench/results/cluster.{json,md,svg} and the <!-- results:cluster --> section at
// the end of bench/README.md. Read-only use of bench/lib and bench/gen; the generator is
// this same file run as a child process (BENCH_CLUSTER_ROLE=gen), pinned apart from the
// servers as the harness does.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { connectClient, type ClientKind, type GenClient } from './gen/client.ts';
import { deviceInTopic, inboxTopic, outTopic, parseEvent, sendRequest } from './lib/chat-wire.ts';
import { DISTURBED_PCT } from './lib/context.ts';
import { bytes, ms, num, times, type Table } from './lib/markdown.ts';
import { commitStats, registerMany, scrapeMetrics } from './lib/ours.ts';
import { pool } from './lib/pool.ts';
import { boostAutogroup, clkTck, descendants, parseCpuLines, pin, readRss, renice } from './lib/proc.ts';
import type { ChatUser, Endpoint } from './lib/protocol.ts';
import { gitInfo, machineInfo, reportMarkdown, replaceSection, README, writeReport, type Report } from './lib/report.ts';
import { seedInChild } from './lib/seeding.ts';
import { ROOT, freePort, getNice, setNice, sleep, spawnPinned, tempDir, waitForPort, type Child } from './lib/spawn.ts';
import { createHistogram, fromData, mergeHistograms, record, summarizeMs, toData, type HistogramData, type LatencySummary } from './lib/stats.ts';
import type { Panel } from './lib/svg.ts';
import { PG_ADMIN_URL, createDatabase, tail, waitForHttp, type BenchDatabase } from './lib/targets.ts';

// ---------------------------------------------------------------------------------------
// Messages between the orchestrator and the generator children (IPC, checked on arrival).

interface Pair {
  sender: ChatUser;
  peer: ChatUser;
}

type ToGen =
  | { type: 'load'; client: ClientKind; clean: boolean; send: Endpoint; recv: Endpoint; pairs: Pair[]; textBytes: number }
  | { type: 'go'; tag: string; rate: number; warmup: number; messages: number; drainMs: number }
  | { type: 'end' }
  | { type: 'sessions'; client: ClientKind; endpoint: Endpoint; users: ChatUser[]; concurrency: number }
  | { type: 'disconnect' };

interface PhaseResult {
  sent: number;
  measured: number;
  /** msg events at a peer (any message) between the open and close marks */
  deliveredInWindow: number;
  ackedInWindow: number;
  echoesInWindow: number;
  windowMs: number;
  missingDeliveries: number;
  missingAcks: number;
  errors: Record<string, number>;
  deliverUs: HistogramData;
  ackUs: HistogramData;
  /** rate the generator achieved over the measured messages (sends/s) */
  sendRate: number;
}

type FromGen =
  | { type: 'ready'; connections: number; ms: number }
  | { type: 'mark'; which: 'open' | 'close' }
  | { type: 'result'; result: PhaseResult }
  | { type: 'ended' }
  | { type: 'connected'; connections: number; failures: number; firstError: string; ms: number }
  | { type: 'disconnected' }
  | { type: 'failed'; message: string };

function isFromGen(m: unknown): m is FromGen {
  const t = typeof m === 'object' && m !== null ? (m as { type?: unknown }).type : undefined;
  return t === 'ready' || t === 'mark' || t === 'result' || t === 'ended' || t === 'connected' || t === 'disconnected' || t === 'failed';
}

function isToGen(m: unknown): m is ToGen {
  const t = typeof m === 'object' && m !== null ? (m as { type?: unknown }).type : undefined;
  return t === 'load' || t === 'go' || t === 'end' || t === 'sessions' || t === 'disconnect';
}

// ---------------------------------------------------------------------------------------
// Generator (child process): one per deployment, connected for the whole run, loaded in
// phases on command.

async function generatorMain(): Promise<void> {
  const inbox: ToGen[] = [];
  const waiters: Array<(m: ToGen) => void> = [];
  process.on('message', (m: unknown) => {
    if (!isToGen(m)) return;
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  process.on('disconnect', () => process.exit(0));
  const next = (): Promise<ToGen> => (inbox.length ? Promise.resolve(inbox.shift()!) : new Promise((r) => waiters.push(r)));
  const send = (m: FromGen): void => void process.send?.(m);
  try {
    const m = await next();
    if (m.type === 'load') {
      const load = await LoadGen.connect(m);
      send({ type: 'ready', connections: load.connections, ms: load.connectMs });
      for (;;) {
        const c = await next();
        if (c.type === 'go') send({ type: 'result', result: await load.phase(c, send) });
        else if (c.type === 'end') {
          await load.close();
          send({ type: 'ended' });
          break;
        } else throw new Error(`unexpected ${c.type}`);
      }
    } else if (m.type === 'sessions') {
      const clients = await openSessions(m, send);
      const d = await next();
      if (d.type !== 'disconnect') throw new Error(`expected disconnect, got ${d.type}`);
      await pool(clients, 100, (c) => c.end());
      send({ type: 'disconnected' });
    } else throw new Error(`unexpected ${m.type}`);
  } catch (err) {
    send({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    setTimeout(() => process.exit(1), 100);
  }
}

async function connectUser(kind: ClientKind, ep: Endpoint, u: ChatUser, clean: boolean): Promise<GenClient> {
  const c = await connectClient(kind, { host: ep.host, port: ep.port, clientId: `${u.user}:${u.device}`, username: u.user, password: u.token, clean, timeoutMs: 60000 });
  for (const t of [inboxTopic(u.user), deviceInTopic(u.user, u.device)]) {
    const granted = await c.subscribe(t, 1);
    if (granted !== 1) throw new Error(`SUBACK 0x${granted.toString(16)} for ${t} as ${u.user}`);
  }
  return c;
}

interface Pending {
  sentAt: number;
  measured: boolean;
  acked: boolean;
  delivered: boolean;
}

/** The state of one phase; the clients' handlers always work on the current one. */
class PhaseState {
  readonly pending = new Map<string, Pending>();
  readonly deliver = createHistogram();
  readonly ack = createHistogram();
  readonly errors: Record<string, number> = {};
  open = false;
  closed = false;
  deliveredInWindow = 0;
  ackedInWindow = 0;
  echoesInWindow = 0;
  outstanding: number;
  finish: () => void = () => {};
  readonly finished = new Promise<void>((r) => (this.finish = r));

  constructor(measured: number) {
    this.outstanding = measured;
    if (measured === 0) this.finish();
  }

  inWindow(): boolean {
    return this.open && !this.closed;
  }

  settle(id: string, e: Pending): void {
    if (!(e.acked && e.delivered)) return;
    this.pending.delete(id);
    if (e.measured && --this.outstanding === 0) this.finish();
  }
}

class LoadGen {
  private state = new PhaseState(0);

  private constructor(
    private readonly job: Extract<ToGen, { type: 'load' }>,
    private readonly senders: GenClient[],
    private readonly peers: GenClient[],
    readonly connectMs: number,
  ) {
    senders.forEach((c, i) => {
      const p = job.pairs[i];
      const ackTopic = deviceInTopic(p.sender.user, p.sender.device);
      c.onMessage((topic, payload) => {
        const now = performance.now();
        const s = this.state;
        const ev = parseEvent(payload);
        if (topic !== ackTopic) {
          if (ev.type === 'msg' && s.inWindow()) s.echoesInWindow++;
          return;
        }
        if (ev.type === 'ack') {
          const e = s.pending.get(ev.id);
          if (!e || e.acked) return;
          e.acked = true;
          if (s.inWindow()) s.ackedInWindow++;
          if (e.measured) record(s.ack, (now - e.sentAt) * 1000);
          s.settle(ev.id, e);
        } else if (ev.type === 'error') {
          s.errors[ev.code] = (s.errors[ev.code] ?? 0) + 1;
        }
      });
    });
    peers.forEach((c) => {
      c.onMessage((_topic, payload) => {
        const now = performance.now();
        const s = this.state;
        const ev = parseEvent(payload);
        if (ev.type !== 'msg') {
          if (ev.type === 'error') s.errors[ev.code] = (s.errors[ev.code] ?? 0) + 1;
          return;
        }
        const e = s.pending.get(ev.id);
        if (!e || e.delivered) return;
        e.delivered = true;
        if (s.inWindow()) s.deliveredInWindow++;
        if (e.measured) record(s.deliver, (now - e.sentAt) * 1000);
        s.settle(ev.id, e);
      });
    });
  }

  static async connect(job: Extract<ToGen, { type: 'load' }>): Promise<LoadGen> {
    const t0 = performance.now();
    const senders = await pool(job.pairs, 20, (p) => connectUser(job.client, job.send, p.sender, job.clean));
    const peers = await pool(job.pairs, 20, (p) => connectUser(job.client, job.recv, p.peer, job.clean));
    return new LoadGen(job, senders, peers, performance.now() - t0);
  }

  get connections(): number {
    return this.senders.length + this.peers.length;
  }

  /** Open loop: the n-th message is due at start + n / rate, whatever the answers do. */
  async phase(go: Extract<ToGen, { type: 'go' }>, emit: (m: FromGen) => void): Promise<PhaseResult> {
    const s = (this.state = new PhaseState(go.messages));
    const total = go.warmup + go.messages;
    const text = 'x'.repeat(this.job.textBytes);
    let openAt = 0;
    let lastMeasuredSendAt = 0;
    let n = 0;
    const sendOne = (): void => {
      const i = n % this.job.pairs.length;
      const p = this.job.pairs[i];
      const measured = n >= go.warmup;
      if (measured && !s.open) {
        s.open = true;
        openAt = performance.now();
        emit({ type: 'mark', which: 'open' });
      }
      const id = `${go.tag}-${n}`;
      const sentAt = performance.now();
      if (measured) lastMeasuredSendAt = sentAt;
      s.pending.set(id, { sentAt, measured, acked: false, delivered: false });
      this.senders[i].publish(outTopic(p.sender.user, p.sender.device), sendRequest({ id, to: p.peer.user, text }), 1);
      n++;
    };
    const start = performance.now();
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const due = Math.min(total, Math.floor(((performance.now() - start) * go.rate) / 1000) + 1);
        while (n < due) sendOne();
        if (n >= total) {
          clearInterval(timer);
          resolve();
        }
      };
      const timer = setInterval(tick, 2);
      tick();
    });
    await Promise.race([s.finished, sleep(go.drainMs)]);
    s.closed = true;
    const closeAt = performance.now();
    emit({ type: 'mark', which: 'close' });
    let missingDeliveries = 0;
    let missingAcks = 0;
    for (const e of s.pending.values()) {
      if (!e.measured) continue;
      if (!e.delivered) missingDeliveries++;
      if (!e.acked) missingAcks++;
    }
    const sendSpan = lastMeasuredSendAt - openAt;
    return {
      sent: n,
      measured: go.messages,
      deliveredInWindow: s.deliveredInWindow,
      ackedInWindow: s.ackedInWindow,
      echoesInWindow: s.echoesInWindow,
      windowMs: closeAt - openAt,
      missingDeliveries,
      missingAcks,
      errors: s.errors,
      deliverUs: toData(s.deliver),
      ackUs: toData(s.ack),
      sendRate: sendSpan > 0 ? ((go.messages - 1) * 1000) / sendSpan : 0,
    };
  }

  async close(): Promise<void> {
    await pool([...this.senders, ...this.peers], 50, (c) => c.end());
  }
}

async function openSessions(job: Extract<ToGen, { type: 'sessions' }>, emit: (m: FromGen) => void): Promise<GenClient[]> {
  const t0 = performance.now();
  const clients: GenClient[] = [];
  let failures = 0;
  let firstError = '';
  await pool(job.users, job.concurrency, async (u) => {
    try {
      clients.push(await connectUser(job.client, job.endpoint, u, false));
    } catch (err) {
      failures++;
      firstError ||= (err as Error).message;
    }
  });
  emit({ type: 'connected', connections: clients.length, failures, firstError, ms: performance.now() - t0 });
  return clients;
}

// ---------------------------------------------------------------------------------------
// Orchestrator: options.

const OPTIONS = {
  pairs: { type: 'string', default: '50' },
  messages: { type: 'string', default: '3000' },
  rate: { type: 'string', default: '100' },
  warmup: { type: 'string', default: '500' },
  rounds: { type: 'string', default: '3' },
  text: { type: 'string', default: '100' },
  devices: { type: 'string', default: '2000' },
  configs: { type: 'string', default: 'single,single-redis,cluster,cluster-clean' },
  clean: { type: 'boolean', default: false },
  client: { type: 'string', default: 'raw' },
  'gen-cpus': { type: 'string', default: '0' },
  'server-cpus': { type: 'string', default: '1' },
  nice: { type: 'string', default: '0' },
  drain: { type: 'string', default: '20' },
  'cpu-prof': { type: 'string' },
  'no-readme': { type: 'boolean', default: false },
  render: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const HELP = `usage: npx tsx bench/cluster.ts [options]

CPU per delivered 1:1 message on one node (embedded delivery), one node with Redis, and a
cluster (2 brokers + 1 worker, every message crossing nodes), same load, one run; then Redis
memory per connected device. Needs PostgreSQL (BENCH_PG_URL, default ${PG_ADMIN_URL}) and
Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379).

  --pairs 50            sender/receiver pairs (2 x pairs registered users)
  --messages 3000       measured messages per deployment
  --rate 100            messages/s (open loop, the same for every deployment); the cluster
                        costs ~4.5 ms of CPU per message on the servers' one core here, so
                        100/s keeps it under half of that core
  --warmup 500          messages sent before the measured ones of a deployment's first
                        round (later rounds: one second's worth, at most this many)
  --rounds 3            the deployments take turns, each round a share of --messages, so
                        that drift on a shared machine hits all of them alike
  --text 100            bytes of body text per message
  --devices 2000        clean:false devices for the Redis memory part (0: skip it)
  --configs single,single-redis,cluster,cluster-clean
                        cluster-clean: the cluster again with clean-session clients, to show
                        what aedes's bookkeeping of clean:false sessions costs
  --clean               clean sessions for every deployment (default: clean:false, as
                        client-lib connects; cluster-clean is always clean)
  --client raw|mqttjs   generator client (default raw, bench/gen/raw-client.ts)
  --gen-cpus 0 --server-cpus 1   taskset lists: generator + orchestrator, servers
  --nice=N              scheduling priority of the processes started (e.g. --nice=-10)
  --drain 20            seconds to wait for the last deliveries
  --cpu-prof DIR        run our processes with --cpu-prof into DIR (figures then include the
                        profiler's cost: no results are written)
  --no-readme           do not update bench/README.md
  --render              measure nothing: rewrite results/cluster.{md,svg} and the README
                        section from results/cluster.json (after editing notes or tables)
`;

type ConfigName = 'single' | 'single-redis' | 'cluster' | 'cluster-clean';
const CONFIG_LABELS: Record<ConfigName, string> = {
  single: 'single node (role all, PostgreSQL, no Redis)',
  'single-redis': 'single node + Redis (role all, PostgreSQL, Redis)',
  cluster: 'cluster (2 brokers + 1 worker; senders on A, receivers on B)',
  'cluster-clean': 'cluster as above, clients with clean sessions',
};

function int(v: string | undefined, name: string): number {
  const n = Number((v ?? '').replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: expected a non-negative integer, got "${v}"`);
  return n;
}

// ---------------------------------------------------------------------------------------
// /proc accounting: CPU ticks of processes by group, and the busy time of every core.

function readStat(pid: number): { comm: string; ticks: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const open = text.indexOf('(');
    const close = text.lastIndexOf(')');
    const f = text.slice(close + 2).trim().split(/\s+/);
    return { comm: text.slice(open + 1, close), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

/** pids of every process named `postgres` (backends and the server's own processes). */
function postgresPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (readStat(Number(name))?.comm === 'postgres') out.push(Number(name));
  }
  return out;
}

interface Snapshot {
  at: number;
  ticks: Map<number, number>;
  cores: ReturnType<typeof parseCpuLines>;
}

function snapshot(pids: Iterable<number>): Snapshot {
  const ticks = new Map<number, number>();
  for (const pid of pids) {
    const s = readStat(pid);
    if (s) ticks.set(pid, s.ticks);
  }
  return { at: performance.now(), ticks, cores: parseCpuLines(readFileSync('/proc/stat', 'utf8')) };
}

/** CPU ms of a set of pids between two snapshots (a pid new at the end counts from 0). */
function cpuMs(a: Snapshot, b: Snapshot, pids: readonly number[]): number {
  let t = 0;
  for (const pid of new Set(pids)) {
    const end = b.ticks.get(pid);
    if (end === undefined) continue;
    const d = end - (a.ticks.get(pid) ?? 0);
    if (d > 0) t += d;
  }
  return (t * 1000) / clkTck();
}

function coresBusyPct(a: Snapshot, b: Snapshot): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [cpu, l1] of b.cores) {
    const l0 = a.cores.get(cpu);
    if (!l0 || l1.total === l0.total) continue;
    out[`cpu${cpu}`] = Math.round(((l1.busy - l0.busy) / (l1.total - l0.total)) * 1000) / 10;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Redis helpers.

function parseInfo(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

interface CmdStat {
  calls: number;
  usec: number;
}

function parseCommandStats(text: string): Map<string, CmdStat> {
  const out = new Map<string, CmdStat>();
  for (const line of text.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m) out.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}

interface RedisCounters {
  commands: number;
  cmd: Map<string, CmdStat>;
}

async function redisCounters(r: Redis): Promise<RedisCounters> {
  const [stats, cmd] = await Promise.all([r.info('stats'), r.info('commandstats')]);
  return { commands: Number(parseInfo(stats).get('total_commands_processed') ?? 0), cmd: parseCommandStats(cmd) };
}

async function scanKeys(r: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [c, batch] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 2000);
    cursor = c;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/** Kind of a key under the run's prefix (aedes-persistence-redis and presence-redis layouts). */
export function keyKind(key: string, prefix: string): string {
  const k = key.slice(prefix.length);
  if (k.startsWith('aedes:client:')) return 'aedes session (aedes:client:*)';
  if (k === 'aedes:clients') return 'aedes client set (aedes:clients)';
  if (k === 'aedes:retained') return 'retained messages (aedes:retained)';
  if (k.startsWith('aedes:outgoing') || k.startsWith('aedes:packet:')) return 'offline queues (aedes:outgoing*, aedes:packet:*)';
  if (k.startsWith('aedes:')) return 'aedes other';
  if (k.startsWith('presence:user:')) return 'connection map (presence:user:*)';
  if (k.startsWith('presence:node:')) return 'node connections (presence:node:*)';
  if (k.startsWith('presence:seen:')) return 'last seen (presence:seen:*)';
  if (k.startsWith('presence:')) return 'presence sets (presence:online, :pending, :nodes)';
  if (k.startsWith('rl:')) return 'rate limits (rl:*)';
  if (k.startsWith('{deliveries}')) return 'delivery stream ({deliveries}*)';
  return 'other';
}

interface KeyCensus {
  usedMemory: number;
  kinds: Record<string, { keys: number; bytes: number }>;
}

async function census(r: Redis, prefix: string): Promise<KeyCensus> {
  const keys = await scanKeys(r, prefix);
  const kinds: KeyCensus['kinds'] = {};
  for (let i = 0; i < keys.length; i += 500) {
    const batch = keys.slice(i, i + 500);
    const p = r.pipeline();
    for (const k of batch) p.call('MEMORY', 'USAGE', k, 'SAMPLES', '0');
    const res = (await p.exec()) ?? [];
    batch.forEach((k, j) => {
      const v = res[j]?.[1];
      if (typeof v !== 'number') return; // deleted meanwhile
      const kind = keyKind(k, prefix);
      const e = (kinds[kind] ??= { keys: 0, bytes: 0 });
      e.keys++;
      e.bytes += v;
    });
  }
  const usedMemory = Number(parseInfo(await r.info('memory')).get('used_memory') ?? 0);
  return { usedMemory, kinds };
}

// ---------------------------------------------------------------------------------------
// Our processes.

interface Proc {
  name: string;
  child: Child;
  logFile: string;
  pids(): number[];
}

const CLEAR_ENV: Record<string, undefined> = Object.fromEntries(
  ['DATABASE_URL', 'REDIS_URL', 'REDIS_PREFIX', 'ROLE', 'NODE_ID', 'MQTT_ANONYMOUS', 'S3_ENDPOINT', 'S3_BUCKET', 'LIMITS', 'CONFIG_FILE', 'FANOUT_WRITE_MAX', 'PRESENCE_DEBOUNCE_MS', 'TLS_CERT', 'TLS_KEY', 'CHAOS_DELIVERY_DELAY_MS', 'CHAOS_DELIVERY_FAIL_TOPIC'].map((k) => [k, undefined]),
);

/** Polls the broker's /readyz (bench/lib/targets.ts) and adds its log to a failure. */
async function waitReady(url: string, proc: Proc, timeoutMs: number): Promise<void> {
  const alive = () => proc.child.proc.exitCode === null && proc.child.proc.signalCode === null;
  try {
    await waitForHttp(url, timeoutMs, alive);
  } catch (err) {
    throw new Error(`${proc.name} not ready (${(err as Error).message})\n--- log ---\n${tail(proc.logFile, 30)}`);
  }
}

interface Broker extends Proc {
  endpoint: Endpoint;
  httpUrl: string;
}

async function startBroker(name: string, env: Record<string, string>, o: { cpus: string; role: 'all' | 'broker'; nodeArgs: string[] }): Promise<Broker> {
  const dir = tempDir('bench-cluster-');
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const logFile = path.join(dir, `${name.replace(/\W+/g, '-')}.log`);
  const child = spawnPinned({
    cmd: process.execPath,
    args: [...o.nodeArgs, '--import', 'tsx', path.join(ROOT, 'broker', 'main.ts'), ...(o.role === 'broker' ? ['--role', 'broker'] : [])],
    cpus: o.cpus,
    nofile: 65536,
    env: { ...CLEAR_ENV, MQTT_PORT: String(mqttPort), HTTP_PORT: String(httpPort), HOST: '127.0.0.1', DATA_DIR: path.join(dir, 'data'), LOG_LEVEL: 'warn', ...env },
    logFile,
  });
  const b: Broker = {
    name,
    child,
    logFile,
    pids: () => [child.pid, ...descendants(child.pid)],
    endpoint: { host: '127.0.0.1', port: mqttPort },
    httpUrl: `http://127.0.0.1:${httpPort}`,
  };
  await waitForPort(mqttPort, 120000, '127.0.0.1', () => child.proc.exitCode === null).catch((err: Error) => {
    throw new Error(`${name}: ${err.message}\n--- log ---\n${tail(logFile)}`);
  });
  await waitReady(`${b.httpUrl}/readyz`, b, 120000);
  return b;
}

async function startWorker(name: string, env: Record<string, string>, o: { cpus: string; nodeArgs: string[] }): Promise<Proc> {
  const dir = tempDir('bench-cluster-worker-');
  const logFile = path.join(dir, 'worker.log');
  const child = spawnPinned({
    cmd: process.execPath,
    args: [...o.nodeArgs, '--import', 'tsx', path.join(ROOT, 'workers', 'main.ts')],
    cpus: o.cpus,
    env: { ...CLEAR_ENV, DATA_DIR: path.join(dir, 'data'), LOG_LEVEL: 'warn', ...env },
    logFile,
  });
  const deadline = Date.now() + 120000;
  while (!tail(logFile, 1000).includes('chat worker ready')) {
    if (child.proc.exitCode !== null || Date.now() > deadline) throw new Error(`${name} did not start\n--- log ---\n${tail(logFile)}`);
    await sleep(100);
  }
  return { name, child, logFile, pids: () => [child.pid, ...descendants(child.pid)] };
}

/**
 * A private redis-server per deployment (the same binary and persistence settings as the
 * machine's shared instance: no RDB saves, no AOF), pinned with the servers. Deployments
 * must not share one Redis: REDIS_PREFIX namespaces keys, not pub/sub channels, and
 * mqemitter-redis / aedes-persistence-redis publish on the bare MQTT topics ($SYS/sub/add,
 * presence/{user}, ...), so two deployments on one Redis see each other's traffic.
 */
interface OwnRedis {
  name: string;
  child: Child;
  url: string;
  pid: number;
  client: Redis;
  version: string;
}

async function startRedis(name: string, cpus: string): Promise<OwnRedis> {
  const dir = tempDir('bench-cluster-redis-');
  const port = await freePort();
  const child = spawnPinned({
    cmd: 'redis-server',
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'],
    cpus,
    logFile: path.join(dir, 'redis.log'),
  });
  await waitForPort(port, 20000, '127.0.0.1', () => child.proc.exitCode === null);
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { maxRetriesPerRequest: 2 });
  client.on('error', () => {});
  const version = parseInfo(await client.info('server')).get('redis_version') ?? '?';
  return { name, child, url, pid: child.pid, client, version };
}

// ---------------------------------------------------------------------------------------
// The generator child, from the orchestrator's side.

interface Gen {
  child: Child;
  send(m: ToGen): void;
  next<T extends FromGen['type']>(type: T, timeoutMs: number): Promise<Extract<FromGen, { type: T }>>;
}

function startGen(cpus: string): Gen {
  const child = spawnPinned({
    cmd: process.execPath,
    args: ['--max-old-space-size=4096', '--import', 'tsx', path.join(ROOT, 'bench', 'cluster.ts')],
    cpus,
    env: { BENCH_CLUSTER_ROLE: 'gen' },
    ipc: true,
  });
  const queue: FromGen[] = [];
  const waiters: Array<{ type: string; resolve: (m: FromGen) => void; reject: (e: Error) => void }> = [];
  child.proc.on('message', (m: unknown) => {
    if (!isFromGen(m)) return;
    if (m.type === 'failed') {
      for (const w of waiters.splice(0)) w.reject(new Error(`generator: ${m.message}`));
      queue.push(m);
      return;
    }
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
    else queue.push(m);
  });
  child.proc.on('exit', (code) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`generator exited (${code})`));
  });
  return {
    child,
    send: (m) => void child.proc.send(m),
    next<T extends FromGen['type']>(type: T, timeoutMs: number): Promise<Extract<FromGen, { type: T }>> {
      const failed = queue.find((m) => m.type === 'failed');
      if (failed && failed.type === 'failed') return Promise.reject(new Error(`generator: ${failed.message}`));
      const i = queue.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0] as Extract<FromGen, { type: T }>);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`generator: no ${type} within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          type,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m as Extract<FromGen, { type: T }>);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
      });
    },
  };
}

// ---------------------------------------------------------------------------------------
// Results.

interface ProcessCpu {
  name: string;
  kind: 'ours' | 'redis' | 'postgres' | 'postgres-shared' | 'generator' | 'orchestrator' | 'idle';
  cpuMs: number;
  msPerMessage: number;
  pctOfCore: number;
  /** % of a core with no load on any deployment (the idle window after start) */
  idlePct?: number;
}

interface ConfigRow {
  config: ConfigName;
  label: string;
  clean: boolean;
  phases: number;
  sent: number;
  measured: number;
  delivered: number;
  acked: number;
  echoes: number;
  missingDeliveries: number;
  missingAcks: number;
  errors: Record<string, number>;
  windowMs: number;
  sendRate: number;
  deliverMs: LatencySummary;
  ackMs: LatencySummary;
  processes: ProcessCpu[];
  totals: { ours: number; redis: number; postgres: number; servers: number; postgresShared: number; generator: number };
  /** per phase: servers ms/msg, to show the spread between rounds */
  phaseServers: number[];
  otherPct: number;
  disturbed: boolean;
  redisCommandsPerMessage: number;
  redisTopCommands: Array<{ command: string; callsPerMessage: number; usecPerMessage: number }>;
  connectMs: number;
  /** group commit of the ingesting broker over the windows (its /metrics) */
  commit: { batches: number; messages: number; meanBatch: number | null; meanCommitMs: number | null };
}

interface MemoryRow {
  state: 'connected' | 'offline';
  devices: number;
  usedMemoryDelta: number;
  kinds: Array<{ kind: string; keysDelta: number; bytesDelta: number; bytesPerDevice: number }>;
  prefixBytesPerDevice: number;
}

interface MemoryData {
  devices: number;
  connected: number;
  failures: number;
  firstError: string;
  connectPerSec: number;
  connectCpu: Array<{ name: string; msPerConnect: number }>;
  /** RSS growth of each process of the cluster while the devices connected (to broker A only) */
  rssPerDevice: Array<{ name: string; bytes: number }>;
  sampleKeys: Array<{ key: string; bytes: number }>;
  rows: MemoryRow[];
  otherPct: number;
  disturbed: boolean;
}

interface ClusterData {
  baseline: { seconds: number; busyPct: number; cores: Record<string, number> };
  idle: { seconds: number; postgresBackendsPct: number; deployments: Record<string, number> };
  redisVersion: string;
  rows: ConfigRow[];
  ratios: Array<{ what: string; value: number | null }>;
  memory?: MemoryData;
}

interface Deployment {
  config: ConfigName;
  clean: boolean;
  /** Redis key prefix ('' without Redis) */
  prefix: string;
  procs: Proc[];
  redis?: OwnRedis;
  send: Broker;
  recv: Broker;
  gen?: Gen;
  connectMs: number;
  acc: {
    cpu: Map<string, { kind: ProcessCpu['kind']; ms: number }>;
    wallMs: number;
    busyMs: number;
    measuredMs: number;
    sent: number;
    measured: number;
    delivered: number;
    acked: number;
    echoes: number;
    missingDeliveries: number;
    missingAcks: number;
    errors: Record<string, number>;
    deliver: HistogramData[];
    ack: HistogramData[];
    sendRates: number[];
    redisCommands: number;
    cmd: Map<string, CmdStat>;
    commits: { batches: number; messages: number; commitMs: number };
    phaseServers: number[];
  };
}

function newAcc(): Deployment['acc'] {
  return {
    cpu: new Map(),
    wallMs: 0,
    busyMs: 0,
    measuredMs: 0,
    sent: 0,
    measured: 0,
    delivered: 0,
    acked: 0,
    echoes: 0,
    missingDeliveries: 0,
    missingAcks: 0,
    errors: {},
    deliver: [],
    ack: [],
    sendRates: [],
    redisCommands: 0,
    cmd: new Map(),
    commits: { batches: 0, messages: 0, commitMs: 0 },
    phaseServers: [],
  };
}

/** pids of the Postgres processes of the run: client backends of its database, and the server's own. */
async function postgresRoles(dbName: string): Promise<{ backends: number[]; shared: number[] }> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    const r = await c.query<{ pid: number; datname: string | null; backend_type: string }>('SELECT pid, datname, backend_type FROM pg_stat_activity WHERE pid <> pg_backend_pid()');
    return {
      backends: r.rows.filter((x) => x.datname === dbName && x.backend_type === 'client backend').map((x) => x.pid),
      shared: r.rows.filter((x) => x.datname === null && x.backend_type !== 'client backend').map((x) => x.pid),
    };
  } finally {
    await c.end();
  }
}

// ---------------------------------------------------------------------------------------
// Orchestrator.

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.render) return render(!values['no-readme']);
  const o = {
    pairs: int(values.pairs, 'pairs'),
    messages: int(values.messages, 'messages'),
    rate: int(values.rate, 'rate'),
    warmup: int(values.warmup, 'warmup'),
    rounds: Math.max(1, int(values.rounds, 'rounds')),
    textBytes: int(values.text, 'text'),
    devices: int(values.devices, 'devices'),
    drainMs: int(values.drain, 'drain') * 1000,
    clean: values.clean,
    client: values.client === 'mqttjs' ? ('mqttjs' as const) : ('raw' as const),
    genCpus: values['gen-cpus'],
    serverCpus: values['server-cpus'],
    nice: Number(values.nice),
    configs: values.configs.split(',').map((s) => s.trim()).filter(Boolean) as ConfigName[],
    cpuProf: values['cpu-prof'],
  };
  for (const c of o.configs) if (!(c in CONFIG_LABELS)) throw new Error(`--configs: unknown "${c}" (${Object.keys(CONFIG_LABELS).join(', ')})`);
  if (new Set(o.configs).size !== o.configs.length) throw new Error('--configs: each deployment once');
  if (values.client !== 'raw' && values.client !== 'mqttjs') throw new Error('--client: raw or mqttjs');
  if (o.pairs < 1 || o.rate < 1 || o.messages < o.rounds) throw new Error('--pairs and --rate must be at least 1, --messages at least --rounds');
  if (!Number.isInteger(o.nice) || o.nice < -20 || o.nice > 19) throw new Error(`--nice: expected -20..19, got "${values.nice}"`);
  const log = (msg: string): void => void process.stderr.write(`[cluster ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
  const startedAt = new Date();
  const runId = randomBytes(3).toString('hex');
  const prefix = `benchcl${runId}:`;
  const jwtSecret = randomBytes(32).toString('base64url');
  const nodeArgs = o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(o.cpuProf)] : [];
  const perPhase = Math.ceil(o.messages / o.rounds);

  if (o.genCpus) pin(process.pid, o.genCpus);
  let restoreAutogroup = (): void => {};
  if (o.nice !== 0) {
    setNice(o.nice);
    renice(process.pid, o.nice);
    restoreAutogroup = boostAutogroup(o.nice);
  }
  const machine = machineInfo(o.genCpus, o.serverCpus, o.nice);

  let database: BenchDatabase | undefined;
  const deployments: Deployment[] = [];
  const extraGens: Gen[] = [];
  const stopAll = async (): Promise<void> => {
    const gens = [...deployments.flatMap((d) => (d.gen ? [d.gen] : [])), ...extraGens.splice(0)];
    await Promise.all(gens.map((g) => g.child.stop(2000)));
    await Promise.all(deployments.flatMap((d) => d.procs.splice(0)).map((p) => p.child.stop(10000)));
    for (const d of deployments) {
      const r = d.redis;
      d.redis = undefined;
      if (!r) continue;
      r.client.disconnect();
      await r.child.stop(5000);
    }
  };
  let redisVersion = '';
  // Ctrl-C / SIGTERM: stop what we started and drop the database (lib/spawn.ts's exit
  // handler would kill the children, but not drop the database).
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      if (interrupted) return;
      interrupted = true;
      log(`${sig}: stopping`);
      const exit = setTimeout(() => process.exit(130), 15000);
      void stopAll()
        .then(() => database?.drop())
        .catch(() => {})
        .finally(() => {
          clearTimeout(exit);
          process.exit(130);
        });
    });
  }
  let memory: MemoryData | undefined;
  const incomplete: string[] = [];
  let baseline: ClusterData['baseline'] | undefined;
  let idle: ClusterData['idle'] | undefined;
  try {
    database = await createDatabase(`cl${runId}`);
    const dbName = database.name;
    log(`run ${runId}: database ${dbName}`);

    // What the machine does without us: other engineers' builds and tests share the cores.
    {
      const s0 = snapshot([]);
      await sleep(2000);
      const s1 = snapshot([]);
      const cores = coresBusyPct(s0, s1);
      baseline = { seconds: Math.round((s1.at - s0.at) / 100) / 10, busyPct: Math.round(Object.values(cores).reduce((a, b) => a + b, 0) * 10) / 10, cores };
      log(`baseline, nothing of ours running: cores busy ${JSON.stringify(cores)}`);
    }

    // Users: the memory part's devices are seeded through the project's store (one scrypt
    // hash for all, long-lived device tokens signed with the run's JWT_SECRET); the chat
    // pairs are registered over HTTP below.
    let devices: ChatUser[] = [];
    if (o.devices > 0 && o.configs.includes('cluster')) {
      const names = Array.from({ length: o.devices }, (_, i) => `m${runId}u${i}`);
      const seeded = await seedInChild(ROOT, o.serverCpus, { databaseUrl: database.url, names, device: 'd1', jwtSecret });
      devices = seeded.users;
      log(`seeded ${devices.length} users for the memory part in ${Math.round(seeded.ms)} ms`);
    }

    // Every deployment up at once (idle ones cost little; measured below), all on the run's
    // database: seq is assigned under the conversation's row lock, as for any two brokers.
    // (started together: migrations serialize on an advisory lock)
    const up = o.configs.map(async (config) => {
      const base = { DATABASE_URL: database!.url, JWT_SECRET: jwtSecret };
      const cfgPrefix = config === 'single' ? '' : `${prefix}${{ single: 's', 'single-redis': 'r', cluster: 'c', 'cluster-clean': 'k' }[config]}:`;
      const procs: Proc[] = [];
      const dep = { config, clean: config === 'cluster-clean' ? true : o.clean, prefix: cfgPrefix, procs, connectMs: 0, acc: newAcc() } as Omit<Deployment, 'send' | 'recv'> as Deployment;
      deployments.push(dep);
      const t0 = performance.now();
      if (config !== 'single') {
        dep.redis = await startRedis(`${config} redis-server`, o.serverCpus);
        redisVersion = dep.redis.version;
      }
      const withRedis = { ...base, REDIS_URL: dep.redis?.url ?? '', REDIS_PREFIX: cfgPrefix };
      if (config === 'single' || config === 'single-redis') {
        const b = await startBroker(`${config} broker`, config === 'single' ? base : withRedis, { cpus: o.serverCpus, role: 'all', nodeArgs });
        procs.push(b);
        dep.send = dep.recv = b;
      } else {
        const [a, b, w] = await Promise.all([
          startBroker(`${config} broker A`, withRedis, { cpus: o.serverCpus, role: 'broker', nodeArgs }),
          startBroker(`${config} broker B`, withRedis, { cpus: o.serverCpus, role: 'broker', nodeArgs }),
          startWorker(`${config} worker`, withRedis, { cpus: o.serverCpus, nodeArgs }),
        ]);
        procs.push(a, b, w);
        dep.send = a;
        dep.recv = b;
      }
      log(`${CONFIG_LABELS[config]}: up in ${Math.round(performance.now() - t0)} ms`);
    });
    const started = await Promise.allSettled(up);
    const failed = started.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed) throw failed.reason;

    const names = Array.from({ length: o.pairs }, (_, i) => [`c${runId}s${i}`, `c${runId}p${i}`]).flat();
    const reg = await registerMany(deployments[0].send.httpUrl, names, 'd1', 8);
    const pairs: Pair[] = Array.from({ length: o.pairs }, (_, i) => ({ sender: reg.users[2 * i], peer: reg.users[2 * i + 1] }));
    log(`registered ${reg.users.length} users over HTTP on ${deployments[0].config} (${reg.perSec.toFixed(1)}/s)`);

    // One generator per deployment, connected for the whole run.
    for (const d of deployments) {
      d.gen = startGen(o.genCpus);
      d.gen.send({ type: 'load', client: o.client, clean: d.clean, send: d.send.endpoint, recv: d.recv.endpoint, pairs, textBytes: o.textBytes });
    }
    for (const d of deployments) d.connectMs = Math.round((await d.gen!.next('ready', 120000)).ms);

    const ourPids = (d: Deployment): number[] => d.procs.flatMap((p) => p.pids());
    const redisPids = (d: Deployment): number[] => (d.redis ? [d.redis.pid] : []);
    const allPids = (): number[] => [...deployments.flatMap((d) => [...ourPids(d), ...redisPids(d), ...(d.gen ? [d.gen.child.pid] : [])]), process.pid, ...postgresPids()];
    const pinBackends = async (): Promise<void> => {
      for (const pid of (await postgresRoles(dbName)).backends) {
        try {
          pin(pid, o.serverCpus);
        } catch {
          // exited
        }
        if (getNice() !== 0) renice(pid, getNice());
      }
    };
    await pinBackends();

    // Idle: what each deployment costs with connected, silent clients.
    {
      const s0 = snapshot(allPids());
      await sleep(3000);
      const s1 = snapshot(allPids());
      const wall = s1.at - s0.at;
      const pct = (pids: number[]): number => Math.round((cpuMs(s0, s1, pids) / wall) * 1000) / 10;
      const roles = await postgresRoles(dbName);
      idle = {
        seconds: Math.round(wall / 100) / 10,
        postgresBackendsPct: pct(roles.backends),
        deployments: Object.fromEntries(deployments.flatMap((d) => [...d.procs.map((p) => [p.name, pct(p.pids())]), ...(d.redis ? [[d.redis.name, pct([d.redis.pid])]] : [])])),
      };
      log(`idle, % of a core: ${JSON.stringify(idle.deployments)}, postgres backends ${idle.postgresBackendsPct}`);
    }

    // Rounds: every deployment in turn, so that drift on the shared machine hits all alike.
    for (let round = 0; round < o.rounds; round++) {
      for (const d of deployments) {
        const gen = d.gen!;
        const warmup = round === 0 ? o.warmup : Math.min(o.warmup, o.rate);
        gen.send({ type: 'go', tag: `${runId}r${round}${d.config}`, rate: o.rate, warmup, messages: perPhase, drainMs: o.drainMs });
        await gen.next('mark', 120000 + (warmup * 1000) / o.rate);
        const s0 = snapshot(allPids());
        const c0Promise = d.redis ? redisCounters(d.redis.client) : Promise.resolve(undefined);
        const m0Promise = scrapeMetrics(d.send.httpUrl);
        void pinBackends().catch(() => {}); // connections opened during the warm-up
        await gen.next('mark', (perPhase * 1000) / o.rate + o.drainMs + 60000);
        const s1 = snapshot(allPids());
        const [c1, c0, m0, m1] = await Promise.all([d.redis ? redisCounters(d.redis.client) : undefined, c0Promise, m0Promise, scrapeMetrics(d.send.httpUrl)]);
        const { result } = await gen.next('result', 60000);
        const roles = await postgresRoles(dbName);

        const a = d.acc;
        const wall = s1.at - s0.at;
        const add = (name: string, kind: ProcessCpu['kind'], pids: number[]): number => {
          const m = cpuMs(s0, s1, pids);
          const e = a.cpu.get(name) ?? { kind, ms: 0 };
          e.ms += m;
          a.cpu.set(name, e);
          return m;
        };
        let servers = 0;
        for (const p of d.procs) servers += add(p.name, 'ours', p.pids());
        if (d.redis) servers += add(d.redis.name, 'redis', [d.redis.pid]);
        servers += add(`Postgres backends of ${dbName}`, 'postgres', roles.backends);
        let measured = servers;
        measured += add('Postgres server processes (WAL writer, checkpointer, ...; shared)', 'postgres-shared', roles.shared);
        measured += add('generator', 'generator', [gen.child.pid]);
        measured += add('orchestrator', 'orchestrator', [process.pid]);
        const others = deployments.filter((x) => x !== d);
        measured += add('the other deployments, idle (processes, Redis, generators)', 'idle', others.flatMap((x) => [...ourPids(x), ...redisPids(x), ...(x.gen ? [x.gen.child.pid] : [])]));
        const cores = coresBusyPct(s0, s1);
        const busyMs = (Object.values(cores).reduce((x, y) => x + y, 0) / 100) * wall;
        a.wallMs += wall;
        a.busyMs += busyMs;
        a.measuredMs += measured;
        a.sent += result.sent;
        a.measured += result.measured;
        a.delivered += result.deliveredInWindow;
        a.acked += result.ackedInWindow;
        a.echoes += result.echoesInWindow;
        a.missingDeliveries += result.missingDeliveries;
        a.missingAcks += result.missingAcks;
        for (const [k, v] of Object.entries(result.errors)) a.errors[k] = (a.errors[k] ?? 0) + v;
        a.deliver.push(result.deliverUs);
        a.ack.push(result.ackUs);
        a.sendRates.push(result.sendRate);
        if (c0 && c1) {
          a.redisCommands += c1.commands - c0.commands;
          for (const [cmd, x] of c1.cmd) {
            const before = c0.cmd.get(cmd) ?? { calls: 0, usec: 0 };
            const e = a.cmd.get(cmd) ?? { calls: 0, usec: 0 };
            e.calls += x.calls - before.calls;
            e.usec += x.usec - before.usec;
            a.cmd.set(cmd, e);
          }
        }
        const cs = commitStats(m0, m1);
        a.commits.batches += cs.batches;
        a.commits.messages += cs.messages;
        a.commits.commitMs += (cs.meanCommitMs ?? 0) * cs.batches;
        const perMsg = result.deliveredInWindow > 0 ? servers / result.deliveredInWindow : Number.NaN;
        a.phaseServers.push(perMsg);
        const other = Math.max(0, ((busyMs - measured) / wall) * 100);
        log(
          `round ${round + 1}/${o.rounds} ${d.config}: ${num(result.deliveredInWindow)} delivered in ${(wall / 1000).toFixed(1)} s (missing ${result.missingDeliveries}/${result.missingAcks}), ` +
            `p50/p99 ${ms(summarizeMs(fromData(result.deliverUs)).p50)}/${ms(summarizeMs(fromData(result.deliverUs)).p99)} ms, servers ${perMsg.toFixed(3)} ms/msg, ` +
            `batch ${num(cs.meanBatch, 1)}, other ${Math.round(other)} %${other > DISTURBED_PCT ? ' (DISTURBED)' : ''}`,
        );
      }
    }

    const cluster = deployments.find((d) => d.config === 'cluster');
    if (cluster?.redis && devices.length > 0) {
      try {
        memory = await memoryPart({ redis: cluster.redis, prefix: cluster.prefix, broker: cluster.send, procs: cluster.procs, allPids, devices, o, log, gens: extraGens });
      } catch (err) {
        incomplete.push(`Redis memory per device: ${(err as Error).message.split('\n')[0]}`);
        log(`memory part failed: ${(err as Error).stack ?? String(err)}`);
      }
    }
    await Promise.all(
      deployments.map(async (d) => {
        d.gen?.send({ type: 'end' });
        await d.gen?.next('ended', 30000).catch(() => {});
      }),
    );
  } finally {
    await stopAll();
    await database?.drop().catch((err: Error) => log(`could not drop ${database?.name}: ${err.message}`));
    restoreAutogroup();
  }

  const rows = deployments.map((d) => configRow(d, idle));
  const single = rows.find((r) => r.config === 'single');
  const singleRedis = rows.find((r) => r.config === 'single-redis');
  const clusterRow = rows.find((r) => r.config === 'cluster');
  const clusterClean = rows.find((r) => r.config === 'cluster-clean');
  const sumNoPg = (r: ConfigRow | undefined): number | undefined => (r ? r.totals.ours + (Number.isFinite(r.totals.redis) ? r.totals.redis : 0) : undefined);
  const ratio = (a: number | undefined, b: number | undefined): number | null => (a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null);
  const ratios: ClusterData['ratios'] = [
    { what: 'cluster / single: servers (our processes + redis-server + Postgres backends)', value: ratio(clusterRow?.totals.servers, single?.totals.servers) },
    { what: 'cluster / single: our processes only', value: ratio(clusterRow?.totals.ours, single?.totals.ours) },
    { what: 'cluster / single: our processes + redis-server (Postgres left out: its share per message follows the commit batch)', value: ratio(sumNoPg(clusterRow), sumNoPg(single)) },
    { what: 'single + Redis / single: servers', value: ratio(singleRedis?.totals.servers, single?.totals.servers) },
    { what: 'cluster / single + Redis: servers', value: ratio(clusterRow?.totals.servers, singleRedis?.totals.servers) },
    { what: 'cluster with clean sessions / single: servers', value: ratio(clusterClean?.totals.servers, single?.totals.servers) },
    { what: 'cluster with clean sessions / cluster: servers', value: ratio(clusterClean?.totals.servers, clusterRow?.totals.servers) },
  ];
  for (const r of rows) {
    log(
      `${r.config}: ${num(r.delivered)} delivered, missing ${r.missingDeliveries}; p50/p99 ${ms(r.deliverMs.p50)}/${ms(r.deliverMs.p99)} ms; CPU ms/msg ours ${r.totals.ours.toFixed(3)}, ` +
        `redis ${r.totals.redis.toFixed(3)}, pg ${r.totals.postgres.toFixed(3)} -> servers ${r.totals.servers.toFixed(3)} (rounds ${r.phaseServers.map((x) => x.toFixed(2)).join(' ')}); ` +
        `batch ${num(r.commit.meanBatch, 1)}; gen ${r.totals.generator.toFixed(3)}; other ${r.otherPct} %${r.disturbed ? ' (DISTURBED)' : ''}`,
    );
  }
  for (const r of ratios) log(`${r.what}: ${times(r.value)}`);
  if (o.cpuProf) {
    log(`--cpu-prof: profiles in ${path.resolve(o.cpuProf)}; no results written (the profiler's cost is in the figures)`);
    return 0;
  }

  const data: ClusterData = { baseline: baseline!, idle: idle!, redisVersion, rows, ratios, memory };
  const command = `npx tsx bench/cluster.ts${argv.length ? ` ${argv.join(' ')}` : ''}`;
  const report: Report<ClusterData> = {
    scenario: 'cluster',
    title: 'Cluster: CPU per cross-node 1:1 message, and Redis memory per device',
    command,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine,
    git: gitInfo(),
    options: { ...o, cpuProf: undefined },
    data,
    tables: tables(data, o),
    panels: panels(data),
    notes: notes(data, o),
    incomplete,
  };
  write(report, !values['no-readme']);
  return incomplete.length ? 3 : 0;
}

type Options = Parameters<typeof tables>[1] & Parameters<typeof notes>[1];

function write(report: Report<ClusterData>, readme: boolean): void {
  const files = writeReport(report, { readme: false });
  if (readme) {
    // Re-read right before writing: other benchmarks update their own sections meanwhile.
    const doc = existsSync(README) ? readFileSync(README, 'utf8') : '# Benchmarks\n';
    writeFileSync(README, replaceSection(doc, 'cluster', readmeSection(report)));
    files.push(README);
  }
  process.stderr.write(`wrote ${files.map((f) => path.relative(ROOT, f)).join(', ')}\n`);
}

function render(readme: boolean): number {
  const file = path.join(ROOT, 'bench', 'results', 'cluster.json');
  const r = JSON.parse(readFileSync(file, 'utf8')) as Report<ClusterData>;
  const o = r.options as unknown as Options;
  write({ ...r, tables: tables(r.data, o), panels: panels(r.data), notes: notes(r.data, o) }, readme);
  return 0;
}

function configRow(d: Deployment, idle: ClusterData['idle'] | undefined): ConfigRow {
  const a = d.acc;
  const perMsg = (x: number): number => (a.delivered > 0 ? x / a.delivered : Number.NaN);
  const processes: ProcessCpu[] = [...a.cpu.entries()].map(([name, e]) => ({
    name,
    kind: e.kind,
    cpuMs: Math.round(e.ms),
    msPerMessage: perMsg(e.ms),
    pctOfCore: Math.round((e.ms / a.wallMs) * 1000) / 10,
    idlePct: e.kind === 'ours' || e.kind === 'redis' ? idle?.deployments[name] : e.kind === 'postgres' ? idle?.postgresBackendsPct : undefined,
  }));
  const sum = (k: ProcessCpu['kind']): number => processes.filter((p) => p.kind === k).reduce((s, p) => s + p.cpuMs, 0);
  const otherPct = Math.max(0, Math.round(((a.busyMs - a.measuredMs) / a.wallMs) * 1000) / 10);
  const top = [...a.cmd.entries()]
    .filter(([, x]) => x.calls > 0)
    .sort((p, q) => q[1].usec - p[1].usec)
    .slice(0, 16)
    .map(([command, x]) => ({ command, callsPerMessage: perMsg(x.calls), usecPerMessage: perMsg(x.usec) }));
  return {
    config: d.config,
    label: CONFIG_LABELS[d.config],
    clean: d.clean,
    phases: a.phaseServers.length,
    sent: a.sent,
    measured: a.measured,
    delivered: a.delivered,
    acked: a.acked,
    echoes: a.echoes,
    missingDeliveries: a.missingDeliveries,
    missingAcks: a.missingAcks,
    errors: a.errors,
    windowMs: Math.round(a.wallMs),
    sendRate: Math.round(a.sendRates.reduce((s, x) => s + x, 0) / Math.max(1, a.sendRates.length)),
    deliverMs: summarizeMs(mergeHistograms(a.deliver.map(fromData))),
    ackMs: summarizeMs(mergeHistograms(a.ack.map(fromData))),
    processes,
    totals: {
      ours: perMsg(sum('ours')),
      redis: perMsg(sum('redis')),
      postgres: perMsg(sum('postgres')),
      servers: perMsg(sum('ours') + sum('redis') + sum('postgres')),
      postgresShared: perMsg(sum('postgres-shared')),
      generator: perMsg(sum('generator')),
    },
    phaseServers: a.phaseServers.map((x) => Math.round(x * 1000) / 1000),
    otherPct,
    disturbed: otherPct > DISTURBED_PCT,
    redisCommandsPerMessage: perMsg(a.redisCommands),
    redisTopCommands: top,
    connectMs: d.connectMs,
    commit: {
      batches: a.commits.batches,
      messages: a.commits.messages,
      meanBatch: a.commits.batches > 0 ? a.commits.messages / a.commits.batches : null,
      meanCommitMs: a.commits.batches > 0 ? a.commits.commitMs / a.commits.batches : null,
    },
  };
}

async function memoryPart(a: {
  redis: OwnRedis;
  prefix: string;
  broker: Broker;
  procs: Proc[];
  allPids: () => number[];
  devices: ChatUser[];
  o: { client: ClientKind; genCpus: string };
  log: (m: string) => void;
  gens: Gen[];
}): Promise<MemoryData> {
  const settleMs = 3000 + 1000; // presence debounce (default 3 s) + margin
  a.log(`memory: ${a.devices.length} clean:false devices x 2 subscriptions on ${a.broker.name}`);
  const before = await census(a.redis.client, a.prefix);
  const rss0 = new Map(a.procs.map((p) => [p.name, readRss(p.child.pid)]));
  const gen = startGen(a.o.genCpus);
  a.gens.push(gen);
  const pids = (): number[] => [...a.allPids(), gen.child.pid];
  const s0 = snapshot(pids());
  gen.send({ type: 'sessions', client: a.o.client, endpoint: a.broker.endpoint, users: a.devices, concurrency: 50 });
  const connected = await gen.next('connected', 300000);
  const s1 = snapshot(pids());
  if (connected.connections === 0) throw new Error(`no device connected: ${connected.firstError}`);
  a.log(`memory: ${connected.connections} connected in ${Math.round(connected.ms)} ms (${connected.failures} failed${connected.firstError ? `: ${connected.firstError}` : ''})`);
  await sleep(settleMs);
  const online = await census(a.redis.client, a.prefix);
  const rss1 = new Map(a.procs.map((p) => [p.name, readRss(p.child.pid)]));
  const sample = async (kindPrefix: string): Promise<{ key: string; bytes: number } | undefined> => {
    const u = a.devices[0];
    const key = kindPrefix === 'session' ? `${a.prefix}aedes:client:${encodeURIComponent(`${u.user}:${u.device}`)}` : `${a.prefix}presence:user:${u.user}`;
    const b = (await a.redis.client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) as number | null;
    return b === null ? undefined : { key, bytes: b };
  };
  const sampleKeys = [await sample('session'), await sample('presence')].filter((x): x is { key: string; bytes: number } => x !== undefined);
  gen.send({ type: 'disconnect' });
  await gen.next('disconnected', 120000);
  await gen.child.stop(2000);
  a.gens.splice(a.gens.indexOf(gen), 1);
  await sleep(settleMs);
  const offline = await census(a.redis.client, a.prefix);

  const n = connected.connections;
  const row = (state: MemoryRow['state'], after: KeyCensus): MemoryRow => {
    const kinds = [...new Set([...Object.keys(before.kinds), ...Object.keys(after.kinds)])]
      .map((kind) => {
        const b = before.kinds[kind] ?? { keys: 0, bytes: 0 };
        const x = after.kinds[kind] ?? { keys: 0, bytes: 0 };
        return { kind, keysDelta: x.keys - b.keys, bytesDelta: x.bytes - b.bytes, bytesPerDevice: (x.bytes - b.bytes) / n };
      })
      .filter((k) => k.keysDelta !== 0 || k.bytesDelta !== 0)
      .sort((p, q) => q.bytesDelta - p.bytesDelta);
    const total = kinds.reduce((s, k) => s + k.bytesDelta, 0);
    return { state, devices: n, usedMemoryDelta: after.usedMemory - before.usedMemory, kinds, prefixBytesPerDevice: total / n };
  };
  const wall = s1.at - s0.at;
  const cores = coresBusyPct(s0, s1);
  // everything of ours (all deployments, generators, Postgres) counts as measured here
  const measured = cpuMs(s0, s1, [...s0.ticks.keys()]);
  const otherPct = Math.max(0, Math.round((Object.values(cores).reduce((x, y) => x + y, 0) - (measured / wall) * 100) * 10) / 10);
  return {
    devices: a.devices.length,
    connected: n,
    failures: connected.failures,
    firstError: connected.firstError,
    connectPerSec: Math.round((n * 1000) / connected.ms),
    connectCpu: [
      ...a.procs.map((p) => ({ name: p.name, msPerConnect: cpuMs(s0, s1, p.pids()) / n })),
      { name: a.redis.name, msPerConnect: cpuMs(s0, s1, [a.redis.pid]) / n },
    ],
    rssPerDevice: a.procs.map((p) => ({ name: p.name, bytes: ((rss1.get(p.name) ?? 0) - (rss0.get(p.name) ?? 0)) / n })),
    sampleKeys,
    rows: [row('connected', online), row('offline', offline)],
    otherPct,
    disturbed: otherPct > DISTURBED_PCT,
  };
}

// ---------------------------------------------------------------------------------------
// Tables, chart, notes.

const f3 = (v: number | null | undefined): string => (v == null || !Number.isFinite(v) ? '—' : v.toFixed(3));

function tables(d: ClusterData, o: { pairs: number; messages: number; rate: number; rounds: number }): Table[] {
  const out: Table[] = [];
  out.push({
    title: `CPU per delivered message: ${o.pairs} pairs, ${num(o.messages)} messages per deployment at ${num(o.rate)}/s in ${o.rounds} interleaved rounds, same load for each`,
    headers: ['deployment', 'delivered', 'missing', 'send->deliver p50 / p99 ms', 'send->ack p50 / p99 ms', 'commit batch', 'our processes ms/msg', 'redis-server ms/msg', 'Postgres backends ms/msg', 'servers total ms/msg', 'servers ms/msg by round', 'vs single', 'generator ms/msg', 'other CPU'],
    rows: d.rows.map((r) => {
      const single = d.rows.find((x) => x.config === 'single');
      return [
        r.label,
        num(r.delivered),
        `${r.missingDeliveries}`,
        `${ms(r.deliverMs.p50)} / ${ms(r.deliverMs.p99)}`,
        `${ms(r.ackMs.p50)} / ${ms(r.ackMs.p99)}`,
        num(r.commit.meanBatch, 1),
        f3(r.totals.ours),
        r.config === 'single' ? '—' : f3(r.totals.redis),
        f3(r.totals.postgres),
        `**${f3(r.totals.servers)}**`,
        r.phaseServers.map((x) => x.toFixed(2)).join(', '),
        single && single !== r ? times(r.totals.servers / single.totals.servers) : single === r ? '×1' : '—',
        f3(r.totals.generator),
        `${Math.round(r.otherPct)} %${r.disturbed ? ' (disturbed)' : ''}`,
      ];
    }),
  });
  out.push({
    title: 'Ratios of CPU per delivered message, same run',
    headers: ['', 'ratio'],
    rows: d.ratios.map((r) => [r.what, `**${times(r.value)}**`]),
  });
  out.push({
    title: 'Per process: CPU ms per delivered message, % of one core over the windows, and % of one core with every deployment idle',
    headers: ['deployment', 'process', 'ms/msg', '% of a core', 'idle % of a core'],
    rows: d.rows.flatMap((r) => r.processes.map((p) => [r.config, p.name, f3(p.msPerMessage), `${p.pctOfCore}`, p.idlePct === undefined ? '' : `${p.idlePct}`])),
    alignRight: [false, false, true, true, true],
  });
  const redisRows = d.rows.filter((r) => r.redisTopCommands.length > 0);
  if (redisRows.length) {
    out.push({
      title: "Redis commands per delivered message (INFO commandstats of the deployment's own redis-server; commands run inside Lua scripts count too; top 16 by time)",
      headers: ['deployment', 'command', 'calls/msg', 'µs/msg in Redis'],
      rows: redisRows.flatMap((r) => [
        [r.config, 'all commands', r.redisCommandsPerMessage.toFixed(1), ''],
        ...r.redisTopCommands.map((c) => [r.config, c.command, c.callsPerMessage.toFixed(2), c.usecPerMessage.toFixed(1)]),
      ]),
    });
  }
  if (d.memory) {
    const m = d.memory;
    for (const row of m.rows) {
      out.push({
        title: `Redis memory per device, ${row.state === 'connected' ? 'connected' : 'after disconnecting (persistent sessions kept)'}: ${num(row.devices)} clean:false devices, 2 subscriptions each (MEMORY USAGE of every key under the run's prefix)`,
        headers: ['kind of key', 'keys added', 'bytes added', 'bytes per device'],
        rows: [
          ...row.kinds.map((k) => [k.kind, num(k.keysDelta), num(k.bytesDelta), num(k.bytesPerDevice)]),
          ['**all keys of ours**', '', num(row.kinds.reduce((s, k) => s + k.bytesDelta, 0)), `**${num(row.prefixBytesPerDevice)}**`],
          ['used_memory (INFO memory, whole server)', '', num(row.usedMemoryDelta), num(row.usedMemoryDelta / row.devices)],
        ],
      });
    }
  }
  return out;
}

function panels(d: ClusterData): Panel[] {
  const out: Panel[] = [
    {
      title: 'CPU per delivered 1:1 message',
      unit: 'CPU ms per message',
      groups: d.rows.map((r) => ({
        label: r.config,
        bars: [
          { series: 'our processes', value: r.totals.ours },
          ...(r.config === 'single' ? [] : [{ series: 'redis-server', value: r.totals.redis }]),
          { series: 'Postgres backends', value: r.totals.postgres },
          { series: 'servers total', value: r.totals.servers, note: r.config === 'single' ? '' : times(r.totals.servers / (d.rows.find((x) => x.config === 'single')?.totals.servers ?? Number.NaN)) },
        ],
      })),
    },
    {
      title: 'send -> deliver latency at the same rate',
      unit: 'ms',
      log: true,
      groups: d.rows.map((r) => ({
        label: r.config,
        bars: [
          { series: 'p50', value: r.deliverMs.p50 },
          { series: 'p99', value: r.deliverMs.p99 },
        ],
      })),
    },
  ];
  const conn = d.memory?.rows.find((r) => r.state === 'connected');
  if (conn) {
    out.push({
      title: 'Redis bytes per connected device, by kind of key',
      unit: 'bytes per device',
      groups: conn.kinds.filter((k) => k.bytesPerDevice > 1).map((k) => ({ label: k.kind.replace(/ \(.*\)$/, ''), bars: [{ series: 'bytes/device', value: k.bytesPerDevice }] })),
    });
  }
  return out;
}

function notes(d: ClusterData, o: { pairs: number; messages: number; rate: number; rounds: number; warmup: number; textBytes: number; clean: boolean; client: string; genCpus: string; serverCpus: string }): string[] {
  const out = [
    `Load: ${o.pairs} pairs of users registered over HTTP (POST /v1/auth/register), clientId {user}:d1, ${o.clean ? 'clean sessions' : 'clean:false sessions (as client-lib connects; the cluster-clean row uses clean sessions)'}, both topics (chat/{user}/in, chat/{user}/d1/in) subscribed QoS 1. Senders publish {"type":"send","id","to":peer,"body":{"text"}} (${o.textBytes} bytes of text) QoS 1 on chat/{user}/d1/out, round-robin over the pairs, open loop at ${o.rate}/s: the busiest deployment kept the one server core at most ${Math.round(Math.max(...d.rows.map((r) => r.processes.filter((p) => p.kind === 'ours' || p.kind === 'redis' || p.kind === 'postgres').reduce((x, p) => x + p.pctOfCore, 0))))} % busy (servers' share over its windows), below saturation (at 200/s the cluster reached 90 % in a trial run, and CPU per message then drops as work coalesces). Each message makes three QoS 1 deliveries: the ack event to the sending device, msg to the sender's inbox (its other devices), msg to the peer's inbox.`,
    `Deployments: single = \`node --import tsx broker/main.ts\` with DATABASE_URL; single-redis = the same with REDIS_URL (aedes sessions on Redis, delivery queue on Redis Streams, routing by Redis pub/sub back to itself); cluster = two \`broker/main.ts --role broker\` and one \`workers/main.ts\`, senders connected to broker A and receivers to broker B, so every msg to a peer crosses nodes (the echo to the sender's inbox is routed back to A); cluster-clean = a second such cluster whose clients use clean sessions, which takes aedes's persistence of every QoS 1 delivery to a clean:false session (aedes-persistence-redis: 7 Redis commands per delivery) out of the path. Default configuration otherwise (presence debounce 3 s, rate limits on), each deployment under its own Redis prefix, all on the run's one PostgreSQL database (users registered once; seq is assigned under the conversation's row lock as for any two brokers).`,
    `Interleaved: every deployment is started first and keeps its generator's connections; then the deployments take turns, ${o.rounds} rounds of ${num(Math.ceil(o.messages / o.rounds))} measured messages each (after ${num(o.warmup)} warm-up messages in the first round and one second's worth in the others), so that drift on the shared machine hits all of them alike. The deployments not under load meanwhile sit idle; their CPU is listed apart ("the other deployments, idle") and with the idle column shows what each costs at rest (heartbeats, blocking reads).`,
    `Window: from the first measured send of a round to the moment every measured message of it was both acknowledged and delivered. CPU ms per message = CPU time (utime + stime of all threads, /proc/PID/stat) over the windows / msg events received by peers in them. Postgres backends: every client backend of the run's database (pg_stat_activity), pinned with the servers; all of them are counted for the deployment under load (the idle ones hold idle connections: see the idle column); the server's own processes (WAL writer, checkpointer, ...) are listed apart because every database on this Postgres shares them. commit batch = messages per group commit of the ingesting broker over the windows (its /metrics): at a fixed rate below saturation batches are small, which is what makes the Postgres share per message large; it also moves with latency, so it differs between deployments.`,
    `Redis: each deployment with Redis gets a private redis-server ${d.redisVersion} (the machine's binary, on an ephemeral loopback port, no RDB saves and no AOF like the shared instance on :6379), so that its CPU time and INFO commandstats are that deployment's alone. They cannot share one Redis under different REDIS_PREFIXes: the prefix namespaces keys, not pub/sub channels; mqemitter-redis and aedes-persistence-redis publish on the bare MQTT topics ($SYS/sub/add, presence/{user}, group/{conv}), so deployments on one Redis receive each other's subscription broadcasts and presence (a first version of this bench that did so hung in SUBSCRIBE).`,
    `Pinning: generators and orchestrator on CPU ${o.genCpus}; our brokers and workers, the redis-servers and the Postgres backends on CPU ${o.serverCpus} (taskset). Before the run, with nothing of ours running, the cores were busy ${Object.entries(d.baseline.cores).map(([c, v]) => `${c} ${v} %`).join(', ')}.`,
    `"other CPU" = busy time of all cores over the windows minus every process measured here, in % of one core; above ${DISTURBED_PCT} % a row is marked (disturbed): other engineers' builds and tests share the two cores. Such figures are less reliable even though they count only our processes' own CPU time: contention adds cache misses and context switches per message, while starved processes batch more work per wake-up and spend less per message. Latency percentiles of disturbed rows mostly measure the scheduler.`,
    `Generator client: ${o.client === 'raw' ? 'bench/gen/raw-client.ts (mqtt-packet based)' : 'MQTT.js'}, one generator process per deployment; both ends of a pair in one process, so latencies are on one clock.`,
  ];
  const row = (c: ConfigName): ConfigRow | undefined => d.rows.find((r) => r.config === c);
  const [single, singleRedis, cluster, clean] = [row('single'), row('single-redis'), row('cluster'), row('cluster-clean')];
  if (single && singleRedis && cluster && clean) {
    const x = (a: number, b: number): string => times(a / b);
    const range = (v: number[], digits: number): string => (Math.min(...v).toFixed(digits) === Math.max(...v).toFixed(digits) ? Math.min(...v).toFixed(digits) : `${Math.min(...v).toFixed(digits)}-${Math.max(...v).toFixed(digits)}`);
    const pgRange = range(d.rows.map((r) => r.totals.postgres), 2);
    const batchRange = range(d.rows.map((r) => r.commit.meanBatch ?? Number.NaN), 1);
    out.push(
      `Reading this run: cluster / single = ${x(cluster.totals.servers, single.totals.servers)} in server CPU per delivered message. Most of the step is the Redis path itself, not the crossing: single + Redis / single = ${x(singleRedis.totals.servers, single.totals.servers)}, cluster / single + Redis = ${x(cluster.totals.servers, singleRedis.totals.servers)}. The Redis path costs ${singleRedis.redisCommandsPerMessage.toFixed(0)}-${cluster.redisCommandsPerMessage.toFixed(0)} Redis commands per message, each one a round trip (ioredis writes every command on its own): from single to single + Redis, the extra CPU of our processes comes to ${(((singleRedis.totals.ours - single.totals.ours) * 1000) / singleRedis.redisCommandsPerMessage).toFixed(0)} µs per Redis command, against ${((singleRedis.totals.redis * 1000) / singleRedis.redisCommandsPerMessage).toFixed(0)} µs in redis-server. Of the cluster's ${cluster.redisCommandsPerMessage.toFixed(0)} commands per message, ${(cluster.redisCommandsPerMessage - clean.redisCommandsPerMessage).toFixed(0)} are aedes-persistence-redis's bookkeeping of the three QoS 1 deliveries to clean:false sessions, and clean sessions take the cluster to ${x(clean.totals.servers, cluster.totals.servers)} of its CPU. Postgres backends: ${pgRange} ms per message in every row, at ${batchRange} messages per commit.`,
    );
  }
  if (d.memory) {
    const m = d.memory;
    out.push(
      `Redis memory: ${num(m.connected)} users seeded through the project's store (bench/lib/seed.ts: long-lived device tokens), each connecting one device clean:false to broker A of the cluster and subscribing chat/{user}/in and chat/{user}/d1/in QoS 1, ${num(m.connectPerSec)} connects/s${m.failures ? ` (${m.failures} failed: ${m.firstError})` : ''}. Measured 4 s after the connects (presence debounce 3 s) and again 4 s after they disconnected (their persistent sessions stay). "bytes" = MEMORY USAGE key SAMPLES 0 (value, key and dict entry overhead) summed over every key under the cluster's Redis prefix, after minus before; used_memory is the cluster's redis-server's whole heap (allocator overhead included). The generator sets no last will: the broker drops a will on presence/ at CONNECT anyway (broker/presence.ts). One device per user, so per-user keys (retained presence/{user}, presence:user:*, last seen) count once per device here; with several devices per user they are shared.`,
      `CPU per connect (CONNECT with token check, two SUBSCRIBEs, presence): ${m.connectCpu.map((c) => `${c.name} ${c.msPerConnect.toFixed(2)} ms`).join(', ')}${m.disturbed ? ` (disturbed: other CPU ${m.otherPct} %)` : ''}. RSS growth per device while they connected, all to broker A: ${m.rssPerDevice.map((r) => `${r.name} ${bytes(r.bytes)}`).join(', ')} (RSS moves with garbage collection and allocator caching: indicative only).`,
    );
  }
  return out;
}

function readmeSection(r: Report<ClusterData>): string {
  const intro = [
    '## Cluster: CPU per cross-node message, Redis memory per device',
    '',
    '`bench/cluster.ts` is a standalone script (not an `npm run bench` scenario; issue 10). It puts',
    'the same 1:1 load on one node without Redis, one node with Redis, a cluster of two brokers and a',
    'worker with senders on one broker and receivers on the other, and that cluster again with',
    'clean-session clients, interleaved in one run, and reports the CPU time per delivered message',
    'of every process involved (ours, redis-server, the Postgres backends of its database) side by',
    'side; then it connects clean:false devices to a cluster broker and measures what each costs in',
    'Redis. `--help` for the options. Output: `results/cluster.{json,md,svg}` and this section.',
    '',
  ].join('\n');
  return `${intro}\n${reportMarkdown({ ...r, title: 'Latest run' }, 3)}`;
}

// ---------------------------------------------------------------------------------------

if (process.env.BENCH_CLUSTER_ROLE === 'gen') {
  void generatorMain();
} else {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench/cluster.ts failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
