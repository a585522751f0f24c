/**
 * LocalStore: what the SDK keeps on the device so that it survives an app restart — the
 * messages of each conversation (by seq), the outbox of unacknowledged sends, and the
 * per-conversation sync cursor and receipt state.
 *
 * One interface, one contract suite (client-lib/test/store/contract.ts), three
 * implementations: memory (the default), SQLite (Node, better-sqlite3) and IndexedDB
 * (browsers). The semantics below are what the contract suite checks; an implementation
 * that differs is a bug in that implementation.
 *
 * General rules:
 * - Every method is async and may be called concurrently; each call is atomic.
 * - Values going in and out are copies: mutating an argument after the call or a result
 *   after it resolved never changes what is stored.
 * - A missing record resolves to `undefined` (never rejects).
 */

import type { ChatMessage, ConversationKind, JsonObject } from '../protocol.ts';

/** A message as stored: exactly the server's `msg` shape without `type`. */
export type StoredMessage = ChatMessage;

/** A send that has not been acknowledged yet. Resent with the same `id` until acked. */
export interface OutboxEntry {
  /** Client-chosen message id, unique per sender: the server's deduplication key. */
  id: string;
  conv?: string;
  to?: string;
  body: JsonObject;
  reply_to?: number;
  media?: string[];
  /** When send() was called (Unix ms). */
  created_at: number;
}

/** Receipt marks of one member (cumulative: read at 42 means every seq <= 42). */
export interface MemberReceipts {
  delivered: number;
  read: number;
}

export interface ConversationRecord {
  conv: string;
  kind?: ConversationKind;
  name?: string | null;
  /** `group/{conv}` when the conversation uses fan-out on read; null/absent otherwise. */
  topic?: string | null;
  /**
   * The sync cursor: every seq <= synced_seq is settled locally (stored, or known not to
   * be for this member). `sync` asks for what follows it.
   */
  synced_seq: number;
  /** Highest seq known to exist (from messages, events or the `conversations` RPC). */
  last_seq: number;
  /** This user's read mark. */
  read_seq: number;
  /** Highest `read` receipt published to the server. */
  read_sent: number;
  /** Highest `delivered` receipt published to the server. */
  delivered_sent: number;
  /** Receipt marks of the other members, by user id. */
  members: Record<string, MemberReceipts>;
}

export interface MessagePageQuery {
  /** Only seqs strictly below this one. */
  before?: number;
  /** Only seqs strictly above this one. */
  after?: number;
  /** Maximum number of messages; default 50. */
  limit?: number;
}

export interface SearchQuery {
  /** Restrict to one conversation. */
  conv?: string;
  /** Maximum number of results; default 50. */
  limit?: number;
}

export interface LocalStore {
  /** Implementation name, for logs ("memory", "sqlite", "indexeddb"). */
  readonly kind: string;

  /**
   * Stores messages keyed by (conv, seq). A (conv, seq) already stored is left unchanged
   * (messages are append-only; the first write wins). Resolves to the messages that were
   * new, in input order — the caller's duplicate check.
   */
  putMessages(messages: readonly StoredMessage[]): Promise<StoredMessage[]>;

  getMessage(conv: string, seq: number): Promise<StoredMessage | undefined>;

  /**
   * One page of a conversation, always in ascending seq order.
   * With `after`: the oldest `limit` messages with seq > after (and < before, if given).
   * Otherwise: the newest `limit` messages with seq < before (all seqs without `before`).
   */
  listMessages(conv: string, query?: MessagePageQuery): Promise<StoredMessage[]>;

  /**
   * Full-text search over the text of stored messages (`body.text`, and the new text of
   * edits `body.edit.text`). Matching ignores case and diacritics; every word of the query
   * must match the beginning of a word of the message ("hel wor" finds "Hello, World").
   * A query without any word finds nothing. Results are newest first: ts descending, then
   * conv ascending, then seq descending.
   */
  searchMessages(query: string, options?: SearchQuery): Promise<StoredMessage[]>;

  /** Inserts or replaces by `id`. A replaced entry keeps its place in the order. */
  outboxPut(entry: OutboxEntry): Promise<void>;
  outboxGet(id: string): Promise<OutboxEntry | undefined>;
  /** All entries in the order they were first put. */
  outboxList(): Promise<OutboxEntry[]>;
  /** Removes the entry; removing a missing id is not an error. */
  outboxDelete(id: string): Promise<void>;

  getConversation(conv: string): Promise<ConversationRecord | undefined>;
  /** Inserts or replaces by `conv`. */
  putConversation(record: ConversationRecord): Promise<void>;
  /** All conversation records, ordered by `conv`. */
  listConversations(): Promise<ConversationRecord[]>;

  /** Small string values the client keeps between runs (e.g. which account owns the store). */
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;

  /** Removes everything (log out). The store stays usable. */
  clear(): Promise<void>;
  /** Releases resources. No method may be called afterwards. */
  close(): Promise<void>;
}

export const DEFAULT_PAGE_LIMIT = 50;

/** A fresh conversation record with nothing settled yet. */
export function emptyConversationRecord(conv: string): ConversationRecord {
  return { conv, synced_seq: 0, last_seq: 0, read_seq: 0, read_sent: 0, delivered_sent: 0, members: {} };
}
