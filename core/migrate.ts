import { readdir, readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from './db.ts';

export const migrationsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'migrations');

export class MigrationError extends Error {
  constructor(readonly migration: string, cause: unknown) {
    super(`migration ${migration} failed: ${(cause as Error).message ?? String(cause)}`, { cause });
    this.name = 'MigrationError';
  }
}

/** Numbered files `NNN_name.sql`, in order. */
export async function listMigrations(dir = migrationsDir): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_[\w-]+\.sql$/.test(f));
  return files.sort((a, b) => parseInt(a, 10) - parseInt(b, 10) || a.localeCompare(b));
}

/**
 * Applies each migration not yet recorded, each in its own transaction together with
 * its record, so a failing one leaves the database as it was before it. Several
 * processes starting at once (cluster mode) serialize on an advisory lock.
 */
export async function migrate(db: Db, dir = migrationsDir): Promise<string[]> {
  await db.exec(`create table if not exists schema_migrations (
    name text primary key, applied_at bigint not null)`);
  const applied: string[] = [];
  for (const name of await listMigrations(dir)) {
    const sql = await readFile(join(dir, name), 'utf8');
    await db.transaction(async (tx) => {
      await tx.query('select pg_advisory_xact_lock(7263541)');
      const done = await tx.query('select 1 from schema_migrations where name = $1', [name]);
      if (done.rowCount > 0) return;
      try {
        await tx.exec(sql);
      } catch (err) {
        throw new MigrationError(name, err);
      }
      await tx.query('insert into schema_migrations (name, applied_at) values ($1, $2)', [name, Date.now()]);
      applied.push(name);
    });
  }
  return applied;
}
