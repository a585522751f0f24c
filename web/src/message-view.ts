/**
 * One line of the chat: a message bubble (text, reply quote, image, reactions, time,
 * ticks), a pending send from the outbox, or a conversation event. Built as a fresh <li>;
 * the chat view keeps one per key and rebuilds it only when its signature changes.
 * Buttons carry `data-action`: the chat view handles clicks by delegation.
 */
import type { MessageView, OutboxEntry } from '@mqtt-chat/client';
import { h, type Child } from './dom.ts';
import type { MediaLibrary, MediaState } from './media.ts';
import { TICK_TEXT, clockTime, describeConvEvent, formatBytes, isImage, type TickStatus } from './model.ts';

export type ChatItem =
  | { type: 'message'; view: MessageView; status?: TickStatus }
  | { type: 'event'; view: MessageView }
  | { type: 'pending'; entry: OutboxEntry };

export interface ItemContext {
  me: string;
  isGroup: boolean;
  /** The quoted message of a reply, when loaded. */
  quote(seq: number): MessageView | undefined;
  media: MediaLibrary;
}

export function itemKey(item: ChatItem): string {
  return item.type === 'pending' ? `p:${item.entry.id}` : `s:${item.view.seq}`;
}

function mediaSignature(ids: readonly string[] | undefined, media: MediaLibrary): unknown {
  return (ids ?? []).map((id) => {
    const state = media.get(id);
    return [id, state?.status, state?.status === 'ready' ? state.url : undefined, state?.record?.thumbnail ? 1 : 0];
  });
}

/** Everything the rendering depends on: equal signatures render equal elements. */
export function itemSignature(item: ChatItem, ctx: ItemContext): string {
  if (item.type === 'pending') return JSON.stringify([item.entry.body, item.entry.reply_to, item.entry.media]);
  const v = item.view;
  const quoted = v.reply_to !== undefined ? ctx.quote(v.reply_to) : undefined;
  return JSON.stringify([
    item.type,
    v.text,
    v.deleted,
    v.edited_seq,
    v.reactions,
    item.type === 'message' ? item.status : undefined,
    quoted ? [quoted.from, quoted.text, quoted.deleted] : undefined,
    mediaSignature(v.media, ctx.media),
  ]);
}

function ticks(status: TickStatus): HTMLElement {
  const tick = TICK_TEXT[status];
  return h('span', { class: `ticks ticks-${status}`, role: 'img', 'aria-label': tick.label, title: tick.label }, tick.symbol);
}

function mediaBlock(id: string, state: MediaState | undefined, from: string, media: MediaLibrary): Child {
  media.want(id);
  const record = state?.record;
  if (record && !isImage(record.content_type)) {
    return h(
      'div',
      { class: 'attachment' },
      h('span', { 'aria-hidden': 'true' }, '📎 '),
      h('button', { type: 'button', class: 'link', data: { action: 'download', media: id } }, `Download ${record.content_type} (${formatBytes(record.size)})`),
    );
  }
  const alt = `Photo from ${from}`;
  if (state?.status === 'ready' && state.url) return h('figure', { class: 'photo' }, h('img', { src: state.url, alt, data: { media: id, full: 'true' } }));
  const note =
    state?.status === 'restoring'
      ? `Restoring the photo from the archive… (retry in ${state.retryAfter} s)`
      : state?.status === 'error'
        ? `Photo unavailable: ${state.message}`
        : 'Loading photo…';
  return h(
    'figure',
    { class: 'photo loading' },
    record?.thumbnail ? h('img', { src: record.thumbnail, alt: `${alt} (preview)`, class: 'thumb', data: { media: id } }) : null,
    h('figcaption', { class: 'media-note' }, note),
  );
}

