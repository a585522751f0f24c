/**
 * The real platform for tests: in-process (`startPlatform`) or as a child process
 * (`spawnPlatform`, for SIGKILL and restart), always on ephemeral ports, with a fresh
 * data directory, and on PGlite or on a fresh PostgreSQL database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPlatform as start, type Platform } from '../../broker/platform.ts';
import { createLogger } from '../../core/log.ts';
import type { Config } from '../../config/index.ts';
import { createTestDatabase, type TestDatabase } from './services.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface TestPlatform {
  mqttUrl: string;
  wsUrl: string;
  httpUrl: string;
  platform: Platform;
  close(): Promise<void>;
}

export async function startPlatform(opts: { fanoutWriteMax?: number; store?: 'pglite' | 'postgres'; config?: Partial<Config> } = {}): Promise<TestPlatform> {
  const dataDir = await mkdtemp(join(tmpdir(), 'chat-test-'));
  let database: TestDatabase | undefined;
  if (opts.store === 'postgres') database = await createTestDatabase();
  const platform = await start({
    env: {},
    logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'),
    config: {
      mqttPort: 0,
      httpPort: 0,
      host: '127.0.0.1',
      dataDir,
      presenceDebounceMs: 0,
      ...(database ? { databaseUrl: database.url } : {}),
      ...(opts.fanoutWriteMax !== undefined ? { fanoutWriteMax: opts.fanoutWriteMax } : {}),
      ...opts.config,
    },
  });
  return {
    mqttUrl: platform.urls.mqtt,
    wsUrl: platform.urls.ws,
    httpUrl: platform.urls.http,
    platform,
    async close() {
      await platform.close();
      await database?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ChildPlatform {
  mqttUrl: string;
  wsUrl: string;
  httpUrl: string;
  dataDir: string;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  restart(): Promise<void>;
  /** kill and remove the data directory */
  dispose(): Promise<void>;
}

function freePort(): Promise<number> {
  return import('node:net').then(
    ({ createServer }) =>
      new Promise<number>((resolve, reject) => {
        const s = createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => {
          const port = (s.address() as import('node:net').AddressInfo).port;
          s.close(() => resolve(port));
        });
      }),
  );
}

/** `npx tsx broker/main.ts` as a child process, ready when it prints its addresses. */
export async function spawnPlatform(opts: { dataDir?: string; env?: Record<string, string>; args?: string[] } = {}): Promise<ChildPlatform> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'chat-child-')));
  const mqttPort = await freePort();
  const httpPort = await freePort();
  let child: ChildProcess | undefined;
  let out = '';

  async function launch(): Promise<void> {
    out = '';
    const c = spawn(process.execPath, ['--import', 'tsx', join(root, 'broker', 'main.ts'), ...(opts.args ?? [])], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        MQTT_PORT: String(mqttPort),
        HTTP_PORT: String(httpPort),
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        LOG_LEVEL: 'warn',
        PRESENCE_DEBOUNCE_MS: '0',
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`platform did not start in 60 s:\n${out}`)), 60_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        if (out.includes('chat platform ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      c.stdout!.on('data', onData);
      c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      c.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`platform exited with ${code} before it was ready:\n${out}`));
      });
    });
  }

  async function kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code)));
    c.kill(signal);
    return exited;
  }

  await launch();
  return {
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    wsUrl: `ws://127.0.0.1:${httpPort}/mqtt`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    dataDir,
    output: () => out,
    kill,
    async restart() {
      await kill('SIGKILL');
      await launch();
    },
    async dispose() {
      await kill('SIGKILL');
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function registerUser(
  httpUrl: string,
  user: string,
  password = 'correct-horse-battery',
  device = 'default',
): Promise<{ user: string; device: string; token: string; refresh_token: string; expires_at: number }> {
  const res = await fetch(`${httpUrl}/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, password, device }),
  });
  if (res.status !== 201) throw new Error(`register ${user}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { user: string; device: string; token: string; refresh_token: string; expires_at: number };
}

export interface ChildWorker {
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `npm run worker` (workers/main.ts) as a child process, ready when it says so. */
export async function spawnWorker(env: Record<string, string>, args: string[] = []): Promise<ChildWorker> {
  let out = '';
  const c = spawn(process.execPath, ['--import', 'tsx', join(root, 'workers', 'main.ts'), ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  c.stdout.on('data', (d: Buffer) => (out += d.toString()));
  c.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start in 60 s:\n${out}`)), 60_000);
    const check = () => {
      if (out.includes('chat worker ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    c.stdout.on('data', check);
    c.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}:\n${out}`));
    });
  });
  return {
    output: () => out,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (c.exitCode !== null || c.signalCode !== null) return c.exitCode;
      const exited = new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code)));
      c.kill(signal);
      return exited;
    },
  };
}
