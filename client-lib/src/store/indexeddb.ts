/**
 * LocalStore on IndexedDB for browsers. Import it from `@mqtt-chat/client/indexeddb`
 * (the browser bundle exports it too). Open with `await IndexedDbStore.open(name)`.
 *
 * Each method runs in one IndexedDB transaction, which makes every call atomic.
 * Search uses a multiEntry index over each message's normalised words (search.ts).
 */

import {
  DEFAULT_PAGE_LIMIT,
  type ConversationRecord,
  type LocalStore,
  type MessagePageQuery,
  type OutboxEntry,
  type SearchQuery,
  type StoredMessage,
} from './types.ts';
import { compareSearchResults, matchesQuery, messageTokens, tokenize } from './search.ts';

const DB_VERSION = 1;
const MESSAGES = 'messages';
const OUTBOX = 'outbox';
const CONVERSATIONS = 'conversations';
const META = 'meta';

/** What the messages object store holds: the message plus its indexed words. */
interface MessageRow {
  conv: string;
  seq: number;
  words: string[];
  message: StoredMessage;
}

function promisify<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(transaction: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error ?? new Error('IndexedDB transaction aborted'));
  });
}

export interface IndexedDbStoreOptions {
  /** The IDBFactory to use; defaults to `globalThis.indexedDB`. */
  indexedDB?: IDBFactory;
}

export class IndexedDbStore implements LocalStore {
  readonly kind = 'indexeddb';

  private constructor(private readonly db: IDBDatabase) {}

  /** Opens (creating or upgrading) the database `name`. One database per account is advised. */
  static async open(name: string, options: IndexedDbStoreOptions = {}): Promise<IndexedDbStore> {
    const factory = options.indexedDB ?? globalThis.indexedDB;
    if (!factory) throw new Error('IndexedDbStore: indexedDB is not available in this environment');
    const request = factory.open(name, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      // Version 1 schema.
      const messages = db.createObjectStore(MESSAGES, { keyPath: ['conv', 'seq'] });
      messages.createIndex('words', 'words', { multiEntry: true });
      // Out-of-line auto-increment keys record first-insertion order; `id` is unique.
      const outbox = db.createObjectStore(OUTBOX, { autoIncrement: true });
      outbox.createIndex('id', 'id', { unique: true });
      db.createObjectStore(CONVERSATIONS, { keyPath: 'conv' });
      db.createObjectStore(META);
    };
    const db = await promisify(request);
    return new IndexedDbStore(db);
  }

  /** Deletes the database `name` (all its data). */
  static async destroy(name: string, options: IndexedDbStoreOptions = {}): Promise<void> {
    const factory = options.indexedDB ?? globalThis.indexedDB;
    await promisify(factory.deleteDatabase(name));
  }

  async putMessages(messages: readonly StoredMessage[]): Promise<StoredMessage[]> {
    const transaction = this.db.transaction(MESSAGES, 'readwrite');
    const store = transaction.objectStore(MESSAGES);
    const inserted: StoredMessage[] = [];
    const seen = new Set<string>();
    // Requests within one transaction run in order: count() before add() sees earlier adds.
    for (const message of messages) {
      const key = `${message.conv}\u0000${message.seq}`;
      const request = store.count([message.conv, message.seq]);
      request.onsuccess = () => {
        if (request.result > 0 || seen.has(key)) return;
        seen.add(key);
        const row: MessageRow = { conv: message.conv, seq: message.seq, words: messageTokens(message), message };
        store.add(row);
        inserted.push(structuredClone(message));
      };
    }
    await done(transaction);
    return inserted;
  }

  async getMessage(conv: string, seq: number): Promise<StoredMessage | undefined> {
    const row = (await promisify(this.db.transaction(MESSAGES).objectStore(MESSAGES).get([conv, seq]))) as MessageRow | undefined;
    return row?.message;
  }

