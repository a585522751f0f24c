/**
 * "Once per cluster" for a scheduled job: a Postgres advisory lock held for the run.
 * Every node's cron fires; the one that gets the lock works, the others skip this round.
 *
 * - PostgreSQL: `pg_try_advisory_xact_lock` in a transaction that pins one pooled
 *   connection for the run. The transaction-scoped form of pg_try_advisory_lock is
 *   released by the commit, or by the server when the connection dies with the process,
 *   so it can never stay held on a connection returned to the pool. The job itself runs on
 *   other connections of the pool; the pinned one only holds the lock.
 * - PGlite: one process, one session, and a transaction would hold PGlite's only
 *   connection for the whole run, so the session form `pg_try_advisory_lock` with an
 *   unlock in `finally`; session locks are re-entrant within a session, so an in-process
 *   flag keeps two runs of one process apart too.
 */
import type { Db } from '../../core/db.ts';

export type LockedRun<T> = { acquired: true; value: T } | { acquired: false };

const heldInProcess = new WeakMap<Db, Set<number>>();

export async function withRunLock<T>(db: Db, lockKey: number, run: () => Promise<T>): Promise<LockedRun<T>> {
  if (db.kind === 'postgres') {
    return db.transaction(async (tx) => {
      const r = await tx.query<{ acquired: boolean }>('select pg_try_advisory_xact_lock($1) as acquired', [lockKey]);
      if (!r.rows[0]?.acquired) return { acquired: false as const };
      return { acquired: true as const, value: await run() };
    });
  }
  const held = heldInProcess.get(db) ?? new Set<number>();
  heldInProcess.set(db, held);
  if (held.has(lockKey)) return { acquired: false };
  held.add(lockKey);
  try {
    const r = await db.query<{ acquired: boolean }>('select pg_try_advisory_lock($1) as acquired', [lockKey]);
    if (!r.rows[0]?.acquired) return { acquired: false };
    try {
      return { acquired: true, value: await run() };
    } finally {
      await db.query('select pg_advisory_unlock($1)', [lockKey]);
    }
  } finally {
    held.delete(lockKey);
  }
}
