/**
 * What the screens show, as pure functions of SDK data: receipt ticks, presence lines,
 * previews, descriptions of conversation events, who may post. No DOM and no I/O here, so
 * test/web/model.test.ts checks them in Node.
 */
// From the SDK's source rather than '@mqtt-chat/client': this file is also type-checked by
// the root tsconfig (through test/web/model.test.ts), where the package name resolves to
// client-lib/dist, which a fresh clone has not built.
import type { ChatMessage, MemberReceipts, MemberRole, MessageView } from '../../client-lib/src/index.ts';

/** The ticks of one of our messages: ✓ sent (stored), ✓✓ delivered, blue ✓✓ read; 🕓 still in the outbox. */
export type TickStatus = 'pending' | 'sent' | 'delivered' | 'read';

/**
 * Status of our message `seq` given the receipt marks of the other members (cumulative,
 * DESIGN section 4). Delivered / read when every other member is past it, as WhatsApp
 * shows it in groups. `others` unknown (group info not loaded yet): sent.
 */
export function tickStatus(seq: number, others: readonly string[] | undefined, marks: Record<string, MemberReceipts>): Exclude<TickStatus, 'pending'> {
  if (!others || others.length === 0) return 'sent';
  const all = (pick: (m: MemberReceipts) => number) => others.every((user) => pick(marks[user] ?? { delivered: 0, read: 0 }) >= seq);
  if (all((m) => m.read)) return 'read';
  if (all((m) => Math.max(m.delivered, m.read))) return 'delivered';
  return 'sent';
}

export const TICK_TEXT: Record<TickStatus, { symbol: string; label: string }> = {
  pending: { symbol: '🕓', label: 'Waiting to send' },
  sent: { symbol: '✓', label: 'Sent' },
  delivered: { symbol: '✓✓', label: 'Delivered' },
  read: { symbol: '✓✓', label: 'Read' },
};

function sameDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** "14:03", "yesterday", "3 Jan" — the time column of the conversation list. */
export function shortTime(ts: number, now: number, locale?: string): string {
  const date = new Date(ts);
  const today = new Date(now);
  if (sameDay(date, today)) return date.toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' });
  const yesterday = new Date(now - 86_400_000);
  if (sameDay(date, yesterday)) return 'yesterday';
  return date.toLocaleDateString(locale, { day: 'numeric', month: 'short' });
}

export function clockTime(ts: number, locale?: string): string {
  return new Date(ts).toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' });
}

/** The presence line under a 1:1 chat's title. */
export function presenceLine(presence: { state: 'online' | 'offline'; last_seen?: number | null } | undefined, now: number, locale?: string): string {
  if (!presence) return '';
  if (presence.state === 'online') return 'online';
  if (!presence.last_seen) return 'offline';
  const date = new Date(presence.last_seen);
  const time = clockTime(presence.last_seen, locale);
  if (sameDay(date, new Date(now))) return `last seen today at ${time}`;
  if (sameDay(date, new Date(now - 86_400_000))) return `last seen yesterday at ${time}`;
  return `last seen ${date.toLocaleDateString(locale, { day: 'numeric', month: 'short' })} at ${time}`;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A conversation event (an entry with `kind: "conv"`) as one line of text. */
export function describeConvEvent(message: Pick<ChatMessage, 'body' | 'from'>, me: string): string {
  const body = message.body;
  const name = (user: string | undefined) => (user === undefined ? 'someone' : user === me ? 'you' : user);
  const cap = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);
  const by = name(str(body.by) ?? (message.from || undefined));
  const user = name(str(body.user));
  switch (body.event) {
    case 'created':
      return cap(`${by} created ${body.kind === 'channel' ? 'the channel' : 'the group'} “${str(body.name) ?? ''}”`);
    case 'member_added':
      return cap(`${by} added ${user}`);
    case 'member_removed':
      return cap(`${by} removed ${user}`);
    case 'member_left':
      return cap(`${user} left`);
    case 'role_changed':
      return cap(`${by} made ${user} ${body.role === 'admin' ? 'an admin' : body.role === 'owner' ? 'an owner' : 'a member'}`);
    case 'settings_changed':
      if (typeof body.announce_only === 'boolean') return cap(`${by} ${body.announce_only ? 'allowed only admins to post' : 'allowed everyone to post'}`);
      if (typeof body.name === 'string') return cap(`${by} renamed the conversation to “${body.name}”`);
      return cap(`${by} changed the settings`);
    case 'fanout_changed':
      return 'The group grew large: messages now go through the group topic';
    default:
      return String(body.event ?? 'event');
  }
}

/** The second line of a conversation in the list. */
export function previewText(view: MessageView | undefined, me: string, isGroup: boolean, mediaLabel = '📷 Photo'): string {
  if (!view) return '';
  if (view.kind === 'conv') return describeConvEvent(view, me);
  let text: string;
  if (view.deleted) text = '🚫 Message deleted';
  else if (view.media?.length) text = view.text ? `${mediaLabel} ${view.text}` : mediaLabel;
  else text = view.text ?? '';
  const who = view.from === me ? 'You: ' : isGroup ? `${view.from}: ` : '';
  return `${who}${text}`.replace(/\s+/g, ' ').trim();
}

/** May `role` post in a conversation of this kind? (the server refuses members of announce-only groups and channels) */
export function canPost(kind: string | undefined, announceOnly: boolean, role: MemberRole | undefined): boolean {
  if (kind !== 'group' && kind !== 'channel') return true;
  if (!role) return false;
  if (kind === 'channel' || announceOnly) return role === 'owner' || role === 'admin';
  return true;
}

/** Roles this member may give `target` (DESIGN section 4: owners grant or take ownership, admins the rest). */
export function assignableRoles(myRole: MemberRole | undefined, targetRole: MemberRole): MemberRole[] {
  if (myRole === 'owner') return ['owner', 'admin', 'member'];
  if (myRole === 'admin' && targetRole !== 'owner') return ['admin', 'member'];
  return [];
}

/** May `myRole` remove a member whose role is `targetRole`? */
export function canRemove(myRole: MemberRole | undefined, targetRole: MemberRole): boolean {
  if (myRole === 'owner') return true;
  return myRole === 'admin' && targetRole === 'member';
}

export const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** "bob, carol dave" -> valid ids (deduplicated, without `me`) and the invalid ones. */
export function parseUserList(text: string, me?: string): { users: string[]; invalid: string[] } {
  const users: string[] = [];
  const invalid: string[] = [];
  for (const word of text.split(/[\s,;]+/)) {
    const user = word.trim().replace(/^@/, '');
    if (!user) continue;
    if (!USER_ID.test(user)) invalid.push(user);
    else if (user !== me && !users.includes(user)) users.push(user);
  }
  return { users, invalid };
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function isImage(contentType: string | undefined): boolean {
  return typeof contentType === 'string' && /^image\/(png|jpeg|gif|webp|avif)$/.test(contentType);
}
