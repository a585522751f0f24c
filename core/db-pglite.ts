import { PGlite, types } from '@electric-sql/pglite';
import type { Db, QueryResult, SqlClient } from './db.ts';

/**
 * PGlite through its own API rather than pglite-socket + `pg`: PGlite is a single
 * connection, and pglite-socket makes every other connection wait while a transaction
 * is open. Calling PGlite directly keeps one connection in-process with no socket hop;
 * PGlite queues concurrent calls itself, and a transaction holds that queue, which is
 * exactly the isolation a single connection gives.
 */
class PgliteClient implements SqlClient {
  constructor(private readonly conn: Pick<PGlite, 'query' | 'exec'>) {}
  async query<Row>(sql: string, params?: unknown[]): Promise<QueryResult<Row>> {
    const result = await this.conn.query<Row>(sql, params);
    // PGlite reports affectedRows 0 for SELECT; pg reports the rows returned.
    return { rows: result.rows, rowCount: Math.max(result.affectedRows ?? 0, result.rows.length) };
  }
  async exec(sql: string): Promise<void> {
    await this.conn.exec(sql);
  }
}

export class PgliteDb extends PgliteClient implements Db {
  readonly kind = 'pglite' as const;

  private constructor(private readonly pg: PGlite) {
    super(pg);
  }

  static async open(dataDir?: string): Promise<PgliteDb> {
    const pg = await PGlite.create(dataDir, {
      parsers: { [types.INT8]: (v: string) => Number(v) },
    });
    return new PgliteDb(pg);
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    return this.pg.transaction((tx) => fn(new PgliteClient(tx)));
  }

  async close(): Promise<void> {
    if (!this.pg.closed) await this.pg.close();
  }
}
