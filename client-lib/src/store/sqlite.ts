/**
 * LocalStore on SQLite for Node (better-sqlite3 12), with full-text search over local
 * messages through FTS5. Import it from `@mqtt-chat/client/sqlite` so that browser bundles
 * never see better-sqlite3.
 *
 * better-sqlite3 is synchronous: each method runs one statement or one transaction, which
 * makes every call atomic as the LocalStore contract asks.
 */

import Database from 'better-sqlite3';
import {
  DEFAULT_PAGE_LIMIT,
  type ConversationRecord,
  type LocalStore,
  type MessagePageQuery,
  type OutboxEntry,
  type SearchQuery,
  type StoredMessage,
} from './types.ts';
import { messageTokens, tokenize } from './search.ts';

export interface SqliteStoreOptions {
  /** Database file; ":memory:" for a throwaway one. */
  path: string;
  /** Open an existing database object instead (the store then does not own it). */
  database?: Database.Database;
}

const SCHEMA_VERSION = 1;

// One migration per schema version; user_version records which ones ran.
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE messages (
    conv TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (conv, seq)
  ) WITHOUT ROWID;
  -- Normalised words (see search.ts) are indexed instead of the raw text, so that SQLite
  -- and the other stores agree on what matches. Prefix queries use the prefix index.
  CREATE VIRTUAL TABLE message_search USING fts5(
    words, conv UNINDEXED, seq UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
  );
  CREATE TABLE outbox (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
  );
  CREATE TABLE conversations (conv TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  `,
];

export class SqliteStore implements LocalStore {
  readonly kind = 'sqlite';
  readonly #db: Database.Database;
  readonly #ownsDatabase: boolean;
  readonly #statements;

  constructor(options: SqliteStoreOptions) {
    this.#ownsDatabase = options.database === undefined;
    this.#db = options.database ?? new Database(options.path);
    this.#db.pragma('journal_mode = WAL');
    // The outbox is what makes "sent while offline" survive a crash: commit durably.
    this.#db.pragma('synchronous = FULL');
    this.#migrate();
    const db = this.#db;
    this.#statements = {
      insertMessage: db.prepare<[string, number, number, string]>(
        'INSERT INTO messages (conv, seq, ts, data) VALUES (?, ?, ?, ?) ON CONFLICT (conv, seq) DO NOTHING',
      ),
      insertWords: db.prepare<[string, string, number]>('INSERT INTO message_search (words, conv, seq) VALUES (?, ?, ?)'),
      getMessage: db.prepare<[string, number], { data: string }>('SELECT data FROM messages WHERE conv = ? AND seq = ?'),
      pageAfter: db.prepare<[string, number, number, number], { data: string }>(
        'SELECT data FROM messages WHERE conv = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?',
      ),
      pageBefore: db.prepare<[string, number, number, number], { data: string }>(
        'SELECT data FROM (SELECT data, seq FROM messages WHERE conv = ? AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?) ORDER BY seq ASC',
      ),
      search: db.prepare<[string, number], { data: string }>(
        `SELECT m.data FROM message_search s JOIN messages m ON m.conv = s.conv AND m.seq = s.seq
         WHERE message_search MATCH ? ORDER BY m.ts DESC, m.conv ASC, m.seq DESC LIMIT ?`,
      ),
      searchConv: db.prepare<[string, string, number], { data: string }>(
        `SELECT m.data FROM message_search s JOIN messages m ON m.conv = s.conv AND m.seq = s.seq
         WHERE message_search MATCH ? AND s.conv = ? ORDER BY m.ts DESC, m.seq DESC LIMIT ?`,
      ),
      outboxUpsert: db.prepare<[string, string]>(
        'INSERT INTO outbox (id, data) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data',
      ),
      outboxGet: db.prepare<[string], { data: string }>('SELECT data FROM outbox WHERE id = ?'),
      outboxList: db.prepare<[], { data: string }>('SELECT data FROM outbox ORDER BY position ASC'),
      outboxDelete: db.prepare<[string]>('DELETE FROM outbox WHERE id = ?'),
      convGet: db.prepare<[string], { data: string }>('SELECT data FROM conversations WHERE conv = ?'),
      convPut: db.prepare<[string, string]>(
        'INSERT INTO conversations (conv, data) VALUES (?, ?) ON CONFLICT (conv) DO UPDATE SET data = excluded.data',
      ),
      convList: db.prepare<[], { data: string }>('SELECT data FROM conversations ORDER BY conv ASC'),
      metaGet: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      metaSet: db.prepare<[string, string]>(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ),
    };
  }

  #migrate(): void {
    const current = this.#db.pragma('user_version', { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      throw new Error(`SqliteStore: database schema ${current} is newer than this SDK (${SCHEMA_VERSION})`);
    }
    for (let version = current; version < SCHEMA_VERSION; version++) {
      this.#db.transaction(() => {
        this.#db.exec(MIGRATIONS[version]!);
        this.#db.pragma(`user_version = ${version + 1}`);
      })();
    }
  }

  async putMessages(messages: readonly StoredMessage[]): Promise<StoredMessage[]> {
    const insertAll = this.#db.transaction((batch: readonly StoredMessage[]) => {
      const inserted: StoredMessage[] = [];
      for (const message of batch) {
        const result = this.#statements.insertMessage.run(message.conv, message.seq, message.ts, JSON.stringify(message));
        if (result.changes === 0) continue;
        const words = messageTokens(message);
        if (words.length > 0) this.#statements.insertWords.run(words.join(' '), message.conv, message.seq);
        inserted.push(structuredClone(message));
      }
      return inserted;
    });
    return insertAll(messages);
  }

  async getMessage(conv: string, seq: number): Promise<StoredMessage | undefined> {
    const row = this.#statements.getMessage.get(conv, seq);
    return row ? (JSON.parse(row.data) as StoredMessage) : undefined;
  }

  async listMessages(conv: string, query: MessagePageQuery = {}): Promise<StoredMessage[]> {
    const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
    if (limit <= 0) return [];
    const after = query.after ?? -1;
    const before = query.before ?? Number.MAX_SAFE_INTEGER;
    const rows =
      query.after !== undefined
        ? this.#statements.pageAfter.all(conv, after, before, limit)
        : this.#statements.pageBefore.all(conv, after, before, limit);
    return rows.map((row) => JSON.parse(row.data) as StoredMessage);
  }

  async searchMessages(query: string, options: SearchQuery = {}): Promise<StoredMessage[]> {
    const words = tokenize(query);
    if (words.length === 0) return [];
    // Words contain letters and digits only, so quoting them is safe; `*` makes them prefixes.
    const match = words.map((word) => `"${word}"*`).join(' AND ');
    const limit = options.limit ?? DEFAULT_PAGE_LIMIT;
    const rows =
      options.conv === undefined
        ? this.#statements.search.all(match, limit)
        : this.#statements.searchConv.all(match, options.conv, limit);
    return rows.map((row) => JSON.parse(row.data) as StoredMessage);
  }

  async outboxPut(entry: OutboxEntry): Promise<void> {
    this.#statements.outboxUpsert.run(entry.id, JSON.stringify(entry));
  }

  async outboxGet(id: string): Promise<OutboxEntry | undefined> {
    const row = this.#statements.outboxGet.get(id);
    return row ? (JSON.parse(row.data) as OutboxEntry) : undefined;
  }

  async outboxList(): Promise<OutboxEntry[]> {
    return this.#statements.outboxList.all().map((row) => JSON.parse(row.data) as OutboxEntry);
  }

  async outboxDelete(id: string): Promise<void> {
    this.#statements.outboxDelete.run(id);
  }

  async getConversation(conv: string): Promise<ConversationRecord | undefined> {
    const row = this.#statements.convGet.get(conv);
    return row ? (JSON.parse(row.data) as ConversationRecord) : undefined;
  }

  async putConversation(record: ConversationRecord): Promise<void> {
    this.#statements.convPut.run(record.conv, JSON.stringify(record));
  }

  async listConversations(): Promise<ConversationRecord[]> {
    return this.#statements.convList.all().map((row) => JSON.parse(row.data) as ConversationRecord);
  }

  async getMeta(key: string): Promise<string | undefined> {
    return this.#statements.metaGet.get(key)?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.#statements.metaSet.run(key, value);
  }

  async clear(): Promise<void> {
    this.#db.transaction(() => {
      for (const table of ['messages', 'message_search', 'outbox', 'conversations', 'meta']) {
        this.#db.exec(`DELETE FROM ${table}`);
      }
    })();
  }

  async close(): Promise<void> {
    if (this.#ownsDatabase && this.#db.open) this.#db.close();
  }
}
