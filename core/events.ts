/** Server events of DESIGN section 4, built from stored rows. */
import type { MessageRow } from './store.ts';

export function messageEvent(m: MessageRow): Record<string, unknown> {
  if (m.kind === 'conv') {
    return { type: 'conv', conv: m.conv, seq: m.seq, ts: m.ts, ...m.body };
  }
  const e: Record<string, unknown> = { type: 'msg', conv: m.conv, seq: m.seq, id: m.client_id, from: m.sender, ts: m.ts, body: m.body };
  if (m.reply_to !== null) e.reply_to = m.reply_to;
  if (m.media !== null) e.media = m.media;
  return e;
}

export const inboxTopic = (user: string) => `chat/${user}/in`;
export const deviceTopic = (user: string, device: string) => `chat/${user}/${device}/in`;
export const presenceTopic = (user: string) => `presence/${user}`;
