// The brokers under test, each started (or found) pinned to the broker CPUs:
//   mosquitto  the system Mosquitto on 127.0.0.1:1883 (pinned for the run, then restored),
//              or a private instance (`own`) with a config written to a temp dir
//   aedes      bare aedes 1.2.0 in a child process on an ephemeral port
//   ours       the platform, `node --import tsx broker/main.ts` in a child process
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Endpoint } from './protocol.ts';
import { gcAndHeapUsed } from './inspector.ts';
import { affinity, descendants, maxNofile, pin, readProcStat, renice } from './proc.ts';
import { ROOT, freePort, getNice, nextMessage, sleep, spawnPinned, spawnTs, tempDir, waitForPort, type Child } from './spawn.ts';

export type TargetName = 'mosquitto' | 'aedes' | 'ours';

export interface Target {
  name: TargetName;
  /** What exactly ran: "mosquitto 2.0.11 (system, 127.0.0.1:1883)", ... */
  label: string;
  endpoint: Endpoint;
  httpUrl?: string;
  pid: number;
  /** The broker's processes (and its database backends when pinned with it). */
  pids(): number[];
  /** Refresh pids that change (database backends) and pin them; call before measuring. */
  prepare(): Promise<void>;
  close(): Promise<void>;
  notes: string[];
  /** Tail of the broker's log (ours), for error reports. */
  logTail(): string;
  /** Node brokers started with `inspect`: a full GC, then the JS heap in use (null: not a Node broker / no inspector). */
  gc(): Promise<number | null>;
}

/** Raised when a target cannot run on this checkout yet (e.g. broker/main.ts missing). */
export class NotAvailableError extends Error {}

export function oursAvailable(root = ROOT): boolean {
  return existsSync(path.join(root, 'broker', 'main.ts'));
}

export interface TargetOptions {
  cpus: string;
  /** RLIMIT_NOFILE for brokers the bench starts. */
  nofile?: number;
  /** mosquitto: 'system' (127.0.0.1:1883) or 'own' (private instance). */
  mosquitto?: 'system' | 'own';
  /** own mosquitto: TCP_NODELAY on its sockets (default true). */
  mosquittoNoDelay?: boolean;
  /** node flags for aedes and ours (e.g. a larger heap for the connections scenario). */
  nodeArgs?: string[];
  /** ours */
  store?: 'pglite' | 'postgres';
  fanoutWriteMax?: number;
  env?: Record<string, string>;
  /** ours: use this DATA_DIR (kept after close) instead of a fresh temp dir. */
  dataDir?: string;
  /** Node brokers: open the V8 inspector on a free port so that gc() can run a full GC. */
  inspect?: boolean;
  /** ours: the source root to run (working tree or an exported commit) and its name. */
  oursRoot?: string;
  oursDescribe?: string;
}

export async function startTarget(name: TargetName, o: TargetOptions): Promise<Target> {
  switch (name) {
    case 'mosquitto':
      return o.mosquitto === 'own' ? await startOwnMosquitto(o) : await useSystemMosquitto(o);
    case 'aedes':
      return await startAedes(o);
    case 'ours':
      return await startOurs(o);
  }
}

function mosquittoVersion(): string {
  try {
    const out = spawnSyncText('mosquitto', ['-h']);
    const m = /mosquitto version ([\d.]+)/.exec(out);
    return m ? m[1] : '?';
  } catch {
    return '?';
  }
}

