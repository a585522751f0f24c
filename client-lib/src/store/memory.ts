/**
 * The default LocalStore: everything in memory, lost when the process ends. Use it for
 * bots, tests and short-lived clients; use SQLite or IndexedDB to survive restarts.
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

interface IndexedMessage {
  message: StoredMessage;
  words: string[];
}

export class MemoryStore implements LocalStore {
  readonly kind = 'memory';
  readonly #messages = new Map<string, Map<number, IndexedMessage>>();
  /** Map keeps first-insertion order, and set() on an existing key keeps its place. */
  readonly #outbox = new Map<string, OutboxEntry>();
  readonly #conversations = new Map<string, ConversationRecord>();
  readonly #meta = new Map<string, string>();

  async putMessages(messages: readonly StoredMessage[]): Promise<StoredMessage[]> {
    const inserted: StoredMessage[] = [];
    for (const message of messages) {
      let byseq = this.#messages.get(message.conv);
      if (!byseq) {
        byseq = new Map();
        this.#messages.set(message.conv, byseq);
      }
      if (byseq.has(message.seq)) continue;
      const copy = structuredClone(message);
      byseq.set(message.seq, { message: copy, words: messageTokens(copy) });
      inserted.push(structuredClone(message));
    }
    return inserted;
  }

  async getMessage(conv: string, seq: number): Promise<StoredMessage | undefined> {
    const entry = this.#messages.get(conv)?.get(seq);
    return entry ? structuredClone(entry.message) : undefined;
  }

  async listMessages(conv: string, query: MessagePageQuery = {}): Promise<StoredMessage[]> {
    const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
    if (limit <= 0) return [];
    const seqs = [...(this.#messages.get(conv)?.keys() ?? [])]
      .filter((seq) => (query.before === undefined || seq < query.before) && (query.after === undefined || seq > query.after))
      .sort((a, b) => a - b);
    const page = query.after !== undefined ? seqs.slice(0, limit) : seqs.slice(-limit);
    const byseq = this.#messages.get(conv);
    return page.map((seq) => structuredClone(byseq!.get(seq)!.message));
  }

  async searchMessages(query: string, options: SearchQuery = {}): Promise<StoredMessage[]> {
    const queryWords = tokenize(query);
    if (queryWords.length === 0) return [];
    const results: StoredMessage[] = [];
    const convs = options.conv === undefined ? [...this.#messages.values()] : [this.#messages.get(options.conv) ?? new Map()];
    for (const byseq of convs) {
      for (const { message, words } of byseq.values()) {
        if (matchesQuery(words, queryWords)) results.push(message);
      }
    }
    return results
      .sort(compareSearchResults)
      .slice(0, options.limit ?? DEFAULT_PAGE_LIMIT)
      .map((message) => structuredClone(message));
  }

  async outboxPut(entry: OutboxEntry): Promise<void> {
    this.#outbox.set(entry.id, structuredClone(entry));
  }

  async outboxGet(id: string): Promise<OutboxEntry | undefined> {
    const entry = this.#outbox.get(id);
    return entry ? structuredClone(entry) : undefined;
  }

  async outboxList(): Promise<OutboxEntry[]> {
    return [...this.#outbox.values()].map((entry) => structuredClone(entry));
  }

  async outboxDelete(id: string): Promise<void> {
    this.#outbox.delete(id);
  }

  async getConversation(conv: string): Promise<ConversationRecord | undefined> {
    const record = this.#conversations.get(conv);
    return record ? structuredClone(record) : undefined;
  }

  async putConversation(record: ConversationRecord): Promise<void> {
    this.#conversations.set(record.conv, structuredClone(record));
  }

  async listConversations(): Promise<ConversationRecord[]> {
    return [...this.#conversations.values()]
      .sort((a, b) => (a.conv < b.conv ? -1 : a.conv > b.conv ? 1 : 0))
      .map((record) => structuredClone(record));
  }

  async getMeta(key: string): Promise<string | undefined> {
    return this.#meta.get(key);
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.#meta.set(key, value);
  }

  async clear(): Promise<void> {
    this.#messages.clear();
    this.#outbox.clear();
    this.#conversations.clear();
    this.#meta.clear();
  }

  async close(): Promise<void> {
    await this.clear();
  }
}
