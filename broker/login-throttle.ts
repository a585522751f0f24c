/**
 * Login throttling (docs/hardening.md) per user name and per source address: failures
 * are counted in a window; past the free ones each failure makes the next attempt wait
 * twice as long (exponential delay), and failure number `lockoutFailures` locks the name
 * or address for `lockoutMs`. A throttled attempt is refused before the password is
 * looked at, with 429 `rate_limited` and Retry-After; it does not count as a failure.
 * The name is counted whether or not such a user exists, so the answers never tell.
 */
import { createHash } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import { ChatError } from '../core/errors.ts';
import { isId } from '../core/protocol.ts';
import type { Limits } from '../config/limits.ts';
import type { RateLimitStore } from './rate-limit.ts';
import type { Audit } from './audit.ts';

export type LoginLimits = Limits['login'];

/** The wait after `failures` failures (0 while they are free). Pure. */
export function loginDelayMs(failures: number, free: number, baseMs: number, maxMs: number): number {
  if (failures <= free || baseMs <= 0) return 0;
  return Math.min(maxMs, baseMs * 2 ** Math.min(failures - free - 1, 30));
}

type Scope = 'user' | 'ip';

export class LoginThrottle {
  private readonly throttled: Counter<'scope'>;
  private readonly lockouts: Counter<'scope'>;

  constructor(
    private readonly store: RateLimitStore,
    private readonly limits: LoginLimits,
    registry: Registry,
    private readonly audit: Audit,
    private readonly enabled = true,
    /** A store failure admits the attempt (fail open) and is reported here. */
    private readonly onStoreError: (err: Error) => void = () => {},
  ) {
    this.throttled = new Counter({ name: 'chat_login_throttled_total', help: 'Login attempts refused by throttling (delay or lockout)', labelNames: ['scope'], registers: [registry] });
    this.lockouts = new Counter({ name: 'chat_login_lockouts_total', help: 'User names and addresses locked out after repeated login failures', labelNames: ['scope'], registers: [registry] });
    for (const scope of ['user', 'ip']) {
      this.throttled.inc({ scope }, 0);
      this.lockouts.inc({ scope }, 0);
    }
  }

  /** Throws 429 rate_limited while the name or the address must wait. */
  async check(user: unknown, ip: string): Promise<void> {
    if (!this.enabled) return;
    let u: number;
    let i: number;
    try {
      [u, i] = await Promise.all([this.store.blockedFor(key('user', user, 'block')), this.store.blockedFor(key('ip', ip, 'block'))]);
    } catch (err) {
      return this.onStoreError(err as Error);
    }
    const wait = Math.max(u, i);
    if (wait <= 0) return;
    this.throttled.inc({ scope: u >= i ? 'user' : 'ip' });
    throw new ChatError('rate_limited', `too many failed logins: try again in ${Math.ceil(wait / 1000)} s`, { retryAfterMs: wait, status: 429 });
  }

  /** A wrong user or password: counts it and sets the delay or the lockout. */
  async failed(user: unknown, ip: string, reason: string): Promise<void> {
    const name = typeof user === 'string' && isId(user) ? user : undefined;
    this.audit('login_failed', { user: name, ip, reason });
    if (!this.enabled) return;
    const l = this.limits;
    await Promise.all([
      this.count('user', user, l.userFreeFailures, l.userLockoutFailures, { user: name, ip }),
      this.count('ip', ip, l.ipFreeFailures, l.ipLockoutFailures, { user: name, ip }),
    ]).catch((err: Error) => this.onStoreError(err));
  }

  /** A successful login clears the name's failures (not the address's: one good account must not launder them). */
  async succeeded(user: unknown): Promise<void> {
    if (!this.enabled) return;
    await this.store.reset(key('user', user, 'fail'), key('user', user, 'block')).catch((err: Error) => this.onStoreError(err));
  }

  private async count(scope: Scope, id: unknown, free: number, lockoutAt: number, who: { user?: string; ip: string }): Promise<void> {
    const l = this.limits;
    const { count } = await this.store.hit(key(scope, id, 'fail'), l.windowMs);
    if (lockoutAt > 0 && count >= lockoutAt) {
      await this.store.block(key(scope, id, 'block'), l.lockoutMs);
      if (count === lockoutAt) {
        this.lockouts.inc({ scope });
        this.audit('login_lockout', { ...who, reason: `${count} failed logins for this ${scope === 'user' ? 'user name' : 'address'}`, scope, lockout_ms: l.lockoutMs });
      }
      return;
    }
    const delay = loginDelayMs(count, free, l.baseDelayMs, l.maxDelayMs);
    if (delay > 0) await this.store.block(key(scope, id, 'block'), delay);
  }
}

/** Store keys; a name that is not a valid id (any length, any type) is hashed. */
function key(scope: Scope, id: unknown, what: 'fail' | 'block'): string {
  let s: string;
  if (scope === 'user' && !(typeof id === 'string' && isId(id))) {
    s = `#${createHash('sha256').update(typeof id === 'string' ? id : JSON.stringify(id) ?? '').digest('base64url').slice(0, 22)}`;
  } else s = String(id);
  return `login:${what}:${scope}:${s}`;
}
