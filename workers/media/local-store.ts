/**
 * The local-directory object store: the embedded default (DATA_DIR/media). A tier is a
 * folder (`hot/`, `warm/`, `cold/`, each movable to another disk with `local.tierDirs`).
 * Signed URLs point at our own HTTP server (`/v1/blobs/<key>?exp=..&sig=..`, relative to
 * the API origin) and carry an HMAC-SHA256 over the method, key, expiry and the headers
 * the request must send, so the blob routes (routes.ts) need no bearer token.
 *
 * Cold emulates an archive like S3 Glacier, so the service and the tests take the same
 * path on both drivers: a cold file is served only after `restore`, which becomes ready
 * `restoreDelaySeconds` later on the injected clock (0 by default: a local disk has no
 * retrieval time) and stays readable for the restore's days.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Clock } from '../../core/clock.ts';
import { systemClock } from '../../core/clock.ts';
import { tiers, type MediaConfig, type Tier } from './config.ts';
import {
  assertKey,
  ObjectArchivedError,
  ObjectNotFoundError,
  ObjectTooLargeError,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  type SignedGetOptions,
  type SignedPutOptions,
  type SignedUrl,
  type TierState,
} from './object-store.ts';

const dayMs = 86_400_000;

export interface LocalObjectStoreOptions {
  /** Root: holds the default tier folders, restore records and the signing key. */
  root: string;
  tierDirs?: Partial<Record<Tier, string>>;
  signingSecret: string | Buffer;
  urlPrefix?: string;
  restoreDelaySeconds?: number;
  clock?: Clock;
}

/** What a verified signed request allows. */
export interface SignedRequest {
  key: string;
  method: 'GET' | 'PUT';
  expiresAt: number;
  size?: number;
  contentType?: string;
  disposition?: 'inline' | 'attachment';
}

export type SignatureCheck = { ok: true; request: SignedRequest } | { ok: false; reason: 'expired' | 'bad_signature' };

interface RestoreRecord {
  readyAt: number;
  until: number;
}

interface Located {
  tier: Tier;
  path: string;
  size: number;
}

export class LocalObjectStore implements ObjectStore {
  readonly kind = 'local' as const;
  readonly urlPrefix: string;
  private readonly dirs: Record<Tier, string>;
  private readonly secret: Buffer;
  /** The clock signed URLs and restores are judged by. */
  readonly clock: Clock;
  private readonly restoreDelayMs: number;

  constructor(private readonly options: LocalObjectStoreOptions) {
    this.dirs = {
      hot: options.tierDirs?.hot ?? join(options.root, 'hot'),
      warm: options.tierDirs?.warm ?? join(options.root, 'warm'),
      cold: options.tierDirs?.cold ?? join(options.root, 'cold'),
    };
    this.secret = Buffer.isBuffer(options.signingSecret) ? options.signingSecret : Buffer.from(options.signingSecret, 'utf8');
    this.urlPrefix = (options.urlPrefix ?? '/v1/blobs').replace(/\/+$/, '');
    this.clock = options.clock ?? systemClock;
    this.restoreDelayMs = (options.restoreDelaySeconds ?? 0) * 1000;
  }

