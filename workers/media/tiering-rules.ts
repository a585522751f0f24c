/**
 * The tiering decision as a pure function (STYLE 7): facts about one media item in, the
 * tier it belongs in (or `delete` past retention) out, with the reasons that led there.
 * The seed's criteria, each a term of the rule:
 *
 * - message age: items younger than `minHotAgeDays` stay hot; past `retentionDays` they go;
 * - last access time: idle time against `warmAfterIdleDays` / `coldAfterIdleDays`;
 * - read status by all members: read by everyone -> thresholds x `readByAllFactor`;
 * - user activity: owner not seen for `inactiveOwnerDays` -> x `inactiveOwnerFactor`;
 * - content type and size: x the type's factor; big items x `largeObjectFactor`; small
 *   items (<= `keepHotMaxBytes`) never move (archive classes bill a minimum size);
 * - group size and engagement: a large, engaged group x `engagedGroupFactor` (keeps media
 *   hot longer); a silent conversation x `inactiveConversationFactor`.
 *
 * The factors multiply into one: below 1 an item moves sooner, above 1 later. The
 * decision depends only on its inputs, so an item read again goes back to hot on the next
 * run (its idle time restarts), and the same facts always give the same tier.
 */
import type { TieringRulesConfig, Tier } from './config.ts';
import { valueForContentType } from './content-types.ts';

const dayMs = 86_400_000;

export interface MediaItemFacts {
  id: string;
  size: number;
  contentType: string;
  /** Upload time (ms). */
  createdAt: number;
  /** Time of the first message that carries the item, when it was sent (ms). */
  messageTs?: number;
  /** Last read (download) or the completion time (ms). */
  lastAccessAt?: number;
}

export interface ConversationActivity {
  kind: 'dm' | 'group' | 'channel';
  memberCount: number;
  /** Time of the last message or membership event (ms). */
  lastActivityAt: number;
  /** User messages in the 7 days before now. */
  messagesLast7Days: number;
}

export interface ReadState {
  /** A message carries the item. */
  attached: boolean;
  /** Every current member's read position is at or past that message. */
  readByAll: boolean;
}

export interface OwnerActivity {
  /** Last time the uploader was online; undefined when never seen (no signal, no factor). */
  lastSeenAt?: number;
}

export type TieringTarget = Tier | 'delete';

export interface TieringDecision {
  target: TieringTarget;
  /** Product of the factors that applied (1 when none did). */
  factor: number;
  /** Human-readable, in the order they were applied: for the operator view. */
  reasons: string[];
}

export function decideTier(
  item: MediaItemFacts,
  conversation: ConversationActivity,
  read: ReadState,
  owner: OwnerActivity,
  now: number,
  rules: TieringRulesConfig,
): TieringDecision {
  const reasons: string[] = [];
  const ageMs = Math.max(0, now - (item.messageTs ?? item.createdAt));
  const retentionMs = rules.retentionDays * dayMs;

  if (retentionMs > 0 && ageMs >= retentionMs) {
    return { target: 'delete', factor: 1, reasons: [`older than retention (${rules.retentionDays} d)`] };
  }
  if (ageMs < rules.minHotAgeDays * dayMs) {
    return { target: 'hot', factor: 1, reasons: [`younger than ${rules.minHotAgeDays} d`] };
  }
  if (item.size <= rules.keepHotMaxBytes) {
    return { target: 'hot', factor: 1, reasons: [`small (<= ${rules.keepHotMaxBytes} B)`] };
  }

  let factor = 1;
  const apply = (f: number, why: string) => {
    if (f === 1) return;
    factor *= f;
    reasons.push(`${why} x${f}`);
  };
  if (read.readByAll) apply(rules.readByAllFactor, 'read by all members');
  if (owner.lastSeenAt !== undefined && now - owner.lastSeenAt >= rules.inactiveOwnerDays * dayMs) {
    apply(rules.inactiveOwnerFactor, `owner inactive ${rules.inactiveOwnerDays} d`);
  }
  const typeFactor = valueForContentType(item.contentType, rules.contentTypeFactors);
  if (typeFactor !== undefined) apply(typeFactor, item.contentType);
  if (item.size >= rules.largeObjectBytes) apply(rules.largeObjectFactor, 'large');
  if (isEngagedLargeGroup(conversation, rules)) apply(rules.engagedGroupFactor, 'large engaged group');
  if (now - conversation.lastActivityAt >= rules.inactiveConversationDays * dayMs) {
    apply(rules.inactiveConversationFactor, `conversation silent ${rules.inactiveConversationDays} d`);
  }

  const idleMs = Math.max(0, now - (item.lastAccessAt ?? item.createdAt));
  const warmAfterMs = rules.warmAfterIdleDays * dayMs * factor;
  const coldAfterMs = rules.coldAfterIdleDays * dayMs * factor;
  const idleDays = Math.floor(idleMs / dayMs);
  let target: Tier = 'hot';
  if (idleMs >= coldAfterMs) {
    target = 'cold';
    reasons.push(`idle ${idleDays} d >= ${round(coldAfterMs / dayMs)} d`);
  } else if (idleMs >= warmAfterMs) {
    target = 'warm';
    reasons.push(`idle ${idleDays} d >= ${round(warmAfterMs / dayMs)} d`);
  } else {
    reasons.push(`idle ${idleDays} d < ${round(warmAfterMs / dayMs)} d`);
  }

  // An archive class bills a minimum storage duration: moving to cold what retention
  // deletes sooner costs more than it saves.
  if (target === 'cold' && retentionMs > 0 && retentionMs - ageMs < rules.coldMinStorageDays * dayMs) {
    target = 'warm';
    reasons.push(`retention in < ${rules.coldMinStorageDays} d`);
  }
  return { target, factor, reasons };
}

export function isEngagedLargeGroup(c: ConversationActivity, rules: TieringRulesConfig): boolean {
  if (c.kind === 'dm' || c.memberCount < rules.largeGroupMembers) return false;
  return c.messagesLast7Days / c.memberCount >= rules.engagedMessagesPerMemberPerWeek;
}

/** The tier of bytes shared by several items: the hottest any live item needs. */
export function hottestTier(targets: Iterable<Tier>): Tier | undefined {
  let best: Tier | undefined;
  for (const t of targets) {
    if (t === 'hot') return 'hot';
    if (t === 'warm' || best === undefined) best = t;
  }
  return best;
}

function round(days: number): number {
  return Math.round(days * 10) / 10;
}