  async listMessages(conv: string, query: MessagePageQuery = {}): Promise<StoredMessage[]> {
    const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
    if (limit <= 0) return [];
    const lower = query.after ?? -Infinity;
    const upper = query.before ?? Infinity;
    if (lower >= upper) return [];
    const range = IDBKeyRange.bound([conv, lower], [conv, upper], true, true);
    const store = this.db.transaction(MESSAGES).objectStore(MESSAGES);
    const direction: IDBCursorDirection = query.after !== undefined ? 'next' : 'prev';
    const rows: MessageRow[] = [];
    await new Promise<void>((resolve, reject) => {
      const request = store.openCursor(range, direction);
      request.onerror = () => reject(request.error);
      request.onsuccess = () => {
        const cursor = request.result;
        if (!cursor || rows.length >= limit) return resolve();
        rows.push(cursor.value as MessageRow);
        cursor.continue();
      };
    });
    if (direction === 'prev') rows.reverse();
    return rows.map((row) => row.message);
  }

  async searchMessages(query: string, options: SearchQuery = {}): Promise<StoredMessage[]> {
    const queryWords = tokenize(query);
    if (queryWords.length === 0) return [];
    // Walk the index for the longest word (the most selective), check the others on the row.
    const probe = [...queryWords].sort((a, b) => b.length - a.length)[0]!;
    const index = this.db.transaction(MESSAGES).objectStore(MESSAGES).index('words');
    const range = IDBKeyRange.bound(probe, `${probe}\uffff`);
    const found = new Map<string, StoredMessage>();
    await new Promise<void>((resolve, reject) => {
      const request = index.openCursor(range);
      request.onerror = () => reject(request.error);
      request.onsuccess = () => {
        const cursor = request.result;
        if (!cursor) return resolve();
        const row = cursor.value as MessageRow;
        if ((options.conv === undefined || row.conv === options.conv) && matchesQuery(row.words, queryWords)) {
          found.set(`${row.conv}\u0000${row.seq}`, row.message);
        }
        cursor.continue();
      };
    });
    return [...found.values()].sort(compareSearchResults).slice(0, options.limit ?? DEFAULT_PAGE_LIMIT);
  }

  async outboxPut(entry: OutboxEntry): Promise<void> {
    const transaction = this.db.transaction(OUTBOX, 'readwrite');
    const store = transaction.objectStore(OUTBOX);
    const keyRequest = store.index('id').getKey(entry.id);
    keyRequest.onsuccess = () => {
      if (keyRequest.result === undefined) store.add(entry);
      else store.put(entry, keyRequest.result);
    };
    await done(transaction);
  }

  async outboxGet(id: string): Promise<OutboxEntry | undefined> {
    return (await promisify(this.db.transaction(OUTBOX).objectStore(OUTBOX).index('id').get(id))) as OutboxEntry | undefined;
  }

  async outboxList(): Promise<OutboxEntry[]> {
    return (await promisify(this.db.transaction(OUTBOX).objectStore(OUTBOX).getAll())) as OutboxEntry[];
  }

  async outboxDelete(id: string): Promise<void> {
    const transaction = this.db.transaction(OUTBOX, 'readwrite');
    const store = transaction.objectStore(OUTBOX);
    const keyRequest = store.index('id').getKey(id);
    keyRequest.onsuccess = () => {
      if (keyRequest.result !== undefined) store.delete(keyRequest.result);
    };
    await done(transaction);
  }

  async getConversation(conv: string): Promise<ConversationRecord | undefined> {
    return (await promisify(this.db.transaction(CONVERSATIONS).objectStore(CONVERSATIONS).get(conv))) as
      | ConversationRecord
      | undefined;
  }

  async putConversation(record: ConversationRecord): Promise<void> {
    const transaction = this.db.transaction(CONVERSATIONS, 'readwrite');
    transaction.objectStore(CONVERSATIONS).put(record);
    await done(transaction);
  }

  async listConversations(): Promise<ConversationRecord[]> {
    // keyPath order is string order of `conv`, which is what the contract asks.
    return (await promisify(this.db.transaction(CONVERSATIONS).objectStore(CONVERSATIONS).getAll())) as ConversationRecord[];
  }

  async getMeta(key: string): Promise<string | undefined> {
    return (await promisify(this.db.transaction(META).objectStore(META).get(key))) as string | undefined;
  }

  async setMeta(key: string, value: string): Promise<void> {
    const transaction = this.db.transaction(META, 'readwrite');
    transaction.objectStore(META).put(value, key);
    await done(transaction);
  }

  async clear(): Promise<void> {
    const names = [MESSAGES, OUTBOX, CONVERSATIONS, META];
    const transaction = this.db.transaction(names, 'readwrite');
    for (const name of names) transaction.objectStore(name).clear();
    await done(transaction);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
