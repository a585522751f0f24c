import { describe, it, expect, beforeEach } from 'vitest';
import { Registry } from 'prom-client';
import { FakeClock } from '../../core/clock.ts';
import { MemoryRateLimitStore } from '../../broker/rate-limit.ts';
import { LoginThrottle } from '../../broker/login-throttle.ts';
import type { AuditEvent, AuditFields } from '../../broker/audit.ts';
import { limitsWith } from '../../config/limits.ts';

describe('login throttling (fake clock)', () => {
  let clock: FakeClock;
  let registry: Registry;
  let audits: [AuditEvent, AuditFields | undefined][];
  let t: LoginThrottle;
  const login = limitsWith({ login: { userFreeFailures: 2, baseDelayMs: 1000, maxDelayMs: 4000, userLockoutFailures: 6, lockoutMs: 600_000, ipFreeFailures: 4, ipLockoutFailures: 8, windowMs: 3_600_000 } }).login;

  beforeEach(() => {
    clock = new FakeClock();
    registry = new Registry();
    audits = [];
    t = new LoginThrottle(new MemoryRateLimitStore(clock), login, registry, (e, f) => audits.push([e, f]));
  });

  const refusal = (user: unknown, ip: string) => t.check(user, ip).then(() => undefined, (e: { code: string; details: { retryAfterMs: number; status: number } }) => e);

  it('lets the free failures through, then makes each attempt wait twice as long', async () => {
    await t.failed('alice', '10.0.0.1', 'wrong');
    expect(await refusal('alice', '10.0.0.1')).toBeUndefined();
    await t.failed('alice', '10.0.0.1', 'wrong');
    expect(await refusal('alice', '10.0.0.1')).toBeUndefined();
    await t.failed('alice', '10.0.0.1', 'wrong'); // third: 1 s
    expect(await refusal('alice', '10.0.0.1')).toMatchObject({ code: 'rate_limited', details: { retryAfterMs: 1000, status: 429 } });
    // From any address: the name is what is throttled.
    expect(await refusal('alice', '10.9.9.9')).toMatchObject({ details: { retryAfterMs: 1000 } });
    clock.advance(1000);
    expect(await refusal('alice', '10.0.0.1')).toBeUndefined();
    await t.failed('alice', '10.0.0.1', 'wrong'); // fourth: 2 s
    expect(await refusal('alice', '10.0.0.1')).toMatchObject({ details: { retryAfterMs: 2000 } });
    clock.advance(2000);
    await t.failed('alice', '10.0.0.1', 'wrong'); // fifth: 4 s (the cap)
    expect(await refusal('alice', '10.0.0.1')).toMatchObject({ details: { retryAfterMs: 4000 } });
    expect(await refusal('bob', '10.0.0.2')).toBeUndefined();
  });

  it('locks the name out at lockoutFailures, once in the audit log and in metrics', async () => {
    for (let i = 0; i < 6; i++) {
      await t.failed('carol', `10.1.0.${i}`, 'wrong');
      clock.advance(10_000);
    }
    expect(await refusal('carol', '10.2.0.1')).toMatchObject({ details: { retryAfterMs: 600_000 - 10_000 } });
    expect(audits.filter(([e]) => e === 'login_lockout')).toHaveLength(1);
    expect(audits.filter(([e]) => e === 'login_failed')).toHaveLength(6);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/chat_login_lockouts_total\{scope="user"\} 1/);
    expect(metrics).toMatch(/chat_login_throttled_total\{scope="user"\} 1/);
    clock.advance(600_000);
    expect(await refusal('carol', '10.2.0.1')).toBeUndefined();
  });

  it('throttles an address across names (password spraying)', async () => {
    for (let i = 0; i < 5; i++) await t.failed(`user${i}`, '10.3.0.1', 'wrong');
    expect(await refusal('someone-else', '10.3.0.1')).toMatchObject({ details: { retryAfterMs: 1000 } });
    expect(await refusal('someone-else', '10.3.0.2')).toBeUndefined();
    clock.advance(1000);
    for (let i = 5; i < 8; i++) await t.failed(`user${i}`, '10.3.0.1', 'wrong');
    expect(await refusal('someone-else', '10.3.0.1')).toMatchObject({ details: { retryAfterMs: 600_000 } });
  });

  it('a success clears the name\'s failures, not the address\'s', async () => {
    for (let i = 0; i < 2; i++) await t.failed('dave', '10.4.0.1', 'wrong');
    await t.succeeded('dave');
    await t.failed('dave', '10.4.0.1', 'wrong');
    expect(await refusal('dave', '10.4.0.1')).toBeUndefined(); // count restarted at 1
  });

  it('treats an unknown or malformed name exactly like a known one', async () => {
    for (const name of ['ghost', 'x'.repeat(500), 42, undefined]) {
      for (let i = 0; i < 3; i++) await t.failed(name, `10.5.${String(name).length}.${i}`, 'wrong');
      expect(await refusal(name, '10.6.0.1')).toMatchObject({ details: { retryAfterMs: 1000 } });
    }
  });

  it('fails open when the store fails', async () => {
    const broken = { blockedFor: () => Promise.reject(new Error('down')), hit: () => Promise.reject(new Error('down')), block: () => Promise.reject(new Error('down')), reset: () => Promise.reject(new Error('down')) };
    const errors: string[] = [];
    const b = new LoginThrottle(broken as never, login, new Registry(), () => {}, true, (e) => errors.push(e.message));
    await b.failed('eve', '10.7.0.1', 'wrong');
    await b.check('eve', '10.7.0.1');
    expect(errors).toEqual(['down', 'down']);
  });
});
