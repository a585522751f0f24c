// Start pinned child processes (taskset), with a raised file limit (prlimit) when asked,
// and wait for them to be ready. Every child started here is stopped by its pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { maxNofile } from './proc.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface SpawnOptions {
  cmd: string;
  args: readonly string[];
  /** taskset CPU list; empty: not pinned. */
  cpus: string;
  /** Raise RLIMIT_NOFILE (soft and hard) to this value with prlimit. */
  nofile?: number;
  /** Merged over process.env; undefined removes a variable. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  ipc?: boolean;
  /** stdout+stderr go to this file (default: inherited stderr only). */
  logFile?: string;
}

export interface Child {
  proc: ChildProcess;
  pid: number;
  log?: WriteStream;
  /** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

/** Children still running, killed if the bench exits early (Ctrl-C, timeout, crash). */
const live = new Set<ChildProcess>();
/** Temp dirs of this run, removed at exit whatever happened. */
const tempDirs = new Set<string>();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory under the system temp dir, removed when the bench exits. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

let niceness = 0;
/**
 * Scheduling priority of every process the bench starts (and of itself): on a machine
 * shared with other work, a negative value keeps the measured processes from being
 * starved (`--nice -10`). 0 leaves priorities alone.
 */
export function setNice(n: number): void {
  niceness = n;
}
export function getNice(): number {
  return niceness;
}

export function spawnPinned(o: SpawnOptions): Child {
  const argv: string[] = [];
  if (niceness !== 0) argv.push('nice', '-n', String(niceness));
  const nofile = o.nofile ? Math.min(o.nofile, maxNofile().limit) : 0;
  if (nofile) argv.push('prlimit', `--nofile=${nofile}:${nofile}`);
  if (o.cpus) argv.push('taskset', '-c', o.cpus);
  argv.push(o.cmd, ...o.args);
  const [cmd, ...args] = argv;
  const log = o.logFile ? createWriteStream(o.logFile) : undefined;
  const env: NodeJS.ProcessEnv = { ...process.env, ...o.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const proc = spawn(cmd, args, {
    cwd: o.cwd ?? ROOT,
    env,
    stdio: ['ignore', log ? 'pipe' : 'ignore', log ? 'pipe' : 'inherit', ...(o.ipc ? (['ipc'] as const) : [])],
  });
  if (log) {
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.pipe(log, { end: false });
  }
  if (proc.pid === undefined) throw new Error(`could not start ${cmd}`);
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null)));
    proc.once('error', () => resolve(-1));
  });
  const pid = proc.pid;
  return {
    proc,
    pid,
    log,
    exited,
    async stop(graceMs = 5000): Promise<void> {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      log?.end();
    },
  };
}

/** Spawn a TypeScript module with node + tsx, pinned, with an IPC channel. */
export function spawnTs(
  file: string,
  o: { cpus: string; nofile?: number; env?: Record<string, string | undefined>; nodeArgs?: readonly string[]; logFile?: string; ipc?: boolean; cwd?: string },
): Child {
  return spawnPinned({
    cwd: o.cwd,
    cmd: process.execPath,
    args: [...(o.nodeArgs ?? []), '--import', 'tsx', file],
    cpus: o.cpus,
    nofile: o.nofile,
    env: o.env,
    ipc: o.ipc ?? true,
    logFile: o.logFile,
  });
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Wait until a TCP port accepts connections. */
export async function waitForPort(port: number, timeoutMs: number, host = '127.0.0.1', alive?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (alive && !alive()) throw new Error(`process died before port ${port} opened`);
    if (Date.now() > deadline) throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
    await sleep(100);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Wait for the first IPC message that satisfies a guard. */
export function nextMessage<T>(proc: ChildProcess, guard: (m: unknown) => m is T, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: unknown): void => {
      if (guard(m)) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`${what}: process exited (${code}) before answering`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      proc.off('message', onMsg);
      proc.off('exit', onExit);
    };
    proc.on('message', onMsg);
    proc.on('exit', onExit);
  });
}
