/**
 * The tiering rules on fake time: one test per criterion of the seed (last access, message
 * age, read by all members, user activity, content type and size, group size and engagement),
 * each changing only that input against a neutral baseline.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../core/clock.ts';
import { tieringRulesSchema } from '../../workers/media/config.ts';
import {
  decideTier,
  hottestTier,
  type ConversationActivity,
  type MediaItemFacts,
  type OwnerActivity,
  type ReadState,
} from '../../workers/media/tiering-rules.ts';

const day = 86_400_000;
// Neutral baseline: no factor applies (type factor 1, no owner signal, a small active DM).
const rules = tieringRulesSchema.parse({});

function setup() {
  const clock = new FakeClock();
  const t0 = clock.now();
  const item: MediaItemFacts = { id: 'm_1', size: 1_000_000, contentType: 'image/jpeg', createdAt: t0, messageTs: t0, lastAccessAt: t0 };
  const conv = (): ConversationActivity => ({ kind: 'dm', memberCount: 2, lastActivityAt: clock.now(), messagesLast7Days: 5 });
  const unread: ReadState = { attached: true, readByAll: false };
  const owner = (): OwnerActivity => ({ lastSeenAt: clock.now() });
  const decide = (overrides: { item?: Partial<MediaItemFacts>; conv?: Partial<ConversationActivity>; read?: ReadState; owner?: OwnerActivity; rules?: Partial<typeof rules> } = {}) =>
    decideTier({ ...item, ...overrides.item }, { ...conv(), ...overrides.conv }, overrides.read ?? unread, overrides.owner ?? owner(), clock.now(), { ...rules, ...overrides.rules });
  return { clock, t0, decide };
}

describe('tiering rules', () => {
  it('last access time: hot, then warm after warmAfterIdleDays, cold after coldAfterIdleDays; a new access brings it back', () => {
    const { clock, decide } = setup();
    clock.advance(29 * day);
    expect(decide().target).toBe('hot');
    clock.advance(1 * day);
    expect(decide().target).toBe('warm');
    clock.advance(89 * day);
    expect(decide().target).toBe('warm');
    clock.advance(1 * day);
    const cold = decide();
    expect(cold.target).toBe('cold');
    expect(cold.reasons.join(' ')).toMatch(/idle 120 d >= 120 d/);
    expect(decide({ item: { lastAccessAt: clock.now() - 2 * day } }).target).toBe('hot');
  });

  it('message age: younger than minHotAgeDays stays hot whatever else; past retentionDays it is deleted', () => {
    const { clock, t0, decide } = setup();
    clock.advance(200 * day);
    // Uploaded long ago but sent in a message 3 days ago: the message's age counts.
    expect(decide({ item: { messageTs: clock.now() - 3 * day } }).target).toBe('hot');
    expect(decide({ item: { messageTs: undefined, createdAt: clock.now() - 3 * day, lastAccessAt: t0 } }).target).toBe('hot');
    expect(decide().target).toBe('cold');
    expect(decide({ rules: { retentionDays: 365 } }).target).toBe('cold');
    clock.advance(165 * day);
    const gone = decide({ rules: { retentionDays: 365 } });
    expect(gone.target).toBe('delete');
    expect(gone.reasons[0]).toMatch(/retention/);
  });

  it('message age: no cold move when retention deletes it sooner than coldMinStorageDays', () => {
    const { clock, decide } = setup();
    clock.advance(130 * day);
    expect(decide({ rules: { retentionDays: 400 } }).target).toBe('cold');
    const capped = decide({ rules: { retentionDays: 200 } });
    expect(capped.target).toBe('warm');
    expect(capped.reasons.at(-1)).toMatch(/retention in < 90 d/);
  });

  it('read status by all members: read by everyone moves twice as fast (readByAllFactor 0.5)', () => {
    const { clock, decide } = setup();
    clock.advance(15 * day);
    expect(decide().target).toBe('hot');
    const read = decide({ read: { attached: true, readByAll: true } });
    expect(read.target).toBe('warm');
    expect(read.factor).toBe(0.5);
    expect(read.reasons[0]).toMatch(/read by all members/);
    clock.advance(45 * day);
    expect(decide({ read: { attached: true, readByAll: true } }).target).toBe('cold');
  });

  it('user activity: an owner not seen for inactiveOwnerDays moves their items sooner; never seen is no signal', () => {
    const { clock, decide } = setup();
    clock.advance(20 * day);
    expect(decide({ owner: { lastSeenAt: clock.now() - 89 * day } }).target).toBe('hot');
    expect(decide({ owner: { lastSeenAt: clock.now() - 90 * day } }).target).toBe('warm');
    expect(decide({ owner: {} }).target).toBe('hot');
  });

  it('content type: the most specific pattern gives the factor (video sooner, pdf later)', () => {
    const { clock, decide } = setup();
    clock.advance(15 * day);
    expect(decide({ item: { contentType: 'video/mp4' } }).target).toBe('warm');
    clock.advance(20 * day);
    expect(decide({ item: { contentType: 'image/png' } }).target).toBe('warm');
    expect(decide({ item: { contentType: 'application/pdf' } }).target).toBe('hot');
    const specific = decide({ item: { contentType: 'video/mp4' }, rules: { contentTypeFactors: { 'video/*': 0.5, 'video/mp4': 3 } } });
    expect(specific.factor).toBe(3);
    expect(specific.target).toBe('hot');
  });

  it('size: large items move sooner; small ones never move (archive classes bill a minimum size)', () => {
    const { clock, decide } = setup();
    clock.advance(15 * day);
    expect(decide({ item: { size: 60 * 1024 * 1024 } }).target).toBe('warm');
    expect(decide({ item: { size: 10 * 1024 * 1024 } }).target).toBe('hot');
    clock.advance(385 * day);
    const small = decide({ item: { size: 100_000 } });
    expect(small.target).toBe('hot');
    expect(small.reasons[0]).toMatch(/small/);
  });

  it('group size and engagement: a large engaged group keeps media hot longer; a small or quiet one does not', () => {
    const { clock, decide } = setup();
    clock.advance(45 * day);
    const engaged = { kind: 'group' as const, memberCount: 200, messagesLast7Days: 150 };
    expect(decide().target).toBe('warm');
    const e = decide({ conv: engaged });
    expect(e.target).toBe('hot');
    expect(e.reasons[0]).toMatch(/large engaged group/);
    // Large but quiet (< 0.5 message per member per week), or engaged but small: no factor.
    expect(decide({ conv: { ...engaged, messagesLast7Days: 50 } }).target).toBe('warm');
    expect(decide({ conv: { kind: 'group', memberCount: 10, messagesLast7Days: 100 } }).target).toBe('warm');
  });

  it('group activity: a conversation silent for inactiveConversationDays moves sooner', () => {
    const { clock, decide } = setup();
    clock.advance(20 * day);
    expect(decide({ conv: { lastActivityAt: clock.now() - 59 * day } }).target).toBe('hot');
    const silent = decide({ conv: { lastActivityAt: clock.now() - 60 * day } });
    expect(silent.target).toBe('warm');
    expect(silent.factor).toBe(0.5);
  });

  it('factors multiply', () => {
    const { clock, decide } = setup();
    clock.advance(10 * day);
    const d = decide({ item: { contentType: 'video/webm', size: 60 * 1024 * 1024 }, read: { attached: true, readByAll: true } });
    expect(d.factor).toBe(0.125);
    // 30 d x 0.125 = 3.75 d to warm, 120 d x 0.125 = 15 d to cold.
    expect(d.target).toBe('warm');
    clock.advance(5 * day);
    expect(decide({ item: { contentType: 'video/webm', size: 60 * 1024 * 1024 }, read: { attached: true, readByAll: true } }).target).toBe('cold');
  });

  it('is pure: the same facts give the same decision', () => {
    const { clock, decide } = setup();
    clock.advance(50 * day);
    expect(decide()).toEqual(decide());
  });

  it('a shared blob takes the hottest tier any of its items needs', () => {
    expect(hottestTier(['cold', 'warm', 'cold'])).toBe('warm');
    expect(hottestTier(['cold', 'hot'])).toBe('hot');
    expect(hottestTier(['cold'])).toBe('cold');
    expect(hottestTier([])).toBeUndefined();
  });
});