  /** Opens the store of a config: creates the folders and, without a configured secret, a persistent signing key. */
  static async open(config: MediaConfig, dataDir: string, clock: Clock = systemClock): Promise<LocalObjectStore> {
    const root = config.local.dir ?? join(dataDir, 'media');
    await mkdir(root, { recursive: true });
    let secret: string | Buffer | undefined = config.local.signingSecret;
    if (!secret) {
      const keyFile = join(root, '.signing-key');
      try {
        secret = Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'base64url');
      } catch {
        secret = randomBytes(32);
        // 'wx': if another process made one first, use theirs.
        await writeFile(keyFile, secret.toString('base64url'), { mode: 0o600, flag: 'wx' }).catch(async () => {
          secret = Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'base64url');
        });
      }
    }
    const store = new LocalObjectStore({
      root,
      tierDirs: config.local.tierDirs,
      signingSecret: secret,
      urlPrefix: config.local.urlPrefix,
      restoreDelaySeconds: config.local.restoreDelaySeconds,
      clock,
    });
    await store.ensureDirs();
    return store;
  }

  async ensureDirs(): Promise<void> {
    for (const tier of tiers) await mkdir(this.dirs[tier], { recursive: true });
    await mkdir(this.tmpDir(), { recursive: true });
  }

  // ---- the ObjectStore interface ---------------------------------------------------

  async put(key: string, body: Buffer | Readable, options: PutOptions): Promise<void> {
    assertKey(key);
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    const tmp = await this.writeTemp(source, key, options.maxBytes);
    await this.install(tmp, key);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertKey(key);
    const found = await this.locate(key);
    return found ? { key, size: found.size, tier: found.tier } : undefined;
  }

  async get(key: string): Promise<Readable> {
    return (await this.openRead(key)).stream;
  }

  async copy(sourceKey: string, destinationKey: string): Promise<void> {
    assertKey(sourceKey);
    assertKey(destinationKey);
    const found = await this.locateReadable(sourceKey);
    await mkdir(this.tmpDir(), { recursive: true });
    const tmp = join(this.tmpDir(), randomBytes(12).toString('hex'));
    await copyFile(found.path, tmp);
    await this.install(tmp, destinationKey);
  }

  async delete(key: string): Promise<void> {
    assertKey(key);
    for (const tier of tiers) await rm(this.pathOf(tier, key), { force: true });
    await rm(this.restorePath(key), { force: true });
  }

  async signedPutUrl(key: string, options: SignedPutOptions): Promise<SignedUrl> {
    assertKey(key);
    const request: SignedRequest = {
      key,
      method: 'PUT',
      expiresAt: this.expiry(options.expiresInSeconds),
      size: options.size,
      contentType: options.contentType,
    };
    return { url: this.urlOf(request), expiresAt: request.expiresAt, headers: { 'content-type': options.contentType } };
  }

  async signedGetUrl(key: string, options: SignedGetOptions): Promise<SignedUrl> {
    assertKey(key);
    const request: SignedRequest = {
      key,
      method: 'GET',
      expiresAt: this.expiry(options.expiresInSeconds),
      contentType: options.contentType,
      disposition: options.disposition,
    };
    return { url: this.urlOf(request), expiresAt: request.expiresAt, headers: {} };
  }

  async setTier(key: string, tier: Tier): Promise<void> {
    assertKey(key);
    const found = await this.locate(key);
    if (!found) throw new ObjectNotFoundError(key);
    if (found.tier === tier) return;
    if (found.tier === 'cold' && !(await this.isRestored(key))) throw new ObjectArchivedError(key);
    await moveFile(found.path, this.pathOf(tier, key));
    // A restore belongs to one stay in cold; leaving or entering cold starts afresh.
    await rm(this.restorePath(key), { force: true });
  }

  async tierState(key: string): Promise<TierState | undefined> {
    assertKey(key);
    const found = await this.locate(key);
    if (!found) return undefined;
    return this.stateOf(key, found.tier);
  }

  async restore(key: string, options: { days: number }): Promise<TierState> {
    assertKey(key);
    const found = await this.locate(key);
    if (!found) throw new ObjectNotFoundError(key);
    if (found.tier !== 'cold') return this.stateOf(key, found.tier);
    const current = await this.readRestore(key);
    const now = this.clock.now();
    if (!current || current.until <= now) {
      const readyAt = now + this.restoreDelayMs;
      const record: RestoreRecord = { readyAt, until: readyAt + options.days * dayMs };
      await mkdir(dirname(this.restorePath(key)), { recursive: true });
      await writeFile(this.restorePath(key), JSON.stringify(record));
    }
    return this.stateOf(key, 'cold');
  }

  async close(): Promise<void> {}

  // ---- signed requests (used by the blob routes) -----------------------------------------

  /** Checks a signed request's query against the method and key it arrived with. */
  verify(method: 'GET' | 'PUT', key: string, query: Record<string, string | undefined>): SignatureCheck {
    const exp = Number(query.exp);
    const sig = query.sig ?? '';
    if (!Number.isInteger(exp) || !sig) return { ok: false, reason: 'bad_signature' };
    const disposition = query.cd === 'inline' || query.cd === 'attachment' ? query.cd : undefined;
    const request: SignedRequest = {
      key,
      method,
      expiresAt: exp * 1000,
      size: query.len !== undefined ? Number(query.len) : undefined,
      contentType: query.ct,
      disposition,
    };
    if (query.cd !== undefined && !disposition) return { ok: false, reason: 'bad_signature' };
    const expected = Buffer.from(this.sign(request), 'utf8');
    const given = Buffer.from(sig, 'utf8');
    // Constant-time compare: a timing oracle would let a client forge a signature byte by byte.
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'bad_signature' };
    if (this.clock.now() > request.expiresAt) return { ok: false, reason: 'expired' };
    return { ok: true, request };
  }

  /** Opens an object for a download; cold objects only when restored. */
  async openRead(key: string, range?: { start: number; end: number }): Promise<{ stream: Readable; size: number; tier: Tier }> {
    assertKey(key);
    const found = await this.locateReadable(key);
    const stream = createReadStream(found.path, range ? { start: range.start, end: range.end } : {});
    return { stream, size: found.size, tier: found.tier };
  }

  // ---- internals ---------------------------------------------------------------------------

  private pathOf(tier: Tier, key: string): string {
    return join(this.dirs[tier], ...key.split('/'));
  }

  private tmpDir(): string {
    // Inside the hot folder so that installing a finished upload is a same-device rename.
    return join(this.dirs.hot, '.tmp');
  }

  private restorePath(key: string): string {
    return join(this.options.root, '.restores', ...key.split('/')) + '.json';
  }

  private expiry(expiresInSeconds: number): number {
    return (Math.floor(this.clock.now() / 1000) + expiresInSeconds) * 1000;
  }

  private sign(r: SignedRequest): string {
    const payload = [r.method, r.key, String(r.expiresAt / 1000), r.size ?? '', r.contentType ?? '', r.disposition ?? ''].join('\n');
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }

  private urlOf(r: SignedRequest): string {
    const query = new URLSearchParams({ exp: String(r.expiresAt / 1000) });
    if (r.size !== undefined) query.set('len', String(r.size));
    if (r.contentType !== undefined) query.set('ct', r.contentType);
    if (r.disposition !== undefined) query.set('cd', r.disposition);
    query.set('sig', this.sign(r));
    return `${this.urlPrefix}/${r.key}?${query.toString()}`;
  }

  private async locate(key: string): Promise<Located | undefined> {
    for (const tier of tiers) {
      const path = this.pathOf(tier, key);
      try {
        const s = await stat(path);
        if (s.isFile()) return { tier, path, size: s.size };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
      }
    }
    return undefined;
  }

  private async locateReadable(key: string): Promise<Located> {
    const found = await this.locate(key);
    if (!found) throw new ObjectNotFoundError(key);
    if (found.tier === 'cold' && !(await this.isRestored(key))) throw new ObjectArchivedError(key);
    return found;
  }

  private async readRestore(key: string): Promise<RestoreRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.restorePath(key), 'utf8')) as RestoreRecord;
    } catch {
      return undefined;
    }
  }

  private async isRestored(key: string): Promise<boolean> {
    const r = await this.readRestore(key);
    const now = this.clock.now();
    return !!r && r.readyAt <= now && now < r.until;
  }

  private async stateOf(key: string, tier: Tier): Promise<TierState> {
    if (tier !== 'cold') return { tier, readable: true, restoring: false };
    const r = await this.readRestore(key);
    const now = this.clock.now();
    if (!r || r.until <= now) return { tier, readable: false, restoring: false };
    if (r.readyAt > now) return { tier, readable: false, restoring: true };
    return { tier, readable: true, restoring: false, restoredUntil: r.until };
  }

  /** Streams into a temporary file, refusing more than maxBytes; returns its path. */
  private async writeTemp(source: Readable, key: string, maxBytes?: number): Promise<string> {
    await mkdir(this.tmpDir(), { recursive: true });
    const tmp = join(this.tmpDir(), randomBytes(12).toString('hex'));
    let seen = 0;
    const limit = new Transform({
      transform(chunk: Buffer, _enc, done) {
        seen += chunk.length;
        if (maxBytes !== undefined && seen > maxBytes) done(new ObjectTooLargeError(key, maxBytes));
        else done(null, chunk);
      },
    });
    try {
      await pipeline(source, limit, createWriteStream(tmp));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return tmp;
  }

  /** Moves a finished temporary file to the key's hot path and drops copies in other tiers. */
  private async install(tmp: string, key: string): Promise<void> {
    await moveFile(tmp, this.pathOf('hot', key));
    for (const tier of ['warm', 'cold'] as const) await rm(this.pathOf(tier, key), { force: true });
    await rm(this.restorePath(key), { force: true });
  }
}

/** rename, or copy and unlink when the tiers are on different devices. */
async function moveFile(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const tmp = `${to}.${randomBytes(6).toString('hex')}.part`;
    await copyFile(from, tmp);
    await rename(tmp, to);
    await unlink(from);
  }
}
