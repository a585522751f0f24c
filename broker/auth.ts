/**
 * Accounts and tokens (DESIGN sections 4 "Connect" and 7). Passwords are hashed with
 * scrypt; access tokens are HS256 JWTs (`sub` user, `dev` device, `exp`); refresh tokens
 * rotate on every use and a reused one revokes its family; IoT devices get long-lived
 * tokens whose `jti` is recorded so that they can be revoked.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, createHash, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { ChatError } from '../core/errors.ts';
import { isId } from '../core/protocol.ts';
import type { ChatStore } from '../core/store.ts';
import type { Clock } from '../core/clock.ts';

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

export const minPasswordLength = 8;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, 32);
  return `scrypt$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, saltB64, keyB64] = stored.split('$');
  if (scheme !== 'scrypt' || !saltB64 || !keyB64) return false;
  const expected = Buffer.from(keyB64, 'base64');
  const key = await scrypt(password, Buffer.from(saltB64, 'base64'), expected.length);
  return timingSafeEqual(key, expected);
}

// Compared against when the user does not exist, so that a login for an unknown user
// costs the same scrypt work as one with a wrong password (no user enumeration by timing).
const dummyHash = `scrypt$${randomBytes(16).toString('base64')}$${randomBytes(32).toString('base64')}`;

/** Embedded mode makes JWT_SECRET once and keeps it in DATA_DIR. */
export async function loadOrCreateSecret(configured: string | undefined, dataDir: string): Promise<Uint8Array> {
  if (configured) return new TextEncoder().encode(configured);
  const path = join(dataDir, 'jwt-secret');
  try {
    return new TextEncoder().encode((await readFile(path, 'utf8')).trim());
  } catch {
    await mkdir(dataDir, { recursive: true });
    const secret = randomBytes(48).toString('base64url');
    await writeFile(path, secret, { mode: 0o600, flag: 'wx' }).catch(async () => {});
    return new TextEncoder().encode((await readFile(path, 'utf8')).trim());
  }
}

export interface TokenBundle {
  user: string;
  device: string;
  token: string;
  refresh_token: string;
  expires_at: number;
}

export interface VerifiedToken {
  user: string;
  device: string;
  kind: 'access' | 'device';
  expiresAt: number;
}

export interface AuthOptions {
  accessTokenTtlSeconds: number;
  refreshTokenTtlDays: number;
  deviceTokenTtlDays: number;
}

const unauthorized = () => new ChatError('forbidden', 'wrong user or password', { status: 401 });

export class AuthService {
  /**
   * Called once a device's tokens are dead (DELETE /v1/devices/{id}, or a reused refresh
   * token): platform.ts closes the device's live connections (docs/hardening.md).
   */
  onDeviceRevoked?: (user: string, device: string, reason: string) => void;

  constructor(
    private readonly store: ChatStore,
    private readonly secret: Uint8Array,
    private readonly options: AuthOptions,
    private readonly clock: Clock,
  ) {}

  async register(user: unknown, password: unknown, device: unknown = 'default'): Promise<TokenBundle> {
    const u = checkUser(user);
    const d = checkDevice(device);
    checkPassword(password);
    const created = await this.store.createUser(u, await hashPassword(password), this.clock.now());
    if (!created) throw new ChatError('bad_request', `user ${u} is taken`, { status: 409 });
    return this.startSession(u, d);
  }

  async login(user: unknown, password: unknown, device: unknown = 'default'): Promise<TokenBundle> {
    if (typeof password !== 'string') throw new ChatError('bad_request', 'password must be a string');
    const d = checkDevice(device);
    const row = isId(user) ? await this.store.getUser(user) : undefined;
    const ok = await verifyPassword(password, row?.password_hash ?? dummyHash);
    if (!row || !ok) throw unauthorized();
    return this.startSession(row.id, d);
  }

  async refresh(refreshToken: unknown): Promise<TokenBundle> {
    if (typeof refreshToken !== 'string' || !refreshToken.includes('.')) {
      throw new ChatError('bad_request', 'refresh_token must be a string');
    }
    const [id, secret] = refreshToken.split('.', 2) as [string, string];
    const result = await this.store.consumeRefreshToken(id, sha256(secret), this.clock.now());
    if (result.status !== 'ok') {
      if (result.status === 'reused') {
        // A stolen refresh token: the device's whole session ends, its access tokens too.
        await this.store.revokeDevice(result.user, result.device, this.clock.now());
        this.onDeviceRevoked?.(result.user, result.device, 'refresh token reused');
      }
      throw new ChatError('forbidden', result.status === 'reused' ? 'refresh token reused: session revoked' : 'invalid refresh token', { status: 401 });
    }
    const device = await this.store.getDevice(result.user, result.device);
    if (!device || device.revoked_at !== null) throw new ChatError('forbidden', 'device revoked', { status: 401 });
    return this.issue(result.user, result.device, result.family);
  }

