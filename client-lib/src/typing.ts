/**
 * Typing indicators (DESIGN section 4, `typing/{conv}`, QoS 0, never stored).
 *
 * Outgoing: `typing(conv)` may be called on every keystroke; at most one `typing` publish
 * per `throttleMs`, and an automatic `idle` once the calls stop for `idleAfterMs`.
 * Incoming: another member counts as typing until their `idle`, or until `expireAfterMs`
 * without a fresh `typing` (their `idle` may be lost: QoS 0, or they went offline).
 */

import type { Clock, TimerHandle } from './clock.ts';

export interface TypingOptions {
  throttleMs: number;
  idleAfterMs: number;
  expireAfterMs: number;
}

export const DEFAULT_TYPING: TypingOptions = { throttleMs: 1_000, idleAfterMs: 3_000, expireAfterMs: 6_000 };

export type TypingState = 'typing' | 'idle';

export interface TypingChange {
  conv: string;
  user: string;
  state: TypingState;
}

interface OutgoingTyping {
  lastPublishedAt: number;
  idleTimer: TimerHandle;
}

export class TypingTracker {
  readonly #outgoing = new Map<string, OutgoingTyping>();
  /** conv -> user -> expiry timer of a remote typist. */
  readonly #remote = new Map<string, Map<string, TimerHandle>>();

  constructor(
    private readonly clock: Clock,
    /** Publishes the local user's state on `typing/{conv}`. */
    private readonly publish: (conv: string, state: TypingState) => void,
    /** Reports a change of a remote member's state. */
    private readonly onChange: (change: TypingChange) => void,
    private readonly options: TypingOptions = DEFAULT_TYPING,
  ) {}

  /** The local user typed in `conv`. */
  typing(conv: string): void {
    const now = this.clock.now();
    const current = this.#outgoing.get(conv);
    if (current) this.clock.clearTimeout(current.idleTimer);
    const publishNow = !current || now - current.lastPublishedAt >= this.options.throttleMs;
    if (publishNow) this.publish(conv, 'typing');
    this.#outgoing.set(conv, {
      lastPublishedAt: publishNow || !current ? now : current.lastPublishedAt,
      idleTimer: this.clock.setTimeout(() => this.stop(conv), this.options.idleAfterMs),
    });
  }

  /** The local user stopped (sent the message, left the chat): `idle` now if `typing` was shown. */
  stop(conv: string): void {
    const current = this.#outgoing.get(conv);
    if (!current) return;
    this.clock.clearTimeout(current.idleTimer);
    this.#outgoing.delete(conv);
    this.publish(conv, 'idle');
  }

  isTyping(conv: string): boolean {
    return this.#outgoing.has(conv);
  }

  /** A payload from `typing/{conv}` by another member. */
  receive(conv: string, user: string, state: TypingState): void {
    let users = this.#remote.get(conv);
    const timer = users?.get(user);
    if (timer !== undefined) this.clock.clearTimeout(timer);
    if (state === 'idle') {
      if (timer === undefined) return;
      users!.delete(user);
      this.onChange({ conv, user, state: 'idle' });
      return;
    }
    if (!users) {
      users = new Map();
      this.#remote.set(conv, users);
    }
    users.set(
      user,
      this.clock.setTimeout(() => {
        users.delete(user);
        this.onChange({ conv, user, state: 'idle' });
      }, this.options.expireAfterMs),
    );
    if (timer === undefined) this.onChange({ conv, user, state: 'typing' });
  }

  /** Members currently typing in `conv`. */
  typingUsers(conv: string): string[] {
    return [...(this.#remote.get(conv)?.keys() ?? [])];
  }

  /** Forgets remote typists of `conv` (unwatched) without events. */
  forget(conv: string): void {
    const users = this.#remote.get(conv);
    if (!users) return;
    for (const timer of users.values()) this.clock.clearTimeout(timer);
    this.#remote.delete(conv);
  }

  /** Cancels every timer (client closed). */
  dispose(): void {
    for (const { idleTimer } of this.#outgoing.values()) this.clock.clearTimeout(idleTimer);
    this.#outgoing.clear();
    for (const conv of [...this.#remote.keys()]) this.forget(conv);
  }
}
