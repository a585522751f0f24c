import { describe, expect, it } from 'vitest';
import {
  bottleneck,
  bucketHigh,
  bucketIndex,
  bucketLow,
  cpuPercent,
  createHistogram,
  fromData,
  histogramPercentile,
  mergeHistograms,
  parseCpuList,
  perItem,
  perSecond,
  percentileOfSorted,
  ratio,
  record,
  shares,
  summarizeMs,
  toData,
} from '../../bench/lib/stats.ts';

describe('percentileOfSorted (nearest rank)', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  it('takes the ceil(q*n)-th smallest value', () => {
    expect(percentileOfSorted(xs, 0.5)).toBe(50);
    expect(percentileOfSorted(xs, 0.99)).toBe(99);
    expect(percentileOfSorted(xs, 0.999)).toBe(100);
    expect(percentileOfSorted(xs, 1)).toBe(100);
    expect(percentileOfSorted(xs, 0)).toBe(1);
  });
  it('is NaN for no samples and clamps q', () => {
    expect(percentileOfSorted([], 0.5)).toBeNaN();
    expect(percentileOfSorted([7], 2)).toBe(7);
    expect(percentileOfSorted([7, 9], -1)).toBe(7);
  });
});

describe('histogram buckets', () => {
  it('are exact below 256', () => {
    for (const v of [0, 1, 17, 255]) {
      const i = bucketIndex(v);
      expect(bucketLow(i)).toBe(v);
      expect(bucketHigh(i)).toBe(v);
    }
  });
  it('contain their values, with less than 1 % relative width above 256', () => {
    for (const v of [256, 257, 511, 512, 1000, 4096, 65535, 123456, 2 ** 20, 2 ** 20 - 1, 987654321]) {
      const i = bucketIndex(v);
      expect(bucketLow(i)).toBeLessThanOrEqual(v);
      expect(bucketHigh(i)).toBeGreaterThanOrEqual(v);
      expect((bucketHigh(i) - bucketLow(i) + 1) / bucketLow(i)).toBeLessThanOrEqual(1 / 128);
    }
  });
  it('are monotonic and contiguous', () => {
    let prev = -1;
    for (let i = 0; i < 2000; i++) {
      expect(bucketLow(i)).toBe(prev + 1);
      prev = bucketHigh(i);
    }
    let last = 0;
    for (let v = 0; v < 100000; v += 37) {
      const i = bucketIndex(v);
      expect(i).toBeGreaterThanOrEqual(last);
      last = i;
    }
  });
  it('rounds and floors negatives to 0', () => {
    expect(bucketIndex(-5)).toBe(0);
    expect(bucketIndex(2.6)).toBe(3);
  });
});

describe('histogramPercentile', () => {
  it('agrees with the exact percentile within a bucket', () => {
    const h = createHistogram();
    const xs: number[] = [];
    for (let i = 1; i <= 10000; i++) {
      const v = (i * 7919) % 50000; // deterministic spread
      xs.push(v);
      record(h, v);
    }
    xs.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const exact = percentileOfSorted(xs, q);
      expect(Math.abs(histogramPercentile(h, q) - exact)).toBeLessThanOrEqual(exact / 128 + 1);
    }
  });
  it('is clamped to min and max and NaN when empty', () => {
    const h = createHistogram();
    expect(histogramPercentile(h, 0.5)).toBeNaN();
    record(h, 1000);
    expect(histogramPercentile(h, 0.5)).toBe(1000);
    expect(histogramPercentile(h, 0.999)).toBe(1000);
  });
  it('summarizes µs into ms', () => {
    const h = createHistogram();
    for (const v of [1000, 2000, 3000, 4000]) record(h, v);
    const s = summarizeMs(h);
    expect(s.count).toBe(4);
    expect(s.mean).toBe(2.5);
    expect(s.max).toBe(4);
    expect(s.p50).toBeCloseTo(2, 1);
  });
});

describe('mergeHistograms and the wire form', () => {
  it('merging equals recording everything in one', () => {
    const a = createHistogram();
    const b = createHistogram();
    const all = createHistogram();
    for (let i = 0; i < 500; i++) {
      record(i % 2 ? a : b, i * 13);
      record(all, i * 13);
    }
    const m = mergeHistograms([fromData(toData(a)), fromData(JSON.parse(JSON.stringify(toData(b))))]);
    expect(m.total).toBe(all.total);
    expect(m.min).toBe(all.min);
    expect(m.max).toBe(all.max);
    expect(m.sum).toBe(all.sum);
    for (const q of [0.5, 0.99]) expect(histogramPercentile(m, q)).toBe(histogramPercentile(all, q));
  });
});

describe('ratio, rates and CPU', () => {
  it('ratio refuses missing or non-positive denominators', () => {
    expect(ratio(50, 100)).toBe(0.5);
    expect(ratio(50, 0)).toBeNull();
    expect(ratio(50, null)).toBeNull();
    expect(ratio(undefined, 3)).toBeNull();
    expect(ratio(Number.NaN, 3)).toBeNull();
  });
  it('perSecond and perItem', () => {
    expect(perSecond(500, 250)).toBe(2000);
    expect(perSecond(5, 0)).toBe(0);
    expect(perItem(1000, 11000, 10)).toBe(1000);
    expect(perItem(1000, 11000, 0)).toBeNull();
  });
  it('cpuPercent converts clock ticks over a window', () => {
    expect(cpuPercent(100, 100, 1000)).toBe(100);
    expect(cpuPercent(50, 100, 2000)).toBe(25);
    expect(cpuPercent(5, 100, 0)).toBe(0);
  });
  it('bottleneck names the saturated side(s)', () => {
    expect(bottleneck({ cpuPct: 99, cores: 1 }, { cpuPct: 40, cores: 1 })).toBe('generator');
    expect(bottleneck({ cpuPct: 50, cores: 1 }, { cpuPct: 95, cores: 1 })).toBe('broker');
    expect(bottleneck({ cpuPct: 95, cores: 1 }, { cpuPct: 92, cores: 1 })).toBe('both');
    expect(bottleneck({ cpuPct: 100, cores: 2 }, { cpuPct: 50, cores: 1 })).toBe('neither');
  });
});

describe('parseCpuList and shares', () => {
  it('parses taskset lists', () => {
    expect(parseCpuList('0')).toEqual([0]);
    expect(parseCpuList('0,2-4')).toEqual([0, 2, 3, 4]);
    expect(parseCpuList('3,1,1')).toEqual([1, 3]);
    expect(() => parseCpuList('a')).toThrow();
    expect(() => parseCpuList('3-1')).toThrow();
  });
  it('splits work into contiguous near-equal shares', () => {
    expect(shares(100, 1)).toEqual([[0, 100]]);
    expect(shares(10, 3)).toEqual([
      [0, 3],
      [3, 6],
      [6, 10],
    ]);
    expect(shares(2, 5)).toEqual([
      [0, 1],
      [1, 2],
    ]);
  });
});
