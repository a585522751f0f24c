import pg from 'pg';
import type { Db, QueryResult, SqlClient } from './db.ts';

// int8 (bigint, used for millisecond times and counts) as a JS number: every value we
// store in one is below 2^53. PGlite is configured the same way (db-pglite.ts).
pg.types.setTypeParser(20, (v: string) => Number(v));

class PgClient implements SqlClient {
  constructor(private readonly client: pg.Pool | pg.PoolClient) {}
  async query<Row>(sql: string, params?: unknown[]): Promise<QueryResult<Row>> {
    const result = await this.client.query(sql, params);
    return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
  }
  async exec(sql: string): Promise<void> {
    await this.client.query(sql);
  }
}

export class PostgresDb extends PgClient implements Db {
  readonly kind = 'postgres' as const;

  private constructor(private readonly pool: pg.Pool) {
    super(pool);
  }

  static async connect(url: string, max = 10): Promise<PostgresDb> {
    const pool = new pg.Pool({ connectionString: url, max });
    // An idle client that errors (server restart) must not crash the process.
    pool.on('error', () => {});
    await pool.query('select 1');
    return new PostgresDb(pool);
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(new PgClient(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
