/**
 * The SQL of media (tables of migrations/003_media.sql). Functions take a SqlClient so
 * that the same statement runs on the pool or inside a transaction. int8 columns arrive as
 * JS numbers on both engines (core/db.ts).
 */
import type { SqlClient } from '../../core/db.ts';
import type { Tier } from './config.ts';

export type MediaState = 'pending' | 'complete' | 'deleted';

export interface MediaRow {
  id: string;
  owner: string;
  conv: string;
  content_type: string;
  size: number;
  sha256: string;
  state: MediaState;
  tier: Tier | null;
  upload_key: string | null;
  created_at: number;
  completed_at: number | null;
  last_access_at: number | null;
  deleted_at: number | null;
  deleted_reason: string | null;
}

export interface BlobRow {
  sha256: string;
  size: number;
  object_key: string;
  thumbnail_key: string | null;
  thumbnail_type: string | null;
  tier: Tier;
  refcount: number;
  created_at: number;
  tier_changed_at: number;
  restore_requested_at: number | null;
}

const mediaColumns =
  'id, owner, conv, content_type, size, sha256, state, tier, upload_key, created_at, completed_at, last_access_at, deleted_at, deleted_reason';
const blobColumns = 'sha256, size, object_key, thumbnail_key, thumbnail_type, tier, refcount, created_at, tier_changed_at, restore_requested_at';

export async function insertPending(db: SqlClient, m: { id: string; owner: string; conv: string; contentType: string; size: number; sha256: string; uploadKey: string; now: number }): Promise<MediaRow> {
  const r = await db.query<MediaRow>(
    `insert into media (id, owner, conv, content_type, size, sha256, state, upload_key, created_at)
     values ($1, $2, $3, $4, $5, $6, 'pending', $7, $8) returning ${mediaColumns}`,
    [m.id, m.owner, m.conv, m.contentType, m.size, m.sha256, m.uploadKey, m.now],
  );
  return r.rows[0]!;
}

export async function countPendingSince(db: SqlClient, owner: string, since: number): Promise<number> {
  const r = await db.query<{ n: number }>("select count(*)::int as n from media where owner = $1 and state = 'pending' and created_at >= $2", [owner, since]);
  return Number(r.rows[0]!.n);
}

export async function getMedia(db: SqlClient, id: string): Promise<MediaRow | undefined> {
  const r = await db.query<MediaRow>(`select ${mediaColumns} from media where id = $1`, [id]);
  return r.rows[0];
}

/** The row, locked until the transaction ends (two completions of one upload serialize on it). */
export async function getMediaForUpdate(tx: SqlClient, id: string): Promise<MediaRow | undefined> {
  const r = await tx.query<MediaRow>(`select ${mediaColumns} from media where id = $1 for update`, [id]);
  return r.rows[0];
}

export async function getMediaMany(db: SqlClient, ids: string[]): Promise<Map<string, MediaRow>> {
  const r = await db.query<MediaRow>(`select ${mediaColumns} from media where id = any($1::text[])`, [ids]);
  return new Map(r.rows.map((row) => [row.id, row]));
}

export async function getBlob(db: SqlClient, sha256: string): Promise<BlobRow | undefined> {
  const r = await db.query<BlobRow>(`select ${blobColumns} from media_blobs where sha256 = $1`, [sha256]);
  return r.rows[0];
}

/**
 * Serializes everything that touches one sha256's objects and blob row (completion,
 * tier moves, deletion) across processes, until the transaction ends. A transaction lock
 * rather than a row lock because the blob row may not exist yet.
 */
export async function lockBlob(tx: SqlClient, sha256: string): Promise<void> {
  await tx.query("select pg_advisory_xact_lock(hashtext('media_blob'), hashtext($1))", [sha256]);
}

export async function insertBlob(tx: SqlClient, b: { sha256: string; size: number; objectKey: string; thumbnailKey?: string; thumbnailType?: string; now: number }): Promise<void> {
  await tx.query(
    `insert into media_blobs (sha256, size, object_key, thumbnail_key, thumbnail_type, tier, refcount, created_at, tier_changed_at)
     values ($1, $2, $3, $4, $5, 'hot', 1, $6, $6)`,
    [b.sha256, b.size, b.objectKey, b.thumbnailKey ?? null, b.thumbnailType ?? null, b.now],
  );
}