export function renderItem(item: ChatItem, ctx: ItemContext): HTMLLIElement {
  if (item.type === 'event') {
    return h('li', { class: 'event', tabindex: -1, data: { seq: item.view.seq } }, h('span', null, describeConvEvent(item.view, ctx.me)));
  }
  if (item.type === 'pending') {
    const entry = item.entry;
    const text = typeof entry.body.text === 'string' ? entry.body.text : '';
    return h(
      'li',
      { class: 'msg own pending', tabindex: -1, data: { status: 'pending', id: entry.id } },
      h(
        'div',
        { class: 'bubble' },
        h('span', { class: 'sr-only' }, 'You: '),
        entry.media?.length ? h('p', { class: 'media-note' }, `📎 ${entry.media.length === 1 ? 'Attachment' : `${entry.media.length} attachments`}`) : null,
        text ? h('p', { class: 'text' }, text) : null,
        h('div', { class: 'meta' }, h('time', { datetime: new Date(entry.created_at).toISOString() }, clockTime(entry.created_at)), ticks('pending')),
      ),
    );
  }
  const v = item.view;
  const own = v.from === ctx.me;
  const quoted = v.reply_to !== undefined ? ctx.quote(v.reply_to) : undefined;
  const reactions = Object.entries(v.reactions);
  const sender = own ? 'You' : v.from;
  return h(
    'li',
    { class: `msg ${own ? 'own' : 'theirs'}${v.deleted ? ' deleted' : ''}`, tabindex: -1, data: { seq: v.seq, status: item.status, from: v.from } },
    h(
      'div',
      { class: 'bubble' },
      ctx.isGroup && !own ? h('span', { class: 'sender' }, v.from) : h('span', { class: 'sr-only' }, `${sender}: `),
      v.reply_to !== undefined
        ? h(
            'blockquote',
            { class: 'quote' },
            h('span', { class: 'sr-only' }, 'In reply to '),
            quoted ? `${quoted.from === ctx.me ? 'You' : quoted.from}: ${quoted.deleted ? 'deleted message' : (quoted.text ?? (quoted.media?.length ? '📷 Photo' : ''))}` : 'an earlier message',
          )
        : null,
      v.deleted ? null : (v.media ?? []).map((id) => mediaBlock(id, ctx.media.get(id), v.from, ctx.media)),
      v.deleted ? h('p', { class: 'text deleted-note' }, '🚫 This message was deleted') : v.text ? h('p', { class: 'text' }, v.text) : null,
      h(
        'div',
        { class: 'meta' },
        v.edited_seq !== undefined && !v.deleted ? h('span', { class: 'edited' }, 'edited') : null,
        h('time', { datetime: new Date(v.ts).toISOString() }, clockTime(v.ts)),
        own && item.status ? ticks(item.status) : null,
      ),
      reactions.length
        ? h(
            'ul',
            { class: 'reactions', 'aria-label': 'Reactions' },
            reactions.map(([emoji, users]) =>
              h(
                'li',
                null,
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'reaction',
                    'aria-pressed': users.includes(ctx.me) ? 'true' : 'false',
                    'aria-label': `${emoji} ${users.length}: ${users.join(', ')}`,
                    title: users.join(', '),
                    data: { action: 'toggle-reaction', emoji },
                  },
                  `${emoji} ${users.length}`,
                ),
              ),
            ),
          )
        : null,
    ),
    v.deleted
      ? null
      : h('button', { type: 'button', class: 'msg-actions', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-label': `Actions for message from ${sender}`, data: { action: 'menu' } }, '⋯'),
  );
}

export const QUICK_REACTIONS = ['👍', '❤️', '😂', '😮', '🙏'];

/** The actions menu of message `view`. */
export function renderMenu(view: MessageView, me: string, canSend: boolean): HTMLElement {
  const own = view.from === me;
  const item = (label: string, action: string, extra: Record<string, string> = {}, ariaLabel?: string) =>
    h('button', { type: 'button', role: 'menuitem', tabindex: -1, 'aria-label': ariaLabel, data: { action, ...extra } }, label);
  return h(
    'div',
    { class: 'menu', role: 'menu', 'aria-label': 'Message actions' },
    canSend ? item('Reply', 'reply') : null,
    canSend ? h('div', { class: 'menu-reactions', role: 'group', 'aria-label': 'React' }, QUICK_REACTIONS.map((emoji) => item(emoji, 'react', { emoji }, `React ${emoji}`))) : null,
    own && canSend && !view.media?.length ? item('Edit', 'edit') : null,
    own && canSend ? item('Delete for everyone', 'delete') : null,
    item('Copy text', 'copy'),
  );
}