function spawnSyncText(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

async function useSystemMosquitto(o: TargetOptions): Promise<Target> {
  let pid = 0;
  try {
    pid = Number(readFileSync('/run/mosquitto/mosquitto.pid', 'utf8').trim());
  } catch {
    throw new NotAvailableError('system Mosquitto: no /run/mosquitto/mosquitto.pid (start it: mosquitto -d -c /etc/mosquitto/mosquitto.conf), or use --mosquitto own');
  }
  await waitForPort(1883, 2000).catch(() => {
    throw new NotAvailableError('system Mosquitto does not accept connections on 127.0.0.1:1883');
  });
  const before = affinity(pid);
  const niceBefore = readProcStat(pid)?.nice ?? 0;
  const notes: string[] = [];
  if (o.cpus) {
    pin(pid, o.cpus);
    notes.push(`system mosquitto pid ${pid} pinned to CPU ${o.cpus} for the run (was ${before}, restored after)`);
  }
  if (getNice() !== 0) renice(pid, getNice());
  notes.push('system instance: traffic of other users of 127.0.0.1:1883 during the run would count too');
  return {
    name: 'mosquitto',
    label: `mosquitto ${mosquittoVersion()} (system, 127.0.0.1:1883)`,
    endpoint: { host: '127.0.0.1', port: 1883 },
    pid,
    pids: () => [pid],
    prepare: async () => {},
    close: async () => {
      if (o.cpus && before) pin(pid, before);
      if (getNice() !== 0) renice(pid, niceBefore);
    },
    notes,
    logTail: () => '',
    gc: async () => null,
  };
}

async function startOwnMosquitto(o: TargetOptions): Promise<Target> {
  const dir = tempDir('bench-mosquitto-');
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'max_connections -1',
      // Without it Mosquitto's small writes wait for delayed ACKs (Nagle): ~40 ms tails.
      `set_tcp_nodelay ${o.mosquittoNoDelay === false ? 'false' : 'true'}`,
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      '',
    ].join('\n'),
  );
  const child = spawnPinned({ cmd: 'mosquitto', args: ['-c', conf], cpus: o.cpus, nofile: o.nofile, logFile: path.join(dir, 'mosquitto.log') });
  await waitForPort(port, 10000, '127.0.0.1', () => child.proc.exitCode === null);
  return {
    name: 'mosquitto',
    label: `mosquitto ${mosquittoVersion()} (own instance, 127.0.0.1:${port})`,
    endpoint: { host: '127.0.0.1', port },
    pid: child.pid,
    pids: () => [child.pid],
    prepare: async () => {},
    close: async () => {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    notes: [`own mosquitto instance: max_connections -1, set_tcp_nodelay ${o.mosquittoNoDelay === false ? 'false' : 'true'}, persistence false, file limit ${o.nofile ? Math.min(o.nofile, maxNofile().limit) : 'inherited'}`],
    logTail: () => tail(path.join(dir, 'mosquitto.log')),
    gc: async () => null,
  };
}

async function inspectArgs(o: TargetOptions): Promise<{ args: string[]; port: number }> {
  if (!o.inspect) return { args: [], port: 0 };
  const port = await freePort();
  return { args: [`--inspect=127.0.0.1:${port}`], port };
}

async function startAedes(o: TargetOptions): Promise<Target> {
  const insp = await inspectArgs(o);
  const child = spawnTs(path.join(ROOT, 'bench', 'servers', 'aedes.ts'), { cpus: o.cpus, nofile: o.nofile, nodeArgs: [...(o.nodeArgs ?? []), ...insp.args] });
  const isListening = (m: unknown): m is { type: 'listening'; port: number } =>
    typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'listening' && typeof (m as { port?: unknown }).port === 'number';
  const { port } = await nextMessage(child.proc, isListening, 30000, 'bare aedes');
  const version = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', 'aedes', 'package.json'), 'utf8')) as { version: string };
  return {
    name: 'aedes',
    label: `aedes ${version.version} (bare, defaults, 127.0.0.1:${port})`,
    endpoint: { host: '127.0.0.1', port },
    pid: child.pid,
    pids: () => [child.pid],
    prepare: async () => {},
    close: () => child.stop(),
    notes: [],
    logTail: () => '',
    gc: () => (insp.port ? gcAndHeapUsed(insp.port) : Promise.resolve(null)),
  };
}

/** A database created for one run and dropped after it. */
export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

