/**
 * Changes that touch a blob's objects and its rows together: moving between tiers,
 * tombstoning an item (and deleting the bytes when the last reference goes), dropping an
 * abandoned upload. Each runs in one transaction under the blob's lock (repository
 * lockBlob), with the object operations inside it, so that completion of an identical
 * upload, a move and a deletion of the same sha256 never interleave, in one process or
 * many. The object operation comes first and the rows follow: if the commit fails the
 * rows still describe an object that exists (a move is redone by the next run; a
 * deletion's rows say "live" for bytes already gone only if the commit itself fails, and
 * the next retention run finishes it).
 */
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import type { Tier } from './config.ts';
import { ObjectArchivedError, ObjectNotFoundError, type ObjectStore } from './object-store.ts';
import {
  deleteBlobRow,
  deletePending,
  getBlob,
  lockBlob,
  markDeleted,
  markRestoreRequested,
  releaseBlobReference,
  setBlobTier,
} from './repository.ts';

export interface BlobLifecycleDeps {
  db: Db;
  objects: ObjectStore;
  clock: Clock;
  restoreDays: number;
}

export type MoveOutcome = 'moved' | 'unchanged' | 'restore_started' | 'restoring' | 'missing';

/**
 * Puts a blob's bytes in `target`. Leaving cold needs a readable object: if it is not,
 * a restore starts (or is already running) and the move happens on a later run.
 */
export async function moveBlob(deps: BlobLifecycleDeps, sha256: string, target: Tier): Promise<MoveOutcome> {
  return deps.db.transaction(async (tx) => {
    await lockBlob(tx, sha256);
    const blob = await getBlob(tx, sha256);
    if (!blob || blob.refcount === 0) return 'missing';
    if (blob.tier === target) return 'unchanged';
    const now = deps.clock.now();
    try {
      await deps.objects.setTier(blob.object_key, target);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return 'missing';
      if (!(err instanceof ObjectArchivedError)) throw err;
      const state = await deps.objects.restore(blob.object_key, { days: deps.restoreDays });
      if (state.tier !== blob.tier) await setBlobTier(tx, sha256, state.tier, now);
      if (state.tier === target) return 'moved';
      if (!state.readable) {
        // A request younger than a restore's lifetime is the one still running.
        const running = blob.restore_requested_at !== null && now - blob.restore_requested_at < deps.restoreDays * 86_400_000;
        if (running) return 'restoring';
        await markRestoreRequested(tx, sha256, now);
        return 'restore_started';
      }
      await deps.objects.setTier(blob.object_key, target);
    }
    await setBlobTier(tx, sha256, target, now);
    return 'moved';
  });
}

/** Records where a store reports the bytes to be, when that differs from the rows. */
export async function recordObservedTier(deps: BlobLifecycleDeps, sha256: string, tier: Tier): Promise<void> {
  await deps.db.transaction(async (tx) => {
    await lockBlob(tx, sha256);
    await setBlobTier(tx, sha256, tier, deps.clock.now());
  });
}

/**
 * Makes a live item a tombstone (its messages keep listing the id; `get` answers 410)
 * and deletes the bytes and the preview when no live item uses them any more.
 */
export async function tombstoneItem(deps: BlobLifecycleDeps, item: { id: string; sha256: string }, reason: string): Promise<{ deleted: boolean; bytesFreed: boolean }> {
  return deps.db.transaction(async (tx) => {
    await lockBlob(tx, item.sha256);
    if (!(await markDeleted(tx, item.id, reason, deps.clock.now()))) return { deleted: false, bytesFreed: false };
    const blob = await releaseBlobReference(tx, item.sha256);
    if (!blob || blob.refcount > 0) return { deleted: true, bytesFreed: false };
    await deleteBlobRow(tx, item.sha256);
    await deps.objects.delete(blob.object_key);
    if (blob.thumbnail_key) await deps.objects.delete(blob.thumbnail_key);
    return { deleted: true, bytesFreed: true };
  });
}

/** Drops a pending upload: its staging object and its row. */
export async function dropPendingUpload(deps: Pick<BlobLifecycleDeps, 'db' | 'objects'>, item: { id: string; upload_key: string | null }): Promise<void> {
  if (item.upload_key) await deps.objects.delete(item.upload_key);
  await deletePending(deps.db, item.id);
}
