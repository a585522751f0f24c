/**
 * The chat screen: conversation list, chat view, composer, offline banner, dialogs. All
 * chat state comes from the SDK (`@mqtt-chat/client`): the ChatClient with its IndexedDB
 * store does the protocol, the outbox, ordering, receipts, presence and typing; this file
 * only turns its events into DOM.
 *
 * Rendering: events mark the screen dirty and one render runs per macrotask. The message
 * list is keyed (one <li> per seq or outbox id) and an <li> is rebuilt only when what it
 * shows changed, so focus, open menus and scroll position survive incoming events.
 */
import {
  ChatError,
  foldMessages,
  messageAction,
  type ChatClient,
  type ChatEvents,
  type ChatMessage,
  type ConversationEvent,
  type ConversationKind,
  type ConversationState,
  type GroupInfo,
  type JsonObject,
  type LocalStore,
  type MessageView,
  type OutboxEntry,
  type ReceivedMessage,
} from '@mqtt-chat/client';
import { h, setChildren } from './dom.ts';
import { groupInfoDialog, newChatDialog, newGroupDialog } from './dialogs.ts';
import { MediaLibrary, uploadFile, type UploadProgress } from './media.ts';
import { itemKey, itemSignature, renderItem, renderMenu, type ChatItem, type ItemContext } from './message-view.ts';
import { canPost, presenceLine, previewText, shortTime, tickStatus, type TickStatus } from './model.ts';
import type { Session } from './session.ts';

interface ConvEntry {
  conv: string;
  kind?: ConversationKind;
  name?: string | null;
  peer?: string;
  memberCount?: number;
  /** The newest few entries, for the preview line. */
  recent: ChatMessage[];
  lastTs: number;
}

type Target = { conv: string } | { to: string };

interface Upload {
  id: number;
  conv: string;
  name: string;
  progress: UploadProgress;
  abort: AbortController;
}

const PAGE = 50;
const RECENT = 20;

export interface ChatAppOptions {
  root: HTMLElement;
  session: Session;
  client: ChatClient;
  store: LocalStore;
  /** The user pressed "Log out". */
  onSignOut: () => void;
  /** The server refused our credentials even after a refresh. */
  onSessionEnded: (message: string) => void;
}

export class ChatApp {
  readonly #o: ChatAppOptions;
  readonly #client: ChatClient;
  readonly #me: string;
  readonly #media: MediaLibrary;
  readonly #convs = new Map<string, ConvEntry>();
  /** Loaded messages of conversations that were opened, by seq. */
  readonly #loaded = new Map<string, Map<number, ChatMessage>>();
  /** Conversations whose history the server says is complete. */
  readonly #exhausted = new Set<string>();
  readonly #groupInfo = new Map<string, GroupInfo>();
  readonly #gone = new Set<string>();
  readonly #watchedPresence = new Set<string>();
  /** `conv\0user`: typists whose message arrived since their last typing change. */
  readonly #hushedTyping = new Set<string>();
  readonly #uploads = new Map<number, Upload>();
  #uploadSeq = 0;
  #target: Target | undefined;
  #replyTo: number | undefined;
  #editing: number | undefined;
  #loadingOlder = false;
  #openMenu: { key: string; seq: number } | undefined;
  #groupDialog: ((info: GroupInfo) => void) | undefined;
  #renderQueued = false;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #toastTimer: ReturnType<typeof setTimeout> | undefined;
  #clockTimer: ReturnType<typeof setInterval> | undefined;
  #started = false;
  #disposed = false;
  readonly #rendered = new Map<string, { li: HTMLLIElement; signature: string }>();
  readonly #cleanup: (() => void)[] = [];

  // Elements
  readonly #shell: HTMLElement;
  readonly #connection: HTMLElement;
  readonly #banner: HTMLElement;
  readonly #convList: HTMLUListElement;
  readonly #chat: HTMLElement;
  readonly #chatTitle: HTMLElement;
  readonly #chatSubtitle: HTMLElement;
  readonly #infoButton: HTMLButtonElement;
  readonly #scroller: HTMLElement;
  readonly #olderButton: HTMLButtonElement;
  readonly #messages: HTMLOListElement;
  readonly #typingLine: HTMLElement;
  readonly #composer: HTMLFormElement;
  readonly #context: HTMLElement;
  readonly #contextText: HTMLElement;
  readonly #uploadsEl: HTMLElement;
  readonly #input: HTMLTextAreaElement;
  readonly #fileInput: HTMLInputElement;
  readonly #sendButton: HTMLButtonElement;
  readonly #notice: HTMLElement;
  readonly #announcer: HTMLElement;
  readonly #toast: HTMLElement;

