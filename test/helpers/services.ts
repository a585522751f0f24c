/**
 * Real services for tests. DATABASE_URL / REDIS_URL point at a server (.ci/run sets
 * them; locally they default to this machine's). Each test file makes its own database
 * or key prefix and drops it after: the servers are shared and keep state across runs.
 * A missing service fails the test; it is never skipped.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const postgresUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
export const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `chat_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresUrl });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(`PostgreSQL is required for this test and is not reachable at ${postgresUrl}: ${(err as Error).message}`);
  }
  await admin.query(`create database ${name}`);
  await admin.end();
  return {
    url: withDatabase(postgresUrl, name),
    async drop() {
      const c = new pg.Client({ connectionString: postgresUrl });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export function uniquePrefix(label: string): string {
  return `test:${label}:${Date.now().toString(36)}${randomBytes(3).toString('hex')}:`;
}
