import { beforeEach, describe, expect, it } from 'vitest';
import { TypingTracker, type TypingChange, type TypingState } from '../../src/typing.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

describe('TypingTracker', () => {
  let clock: FakeClock;
  let published: { at: number; conv: string; state: TypingState }[];
  let changes: TypingChange[];
  let tracker: TypingTracker;

  beforeEach(() => {
    clock = new FakeClock(0);
    published = [];
    changes = [];
    tracker = new TypingTracker(
      clock,
      (conv, state) => published.push({ at: clock.now(), conv, state }),
      (change) => changes.push(change),
    );
  });

  it('publishes typing at most once per second however often it is called', () => {
    for (let t = 0; t <= 2_500; t += 100) {
      clock.advance(t === 0 ? 0 : 100);
      tracker.typing('c1');
    }
    expect(published.filter((p) => p.state === 'typing').map((p) => p.at)).toEqual([0, 1_000, 2_000]);
  });

  it('publishes idle about 3 s after the last call, once', () => {
    tracker.typing('c1');
    clock.advance(1_500);
    tracker.typing('c1');
    clock.advance(2_999);
    expect(published.map((p) => p.state)).toEqual(['typing', 'typing']);
    clock.advance(1);
    expect(published.at(-1)).toEqual({ at: 4_500, conv: 'c1', state: 'idle' });
    clock.advance(10_000);
    expect(published).toHaveLength(3);
    expect(tracker.isTyping('c1')).toBe(false);
  });

  it('stop() publishes idle at once and only when typing was shown', () => {
    tracker.stop('c1');
    expect(published).toEqual([]);
    tracker.typing('c1');
    tracker.stop('c1');
    expect(published.map((p) => p.state)).toEqual(['typing', 'idle']);
    clock.advance(5_000);
    expect(published).toHaveLength(2);
  });

  it('throttles per conversation', () => {
    tracker.typing('a');
    tracker.typing('b');
    tracker.typing('a');
    expect(published.map((p) => `${p.conv}:${p.state}`)).toEqual(['a:typing', 'b:typing']);
  });

  it('shows a remote typist until their idle', () => {
    tracker.receive('c1', 'bob', 'typing');
    tracker.receive('c1', 'bob', 'typing');
    expect(tracker.typingUsers('c1')).toEqual(['bob']);
    clock.advance(2_000);
    tracker.receive('c1', 'bob', 'idle');
    expect(changes).toEqual([
      { conv: 'c1', user: 'bob', state: 'typing' },
      { conv: 'c1', user: 'bob', state: 'idle' },
    ]);
    expect(tracker.typingUsers('c1')).toEqual([]);
  });

  it('expires a remote typist 6 s after their last typing when no idle comes', () => {
    tracker.receive('c1', 'bob', 'typing');
    clock.advance(4_000);
    tracker.receive('c1', 'bob', 'typing'); // refreshes the expiry
    clock.advance(5_999);
    expect(tracker.typingUsers('c1')).toEqual(['bob']);
    clock.advance(1);
    expect(tracker.typingUsers('c1')).toEqual([]);
    expect(changes.at(-1)).toEqual({ conv: 'c1', user: 'bob', state: 'idle' });
    expect(changes).toHaveLength(2);
  });

  it('ignores an idle from someone not shown as typing', () => {
    tracker.receive('c1', 'carol', 'idle');
    expect(changes).toEqual([]);
  });

  it('dispose cancels every timer', () => {
    tracker.typing('c1');
    tracker.receive('c1', 'bob', 'typing');
    tracker.dispose();
    expect(clock.pendingTimers).toBe(0);
  });
});