  constructor(options: ChatAppOptions) {
    this.#o = options;
    this.#client = options.client;
    this.#me = options.client.user;
    this.#media = new MediaLibrary(options.session, () => this.#schedule());

    this.#connection = h('span', { class: 'connection', data: { state: 'connecting' } }, 'Connecting…');
    this.#banner = h('section', { class: 'banner', 'aria-label': 'Connection', hidden: true });
    this.#convList = h('ul', { class: 'conv-list', 'aria-labelledby': 'conv-heading' });
    this.#chatTitle = h('h2', { id: 'chat-title' });
    this.#chatSubtitle = h('p', { class: 'subtitle', id: 'chat-subtitle' });
    this.#infoButton = h('button', { type: 'button', class: 'info-button', hidden: true, on: { click: () => this.#openGroupInfo() } }, 'Group info');
    this.#olderButton = h('button', { type: 'button', class: 'load-older link', hidden: true, on: { click: () => void this.#loadOlder() } }, 'Load older messages');
    this.#messages = h('ol', { class: 'messages', 'aria-labelledby': 'chat-title', on: { click: (e) => this.#onMessageClick(e), keydown: (e) => this.#onMessageKey(e as KeyboardEvent) } });
    this.#scroller = h('div', { class: 'scroller', on: { scroll: () => this.#onScroll() } }, this.#olderButton, this.#messages);
    this.#typingLine = h('p', { class: 'typing', 'aria-live': 'polite' });
    this.#contextText = h('span', { class: 'context-text' });
    this.#context = h(
      'div',
      { class: 'context', hidden: true },
      this.#contextText,
      h('button', { type: 'button', class: 'icon', 'aria-label': 'Cancel', on: { click: () => this.#cancelContext() } }, '✕'),
    );
    this.#uploadsEl = h('div', { class: 'uploads' });
    this.#input = h('textarea', {
      id: 'composer-input',
      rows: 1,
      placeholder: 'Message',
      autocomplete: 'off',
      'aria-describedby': 'composer-notice',
      on: { keydown: (e) => this.#onComposerKey(e as KeyboardEvent), input: () => this.#onComposerInput() },
    });
    this.#fileInput = h('input', { type: 'file', class: 'sr-only', id: 'attach-input', on: { change: () => this.#onFilePicked() } });
    this.#sendButton = h('button', { type: 'submit', class: 'send primary' }, 'Send');
    this.#notice = h('p', { class: 'notice', id: 'composer-notice', hidden: true });
    this.#composer = h(
      'form',
      { class: 'composer', 'aria-label': 'Write a message', on: { submit: (e) => (e.preventDefault(), void this.#submit()) } },
      this.#context,
      this.#uploadsEl,
      this.#notice,
      h(
        'div',
        { class: 'composer-row' },
        h('label', { class: 'attach', for: 'attach-input', title: 'Attach a photo or file' }, h('span', { 'aria-hidden': 'true' }, '📎'), h('span', { class: 'sr-only' }, 'Attach a photo or file')),
        this.#fileInput,
        h('label', { for: 'composer-input', class: 'sr-only' }, 'Message'),
        this.#input,
        this.#sendButton,
      ),
    );
    this.#chat = h(
      'main',
      { class: 'chat', 'aria-labelledby': 'chat-title', id: 'chat' },
      h(
        'header',
        { class: 'chat-header' },
        h('button', { type: 'button', class: 'back icon', 'aria-label': 'Back to conversations', on: { click: () => this.#navigate(undefined) } }, '←'),
        h('div', { class: 'chat-heading' }, this.#chatTitle, this.#chatSubtitle),
        this.#infoButton,
      ),
      this.#scroller,
      this.#typingLine,
      this.#composer,
    );
    this.#announcer = h('div', { class: 'sr-only', role: 'log', 'aria-live': 'polite', 'aria-label': 'New messages' });
    this.#toast = h('div', { class: 'toast', role: 'alert', hidden: true });
    this.#shell = h(
      'div',
      { class: 'shell', data: { pane: 'list' } },
      h(
        'header',
        { class: 'topbar' },
        h('h1', null, 'Chat'),
        h('span', { class: 'me', title: `Signed in as ${this.#me} (device ${options.client.device})` }, this.#me),
        this.#connection,
        h('button', { type: 'button', class: 'small', on: { click: () => void this.#signOut() } }, 'Log out'),
      ),
      this.#banner,
      h(
        'div',
        { class: 'panes' },
        h(
          'nav',
          { class: 'sidebar', 'aria-labelledby': 'conv-heading' },
          h(
            'div',
            { class: 'sidebar-head' },
            h('h2', { id: 'conv-heading' }, 'Conversations'),
            h('div', { class: 'sidebar-actions' }, h('button', { type: 'button', on: { click: () => this.#newChat() } }, 'New chat'), h('button', { type: 'button', on: { click: () => this.#newGroup() } }, 'New group')),
          ),
          this.#convList,
          this.#emptyList,
        ),
        this.#chat,
      ),
      this.#announcer,
      this.#toast,
    );
    this.#convList.addEventListener('keydown', (e) => this.#onListKey(e));
  }

  // =====================================================================================
  // Lifecycle

  async start(): Promise<void> {
    const { root, store } = this.#o;
    setChildren(root, this.#shell);
    // What this device already has, before any network: conversations and their last lines.
    for (const record of await store.listConversations()) {
      const entry = this.#entry(record.conv);
      if (record.kind) entry.kind = record.kind;
      if (record.name !== undefined) entry.name = record.name;
      await this.#loadRecent(entry);
    }
    const on = <E extends keyof ChatEvents>(event: E, listener: (payload: ChatEvents[E]) => void) => {
      this.#client.on(event, listener);
      this.#cleanup.push(() => this.#client.off(event, listener));
    };
    on('message', (m) => this.#onMessage(m));
    on('conversation', (e) => void this.#onConversationEvent(e));
    on('ack', () => this.#schedule());
    on('receipt', (r) => r.conv === this.#currentConv() && this.#schedule());
    on('presence', () => this.#schedule());
    on('typing', (t) => {
      this.#hushedTyping.delete(`${t.conv}\u0000${t.user}`);
      if (t.conv === this.#currentConv()) this.#schedule();
    });
    on('state', (change) => this.#onState(change.to));
    on('error', (error) => this.#onClientError(error));

    const onHash = () => this.#route();
    const onVisible = () => this.#maybeMarkRead();
    window.addEventListener('hashchange', onHash);
    document.addEventListener('visibilitychange', onVisible);
    window.addEventListener('focus', onVisible);
    this.#cleanup.push(() => window.removeEventListener('hashchange', onHash));
    this.#cleanup.push(() => document.removeEventListener('visibilitychange', onVisible));
    this.#cleanup.push(() => window.removeEventListener('focus', onVisible));
    // "last seen 5 min ago" style lines and list times move on by themselves.
    this.#clockTimer = setInterval(() => this.#schedule(), 30_000);

    this.#started = true;
    this.#route();
    this.#schedule();
    this.#client.connect().catch((error: unknown) => {
      if (this.#disposed) return;
      if (error instanceof ChatError && error.code === 'forbidden') this.#o.onSessionEnded('Your session has ended. Please log in again.');
    });
  }

  /** Stops the client and releases everything; the page can then show another screen. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const fn of this.#cleanup.splice(0)) fn();
    if (this.#clockTimer) clearInterval(this.#clockTimer);
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    for (const upload of this.#uploads.values()) upload.abort.abort();
    await this.#client.close();
    this.#media.dispose();
  }

  async #signOut(): Promise<void> {
    const pending = this.#pending().length;
    if (pending && !window.confirm(`${pending} message${pending === 1 ? ' has' : 's have'} not been sent yet and will be lost. Log out anyway?`)) return;
    this.#o.onSignOut();
  }

  // =====================================================================================
  // Conversations

  #entry(conv: string): ConvEntry {
    let entry = this.#convs.get(conv);
    if (!entry) {
      entry = { conv, recent: [], lastTs: 0 };
      this.#convs.set(conv, entry);
    }
    return entry;
  }

  async #loadRecent(entry: ConvEntry): Promise<void> {
    const recent = await this.#client.localMessages(entry.conv, { limit: RECENT });
    entry.recent = recent;
    entry.lastTs = Math.max(entry.lastTs, recent.at(-1)?.ts ?? 0);
  }

  #remember(message: ChatMessage): void {
    const entry = this.#entry(message.conv);
    if (!entry.recent.some((m) => m.seq === message.seq)) {
      entry.recent.push(message);
      entry.recent.sort((a, b) => a.seq - b.seq);
      if (entry.recent.length > RECENT) entry.recent.splice(0, entry.recent.length - RECENT);
    }
    // Reactions do not move a conversation up; messages, edits and events do.
    const action = message.kind === 'conv' ? undefined : messageAction(message.body);
    if (action?.kind !== 'react') entry.lastTs = Math.max(entry.lastTs, message.ts);
    this.#loaded.get(message.conv)?.set(message.seq, message);
  }

  /** `conversations` RPC: names, kinds, 1:1 peers, member counts; follows the peers' presence. */
  async #refreshConversations(): Promise<void> {
    const summaries = await this.#client.conversations();
    const listed = new Set<string>();
    for (const s of summaries) {
      listed.add(s.conv);
      const isNew = !this.#convs.has(s.conv);
      const entry = this.#entry(s.conv);
      entry.kind = s.kind;
      entry.name = s.name ?? null;
      if (s.peer) entry.peer = s.peer;
      if (typeof s.members === 'number') entry.memberCount = s.members;
      if (isNew) await this.#loadRecent(entry);
      this.#gone.delete(s.conv);
      if (s.kind === 'dm' && s.peer) this.#watchPresence(s.peer);
    }
    for (const conv of this.#convs.keys()) if (!listed.has(conv)) this.#gone.add(conv);
    // A 1:1 opened by name becomes its conversation once it exists.
    const target = this.#target;
    if (target && 'to' in target) {
      const dm = summaries.find((s) => s.kind === 'dm' && s.peer === target.to);
      if (dm) this.#navigate({ conv: dm.conv }, true);
    }
    this.#schedule();
  }

  #refreshSoon(): void {
    if (this.#refreshTimer) return;
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined;
      if (this.#client.state === 'online') this.#refreshConversations().catch((error: unknown) => this.#onClientError(error));
    }, 150);
  }

  #watchPresence(user: string): void {
    if (user === this.#me || this.#watchedPresence.has(user)) return;
    this.#watchedPresence.add(user);
    this.#client.watchPresence(user).catch(() => this.#watchedPresence.delete(user));
  }

  #kindOf(conv: string): ConversationKind | undefined {
    return this.#convs.get(conv)?.kind ?? this.#client.conversationState(conv)?.kind;
  }

  #titleOf(conv: string): string {
    const entry = this.#convs.get(conv);
    return entry?.peer ?? entry?.name ?? this.#client.conversationState(conv)?.name ?? 'Conversation';
  }

  #stateOf(conv: string): ConversationState | undefined {
    return this.#client.conversationState(conv);
  }

  // =====================================================================================
  // Client events

  #onMessage(message: ReceivedMessage): void {
    if (!this.#convs.has(message.conv) || !this.#kindOf(message.conv)) this.#refreshSoon();
    this.#remember(message);
    const action = messageAction(message.body);
    if (message.own && message.source !== 'history') {
      // Writing in a conversation reads it (and keeps our own messages out of the unread count).
      const state = this.#stateOf(message.conv);
      if (state && state.read_seq < message.seq && state.synced_seq >= message.seq) void this.#client.markRead(message.conv, message.seq).catch(() => undefined);
    }
    // A message ends its author's typing. (The server may drop an `idle` that follows a
    // `typing` within its throttle interval; the SDK would then show "typing…" until expiry.)
    if (!message.own && message.source === 'live') this.#hushedTyping.add(`${message.conv}\u0000${message.from}`);
    if (!message.own && message.source === 'live' && !action) {
      const kind = this.#kindOf(message.conv);
      const where = message.conv === this.#currentConv() || (kind !== 'group' && kind !== 'channel') ? '' : ` in ${this.#titleOf(message.conv)}`;
      const text = typeof message.body.text === 'string' ? message.body.text : message.media?.length ? 'a photo' : 'a message';
      this.#announce(`${message.from}${where}: ${text}`);
    }
    this.#schedule();
  }

  async #onConversationEvent(event: ConversationEvent): Promise<void> {
    if (event.seq !== undefined) {
      const stored = await this.#o.store.getMessage(event.conv, event.seq);
      if (stored) this.#remember(stored);
    }
    if (event.user === this.#me && (event.event === 'member_removed' || event.event === 'member_left')) {
      this.#gone.add(event.conv);
      this.#groupInfo.delete(event.conv);
    } else if (event.user === this.#me && event.event === 'member_added') {
      this.#gone.delete(event.conv);
    }
    if (['created', 'member_added', 'member_removed', 'member_left', 'role_changed', 'settings_changed'].includes(event.event)) {
      this.#refreshSoon();
      if (this.#groupInfo.has(event.conv) || event.conv === this.#currentConv()) void this.#loadGroupInfo(event.conv);
    }
    this.#schedule();
  }

  #onState(state: string): void {
    if (state === 'online') {
      this.#client
        .whenSynced()
        .then(() => this.#refreshConversations())
        .then(() => {
          const conv = this.#currentConv();
          if (conv && this.#kindOf(conv) !== 'dm') void this.#loadGroupInfo(conv);
        })
        .catch(() => undefined);
    }
    this.#schedule();
  }

  #onClientError(error: unknown): void {
    if (this.#disposed) return;
    if (error instanceof ChatError && (error.code === 'disconnected' || error.code === 'timeout')) return;
    this.#showError(error);
  }

  #showError(error: unknown): void {
    const message = error instanceof ChatError ? friendlyError(error) : error instanceof Error ? error.message : String(error);
    this.#toast.textContent = message;
    this.#toast.hidden = false;
    if (this.#toastTimer) clearTimeout(this.#toastTimer);
    this.#toastTimer = setTimeout(() => (this.#toast.hidden = true), 8000);
  }

  #announce(text: string): void {
    this.#announcer.append(h('p', null, text));
    while (this.#announcer.childElementCount > 5) this.#announcer.firstElementChild?.remove();
  }

  // =====================================================================================
  // Navigation: the URL hash says what is open (#c/<conv> or #to/<user>), so the browser's
  // back button leaves a chat on a phone.

  #navigate(target: Target | undefined, replace = false): void {
    const hash = !target ? '' : 'conv' in target ? `#c/${encodeURIComponent(target.conv)}` : `#to/${encodeURIComponent(target.to)}`;
    if (location.hash === hash || (hash === '' && location.hash === '')) {
      this.#route();
      return;
    }
    if (replace) {
      history.replaceState(null, '', hash || location.pathname);
      this.#route();
    } else if (hash) {
      location.hash = hash;
    } else {
      history.pushState(null, '', location.pathname);
      this.#route();
    }
  }

  #route(): void {
    const match = /^#(c|to)\/(.+)$/.exec(location.hash);
    const target: Target | undefined = !match ? undefined : match[1] === 'c' ? { conv: decodeURIComponent(match[2]!) } : { to: decodeURIComponent(match[2]!) };
    void this.#open(target);
  }

  #currentConv(): string | undefined {
    const target = this.#target;
    return target && 'conv' in target ? target.conv : undefined;
  }

  async #open(target: Target | undefined): Promise<void> {
    const previous = this.#currentConv();
    const before = this.#target;
    const same = JSON.stringify(target) === JSON.stringify(before);
    // A new 1:1 ({to}) becoming its conversation after the first send keeps what is being typed.
    const sameChat = !!before && 'to' in before && !!target && 'conv' in target && this.#convs.get(target.conv)?.peer === before.to;
    this.#target = target;
    this.#shell.dataset.pane = target ? 'chat' : 'list';
    if (!same) {
      this.#replyTo = this.#editing = undefined;
      this.#openMenu = undefined;
      this.#rendered.clear();
      this.#messages.replaceChildren();
      if (!sameChat) this.#input.value = '';
      this.#updateContext();
    }
    const conv = this.#currentConv();
    if (previous && previous !== conv) {
      this.#client.stopTyping(previous);
      void this.#client.unwatchTyping(previous).catch(() => undefined);
    }
    this.#schedule();
    if (!target) return;
    if (!same && matchMedia('(min-width: 701px)').matches) this.#input.focus();
    if ('to' in target) {
      // A 1:1 that may not exist yet: the first send ({to}) opens it.
      const existing = [...this.#convs.values()].find((e) => e.kind === 'dm' && e.peer === target.to);
      if (existing) this.#navigate({ conv: existing.conv }, true);
      return;
    }
    if (!conv || same) return;
    void this.#client.watchTyping(conv).catch(() => undefined);
    const entry = this.#entry(conv);
    if (entry.kind === 'dm' && entry.peer) this.#watchPresence(entry.peer);
    if (entry.kind === 'group' || entry.kind === 'channel' || !entry.kind) void this.#loadGroupInfo(conv);
    if (!this.#loaded.has(conv)) {
      const messages = new Map<number, ChatMessage>();
      this.#loaded.set(conv, messages);
      for (const m of await this.#client.localMessages(conv, { limit: PAGE })) messages.set(m.seq, m);
    }
    this.#schedule(true);
    // Not enough to fill the screen (or nothing local yet): fetch older ones.
    if ((this.#loaded.get(conv)?.size ?? 0) < PAGE / 2 && this.#hasOlder(conv)) void this.#loadOlder();
  }

  #hasOlder(conv: string): boolean {
    return !this.#exhausted.has(conv) && this.#oldestSeq(conv) > 1;
  }

  #oldestSeq(conv: string): number {
    const seqs = [...(this.#loaded.get(conv)?.keys() ?? [])];
    if (seqs.length) return Math.min(...seqs);
    return (this.#stateOf(conv)?.synced_seq ?? 0) + 1;
  }

  /** History on scroll: the SDK answers from IndexedDB when it holds the page, else from the server. */
  async #loadOlder(): Promise<void> {
    const conv = this.#currentConv();
    if (!conv || this.#loadingOlder || !this.#hasOlder(conv)) return;
    this.#loadingOlder = true;
    this.#olderButton.textContent = 'Loading…';
    const before = this.#oldestSeq(conv);
    const fromBottom = this.#scroller.scrollHeight - this.#scroller.scrollTop;
    try {
      const page = await this.#client.history(conv, { before, limit: PAGE });
      const messages = this.#loaded.get(conv);
      if (messages) for (const m of page.messages) messages.set(m.seq, m);
      if (!page.more || page.messages.length === 0) this.#exhausted.add(conv);
      this.#render();
      this.#scroller.scrollTop = this.#scroller.scrollHeight - fromBottom;
    } catch (error) {
      this.#showError(error instanceof ChatError && error.code === 'timeout' ? new Error('Older messages need a connection; try again when online.') : error);
    } finally {
      this.#loadingOlder = false;
      this.#olderButton.textContent = 'Load older messages';
      this.#schedule();
    }
  }

  #onScroll(): void {
    if (this.#scroller.scrollTop < 80) void this.#loadOlder();
    this.#maybeMarkRead();
  }

  #atBottom(): boolean {
    const s = this.#scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
  }

  /** Read receipts: the open conversation, visible, scrolled to its end. */
  #maybeMarkRead(): void {
    const conv = this.#currentConv();
    if (!conv || document.visibilityState !== 'visible' || !this.#atBottom()) return;
    const state = this.#stateOf(conv);
    if (state && state.synced_seq > state.read_seq) {
      void this.#client.markRead(conv, state.synced_seq).then(() => this.#schedule(), () => undefined);
    }
  }

  async #loadGroupInfo(conv: string): Promise<void> {
    try {
      const info = await this.#client.group.info(conv);
      this.#gone.delete(conv);
      const entry = this.#entry(conv);
      entry.kind = info.kind;
      entry.memberCount = info.members.length;
      if (info.kind === 'dm') {
        // Opened before the conversation list knew it: learn the peer.
        const peer = info.members.find((m) => m.user !== this.#me)?.user;
        if (peer) {
          entry.peer = peer;
          this.#watchPresence(peer);
        }
        this.#schedule();
        return;
      }
      this.#groupInfo.set(conv, info);
      entry.name = info.name;
      if (conv === this.#currentConv()) this.#groupDialog?.(info);
    } catch (error) {
      if (error instanceof ChatError && (error.code === 'not_member' || error.code === 'not_found')) {
        this.#gone.add(conv);
        this.#groupInfo.delete(conv);
      }
    }
    this.#schedule();
  }

  // =====================================================================================
  // Sending

  #sendTarget(): Target | undefined {
    const target = this.#target;
    if (!target) return undefined;
    return 'to' in target ? { to: target.to } : { conv: target.conv };
  }

  #canSend(conv: string | undefined): { ok: boolean; why?: string } {
    if (!conv) return { ok: true };
    if (this.#gone.has(conv)) return { ok: false, why: 'You are no longer a member of this conversation.' };
    const kind = this.#kindOf(conv);
    if (kind !== 'group' && kind !== 'channel') return { ok: true };
    const info = this.#groupInfo.get(conv);
    if (!info) return { ok: true };
    const role = info.members.find((m) => m.user === this.#me)?.role;
    if (canPost(kind, info.announce_only, role)) return { ok: true };
    if (!role) return { ok: false, why: 'You are no longer a member of this conversation.' };
    return { ok: false, why: kind === 'channel' ? 'Only admins can post in this channel.' : 'Only admins can post in this group.' };
  }

  async #submit(): Promise<void> {
    const target = this.#sendTarget();
    const text = this.#input.value.trim();
    if (!target || !text) return;
    const conv = 'conv' in target ? target.conv : undefined;
    const replyTo = this.#replyTo;
    const editing = this.#editing;
    this.#input.value = '';
    this.#cancelContext();
    this.#autosize();
    let sent: Promise<{ conv: string }>;
    if (editing !== undefined && conv) sent = this.#client.edit(conv, editing, text);
    else if (replyTo !== undefined && conv) sent = this.#client.reply(conv, replyTo, { text });
    else sent = this.#client.send(target, { text });
    this.#schedule(true);
    try {
      const ack = await sent;
      if ('to' in target) {
        const t = this.#target;
        if (t && 'to' in t && t.to === target.to) {
          const entry = this.#entry(ack.conv);
          entry.kind ??= 'dm';
          entry.peer = target.to;
          this.#navigate({ conv: ack.conv }, true);
        }
        this.#refreshSoon();
      }
    } catch (error) {
      if (error instanceof ChatError && error.code === 'disconnected') return; // stays in the outbox
      this.#showError(error);
    }
    this.#schedule();
  }

  #onComposerKey(event: KeyboardEvent): void {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.#composer.requestSubmit();
    } else if (event.key === 'Escape' && (this.#replyTo !== undefined || this.#editing !== undefined)) {
      event.preventDefault();
      this.#cancelContext();
    } else if (event.key === 'ArrowUp' && this.#input.value === '') {
      // Up in an empty composer edits our last message, as in many chat apps.
      const conv = this.#currentConv();
      const last = conv ? [...this.#views(conv)].reverse().find((v) => v.from === this.#me && v.kind !== 'conv' && !v.deleted && !v.media?.length) : undefined;
      if (last) {
        event.preventDefault();
        this.#startEdit(last);
      }
    }
  }

  #onComposerInput(): void {
    this.#autosize();
    const conv = this.#currentConv();
    if (!conv) return;
    if (this.#input.value.trim()) this.#client.typing(conv);
    else this.#client.stopTyping(conv);
  }

  #autosize(): void {
    this.#input.style.height = 'auto';
    this.#input.style.height = `${Math.min(this.#input.scrollHeight, 160)}px`;
  }

  #cancelContext(): void {
    const wasEditing = this.#editing !== undefined;
    this.#replyTo = this.#editing = undefined;
    if (wasEditing) this.#input.value = '';
    this.#updateContext();
  }

  #updateContext(): void {
    const conv = this.#currentConv();
    const seq = this.#editing ?? this.#replyTo;
    const view = conv && seq !== undefined ? this.#views(conv).find((v) => v.seq === seq) : undefined;
    this.#context.hidden = seq === undefined;
    if (seq === undefined) return;
    const text = view?.text ?? (view?.media?.length ? '📷 Photo' : '');
    this.#contextText.textContent = this.#editing !== undefined ? `Editing: ${text}` : `Replying to ${view?.from === this.#me ? 'yourself' : (view?.from ?? 'a message')}: ${text}`;
  }

  #startEdit(view: MessageView): void {
    this.#editing = view.seq;
    this.#replyTo = undefined;
    this.#input.value = view.text ?? '';
    this.#updateContext();
    this.#input.focus();
  }

  // ---- attachments --------------------------------------------------------------------

  #onFilePicked(): void {
    const files = [...(this.#fileInput.files ?? [])];
    this.#fileInput.value = '';
    const conv = this.#currentConv();
    if (!conv) {
      this.#showError(new Error('Send a first message before attaching files: the conversation does not exist yet.'));
      return;
    }
    for (const file of files) void this.#upload(conv, file);
  }

  async #upload(conv: string, file: File): Promise<void> {
    const upload: Upload = { id: ++this.#uploadSeq, conv, name: file.name || 'file', progress: { loaded: 0, total: file.size }, abort: new AbortController() };
    this.#uploads.set(upload.id, upload);
    this.#renderUploads();
    const caption = this.#input.value.trim();
    try {
      const record = await uploadFile(
        this.#o.session,
        conv,
        file,
        (progress) => {
          upload.progress = progress;
          this.#renderUploads();
        },
        upload.abort.signal,
      );
      this.#media.remember(record, file);
      if (caption && this.#currentConv() === conv) {
        this.#input.value = '';
        this.#autosize();
      }
      this.#uploads.delete(upload.id);
      this.#renderUploads();
      const replyTo = this.#replyTo;
      this.#cancelContext();
      const body: JsonObject = caption ? { text: caption } : {};
      const sent = this.#client.send({ conv }, body, { media: [record.id], ...(replyTo !== undefined ? { reply_to: replyTo } : {}) });
      this.#schedule(true);
      await sent;
    } catch (error) {
      this.#uploads.delete(upload.id);
      this.#renderUploads();
      if ((error as { code?: string }).code === 'aborted' || (error instanceof ChatError && error.code === 'disconnected')) return;
      this.#showError(error);
    }
  }

  /** Upload rows are updated in place (progress and text), so "Cancel" stays clickable. */
  readonly #uploadRows = new Map<number, { row: HTMLElement; text: HTMLElement; bar: HTMLProgressElement }>();

  #renderUploads(): void {
    const conv = this.#currentConv();
    const uploads = [...this.#uploads.values()].filter((u) => u.conv === conv);
    const keep = new Set(uploads.map((u) => u.id));
    for (const [id, { row }] of this.#uploadRows) {
      if (!keep.has(id)) {
        row.remove();
        this.#uploadRows.delete(id);
      }
    }
    for (const u of uploads) {
      let view = this.#uploadRows.get(u.id);
      if (!view) {
        const text = h('span');
        const bar = h('progress', { max: 100, value: 0, 'aria-label': `Upload of ${u.name}` });
        const row = h(
          'div',
          { class: 'upload', data: { upload: u.id } },
          h('label', null, text, bar),
          h('button', { type: 'button', class: 'small', 'aria-label': `Cancel the upload of ${u.name}`, on: { click: () => u.abort.abort() } }, 'Cancel'),
        );
        view = { row, text, bar };
        this.#uploadRows.set(u.id, view);
        this.#uploadsEl.append(row);
      }
      const percent = u.progress.total ? Math.round((100 * u.progress.loaded) / u.progress.total) : 0;
      view.text.textContent = `Uploading ${u.name} ${percent}%`;
      view.bar.value = percent;
    }
  }

  // ---- message actions ----------------------------------------------------------------

  #onMessageClick(event: Event): void {
    const button = (event.target as Element).closest<HTMLElement>('[data-action]');
    const li = button?.closest<HTMLLIElement>('li.msg');
    const conv = this.#currentConv();
    if (!button || !li || !conv) return;
    const seq = Number(li.dataset.seq);
    const view = this.#views(conv).find((v) => v.seq === seq);
    const action = button.dataset.action;
    if (action === 'download') {
      const id = button.dataset.media!;
      void this.#media.download(id, id).catch((error: unknown) => this.#showError(error));
      return;
    }
    if (!view) return;
    if (action === 'menu') {
      this.#toggleMenu(li, view);
      return;
    }
    this.#closeMenu(false);
    const send = (work: Promise<unknown>) => void work.catch((error: unknown) => !(error instanceof ChatError && error.code === 'disconnected') && this.#showError(error));
    switch (action) {
      case 'reply':
        this.#replyTo = seq;
        this.#editing = undefined;
        this.#updateContext();
        this.#input.focus();
        break;
      case 'react':
      case 'toggle-reaction': {
        const emoji = button.dataset.emoji ?? '';
        const mine = view.reactions[emoji]?.includes(this.#me);
        send(this.#client.react(conv, seq, mine ? '' : emoji));
        li.focus();
        break;
      }
      case 'edit':
        this.#startEdit(view);
        break;
      case 'delete':
        if (window.confirm('Delete this message for everyone?')) send(this.#client.deleteForEveryone(conv, seq));
        li.focus();
        break;
      case 'copy':
        void navigator.clipboard?.writeText(view.text ?? '').catch(() => undefined);
        li.focus();
        break;
    }
    this.#schedule();
  }

  #toggleMenu(li: HTMLLIElement, view: MessageView): void {
    const wasOpen = this.#openMenu?.seq === view.seq;
    this.#closeMenu(false);
    if (wasOpen) return;
    const menu = renderMenu(view, this.#me, this.#canSend(this.#currentConv()).ok);
    li.append(menu);
    li.querySelector('.msg-actions')?.setAttribute('aria-expanded', 'true');
    this.#openMenu = { key: `s:${view.seq}`, seq: view.seq };
    const items = [...menu.querySelectorAll<HTMLElement>('[role=menuitem]')];
    items[0]?.focus();
    menu.addEventListener('keydown', (e) => {
      const index = items.indexOf(document.activeElement as HTMLElement);
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        this.#closeMenu(true);
      } else if (e.key === 'ArrowDown' || e.key === 'ArrowRight') {
        e.preventDefault();
        items[(index + 1) % items.length]?.focus();
      } else if (e.key === 'ArrowUp' || e.key === 'ArrowLeft') {
        e.preventDefault();
        items[(index - 1 + items.length) % items.length]?.focus();
      } else if (e.key === 'Tab') {
        this.#closeMenu(false);
      }
    });
    menu.addEventListener('focusout', (e) => {
      if (!menu.contains(e.relatedTarget as Node | null) && !(e.relatedTarget as Element | null)?.classList?.contains('msg-actions')) this.#closeMenu(false);
    });
  }

  #closeMenu(refocus: boolean): void {
    const open = this.#openMenu;
    if (!open) return;
    this.#openMenu = undefined;
    const li = this.#rendered.get(open.key)?.li;
    li?.querySelector('.menu')?.remove();
    const button = li?.querySelector<HTMLElement>('.msg-actions');
    button?.setAttribute('aria-expanded', 'false');
    if (refocus) button?.focus();
    this.#schedule();
  }

  /** Up/Down between messages (roving focus); Enter opens the focused message's actions. */
  #onMessageKey(event: KeyboardEvent): void {
    const li = (event.target as Element).closest<HTMLLIElement>('li');
    if (!li || event.target !== li) return;
    const items = [...this.#messages.children] as HTMLLIElement[];
    const index = items.indexOf(li);
    let next: HTMLLIElement | undefined;
    if (event.key === 'ArrowDown') next = items[index + 1];
    else if (event.key === 'ArrowUp') next = items[index - 1];
    else if (event.key === 'Home') next = items[0];
    else if (event.key === 'End') next = items.at(-1);
    else if (event.key === 'Enter' || event.key === ' ') {
      li.querySelector<HTMLElement>('.msg-actions')?.click();
      event.preventDefault();
      return;
    } else return;
    event.preventDefault();
    if (next) {
      li.tabIndex = -1;
      next.tabIndex = 0;
      next.focus();
    }
    if (event.key === 'ArrowUp' && index <= 1) void this.#loadOlder();
  }

  #onListKey(event: KeyboardEvent): void {
    const buttons = [...this.#convList.querySelectorAll<HTMLElement>('button.conv')];
    const index = buttons.indexOf(document.activeElement as HTMLElement);
    if (index < 0) return;
    let next: HTMLElement | undefined;
    if (event.key === 'ArrowDown') next = buttons[index + 1];
    else if (event.key === 'ArrowUp') next = buttons[index - 1];
    else if (event.key === 'Home') next = buttons[0];
    else if (event.key === 'End') next = buttons.at(-1);
    else return;
    event.preventDefault();
    next?.focus();
  }

  // ---- dialogs ------------------------------------------------------------------------

  #newChat(): void {
    newChatDialog(this.#me, (user) => this.#navigate({ to: user }));
  }

  #newGroup(): void {
    newGroupDialog(this.#me, async (name, members, kind) => {
      const conv = await this.#client.group.create(name, members, kind);
      const entry = this.#entry(conv);
      entry.kind = kind;
      entry.name = name;
      await this.#refreshConversations().catch(() => undefined);
      this.#navigate({ conv });
    });
  }

  #openGroupInfo(): void {
    const conv = this.#currentConv();
    const info = conv ? this.#groupInfo.get(conv) : undefined;
    if (!conv || !info) return;
    const group = this.#client.group;
    const after = async (work: Promise<void>) => {
      await work;
      await this.#loadGroupInfo(conv);
    };
    this.#groupDialog = groupInfoDialog(
      this.#me,
      info,
      {
        rename: (name) => after(group.settings(conv, { name })),
        setAnnounceOnly: (on) => after(group.settings(conv, { announce_only: on })),
        add: (users) => after(group.add(conv, users)),
        remove: (user) => after(group.remove(conv, [user])),
        setRole: (user, role) => after(group.role(conv, user, role)),
        leave: async () => {
          await group.leave(conv);
          this.#gone.add(conv);
          this.#groupInfo.delete(conv);
          document.querySelector<HTMLDialogElement>('dialog.group-info')?.close();
          this.#schedule();
        },
      },
      () => (this.#groupDialog = undefined),
    );
  }

  // =====================================================================================
  // Rendering

  /** Marks the screen dirty; `stickToBottom` scrolls the chat to its end after rendering. */
  #stick = false;
  #schedule(stickToBottom = false): void {
    this.#stick ||= stickToBottom;
    if (this.#renderQueued || !this.#started) return;
    this.#renderQueued = true;
    setTimeout(() => {
      this.#renderQueued = false;
      if (!this.#disposed) this.#render();
    }, 0);
  }

  #render(): void {
    this.#renderConnection();
    this.#renderList();
    this.#renderChat();
    // "(3) bob · Chat": unread messages elsewhere show in the tab title.
    const current = this.#currentConv();
    const unread = [...this.#convs.keys()].reduce((sum, conv) => sum + (conv === current ? 0 : (this.#stateOf(conv)?.unread ?? 0)), 0);
    const open = this.#target ? ('to' in this.#target ? this.#target.to : this.#titleOf(this.#target.conv)) : undefined;
    document.title = `${unread ? `(${unread}) ` : ''}${open ? `${open} · ` : ''}Chat`;
  }

  #pending(): OutboxEntry[] {
    return this.#client.pendingSends();
  }

  #renderConnection(): void {
    const state = this.#client.state;
    const online = state === 'online';
    const label = online ? 'Online' : state === 'connecting' && !this.#everOnline() ? 'Connecting…' : state === 'closed' ? 'Disconnected' : 'Offline';
    this.#connection.dataset.state = online ? 'online' : 'offline';
    this.#connection.textContent = label;
    if (online) this.#seenOnline = true;
    const pending = this.#pending();
    const showBanner = !online && state !== 'idle' && (this.#seenOnline || state === 'reconnecting');
    this.#banner.hidden = !showBanner;
    // Rebuilt only when its text changes, so that "Retry now" stays under the pointer.
    const signature = showBanner ? JSON.stringify(pending.map((e) => [e.id, e.to, e.conv && this.#titleOf(e.conv)])) : '';
    if (signature === this.#bannerSignature) return;
    this.#bannerSignature = signature;
    if (!showBanner) {
      this.#banner.replaceChildren();
      return;
    }
    const describe = (entry: OutboxEntry) => {
      const to = entry.to ?? (entry.conv ? this.#titleOf(entry.conv) : '?');
      const action = messageAction(entry.body);
      const text =
        action?.kind === 'react'
          ? `reaction ${action.emoji || '(removed)'}`
          : action?.kind === 'edit'
            ? `edit: ${action.text}`
            : action?.kind === 'delete'
              ? 'delete a message'
              : typeof entry.body.text === 'string'
                ? entry.body.text
                : entry.media?.length
                  ? '📷 Photo'
                  : 'message';
      return `To ${to}: ${text}`;
    };
    setChildren(
      this.#banner,
      h(
        'p',
        { role: 'status' },
        h('strong', null, 'You are offline. '),
        'Reconnecting automatically…',
        pending.length ? ` ${pending.length} message${pending.length === 1 ? '' : 's'} waiting to be sent.` : ' Messages you write are kept and sent when the connection is back.',
      ),
      pending.length ? h('ul', { class: 'outbox', 'aria-label': 'Waiting to be sent' }, pending.map((entry) => h('li', { data: { id: entry.id } }, describe(entry)))) : null,
      h('button', { type: 'button', class: 'small', on: { click: () => this.#client.reconnectNow() } }, 'Retry now'),
    );
  }

  #seenOnline = false;
  #bannerSignature = '';
  #everOnline(): boolean {
    return this.#seenOnline;
  }

  #renderList(): void {
    const now = Date.now();
    // The newest waiting message of each conversation shows as its preview, with 🕓.
    const waiting = new Map<string, OutboxEntry>();
    for (const entry of this.#pending()) if (entry.conv && typeof entry.body.text === 'string') waiting.set(entry.conv, entry);
    // Presence is only known while connected.
    const live = this.#client.state === 'online';
    const entries = [...this.#convs.values()].sort((a, b) => b.lastTs - a.lastTs || a.conv.localeCompare(b.conv));
    const current = this.#currentConv();
    const rows = entries.map((entry) => {
      const state = this.#stateOf(entry.conv);
      const unread = current === entry.conv ? 0 : (state?.unread ?? 0);
      const isGroup = entry.kind === 'group' || entry.kind === 'channel';
      const last = foldMessages(entry.recent).at(-1);
      const title = this.#titleOf(entry.conv);
      const presence = live && entry.kind === 'dm' && entry.peer ? this.#client.presence(entry.peer) : undefined;
      const pending = waiting.get(entry.conv);
      const preview = pending ? `🕓 You: ${String(pending.body.text)}` : previewText(last, this.#me, isGroup) || (entry.kind === 'channel' ? 'Channel' : isGroup ? 'Group' : '');
      const row = {
        conv: entry.conv,
        title,
        kind: entry.kind,
        active: current === entry.conv,
        gone: this.#gone.has(entry.conv),
        online: presence?.state === 'online',
        unread,
        preview: preview.replace(/\s+/g, ' '),
        time: last ? shortTime(last.ts, now) : '',
      };
      return { key: entry.conv, signature: JSON.stringify(row), row };
    });
    this.#keyed(this.#convList, this.#renderedConvs, rows, ({ row }) => {
      const isGroup = row.kind === 'group' || row.kind === 'channel';
      const label = [row.title, row.kind === 'channel' ? 'channel' : isGroup ? 'group' : row.online ? 'online' : '', row.unread ? `${row.unread} unread` : '', row.preview].filter(Boolean);
      return h(
        'li',
        { data: { conv: row.conv } },
        h(
          'button',
          {
            type: 'button',
            class: `conv${row.active ? ' active' : ''}${row.gone ? ' gone' : ''}`,
            'aria-current': row.active ? 'true' : undefined,
            'aria-label': label.join(', '),
            on: { click: () => this.#navigate({ conv: row.conv }) },
          },
          h('span', { class: `avatar${row.online ? ' online' : ''}`, 'aria-hidden': 'true' }, isGroup ? (row.kind === 'channel' ? '📣' : '👥') : row.title.charAt(0).toUpperCase()),
          h(
            'span',
            { class: 'conv-main' },
            h('span', { class: 'conv-top' }, h('span', { class: 'conv-name' }, row.title), h('span', { class: 'conv-time' }, row.time)),
            h('span', { class: 'conv-bottom' }, h('span', { class: 'conv-preview' }, row.preview), row.unread ? h('span', { class: 'unread', 'aria-hidden': 'true' }, String(row.unread)) : null),
          ),
        ),
      );
    });
    this.#emptyList.hidden = rows.length > 0;
  }

  readonly #renderedConvs = new Map<string, { li: HTMLLIElement; signature: string }>();
  readonly #emptyList = h('p', { class: 'empty' }, 'No conversations yet. Start one with “New chat”.');

  /**
   * Keyed children of `parent`: an element is rebuilt only when its signature changed (so a
   * click between mousedown and mouseup, focus and hover survive re-renders), then the
   * children are put in order, moving only what is out of place.
   */
  #keyed<T extends { key: string; signature: string }>(parent: HTMLElement, cache: Map<string, { li: HTMLLIElement; signature: string }>, items: T[], build: (item: T) => HTMLLIElement): HTMLLIElement[] {
    const active = document.activeElement;
    const ordered: HTMLLIElement[] = [];
    const keep = new Set<string>();
    for (const item of items) {
      keep.add(item.key);
      const existing = cache.get(item.key);
      if (existing && existing.signature === item.signature) {
        ordered.push(existing.li);
        continue;
      }
      const li = build(item);
      if (existing) {
        const hadFocus = existing.li.contains(active);
        existing.li.replaceWith(li);
        if (hadFocus) li.querySelector<HTMLElement>('button')?.focus();
      }
      cache.set(item.key, { li, signature: item.signature });
      ordered.push(li);
    }
    for (const [key, { li }] of cache) {
      if (!keep.has(key)) {
        li.remove();
        cache.delete(key);
      }
    }
    let cursor: ChildNode | null = parent.firstChild;
    for (const li of ordered) {
      if (li === cursor) cursor = cursor.nextSibling;
      else parent.insertBefore(li, cursor);
    }
    return ordered;
  }

  #views(conv: string): MessageView[] {
    return foldMessages([...(this.#loaded.get(conv)?.values() ?? [])]);
  }

  #othersOf(conv: string): string[] | undefined {
    const entry = this.#convs.get(conv);
    if (entry?.kind === 'dm') return entry.peer ? (entry.peer === this.#me ? [] : [entry.peer]) : undefined;
    const info = this.#groupInfo.get(conv);
    return info?.members.map((m) => m.user).filter((u) => u !== this.#me);
  }

  #renderChat(): void {
    const target = this.#target;
    const conv = this.#currentConv();
    this.#chat.hidden = false;
    this.#chat.classList.toggle('empty', !target);
    if (!target) {
      this.#chatTitle.textContent = 'No conversation open';
      this.#chatSubtitle.textContent = 'Pick one from the list, or start a new chat.';
      this.#infoButton.hidden = true;
      this.#composer.hidden = true;
      this.#typingLine.textContent = '';
      this.#olderButton.hidden = true;
      return;
    }
    this.#composer.hidden = false;
    const kind = conv ? this.#kindOf(conv) : 'dm';
    const isGroup = kind === 'group' || kind === 'channel';
    const entry = conv ? this.#convs.get(conv) : undefined;
    const title = 'to' in target ? target.to : this.#titleOf(target.conv);
    this.#chatTitle.textContent = title;

    // Subtitle: presence of a 1:1 peer, members of a group.
    const peer = 'to' in target ? target.to : entry?.peer;
    let subtitle = '';
    if (conv && this.#gone.has(conv)) subtitle = 'You are no longer a member';
    else if (isGroup) {
      const info = conv ? this.#groupInfo.get(conv) : undefined;
      const names = info?.members.map((m) => (m.user === this.#me ? 'you' : m.user)) ?? [];
      subtitle = `${kind === 'channel' ? 'Channel' : 'Group'}${info ? ` · ${names.length} members: ${names.join(', ')}` : ''}${info?.announce_only && kind !== 'channel' ? ' · only admins post' : ''}`;
    } else if (peer && peer !== this.#me) subtitle = this.#client.state === 'online' ? presenceLine(this.#client.presence(peer), Date.now()) : '';
    else if (peer === this.#me) subtitle = 'Notes to yourself';
    this.#chatSubtitle.textContent = subtitle;
    this.#infoButton.hidden = !(isGroup && conv && this.#groupInfo.has(conv));
    this.#infoButton.textContent = kind === 'channel' ? 'Channel info' : 'Group info';

    // Typing.
    const typing = conv ? this.#client.typingUsers(conv).filter((u) => u !== this.#me && !this.#hushedTyping.has(`${conv}\u0000${u}`)) : [];
    const typingText = typing.length === 0 ? '' : typing.length === 1 ? `${typing[0]} is typing…` : `${typing.join(', ')} are typing…`;
    // Set only on change: the line is a live region, and an unchanged text must not be read again.
    if (this.#typingLine.textContent !== typingText) this.#typingLine.textContent = typingText;

    // Composer permission.
    const allowed = this.#canSend(conv);
    this.#notice.hidden = allowed.ok;
    this.#notice.textContent = allowed.why ?? '';
    this.#input.disabled = !allowed.ok;
    this.#sendButton.disabled = !allowed.ok;
    this.#fileInput.disabled = !allowed.ok || !conv;
    this.#composer.classList.toggle('disabled', !allowed.ok);
    this.#renderUploads();

    // Messages.
    const stick = this.#stick || this.#atBottom();
    this.#stick = false;
    const items = this.#items(target);
    const ctx: ItemContext = {
      me: this.#me,
      isGroup,
      media: this.#media,
      quote: (seq) => (conv ? this.#viewCache.get(seq) : undefined),
    };
    this.#reconcile(items, ctx);
    this.#olderButton.hidden = !(conv && this.#hasOlder(conv));
    if (stick) this.#scroller.scrollTop = this.#scroller.scrollHeight;
    if (this.#replyTo !== undefined || this.#editing !== undefined) this.#updateContext();
    this.#maybeMarkRead();
    // A short history that does not fill the screen cannot be scrolled: load more now.
    if (conv && this.#hasOlder(conv) && this.#scroller.scrollHeight <= this.#scroller.clientHeight + 10 && !this.#loadingOlder) void this.#loadOlder();
  }

  #viewCache = new Map<number, MessageView>();

  #items(target: Target): ChatItem[] {
    const conv = 'conv' in target ? target.conv : undefined;
    const items: ChatItem[] = [];
    const views = conv ? this.#views(conv) : [];
    this.#viewCache = new Map(views.map((v) => [v.seq, v]));
    const state = conv ? this.#stateOf(conv) : undefined;
    const others = conv ? this.#othersOf(conv) : undefined;
    const ids = new Set<string>();
    for (const view of views) {
      if (view.id) ids.add(view.id);
      if (view.kind === 'conv') {
        items.push({ type: 'event', view });
        continue;
      }
      const status: TickStatus | undefined = view.from === this.#me ? tickStatus(view.seq, others, state?.members ?? {}) : undefined;
      items.push(status ? { type: 'message', view, status } : { type: 'message', view });
    }
    // Outbox entries of this conversation that carry a message (not an edit, reaction or delete).
    for (const entry of this.#pending()) {
      const mine = conv ? entry.conv === conv : 'to' in target && entry.to === target.to;
      if (!mine || ids.has(entry.id) || messageAction(entry.body)) continue;
      items.push({ type: 'pending', entry });
    }
    return items;
  }

  /** Keyed update of the message list: rebuild an <li> only when its signature changed. */
  #reconcile(items: ChatItem[], ctx: ItemContext): void {
    const keep = new Set<string>();
    const ordered: HTMLLIElement[] = [];
    const active = document.activeElement;
    for (const item of items) {
      const key = itemKey(item);
      keep.add(key);
      const signature = itemSignature(item, ctx);
      const existing = this.#rendered.get(key);
      if (existing && (existing.signature === signature || this.#openMenu?.key === key)) {
        ordered.push(existing.li);
        continue;
      }
      const li = renderItem(item, ctx);
      if (existing) {
        const hadFocus = existing.li === active || existing.li.contains(active);
        const focusedClass = active instanceof HTMLElement && existing.li.contains(active) && active !== existing.li ? active.className : undefined;
        existing.li.replaceWith(li);
        if (hadFocus) {
          const again = focusedClass ? li.querySelector<HTMLElement>(`.${focusedClass.split(' ')[0]}`) : null;
          li.tabIndex = existing.li.tabIndex;
          (again ?? li).focus();
        }
      }
      this.#rendered.set(key, { li, signature });
      ordered.push(li);
    }
    for (const [key, { li }] of this.#rendered) {
      if (!keep.has(key)) {
        li.remove();
        this.#rendered.delete(key);
      }
    }
    // Put them in order, moving only what is out of place.
    let cursor: ChildNode | null = this.#messages.firstChild;
    for (const li of ordered) {
      if (li === cursor) {
        cursor = cursor.nextSibling;
        continue;
      }
      this.#messages.insertBefore(li, cursor);
    }
    // Roving tabindex: one message is reachable with Tab (the focused one, else the last).
    if (!ordered.some((li) => li.tabIndex === 0)) {
      const last = ordered.at(-1);
      if (last) last.tabIndex = 0;
    }
  }
}

function friendlyError(error: ChatError): string {
  switch (error.code) {
    case 'not_found':
      return `Not found: ${error.message}`;
    case 'forbidden':
      return `Not allowed: ${error.message}`;
    case 'not_member':
      return 'You are not a member of that conversation.';
    case 'blocked':
      return 'You cannot message this user.';
    case 'too_large':
      return 'That is too large to send.';
    case 'rate_limited':
      return 'Slow down a little: too many requests.';
    default:
      return error.message;
  }
}
