/**
 * The client's in-memory view of every conversation — sync cursor, receipt marks, fan-out
 * topic — mirrored from the LocalStore, plus one sequencer per conversation. Synchronous
 * reads (conversationState) come from here; every change is written back to the store.
 */

import type { ChatMessage, ConversationSummary } from './protocol.ts';
import { ConversationSequencer } from './sequencer.ts';
import { emptyConversationRecord, type ConversationRecord, type LocalStore, type MemberReceipts } from './store/types.ts';

/** What `conversationState(conv)` returns. */
export interface ConversationState {
  conv: string;
  kind?: ConversationRecord['kind'];
  name?: string | null;
  /** `group/{conv}` when the conversation uses fan-out on read. */
  topic?: string | null;
  /** Highest seq known to exist. */
  last_seq: number;
  /** Every seq up to this one is held locally (or known not to be for this member). */
  synced_seq: number;
  /** This user's read mark. */
  read_seq: number;
  /** `last_seq - read_seq`, the server's definition (DESIGN section 5). */
  unread: number;
  /** Delivered and read marks of the other members. */
  members: Record<string, MemberReceipts>;
}

/** How an entry reached this device. */
export type MessageSource = 'live' | 'sync' | 'history';

/** An entry waiting in a sequencer, with how it arrived. */
export interface Arrival {
  seq: number;
  message: ChatMessage;
  source: MessageSource;
}

export interface ConversationBookOptions {
  /**
   * How far back a conversation first seen on this device is synced; older messages come
   * through history(). Keeps a new device from downloading years of chat at login.
   */
  initialSyncWindow: number;
  maxBuffered: number;
}

export class ConversationBook {
  readonly #records = new Map<string, ConversationRecord>();
  readonly #sequencers = new Map<string, ConversationSequencer<Arrival>>();

  constructor(
    private readonly store: LocalStore,
    private readonly options: ConversationBookOptions,
  ) {}

  async load(): Promise<void> {
    for (const record of await this.store.listConversations()) this.#records.set(record.conv, record);
  }

  get(conv: string): ConversationRecord | undefined {
    return this.#records.get(conv);
  }

  all(): ConversationRecord[] {
    return [...this.#records.values()];
  }

  /**
   * The record of `conv`, created when first seen. `seenSeq` is the seq that revealed the
   * conversation (a live message, or the server's last_seq); the cursor starts
   * `initialSyncWindow` below it.
   */
  ensure(conv: string, seenSeq: number): ConversationRecord {
    let record = this.#records.get(conv);
    if (!record) {
      record = emptyConversationRecord(conv);
      record.synced_seq = Math.max(0, seenSeq - this.options.initialSyncWindow);
      record.last_seq = record.synced_seq;
      this.#records.set(conv, record);
    }
    return record;
  }

  sequencer(conv: string): ConversationSequencer<Arrival> {
    let sequencer = this.#sequencers.get(conv);
    if (!sequencer) {
      const record = this.ensure(conv, 0);
      sequencer = new ConversationSequencer<Arrival>(record.synced_seq, this.options.maxBuffered);
      this.#sequencers.set(conv, sequencer);
    }
    return sequencer;
  }

  /** Sync cursors of every known conversation, for the `sync` RPC. */
  cursors(): Record<string, number> {
    const cursors: Record<string, number> = {};
    for (const record of this.#records.values()) cursors[record.conv] = record.synced_seq;
    return cursors;
  }

  /** Topics of the conversations that use fan-out on read. */
  groupTopics(): string[] {
    return this.all()
      .map((record) => record.topic)
      .filter((topic): topic is string => typeof topic === 'string' && topic.length > 0);
  }

  /**
   * Merges a `conversations` RPC entry; returns the record. With `describe` false the
   * answer is older than conversation events applied meanwhile, so name, kind and topic
   * stay as those events left them; cursors and read marks only ever rise.
   */
  mergeSummary(summary: ConversationSummary, describe = true): ConversationRecord {
    const record = this.ensure(summary.conv, summary.last_seq);
    if (describe) {
      record.kind = summary.kind;
      if (summary.name !== undefined) record.name = summary.name;
      record.topic = summary.topic ?? null;
    }
    record.last_seq = Math.max(record.last_seq, summary.last_seq);
    record.read_seq = Math.max(record.read_seq, summary.read_seq);
    record.read_sent = Math.max(record.read_sent, summary.read_seq);
    return record;
  }

  async persist(conv: string): Promise<void> {
    const record = this.#records.get(conv);
    if (record) await this.store.putConversation(record);
  }

  state(conv: string): ConversationState | undefined {
    const record = this.#records.get(conv);
    if (!record) return undefined;
    const state: ConversationState = {
      conv: record.conv,
      last_seq: record.last_seq,
      synced_seq: record.synced_seq,
      read_seq: record.read_seq,
      unread: Math.max(0, record.last_seq - record.read_seq),
      members: structuredClone(record.members),
    };
    if (record.kind !== undefined) state.kind = record.kind;
    if (record.name !== undefined) state.name = record.name;
    if (record.topic !== undefined) state.topic = record.topic;
    return state;
  }

  /** Forgets everything in memory (the store was cleared). */
  reset(): void {
    this.#records.clear();
    this.#sequencers.clear();
  }
}
