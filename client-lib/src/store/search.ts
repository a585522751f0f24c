/**
 * Text normalisation shared by every LocalStore, so that all of them find the same
 * messages for the same query (one contract, one tokenizer).
 */

import type { JsonObject } from '../protocol.ts';
import type { StoredMessage } from './types.ts';

/** Lower case, compatibility forms folded, diacritics removed ("Ångström" -> "angstrom"). */
export function normalizeText(text: string): string {
  return text.normalize('NFKD').replace(/\p{M}+/gu, '').toLowerCase();
}

/** Words: runs of letters and digits after normalisation. */
export function tokenize(text: string): string[] {
  return normalizeText(text).match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** The searchable text of a message body: its text, or the new text of an edit. */
export function searchableText(body: JsonObject): string {
  const parts: string[] = [];
  if (typeof body.text === 'string') parts.push(body.text);
  const edit = body.edit;
  if (typeof edit === 'object' && edit !== null && !Array.isArray(edit) && typeof edit.text === 'string') {
    parts.push(edit.text);
  }
  return parts.join('\n');
}

/** Distinct words of a message, for an index. */
export function messageTokens(message: StoredMessage): string[] {
  return [...new Set(tokenize(searchableText(message.body)))];
}

/** Every query word is a prefix of some message word. */
export function matchesQuery(messageWords: readonly string[], queryWords: readonly string[]): boolean {
  return queryWords.length > 0 && queryWords.every((q) => messageWords.some((word) => word.startsWith(q)));
}

/** The order of search results: newest first (ts desc, conv asc, seq desc). */
export function compareSearchResults(a: StoredMessage, b: StoredMessage): number {
  if (a.ts !== b.ts) return b.ts - a.ts;
  if (a.conv !== b.conv) return a.conv < b.conv ? -1 : 1;
  return b.seq - a.seq;
}
