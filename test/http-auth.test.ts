import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startPlatform, registerUser, type TestPlatform } from './helpers/platform.ts';

describe('HTTP API: auth, devices, health (DESIGN section 7)', () => {
  let p: TestPlatform;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${p.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  beforeAll(async () => {
    // The store is not the point here: PostgreSQL starts in well under a second, PGlite in seconds.
    p = await startPlatform({ store: 'postgres' });
  });
  afterAll(async () => p?.close());

  it('registers, refuses a taken name with 409, logs in and refuses a wrong password with 401', async () => {
    const r = await post('/v1/auth/register', { user: 'alice', password: 'secret-pass-1' });
    expect(r.status).toBe(201);
    const bundle = (await r.json()) as Record<string, unknown>;
    expect(bundle).toMatchObject({ user: 'alice', device: 'default' });
    expect(typeof bundle.token).toBe('string');
    expect(bundle.expires_at).toBeGreaterThan(Date.now());
    expect((await post('/v1/auth/register', { user: 'alice', password: 'another-pass' })).status).toBe(409);
    const ok = await post('/v1/auth/login', { user: 'alice', password: 'secret-pass-1', device: 'laptop' });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ user: 'alice', device: 'laptop' });
    const wrong = await post('/v1/auth/login', { user: 'alice', password: 'nope-nope-nope' });
    const unknown = await post('/v1/auth/login', { user: 'nobody', password: 'nope-nope-nope' });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    // No user enumeration: the same answer for a wrong password and an unknown user.
    expect(await wrong.json()).toEqual(await unknown.json());
  });

  it('rotates refresh tokens and revokes the session when one is reused', async () => {
    const first = await registerUser(p.httpUrl, 'rita');
    const r1 = await post('/v1/auth/refresh', { refresh_token: first.refresh_token });
    expect(r1.status).toBe(200);
    const second = (await r1.json()) as { refresh_token: string };
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect((await post('/v1/auth/refresh', { refresh_token: first.refresh_token })).status).toBe(401);
    // The reuse revoked the family: the newer token is dead too.
    expect((await post('/v1/auth/refresh', { refresh_token: second.refresh_token })).status).toBe(401);
  });

  it('issues long-lived device tokens and revokes them', async () => {
    const s = await registerUser(p.httpUrl, 'iris');
    const auth = { authorization: `Bearer ${s.token}` };
    const r = await post('/v1/devices', { device: 'thermostat', ttl_days: 30 }, auth);
    expect(r.status).toBe(201);
    const d = (await r.json()) as { token: string; expires_at: number };
    expect(d.expires_at - Date.now()).toBeGreaterThan(29 * 86_400_000);
    expect((await post('/v1/devices', { device: 'x' })).status).toBe(401);
    const del = await fetch(`${p.httpUrl}/v1/devices/thermostat`, { method: 'DELETE', headers: auth });
    expect(del.status).toBe(204);
    const again = await fetch(`${p.httpUrl}/v1/devices/thermostat`, { method: 'DELETE', headers: auth });
    expect(again.status).toBe(404);
  });

  it.each([
    ['malformed JSON', '/v1/auth/register', '{"user": ', 400, 'bad_request'],
    ['a body that is not an object', '/v1/auth/register', '[1,2]', 400, 'bad_request'],
    ['a missing password', '/v1/auth/register', { user: 'zed' }, 400, 'bad_request'],
    ['a short password', '/v1/auth/register', { user: 'zed', password: 'short' }, 400, 'bad_request'],
    ['an over-long user id', '/v1/auth/register', { user: 'u'.repeat(65), password: 'long-enough-1' }, 400, 'bad_request'],
    ['a user id with bad characters', '/v1/auth/register', { user: 'a b', password: 'long-enough-1' }, 400, 'bad_request'],
    ['an over-long device id', '/v1/auth/login', { user: 'alice', password: 'x', device: 'd'.repeat(65) }, 400, 'bad_request'],
    ['a bad refresh token', '/v1/auth/refresh', { refresh_token: 'abc.def' }, 401, 'forbidden'],
    ['an unknown route', '/v1/nothing', {}, 404, 'not_found'],
  ])('answers %s with a JSON error', async (_what, path, body, status, code) => {
    const r = await post(path, body);
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
    const b = (await r.json()) as { error: { code: string; message: string } };
    expect(b.error.code).toBe(code);
    expect(b.error.message.length).toBeGreaterThan(0);
  });

  it('serves health, readiness and Prometheus metrics', async () => {
    expect((await fetch(`${p.httpUrl}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${p.httpUrl}/readyz`)).json()).toEqual({ status: 'ready' });
    const m = await (await fetch(`${p.httpUrl}/metrics`)).text();
    expect(m).toMatch(/chat_auth_failures_total\{kind="login"\} [1-9]/);
    expect(m).toMatch(/chat_mqtt_connections/);
    expect(m).toMatch(/chat_store_commit_seconds/);
  });
});
