import { describe, expect, it } from 'vitest';
import { ConversationSequencer } from '../../src/sequencer.ts';

const item = (seq: number) => ({ seq, text: `m${seq}` });
const seqs = (items: { seq: number }[]) => items.map((i) => i.seq);

describe('ConversationSequencer', () => {
  it('releases in-order items at once', () => {
    const sequencer = new ConversationSequencer(0);
    expect(seqs(sequencer.accept(item(1)).ready)).toEqual([1]);
    expect(seqs(sequencer.accept(item(2)).ready)).toEqual([2]);
    expect(sequencer.contiguous).toBe(2);
    expect(sequencer.gap).toBeUndefined();
  });

  it('holds items above a hole, reports the gap, and releases everything in order once filled', () => {
    const sequencer = new ConversationSequencer(10);
    const first = sequencer.accept(item(14));
    expect(first.ready).toEqual([]);
    expect(first.gap).toEqual({ from: 11, to: 13 });
    expect(sequencer.accept(item(12)).gap).toEqual({ from: 11, to: 11 });
    const filled = sequencer.accept(item(11));
    expect(seqs(filled.ready)).toEqual([11, 12]);
    expect(filled.gap).toEqual({ from: 13, to: 13 });
    expect(seqs(sequencer.accept(item(13)).ready)).toEqual([13, 14]);
    expect(sequencer.contiguous).toBe(14);
    expect(sequencer.bufferedCount).toBe(0);
  });

  it('drops a seq it already released or holds', () => {
    const sequencer = new ConversationSequencer(0);
    sequencer.accept(item(1));
    sequencer.accept(item(3));
    expect(sequencer.accept(item(1))).toMatchObject({ ready: [], duplicate: true });
    expect(sequencer.accept(item(3))).toMatchObject({ ready: [], duplicate: true });
    expect(seqs(sequencer.accept(item(2)).ready)).toEqual([2, 3]);
    expect(sequencer.accept(item(2)).duplicate).toBe(true);
  });

  it('orders any permutation into one ascending run with no duplicates', () => {
    const order = [5, 3, 9, 1, 2, 2, 8, 4, 7, 6, 10, 5, 1];
    const sequencer = new ConversationSequencer(0);
    const released = order.flatMap((seq) => seqs(sequencer.accept(item(seq)).ready));
    expect(released).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('skipThrough settles holes the server will not fill and releases what follows', () => {
    const sequencer = new ConversationSequencer(0);
    sequencer.accept(item(4));
    sequencer.accept(item(5));
    sequencer.accept(item(8));
    const released = sequencer.skipThrough(3);
    expect(seqs(released)).toEqual([4, 5]);
    expect(sequencer.contiguous).toBe(5);
    expect(sequencer.gap).toEqual({ from: 6, to: 7 });
    expect(seqs(sequencer.skipThrough(7))).toEqual([8]);
    expect(sequencer.skipThrough(2)).toEqual([]);
    expect(sequencer.contiguous).toBe(8);
  });

  it('bounds the out-of-order buffer but always takes the next expected seq', () => {
    const sequencer = new ConversationSequencer(0, 2);
    sequencer.accept(item(3));
    sequencer.accept(item(4));
    expect(sequencer.accept(item(5))).toMatchObject({ overflow: true, ready: [] });
    expect(seqs(sequencer.accept(item(1)).ready)).toEqual([1]);
    expect(seqs(sequencer.accept(item(2)).ready)).toEqual([2, 3, 4]);
    expect(seqs(sequencer.accept(item(5)).ready)).toEqual([5]);
  });
});
