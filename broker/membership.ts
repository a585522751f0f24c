/**
 * What the hot path of every send asks, served from memory: member lists and roles
 * (DESIGN section 5), conversation kind and announce-only, the 1:1 conversation of a pair,
 * whether a user exists, and blocks. Changes invalidate entries here and, in cluster
 * mode, in every other process through the members bus (`invalidate` takes a conversation
 * id, or a `blocks:` key); entries also expire after `ttlMs` as a safety net.
 */
import type { ChatStore, Role } from '../core/store.ts';
import type { ConvKind } from '../core/fanout.ts';
import type { Clock } from '../core/clock.ts';

interface Entry<T> {
  at: number;
  value: T;
}

export interface ConversationInfo {
  kind: ConvKind;
  announce_only: boolean;
}

/** A bounded map with expiry; the oldest entry goes first when full. */
class Cache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  constructor(private readonly clock: Clock, private readonly ttlMs: number, private readonly max: number) {}
  get(key: string): T | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.clock.now() - e.at >= this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }
  set(key: string, value: T): void {
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { at: this.clock.now(), value });
  }
  delete(key: string): void {
    this.entries.delete(key);
  }
}

export const blocksKey = (a: string, b: string) => (a < b ? `blocks:${a}|${b}` : `blocks:${b}|${a}`);

export class MembershipCache {
  private readonly memberLists: Cache<Map<string, Role>>;
  private readonly infos: Cache<ConversationInfo>;
  private readonly blocks: Cache<boolean>;
  /** Never invalidated: a pair's 1:1 conversation and a user's existence never change. */
  private readonly dms: Cache<string>;
  private readonly users: Cache<true>;

  constructor(
    private readonly store: ChatStore,
    clock: Clock,
    ttlMs = 60_000,
    maxEntries = 10_000,
  ) {
    this.memberLists = new Cache(clock, ttlMs, maxEntries);
    this.infos = new Cache(clock, ttlMs, maxEntries);
    this.blocks = new Cache(clock, ttlMs, maxEntries * 10);
    this.dms = new Cache(clock, Number.POSITIVE_INFINITY, maxEntries * 10);
    this.users = new Cache(clock, Number.POSITIVE_INFINITY, maxEntries * 10);
  }

  async members(conv: string): Promise<Map<string, Role>> {
    const hit = this.memberLists.get(conv);
    if (hit) return hit;
    const list = await this.store.getMembers(conv);
    const members = new Map(list.map((m) => [m.user, m.role] as const));
    this.memberLists.set(conv, members);
    return members;
  }

  async role(conv: string, user: string): Promise<Role | undefined> {
    return (await this.members(conv)).get(user);
  }

  async isMember(conv: string, user: string): Promise<boolean> {
    return (await this.members(conv)).has(user);
  }

  /** Kind and announce-only of a conversation, undefined when there is none. */
  async info(conv: string): Promise<ConversationInfo | undefined> {
    const hit = this.infos.get(conv);
    if (hit) return hit;
    const c = await this.store.getConversation(conv);
    if (!c) return undefined;
    const info = { kind: c.kind, announce_only: c.announce_only };
    this.infos.set(conv, info);
    return info;
  }

  async userExists(user: string): Promise<boolean> {
    if (this.users.get(user)) return true;
    const exists = (await this.store.getUser(user)) !== undefined;
    if (exists) this.users.set(user, true);
    return exists;
  }

  /** The 1:1 conversation of a and b, opened on first use. */
  async dm(a: string, b: string, now: number): Promise<string> {
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    const hit = this.dms.get(key);
    if (hit) return hit;
    const conv = await this.store.openDm(a, b, now);
    this.dms.set(key, conv);
    return conv;
  }

  async blockedBetween(a: string, b: string): Promise<boolean> {
    const key = blocksKey(a, b);
    const hit = this.blocks.get(key);
    if (hit !== undefined) return hit;
    const blocked = await this.store.isBlockedBetween(a, b);
    this.blocks.set(key, blocked);
    return blocked;
  }

  /** Forgets a conversation's members and info, or (with a `blocks:` key) a pair's block state. */
  invalidate(key: string): void {
    if (key.startsWith('blocks:')) {
      this.blocks.delete(key);
      return;
    }
    this.memberLists.delete(key);
    this.infos.delete(key);
  }
}
