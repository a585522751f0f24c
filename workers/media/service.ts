/**
 * The media API core, free of HTTP and MQTT (the routes in routes.ts and the lead's RPC
 * handlers `media.upload` / `media.get` call it): uploads by signed URL, completion that
 * verifies the stored bytes, downloads by signed URL with the cold-tier restore path, and
 * the attachment check of message ingest. DESIGN sections 6 and 7.
 *
 * Who may do what: only members of a conversation upload to it and read from it; only the
 * uploader completes an upload and attaches the item to a message.
 */
import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../../core/clock.ts';
import { systemClock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { ChatError } from '../../core/errors.ts';
import { createLogger, type Logger } from '../../core/log.ts';
import type { ChatStore } from '../../core/store.ts';
import type { MediaConfig, Tier } from './config.ts';
import { bytesMatchContentType, canPreview, dispositionFor, isAllowedContentType, normalizeContentType } from './content-types.ts';
import { recordObservedTier, type BlobLifecycleDeps } from './lifecycle.ts';
import { blobKey, ObjectNotFoundError, thumbnailKey, uploadKey, type ObjectStore, type TierState } from './object-store.ts';
import {
  addBlobReference,
  countPendingSince,
  deletePending,
  getBlob,
  getMedia,
  getMediaForUpdate,
  getMediaMany,
  insertBlob,
  insertPending,
  lockBlob,
  markComplete,
  markRestoreRequested,
  setBlobThumbnail,
  setBlobTier,
  touchAccess,
  type BlobRow,
  type MediaRow,
  type MediaState,
} from './repository.ts';
import { dataUrl, makePreview, type Preview } from './thumbnail.ts';

/** The media record on the wire (HTTP and RPC answers). */
export interface MediaRecord {
  id: string;
  conv: string;
  owner: string;
  content_type: string;
  size: number;
  sha256: string;
  state: MediaState;
  /** Where the bytes are (complete items); null while pending or after deletion. */
  tier: Tier | null;
  created_at: number;
  completed_at: number | null;
  /** Set on tombstones. */
  deleted_at?: number;
  /** Preview of an image as a `data:` URL (at most media.thumbnail.maxBytes bytes decoded). */
  thumbnail?: string;
}

export interface UploadRequest {
  conv: string;
  content_type: string;
  size: number;
  sha256: string;
}

/** `POST /v1/media` answer (201). */
export interface UploadTicket {
  media: MediaRecord;
  /** PUT the bytes here; absolute (S3) or relative to the API origin (local driver). */
  upload_url: string;
  /** Send these headers with the PUT, exactly (they are signed). */
  upload_headers: Record<string, string>;
  expires_at: number;
}

/** `GET /v1/media/{id}`: 302 to `url`, or 202 with Retry-After while a cold item is restored. */
export type MediaDownload =
  | { kind: 'redirect'; url: string; expiresAt: number; media: MediaRecord }
  | { kind: 'restoring'; retryAfterSeconds: number; media: MediaRecord };

/**
 * A download as JSON, for the RPC `media.get` result and the body of the 202: what HTTP
 * says with status and headers, in fields.
 */
export function downloadJson(download: MediaDownload):
  | { media: MediaRecord; url: string; expires_at: number }
  | { media: MediaRecord; restoring: true; retry_after: number } {
  return download.kind === 'redirect'
    ? { media: download.media, url: download.url, expires_at: download.expiresAt }
    : { media: download.media, restoring: true, retry_after: download.retryAfterSeconds };
}

export interface MediaServiceDeps {
  db: Db;
  chat: ChatStore;
  objects: ObjectStore;
  config: MediaConfig;
  clock?: Clock;
  log?: Logger;
}

export const mediaIdPattern = /^m_[A-Za-z0-9]{1,64}$/;

const uploadRequestSchema = z.object({
  conv: z.string().min(1).max(128),
  content_type: z.string().min(3).max(255),
  size: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits'),
});

/** Validates an untrusted upload request (HTTP body, RPC params). */
export function parseUploadRequest(input: unknown): UploadRequest {
  const r = uploadRequestSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ChatError('bad_request', `${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return { ...r.data, sha256: r.data.sha256.toLowerCase() };
}

/** A completion that must be refused: 422 and the uploaded object removed. */
class UploadRejected extends Error {}

export class MediaService {
  readonly objects: ObjectStore;
  readonly config: MediaConfig;
  private readonly db: Db;
  private readonly chat: ChatStore;
  private readonly clock: Clock;
  private readonly log: Logger;

  constructor(deps: MediaServiceDeps) {
    this.db = deps.db;
    this.chat = deps.chat;
    this.objects = deps.objects;
    this.config = deps.config;
    this.clock = deps.clock ?? systemClock;
    this.log = deps.log ?? createLogger('silent');
  }

  /** `POST /v1/media`: a pending item and a signed URL to PUT its bytes to. */
  async createUpload(user: string, request: UploadRequest): Promise<UploadTicket> {
    const req = parseUploadRequest(request);
    const contentType = this.checkContentType(req.content_type);
    this.checkSize(req.size);
    await this.requireMember(req.conv, user);
    const now = this.clock.now();
    const ttlMs = this.config.uploadUrlTtlSeconds * 1000;
    if ((await countPendingSince(this.db, user, now - ttlMs)) >= this.config.maxPendingUploadsPerUser) {
      throw new ChatError('rate_limited', `at most ${this.config.maxPendingUploadsPerUser} uploads in progress`, { retryAfterMs: ttlMs });
    }
    const id = `m_${randomUUID().replace(/-/g, '')}`;
    const key = uploadKey(id);
    const row = await insertPending(this.db, { id, owner: user, conv: req.conv, contentType, size: req.size, sha256: req.sha256, uploadKey: key, now });
    const signed = await this.objects.signedPutUrl(key, { contentType, size: req.size, expiresInSeconds: this.config.uploadUrlTtlSeconds });
    return { media: toRecord(row), upload_url: signed.url, upload_headers: signed.headers, expires_at: signed.expiresAt };
  }

  /**
   * `POST /v1/media/{id}/complete`: verifies the uploaded bytes against the declared size,
   * sha256 and type, stores them once per sha256 and makes a preview of images. Repeating
   * it on a complete item returns the record. Nothing uploaded yet: 400, the item stays.
   */
  async complete(user: string, mediaId: string): Promise<MediaRecord> {
    const row = await this.loadOwnPending(user, mediaId);
    if (row.state === 'complete') return this.recordWithPreview(row);
    const staged = await this.objects.head(row.upload_key!);
    if (!staged) throw new ChatError('bad_request', `nothing uploaded for ${mediaId} yet`);
    let verified: VerifiedUpload;
    try {
      verified = await this.verifyUpload(row, staged.size);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return this.completedMeanwhile(mediaId);
      if (!(err instanceof UploadRejected)) throw err;
      await this.objects.delete(row.upload_key!);
      await deletePending(this.db, row.id);
      throw new ChatError('bad_request', `upload ${mediaId} rejected: ${err.message}; the bytes were removed, start a new upload`, { status: 422 });
    }
    const completed = await this.storeBlob(row, verified);
    if (!completed) return this.completedMeanwhile(mediaId);
    await this.objects.delete(row.upload_key!).catch((err: unknown) => {
      // The item is complete; a staging object left behind only costs space.
      this.log.warn({ err, key: row.upload_key }, 'media: could not delete a staging object');
    });
    return this.recordWithPreview(completed, verified.preview);
  }

  /**
   * `GET /v1/media/{id}`: a signed download URL, or `restoring` (202) while a cold item is
   * brought back. Every read counts as an access (at most once per accessResolutionSeconds).
   */
  async get(user: string, mediaId: string): Promise<MediaDownload> {
    const row = await this.loadReadable(user, mediaId);
    const blob = await getBlob(this.db, row.sha256);
    if (!blob) throw new ChatError('internal', `media ${mediaId} has no stored bytes`);
    await touchAccess(this.db, row.id, this.clock.now(), this.config.accessResolutionSeconds * 1000);
    const media = toRecord(row);
    let tier = blob.tier;
    if (tier !== 'hot') {
      const state = await this.readableState(blob);
      if (!state.readable) return { kind: 'restoring', retryAfterSeconds: this.config.restoreRetryAfterSeconds, media };
      tier = state.tier;
    }
    const signed = await this.objects.signedGetUrl(blob.object_key, {
      expiresInSeconds: this.config.downloadUrlTtlSeconds,
      contentType: row.content_type,
      disposition: dispositionFor(row.content_type),
      tier,
    });
    return { kind: 'redirect', url: signed.url, expiresAt: signed.expiresAt, media: { ...media, tier } };
  }

  /** The record of an item (with its preview); tombstones too, so a message can show "expired". */
  async info(user: string, mediaId: string): Promise<MediaRecord> {
    const row = await this.loadVisible(user, mediaId);
    return row.state === 'complete' ? this.recordWithPreview(row) : toRecord(row);
  }

  /**
   * For message ingest: every id must be a completed item of `conv` uploaded by `user`.
   * Unknown or of another conversation: not_found; someone else's: forbidden; not
   * completed (or deleted): bad_request / not_found.
   */
  async checkAttachable(user: string, conv: string, mediaIds: readonly string[]): Promise<void> {
    if (!Array.isArray(mediaIds) || mediaIds.some((id) => typeof id !== 'string' || !mediaIdPattern.test(id))) {
      throw new ChatError('bad_request', 'media must be a list of media ids');
    }
    if (mediaIds.length > this.config.maxAttachmentsPerMessage) {
      throw new ChatError('bad_request', `at most ${this.config.maxAttachmentsPerMessage} media per message`);
    }
    if (new Set(mediaIds).size !== mediaIds.length) throw new ChatError('bad_request', 'a media id is listed twice');
    if (mediaIds.length === 0) return;
    const rows = await getMediaMany(this.db, [...mediaIds]);
    for (const id of mediaIds) {
      const row = rows.get(id);
      if (!row || row.conv !== conv || row.state === 'deleted') throw new ChatError('not_found', `no media ${id} in ${conv}`);
      if (row.owner !== user) throw new ChatError('forbidden', `media ${id} was uploaded by someone else`);
      if (row.state !== 'complete') throw new ChatError('bad_request', `media ${id} is not completed`);
    }
  }

  // ---- steps ---------------------------------------------------------------------------

  private checkContentType(declared: string): string {
    const contentType = normalizeContentType(declared);
    if (!contentType) throw new ChatError('bad_request', `content_type ${JSON.stringify(declared)} is not a media type`);
    if (!isAllowedContentType(contentType, this.config.contentTypes)) {
      throw new ChatError('bad_request', `content type ${contentType} is not accepted`, { status: 415 });
    }
    return contentType;
  }

  private checkSize(size: number): void {
    if (size > this.config.maxBytes) throw new ChatError('too_large', `size ${size} is over the limit of ${this.config.maxBytes} bytes`);
  }

  private async requireMember(conv: string, user: string): Promise<void> {
    if (!(await this.chat.getMember(conv, user))) throw new ChatError('not_member', `you are not a member of ${conv}`);
  }

  /** The uploader's own item; someone else's pending upload does not exist for them. */
  private async loadOwnPending(user: string, mediaId: string): Promise<MediaRow> {
    const row = mediaIdPattern.test(mediaId) ? await getMedia(this.db, mediaId) : undefined;
    if (!row || row.owner !== user || row.state === 'deleted') throw new ChatError('not_found', `no upload ${mediaId}`);
    await this.requireMember(row.conv, user);
    return row;
  }

  /** Any item of a conversation the user belongs to (membership is checked before state, so non-members learn nothing). */
  private async loadVisible(user: string, mediaId: string): Promise<MediaRow> {
    const row = mediaIdPattern.test(mediaId) ? await getMedia(this.db, mediaId) : undefined;
    if (!row) throw new ChatError('not_found', `no media ${mediaId}`);
    await this.requireMember(row.conv, user);
    return row;
  }

  private async loadReadable(user: string, mediaId: string): Promise<MediaRow> {
    const row = await this.loadVisible(user, mediaId);
    if (row.state === 'deleted') throw new ChatError('not_found', `media ${mediaId} was deleted (${row.deleted_reason ?? 'deleted'})`, { status: 410 });
    if (row.state !== 'complete') throw new ChatError('not_found', `media ${mediaId} is not uploaded yet`);
    return row;
  }

  /** Size, limits, sha256 and the first bytes against the declared type; also buffers images for a preview. */
  private async verifyUpload(row: MediaRow, storedSize: number): Promise<VerifiedUpload> {
    if (storedSize !== row.size) throw new UploadRejected(`stored ${storedSize} bytes, declared ${row.size}`);
    if (row.size > this.config.maxBytes) throw new UploadRejected(`size ${row.size} is over the limit of ${this.config.maxBytes} bytes`);
    if (!isAllowedContentType(row.content_type, this.config.contentTypes)) throw new UploadRejected(`content type ${row.content_type} is not accepted`);
    const existing = await getBlob(this.db, row.sha256);
    const wantPreview = this.config.thumbnail.enabled && canPreview(row.content_type) && row.size <= this.config.thumbnail.maxSourceBytes && !existing?.thumbnail_key;
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let first = Buffer.alloc(0);
    let length = 0;
    for await (const chunk of await this.objects.get(row.upload_key!)) {
      const b = chunk as Buffer;
      hash.update(b);
      length += b.length;
      if (first.length < 64) first = Buffer.concat([first, b.subarray(0, 64 - first.length)]);
      if (wantPreview) chunks.push(b);
    }
    if (length !== row.size) throw new UploadRejected(`stored ${length} bytes, declared ${row.size}`);
    const sha256 = hash.digest('hex');
    if (sha256 !== row.sha256) throw new UploadRejected(`sha256 of the stored bytes is ${sha256}, declared ${row.sha256}`);
    if (!bytesMatchContentType(row.content_type, first)) throw new UploadRejected(`the bytes are not ${row.content_type}`);
    const preview = wantPreview ? await makePreview(Buffer.concat(chunks), this.config.thumbnail) : undefined;
    return { preview };
  }

  /**
   * Bytes once per sha256: the first upload of some bytes becomes the blob; an identical
   * one adds a reference. When the blob is warm or cold, the fresh bytes replace it in hot,
   * so a re-shared old file needs no restore.
   */
  private async storeBlob(row: MediaRow, verified: VerifiedUpload): Promise<MediaRow | undefined> {
    const key = blobKey(row.sha256);
    return this.db.transaction(async (tx) => {
      await lockBlob(tx, row.sha256);
      // A concurrent completion of the same upload got here first: do not count it twice.
      if ((await getMediaForUpdate(tx, row.id))?.state !== 'pending') return undefined;
      const now = this.clock.now();
      const blob = await getBlob(tx, row.sha256);
      if (!blob) {
        await this.objects.copy(row.upload_key!, key, { contentType: row.content_type });
        const preview = await this.putPreview(row.sha256, verified.preview);
        await insertBlob(tx, { sha256: row.sha256, size: row.size, objectKey: key, thumbnailKey: preview?.key, thumbnailType: preview?.contentType, now });
      } else {
        if (blob.tier !== 'hot') {
          await this.objects.copy(row.upload_key!, blob.object_key, { contentType: row.content_type });
          await setBlobTier(tx, row.sha256, 'hot', now);
        }
        if (!blob.thumbnail_key) {
          const preview = await this.putPreview(row.sha256, verified.preview);
          if (preview) await setBlobThumbnail(tx, row.sha256, preview.key, preview.contentType);
        }
        await addBlobReference(tx, row.sha256);
      }
      return markComplete(tx, row.id, 'hot', now);
    });
  }

  /** Another completion of the same upload finished (or it was dropped) while this one verified. */
  private async completedMeanwhile(mediaId: string): Promise<MediaRecord> {
    const row = await getMedia(this.db, mediaId);
    if (row?.state === 'complete') return this.recordWithPreview(row);
    throw new ChatError('bad_request', `nothing uploaded for ${mediaId} yet`);
  }

  private async putPreview(sha256: string, preview: Preview | undefined): Promise<{ key: string; contentType: string } | undefined> {
    if (!preview) return undefined;
    const key = thumbnailKey(sha256);
    await this.objects.put(key, preview.data, { contentType: preview.contentType });
    return { key, contentType: preview.contentType };
  }

  /** The state of a warm or cold blob, starting a restore when it is archived. */
  private async readableState(blob: BlobRow): Promise<TierState> {
    const deps: BlobLifecycleDeps = { db: this.db, objects: this.objects, clock: this.clock, restoreDays: this.config.restoreDays };
    let state = await this.objects.tierState(blob.object_key);
    if (!state) throw new ChatError('internal', `the stored bytes of ${blob.sha256} are missing`);
    if (!state.readable && !state.restoring) {
      state = await this.objects.restore(blob.object_key, { days: this.config.restoreDays });
      await markRestoreRequested(this.db, blob.sha256, this.clock.now());
    }
    // The store is the truth about where bytes are (a restore may have moved them).
    if (state.tier !== blob.tier) await recordObservedTier(deps, blob.sha256, state.tier);
    return state;
  }

  private async recordWithPreview(row: MediaRow, fresh?: Preview): Promise<MediaRecord> {
    const record = toRecord(row);
    if (fresh) {
      record.thumbnail = dataUrl(fresh.contentType, fresh.data);
      return record;
    }
    const blob = await getBlob(this.db, row.sha256);
    if (!blob?.thumbnail_key) return record;
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of await this.objects.get(blob.thumbnail_key)) chunks.push(chunk as Buffer);
      record.thumbnail = dataUrl(blob.thumbnail_type ?? 'image/jpeg', Buffer.concat(chunks));
    } catch (err) {
      this.log.warn({ err, key: blob.thumbnail_key }, 'media: could not read a preview');
    }
    return record;
  }
}

interface VerifiedUpload {
  preview?: Preview;
}

export function toRecord(row: MediaRow): MediaRecord {
  const record: MediaRecord = {
    id: row.id,
    conv: row.conv,
    owner: row.owner,
    content_type: row.content_type,
    size: Number(row.size),
    sha256: row.sha256,
    state: row.state,
    tier: row.state === 'complete' ? row.tier : null,
    created_at: Number(row.created_at),
    completed_at: row.completed_at === null ? null : Number(row.completed_at),
  };
  if (row.deleted_at !== null) record.deleted_at = Number(row.deleted_at);
  return record;
}
