/**
 * Edits, deletions and reactions are messages of their own (append-only store, DESIGN
 * section 6). Their bodies:
 *   {"edit":{"seq":N,"text":"..."}}   {"delete":{"seq":N}}   {"react":{"seq":N,"emoji":"👍"}}
 * A reply is an ordinary message with `reply_to`.
 *
 * `foldMessages` turns a run of stored messages into what a chat screen shows: one entry
 * per ordinary message with its latest text, deletion flag and reactions. Pure function.
 */

import type { ChatMessage, JsonObject, JsonValue } from './protocol.ts';

export type MessageAction =
  | { kind: 'edit'; seq: number; text: string }
  | { kind: 'delete'; seq: number }
  | { kind: 'react'; seq: number; emoji: string };

function asObject(value: JsonValue | undefined): JsonObject | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
}

function asSeq(value: JsonValue | undefined): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

/** The action a message body carries, or undefined for an ordinary message. */
export function messageAction(body: JsonObject): MessageAction | undefined {
  const edit = asObject(body.edit);
  if (edit && asSeq(edit.seq) !== undefined && typeof edit.text === 'string') {
    return { kind: 'edit', seq: asSeq(edit.seq)!, text: edit.text };
  }
  const del = asObject(body.delete);
  if (del && asSeq(del.seq) !== undefined) return { kind: 'delete', seq: asSeq(del.seq)! };
  const react = asObject(body.react);
  if (react && asSeq(react.seq) !== undefined && typeof react.emoji === 'string') {
    return { kind: 'react', seq: asSeq(react.seq)!, emoji: react.emoji };
  }
  return undefined;
}

export interface MessageView extends ChatMessage {
  /** Latest text after edits (`body.text` when never edited). */
  text: string | undefined;
  /** Seq of the last edit applied. */
  edited_seq?: number;
  /** Deleted for everyone: `text` is undefined and `body` is `{}`. */
  deleted: boolean;
  /** emoji -> users, each user counted once (their latest reaction wins; "" removes it). */
  reactions: Record<string, string[]>;
}

/**
 * Folds messages (any order, any subset of one conversation) into views in seq order.
 * Only the author's own edits and deletions apply; an action whose target is not in the
 * input is ignored. Each user has at most one reaction per message.
 */
export function foldMessages(messages: readonly ChatMessage[]): MessageView[] {
  const ordered = [...messages].sort((a, b) => a.seq - b.seq);
  const views = new Map<number, MessageView>();
  const reactionByUser = new Map<number, Map<string, string>>();
  for (const message of ordered) {
    const action = messageAction(message.body);
    if (!action) {
      const text = typeof message.body.text === 'string' ? message.body.text : undefined;
      views.set(message.seq, { ...message, text, deleted: false, reactions: {} });
      continue;
    }
    const target = views.get(action.seq);
    if (!target) continue;
    if (action.kind === 'edit' && message.from === target.from && !target.deleted) {
      target.text = action.text;
      target.edited_seq = message.seq;
    } else if (action.kind === 'delete' && message.from === target.from) {
      target.deleted = true;
      target.text = undefined;
      target.body = {};
    } else if (action.kind === 'react') {
      let byUser = reactionByUser.get(target.seq);
      if (!byUser) {
        byUser = new Map();
        reactionByUser.set(target.seq, byUser);
      }
      byUser.set(message.from, action.emoji);
    }
  }
  for (const [seq, byUser] of reactionByUser) {
    const view = views.get(seq)!;
    for (const [user, emoji] of byUser) {
      if (emoji === '') continue;
      (view.reactions[emoji] ??= []).push(user);
    }
  }
  return [...views.values()];
}