export async function addBlobReference(tx: SqlClient, sha256: string): Promise<void> {
  await tx.query('update media_blobs set refcount = refcount + 1 where sha256 = $1', [sha256]);
}

export async function setBlobThumbnail(tx: SqlClient, sha256: string, key: string, contentType: string): Promise<void> {
  await tx.query('update media_blobs set thumbnail_key = $2, thumbnail_type = $3 where sha256 = $1', [sha256, key, contentType]);
}

/** Records a move of the bytes, on the blob and on its live items (media.tier mirrors it). */
export async function setBlobTier(tx: SqlClient, sha256: string, tier: Tier, now: number): Promise<void> {
  await tx.query('update media_blobs set tier = $2, tier_changed_at = $3, restore_requested_at = null where sha256 = $1 and tier <> $2', [sha256, tier, now]);
  await tx.query("update media set tier = $2 where sha256 = $1 and state = 'complete'", [sha256, tier]);
}

export async function markRestoreRequested(db: SqlClient, sha256: string, now: number): Promise<void> {
  await db.query('update media_blobs set restore_requested_at = $2 where sha256 = $1', [sha256, now]);
}

export async function markComplete(tx: SqlClient, id: string, tier: Tier, now: number): Promise<MediaRow> {
  const r = await tx.query<MediaRow>(
    `update media set state = 'complete', tier = $2, completed_at = $3, last_access_at = $3, upload_key = null
     where id = $1 returning ${mediaColumns}`,
    [id, tier, now],
  );
  return r.rows[0]!;
}

export async function deletePending(db: SqlClient, id: string): Promise<void> {
  await db.query("delete from media where id = $1 and state = 'pending'", [id]);
}

/** Counts a read as an access, at most once per `resolutionMs` per item (a download is not a write each time). */
export async function touchAccess(db: SqlClient, id: string, now: number, resolutionMs: number): Promise<void> {
  await db.query('update media set last_access_at = $2 where id = $1 and (last_access_at is null or last_access_at <= $3)', [id, now, now - resolutionMs]);
}

/** Turns a live item into a tombstone; returns false when it was not live. */
export async function markDeleted(tx: SqlClient, id: string, reason: string, now: number): Promise<boolean> {
  const r = await tx.query("update media set state = 'deleted', tier = null, deleted_at = $2, deleted_reason = $3 where id = $1 and state = 'complete'", [id, now, reason]);
  return r.rowCount > 0;
}

/** Drops one reference; returns the blob as it is after (refcount 0: nothing uses the bytes). */
export async function releaseBlobReference(tx: SqlClient, sha256: string): Promise<BlobRow | undefined> {
  const r = await tx.query<BlobRow>(`update media_blobs set refcount = refcount - 1 where sha256 = $1 returning ${blobColumns}`, [sha256]);
  return r.rows[0];
}

export async function deleteBlobRow(tx: SqlClient, sha256: string): Promise<void> {
  await tx.query('delete from media_blobs where sha256 = $1 and refcount = 0', [sha256]);
}

export async function abandonedUploads(db: SqlClient, before: number, limit: number): Promise<{ id: string; upload_key: string | null }[]> {
  const r = await db.query<{ id: string; upload_key: string | null }>(
    "select id, upload_key from media where state = 'pending' and created_at < $1 order by created_at limit $2",
    [before, limit],
  );
  return r.rows;
}

export interface TierTotals {
  objects: Record<Tier, number>;
  bytes: Record<Tier, number>;
}

/** Stored bytes and objects per tier (blobs, i.e. after dedupe; previews are not counted). */
export async function tierTotals(db: SqlClient): Promise<TierTotals> {
  const r = await db.query<{ tier: Tier; n: number; bytes: number }>('select tier, count(*)::int8 as n, coalesce(sum(size), 0)::int8 as bytes from media_blobs group by tier');
  const totals: TierTotals = { objects: { hot: 0, warm: 0, cold: 0 }, bytes: { hot: 0, warm: 0, cold: 0 } };
  for (const row of r.rows) {
    totals.objects[row.tier] = Number(row.n);
    totals.bytes[row.tier] = Number(row.bytes);
  }
  return totals;
}
