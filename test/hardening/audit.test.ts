/**
 * The audit log and the anonymous namespace rules over real sockets. The platform is
 * started directly (broker/platform.ts) to read its log lines.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startPlatform, type Platform } from '../../broker/platform.ts';
import { registerUser } from '../helpers/platform.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/services.ts';
import { Device, rawConnect, subscribeCodes } from '../helpers/mqtt.ts';
import type { AnonymousRule } from '../../config/limits.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Line = Record<string, unknown>;

describe('audit log and anonymous namespace rules', () => {
  let p: Platform;
  let dataDir: string;
  let database: TestDatabase;
  const lines: Line[] = [];
  const audit = (event: string) => lines.filter((l) => l.audit === true && l.event === event);
  const rules: AnonymousRule[] = [
    { action: 'subscribe', pattern: 'secret/#', allow: false, clients: 'any' },
    { action: 'publish', pattern: 'readonly/#', allow: false, clients: 'anonymous' },
  ];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'chat-audit-'));
    database = await createTestDatabase();
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
    p = await startPlatform({ env: {}, logger, config: { mqttPort: 0, httpPort: 0, host: '127.0.0.1', dataDir, databaseUrl: database.url, presenceDebounceMs: 0, mqttAnonymous: true, anonymousRules: rules } });
  });
  afterAll(async () => {
    await p?.close();
    await database?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('applies the rules to topics outside the chat namespaces', async () => {
    const sub = await rawConnect(p.urls.mqtt, { clientId: 'sensor-sub' });
    expect(await subscribeCodes(sub, { 'secret/x': { qos: 1 }, 'sensors/#': { qos: 1 }, 'readonly/#': { qos: 1 } })).toEqual([128, 1, 1]);
    const got: string[] = [];
    sub.on('message', (t) => got.push(t));

    const a = await registerUser(p.urls.http, 'alice');
    const alice = await rawConnect(p.urls.mqtt, { clientId: 'alice:default', username: 'alice', password: a.token });
    await alice.publishAsync('readonly/notice', 'from a user', { qos: 1 }); // the rule is for anonymous clients

    const anon = await rawConnect(p.urls.mqtt, { clientId: 'sensor-pub' });
    const closed = new Promise<void>((resolve) => anon.once('close', () => resolve()));
    anon.publish('readonly/notice', 'from nobody', { qos: 1 });
    await closed;
    await sleep(100);
    expect(got).toEqual(['readonly/notice']);
    expect(sub.connected).toBe(true);
    await sub.endAsync();
    await alice.endAsync();

    const denied = audit('acl_denied');
    expect(denied).toHaveLength(2);
    expect(denied[0]).toMatchObject({ audit: true, event: 'acl_denied', action: 'subscribe', topic: 'secret/x', ip: '127.0.0.1', reason: 'denied by anonymousRules[0] (secret/#)' });
    expect(denied[1]).toMatchObject({ action: 'publish', topic: 'readonly/notice', reason: 'denied by anonymousRules[1] (readonly/#)' });
  });

  it('writes login failures, admin actions and revocations as audit lines, counted in metrics', async () => {
    const login = (user: string, password: string) =>
      fetch(`${p.urls.http}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }) });
    expect((await login('alice', 'wrong-password-1')).status).toBe(401);
    expect(audit('login_failed')[0]).toMatchObject({ audit: true, event: 'login_failed', user: 'alice', ip: '127.0.0.1', reason: 'wrong user or password', level: 30 });

    const [b, c] = [await registerUser(p.urls.http, 'bob'), await registerUser(p.urls.http, 'carol')];
    const a = await (await login('alice', 'correct-horse-battery')).json() as { token: string };
    const alice = await Device.connect(p.urls.mqtt, 'alice', a.token);
    const carol = await Device.connect(p.urls.mqtt, 'carol', c.token);
    const { conv } = (await alice.rpc('group.create', { name: 'team', members: ['bob', 'carol'] })) as { conv: string };
    await alice.rpc('group.role', { conv, user: 'bob', role: 'admin' });
    const refused = await carol.rpc('group.remove', { conv, users: ['bob'] }).then(() => undefined, (e: { code: string }) => e.code);
    expect(refused).toBe('forbidden');
    const admin = audit('admin_action');
    expect(admin).toHaveLength(2);
    expect(admin[0]).toMatchObject({ user: 'alice', device: 'default', action: 'group.role', conv, target: 'bob', role: 'admin', result: 'ok' });
    expect(admin[1]).toMatchObject({ user: 'carol', action: 'group.remove', conv, target: ['bob'], result: 'forbidden' });

    const bob = await rawConnect(p.urls.mqtt, { clientId: 'bob:default', username: 'bob', password: b.token });
    const closed = new Promise<void>((resolve) => bob.once('close', () => resolve()));
    expect((await fetch(`${p.urls.http}/v1/devices/default`, { method: 'DELETE', headers: { authorization: `Bearer ${b.token}` } })).status).toBe(204);
    await closed;
    expect(audit('token_revoked')).toEqual([expect.objectContaining({ user: 'bob', device: 'default', reason: 'device revoked', live_connections: 1, level: 40 })]);

    const m = await p.metrics.registry.metrics();
    expect(m).toMatch(/chat_audit_events_total\{event="login_failed"\} 1/);
    expect(m).toMatch(/chat_audit_events_total\{event="admin_action"\} 2/);
    expect(m).toMatch(/chat_audit_events_total\{event="token_revoked"\} 1/);
    expect(m).toMatch(/chat_audit_events_total\{event="acl_denied"\} 2/);
    expect(m).toMatch(/chat_audit_events_total\{event="login_lockout"\} 0/);
    await alice.close();
    await carol.close();
  });
});