export const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export async function createDatabase(runId: string): Promise<BenchDatabase> {
  const name = `bench_${runId.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      try {
        await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
        await c.query(`DROP DATABASE IF EXISTS ${name}`);
      } finally {
        await c.end();
      }
    },
  };
}

/** pids of the Postgres backends connected to a database. */
export async function backendPids(dbName: string): Promise<number[]> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    const r = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [dbName]);
    return r.rows.map((row) => row.pid);
  } finally {
    await c.end();
  }
}

async function startOurs(o: TargetOptions): Promise<Target> {
  const root = o.oursRoot ?? ROOT;
  if (!oursAvailable(root)) {
    throw new NotAvailableError(`our broker is not built yet: broker/main.ts does not exist in ${root === ROOT ? 'this checkout' : root}`);
  }
  const dir = tempDir('bench-ours-');
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const logFile = path.join(dir, 'broker.log');
  const env: Record<string, string> = {
    MQTT_PORT: String(mqttPort),
    HTTP_PORT: String(httpPort),
    DATA_DIR: o.dataDir ?? path.join(dir, 'data'),
    MQTT_ANONYMOUS: 'true',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    ...(o.fanoutWriteMax !== undefined ? { FANOUT_WRITE_MAX: String(o.fanoutWriteMax) } : {}),
    ...(o.env ?? {}),
  };
  if (o.store === 'postgres' && !env.DATABASE_URL) throw new Error('store postgres needs env.DATABASE_URL');
  if (o.store !== 'postgres') delete env.DATABASE_URL;
  // Inherited variables must not switch the embedded run to cluster mode.
  const clean: Record<string, undefined> = { DATABASE_URL: undefined, REDIS_URL: undefined };
  const insp = await inspectArgs(o);
  const child = spawnTs(path.join(root, 'broker', 'main.ts'), {
    cwd: root,
    cpus: o.cpus,
    nofile: o.nofile,
    nodeArgs: [...(o.nodeArgs ?? []), ...insp.args],
    env: { ...clean, ...env },
    logFile,
    ipc: false,
  });
  const alive = (): boolean => child.proc.exitCode === null && child.proc.signalCode === null;
  try {
    await waitForPort(mqttPort, 120000, '127.0.0.1', alive);
    await waitForHttp(`http://127.0.0.1:${httpPort}/readyz`, 120000, alive);
  } catch (err) {
    await child.stop(2000);
    throw new Error(`our broker did not start: ${(err as Error).message}\n--- broker log (tail) ---\n${tail(logFile)}`);
  }
  const dbName = o.store === 'postgres' && env.DATABASE_URL ? new URL(env.DATABASE_URL).pathname.slice(1) : '';
  let dbPids: number[] = [];
  return {
    name: 'ours',
    label: `ours (${o.oursDescribe ?? 'working tree'}, store ${o.store ?? 'pglite'}${o.fanoutWriteMax !== undefined ? `, FANOUT_WRITE_MAX=${o.fanoutWriteMax}` : ''}, 127.0.0.1:${mqttPort})`,
    endpoint: { host: '127.0.0.1', port: mqttPort },
    httpUrl: `http://127.0.0.1:${httpPort}`,
    pid: child.pid,
    pids: () => [child.pid, ...descendants(child.pid), ...dbPids],
    prepare: async () => {
      if (!dbName) return;
      dbPids = await backendPids(dbName);
      for (const p of dbPids) {
        try {
          pin(p, o.cpus);
        } catch {
          // a backend that just exited
        }
        if (getNice() !== 0) renice(p, getNice());
      }
    },
    close: async () => {
      await child.stop(10000);
      rmSync(dir, { recursive: true, force: true });
    },
    notes:
      o.store === 'postgres'
        ? [`Postgres backends of the bench database are pinned to CPU ${o.cpus} with the broker and counted as broker CPU; the postmaster, WAL writer and checkpointer are not`]
        : [],
    logTail: () => tail(logFile),
    gc: () => (insp.port ? gcAndHeapUsed(insp.port) : Promise.resolve(null)),
  };
}

export async function waitForHttp(url: string, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`process exited (last answer of ${url}: ${last || 'none'})`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
      last = `HTTP ${r.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms (${last})`);
}

export function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
