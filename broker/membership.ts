/**
 * Member lists served from a cache that membership changes invalidate (DESIGN section 5).
 * In cluster mode every node's cache is invalidated through the `invalidate` hook
 * (wired to pub/sub); entries also expire after `ttlMs` as a safety net.
 */
import type { ChatStore, Role } from '../core/store.ts';
import type { Clock } from '../core/clock.ts';

export class MembershipCache {
  private readonly entries = new Map<string, { at: number; members: Map<string, Role> }>();

  constructor(
    private readonly store: ChatStore,
    private readonly clock: Clock,
    private readonly ttlMs = 60_000,
    private readonly maxEntries = 10_000,
  ) {}

  async members(conv: string): Promise<Map<string, Role>> {
    const hit = this.entries.get(conv);
    if (hit && this.clock.now() - hit.at < this.ttlMs) return hit.members;
    const list = await this.store.getMembers(conv);
    const members = new Map(list.map((m) => [m.user, m.role] as const));
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(conv, { at: this.clock.now(), members });
    return members;
  }

  async role(conv: string, user: string): Promise<Role | undefined> {
    return (await this.members(conv)).get(user);
  }

  async isMember(conv: string, user: string): Promise<boolean> {
    return (await this.members(conv)).has(user);
  }

  invalidate(conv: string): void {
    this.entries.delete(conv);
  }
}
