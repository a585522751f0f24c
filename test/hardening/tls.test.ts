import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import { connect as netConnect, createServer } from 'node:net';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';
import { rawConnect } from '../helpers/mqtt.ts';

const dir = mkdtempSync(join(tmpdir(), 'chat-tls-'));
const certFile = join(dir, 'cert.pem');
const keyFile = join(dir, 'key.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '2', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
const ca = readFileSync(certFile);
const tls = { tlsCert: certFile, tlsKey: keyFile, mqttsPort: 0, httpsPort: 0 };

/** HTTPS with our CA (fetch has no per-request CA). */
function https(url: string, method = 'GET', body?: unknown, withCa = true): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ...(withCa ? { ca } : {}), rejectUnauthorized: true, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      let data = '';
      res.on('data', (d: Buffer) => (data += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

const register = async (base: string, user: string) => JSON.parse((await https(`${base}/v1/auth/register`, 'POST', { user, password: 'correct-horse-battery' })).body) as { token: string };

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('TLS listeners with a configured certificate', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startPlatform({ store: 'postgres', config: tls });
  });
  afterAll(async () => p?.close());

  it('serves MQTTS, WSS and HTTPS that verify against the CA', async () => {
    const urls = p.platform.urls;
    expect(urls.mqtts).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const health = await https(`https://127.0.0.1:${p.platform.httpsPort}/healthz`);
    expect(health).toEqual({ status: 200, body: '{"status":"ok"}' });
    const { token } = await register(`https://127.0.0.1:${p.platform.httpsPort}`, 'alice');
    for (const url of [urls.mqtts!, urls.wss!]) {
      const c = await rawConnect(url, { clientId: 'alice:default', username: 'alice', password: token, ca, rejectUnauthorized: true });
      expect(c.connected).toBe(true);
      await c.subscribeAsync('chat/alice/in', { qos: 1 });
      await c.endAsync();
    }
  });

  it('is refused by a client that does not trust the certificate', async () => {
    const err = await rawConnect(p.platform.urls.mqtts!, { clientId: 'x', rejectUnauthorized: true, connectTimeout: 3_000 }).then(
      async (c) => {
        await c.endAsync();
        return undefined;
      },
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/self[- ]signed|certificate/i);
    await expect(https(`https://127.0.0.1:${p.platform.httpsPort}/healthz`, 'GET', undefined, false)).rejects.toThrow(/self[- ]signed|certificate/i);
  });
});

describe('plain listeners turned off', () => {
  let p: TestPlatform;
  let plainMqtt: number;
  let plainHttp: number;
  beforeAll(async () => {
    plainMqtt = await freePort();
    plainHttp = await freePort();
    p = await startPlatform({ store: 'postgres', config: { ...tls, plainListeners: false, mqttPort: plainMqtt, httpPort: plainHttp } });
  });
  afterAll(async () => p?.close());

  it('listens on TLS only', async () => {
    expect(p.platform.mqttPort).toBe(0);
    expect(p.platform.httpPort).toBe(0);
    expect(await refused(plainMqtt)).toBe(true);
    expect(await refused(plainHttp)).toBe(true);
    const { token } = await register(`https://127.0.0.1:${p.platform.httpsPort}`, 'bob');
    const c = await rawConnect(p.platform.urls.mqtts!, { clientId: 'bob:default', username: 'bob', password: token, ca, rejectUnauthorized: true });
    expect(c.connected).toBe(true);
    await c.endAsync();
  });

  it('refuses to start with no certificate and no plain listener, naming the key', async () => {
    await expect(startPlatform({ config: { plainListeners: false } })).rejects.toThrow(/plainListeners: false needs tlsCert and tlsKey/);
  });
});