  /** A long-lived token for an IoT device; revocable with revokeDevice. */
  async createDeviceToken(user: string, device: unknown, ttlDays: unknown): Promise<{ user: string; device: string; token: string; expires_at: number }> {
    const d = checkDevice(device);
    const days = ttlDays === undefined ? this.options.deviceTokenTtlDays : ttlDays;
    if (!Number.isInteger(days) || (days as number) < 1 || (days as number) > 3650) throw new ChatError('bad_request', 'ttl_days must be an integer from 1 to 3650');
    const now = this.clock.now();
    const expiresAt = now + (days as number) * 86_400_000;
    const jti = randomUUID();
    await this.store.upsertDevice({ user, device: d, kind: 'iot', tokenId: jti, expiresAt, now });
    const token = await new SignJWT({ dev: d, typ: 'device' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user)
      .setJti(jti)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(expiresAt / 1000))
      .sign(this.secret);
    return { user, device: d, token, expires_at: expiresAt };
  }

  async revokeDevice(user: string, device: string): Promise<void> {
    if (!(await this.store.revokeDevice(user, device, this.clock.now()))) {
      throw new ChatError('not_found', `no active device ${device}`);
    }
    this.onDeviceRevoked?.(user, device, 'device revoked');
  }

  /** Verifies a bearer or MQTT password token; throws ChatError(401) when it is not valid now. */
  async verify(token: string): Promise<VerifiedToken> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.secret, { algorithms: ['HS256'], currentDate: new Date(this.clock.now()) }));
    } catch (err) {
      const expired = err instanceof joseErrors.JWTExpired;
      throw new ChatError('forbidden', expired ? 'token expired' : 'invalid token', { status: 401 });
    }
    const user = payload.sub;
    const device = payload.dev;
    if (!isId(user) || !isId(device) || payload.exp === undefined) throw new ChatError('forbidden', 'invalid token', { status: 401 });
    const row = await this.store.getDevice(user, device);
    if (!row || row.revoked_at !== null) throw new ChatError('forbidden', 'device revoked', { status: 401 });
    const kind = payload.typ === 'device' ? 'device' : 'access';
    if (kind === 'device' && row.token_id !== payload.jti) throw new ChatError('forbidden', 'device token replaced or revoked', { status: 401 });
    return { user, device, kind, expiresAt: payload.exp * 1000 };
  }

  async authenticateBearer(header: string | undefined): Promise<{ user: string; device: string }> {
    const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
    if (!m) throw new ChatError('forbidden', 'missing bearer token', { status: 401 });
    const v = await this.verify(m[1]!);
    return { user: v.user, device: v.device };
  }

  private async startSession(user: string, device: string): Promise<TokenBundle> {
    await this.store.upsertDevice({ user, device, kind: 'session', now: this.clock.now() });
    return this.issue(user, device, randomUUID());
  }

  private async issue(user: string, device: string, family: string): Promise<TokenBundle> {
    const now = this.clock.now();
    const expiresAt = now + this.options.accessTokenTtlSeconds * 1000;
    const token = await new SignJWT({ dev: device, typ: 'access' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(expiresAt / 1000))
      .sign(this.secret);
    const id = randomUUID();
    const secret = randomBytes(32).toString('base64url');
    await this.store.insertRefreshToken({
      id,
      family,
      user,
      device,
      hash: sha256(secret),
      expiresAt: now + this.options.refreshTokenTtlDays * 86_400_000,
      now,
    });
    return { user, device, token, refresh_token: `${id}.${secret}`, expires_at: expiresAt };
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}

function checkUser(v: unknown): string {
  if (!isId(v)) throw new ChatError('bad_request', 'user must match [A-Za-z0-9_-]{1,64}');
  return v;
}

function checkDevice(v: unknown): string {
  if (!isId(v)) throw new ChatError('bad_request', 'device must match [A-Za-z0-9_-]{1,64}');
  return v;
}

function checkPassword(v: unknown): asserts v is string {
  if (typeof v !== 'string' || v.length < minPasswordLength || v.length > 1024) {
    throw new ChatError('bad_request', `password must be a string of at least ${minPasswordLength} characters`);
  }
}
