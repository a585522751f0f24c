import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startPlatform, registerUser, type TestPlatform } from '../helpers/platform.ts';
import { rawConnect } from '../helpers/mqtt.ts';
import { limitsWith } from '../../config/limits.ts';
import type { MqttClient } from 'mqtt';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('auth hardening over HTTP and MQTT', () => {
  let p: TestPlatform;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${p.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const answer = async (r: Response) => ({ status: r.status, type: r.headers.get('content-type'), retryAfter: r.headers.get('retry-after'), body: await r.text() });
  const login = (user: string, password: string) => post('/v1/auth/login', { user, password });
  const closedWithin = (c: MqttClient, ms: number) =>
    new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      c.once('close', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
  const refusedCode = (url: string, opts: Parameters<typeof rawConnect>[1]) =>
    rawConnect(url, opts).then(
      async (c) => {
        await c.endAsync();
        return 0;
      },
      (e: { code?: number }) => e.code,
    );

  beforeAll(async () => {
    p = await startPlatform({
      store: 'postgres',
      config: {
        limits: limitsWith({ login: { userFreeFailures: 2, baseDelayMs: 1000, maxDelayMs: 1000, userLockoutFailures: 5, lockoutMs: 60_000, ipFreeFailures: 1000, ipLockoutFailures: 0 } }),
      },
    });
  });
  afterAll(async () => p?.close());

  it('answers a wrong password, an unknown user and a malformed name identically', async () => {
    await registerUser(p.httpUrl, 'ann');
    const answers = await Promise.all([login('ann', 'wrong-password-1'), login('no-such-user', 'wrong-password-1'), login('not a name!', 'wrong-password-1')].map(async (r) => answer(await r)));
    expect(answers[0]).toMatchObject({ status: 401, retryAfter: null });
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
  });

  it('delays, then locks out, a name after repeated failures; identically for unknown names; with Retry-After', async () => {
    await registerUser(p.httpUrl, 'carl', 'carls-right-password');
    const fail = async (user: string) => answer(await login(user, 'wrong-password-1'));
    const throttled = [];
    for (const user of ['ghost', 'carl']) {
      expect((await fail(user)).status).toBe(401);
      expect((await fail(user)).status).toBe(401);
      expect((await fail(user)).status).toBe(401); // third: the next waits 1 s
      throttled.push(await fail(user));
    }
    expect(throttled[0]).toMatchObject({ status: 429, retryAfter: '1' });
    expect(JSON.parse(throttled[0]!.body)).toMatchObject({ error: { code: 'rate_limited' } });
    expect(throttled[1]).toEqual(throttled[0]);
    // Even the right password waits.
    expect((await login('carl', 'carls-right-password')).status).toBe(429);
    await sleep(1050);
    expect((await fail('carl')).status).toBe(401); // fourth: the next waits 1 s (the cap)
    await sleep(1050);
    expect((await fail('carl')).status).toBe(401); // fifth: locked out
    const locked = await answer(await login('carl', 'carls-right-password'));
    expect(locked.status).toBe(429);
    expect(Number(locked.retryAfter)).toBeGreaterThan(50);
    // Other names are not affected.
    await registerUser(p.httpUrl, 'dora', 'doras-right-password');
    expect((await login('dora', 'doras-right-password')).status).toBe(200);
    const m = await (await fetch(`${p.httpUrl}/metrics`)).text();
    expect(m).toMatch(/chat_login_lockouts_total\{scope="user"\} 1/);
    expect(m).toMatch(/chat_login_throttled_total\{scope="user"\} [3-9]/);
    expect(m).toMatch(/chat_audit_events_total\{event="login_lockout"\} 1/);
    expect(m).toMatch(/chat_audit_events_total\{event="login_failed"\} (1[0-9])/);
  });

  it('a success clears the failures of the name', async () => {
    await registerUser(p.httpUrl, 'erin', 'erins-right-password');
    for (let round = 0; round < 3; round++) {
      expect((await login('erin', 'wrong-password-1')).status).toBe(401);
      expect((await login('erin', 'wrong-password-1')).status).toBe(401);
      expect((await login('erin', 'erins-right-password')).status).toBe(200);
    }
  });

  it('still refuses short passwords', async () => {
    const r = await post('/v1/auth/register', { user: 'shorty', password: '1234567' });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: { code: 'bad_request' } });
  });

  it('closes the live MQTT connection of a device when its token is revoked', async () => {
    const iris = await registerUser(p.httpUrl, 'iris');
    const auth = { authorization: `Bearer ${iris.token}` };
    const d = (await (await post('/v1/devices', { device: 'thermostat' }, auth)).json()) as { token: string };
    const thermo = await rawConnect(p.mqttUrl, { clientId: 'iris:thermostat', username: 'iris', password: d.token });
    const other = await rawConnect(p.mqttUrl, { clientId: 'iris:default', username: 'iris', password: iris.token });
    const closed = closedWithin(thermo, 3_000);
    expect((await fetch(`${p.httpUrl}/v1/devices/thermostat`, { method: 'DELETE', headers: auth })).status).toBe(204);
    expect(await closed).toBe(true);
    expect(await refusedCode(p.mqttUrl, { clientId: 'iris:thermostat', username: 'iris', password: d.token })).toBe(5);
    // The user's other device stays.
    await sleep(100);
    expect(other.connected).toBe(true);
    await other.endAsync();
  });

  it('keeps rotating refresh tokens, and a reused one ends the session and its live connection', async () => {
    const rita = await registerUser(p.httpUrl, 'rita', 'ritas-right-password', 'phone');
    const rotated = await post('/v1/auth/refresh', { refresh_token: rita.refresh_token });
    expect(rotated.status).toBe(200);
    const second = (await rotated.json()) as { token: string; refresh_token: string };
    expect(second.refresh_token).not.toBe(rita.refresh_token);
    const phone = await rawConnect(p.mqttUrl, { clientId: 'rita:phone', username: 'rita', password: second.token });
    const closed = closedWithin(phone, 3_000);
    // The first refresh token again: stolen. 401, the family is dead, the connection closes.
    expect((await post('/v1/auth/refresh', { refresh_token: rita.refresh_token })).status).toBe(401);
    expect(await closed).toBe(true);
    expect((await post('/v1/auth/refresh', { refresh_token: second.refresh_token })).status).toBe(401);
    // Unexpired access tokens of that session are dead too.
    expect(await refusedCode(p.mqttUrl, { clientId: 'rita:phone', username: 'rita', password: second.token })).toBe(5);
    // Logging in again starts a new session on the device.
    const relog = await post('/v1/auth/login', { user: 'rita', password: 'ritas-right-password', device: 'phone' });
    const fresh = (await relog.json()) as { token: string };
    expect(await refusedCode(p.mqttUrl, { clientId: 'rita:phone', username: 'rita', password: fresh.token })).toBe(0);
    const m = await (await fetch(`${p.httpUrl}/metrics`)).text();
    expect(m).toMatch(/chat_audit_events_total\{event="token_revoked"\} 2/);
  });
});
