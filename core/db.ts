/**
 * The one data-access interface. Two implementations: PostgreSQL through `pg`
 * (cluster mode, DATABASE_URL) and PGlite in-process (embedded default). Both run
 * the same SQL and the same migrations; the store contract suite runs against both.
 *
 * Semantics every implementation keeps:
 * - `query` runs one statement with $n parameters; int8 columns come back as JS numbers.
 * - `transaction` runs `fn` in one transaction: committed when `fn` resolves (and only
 *   then does `transaction` resolve), rolled back when it throws. Durable on resolve.
 * - `exec` runs a script of several statements without parameters (migrations).
 */
export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

export interface SqlClient {
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<Row>>;
  exec(sql: string): Promise<void>;
}

export interface Db extends SqlClient {
  readonly kind: 'postgres' | 'pglite';
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface DbOptions {
  databaseUrl?: string;
  /** PGlite data directory; undefined keeps it in memory (tests). */
  pgliteDir?: string;
}

export async function openDb(options: DbOptions): Promise<Db> {
  if (options.databaseUrl) {
    const { PostgresDb } = await import('./db-postgres.ts');
    return PostgresDb.connect(options.databaseUrl);
  }
  const { PgliteDb } = await import('./db-pglite.ts');
  return PgliteDb.open(options.pgliteDir);
}
