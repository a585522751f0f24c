// Pure statistics for the benchmarks: a log-linear latency histogram (mergeable across
// worker processes, 128 sub-buckets per octave: relative error below 0.8 %), nearest-rank
// percentiles, ratios and CPU accounting. No I/O, no clocks: everything takes data and
// returns data, so that test/bench/stats.test.ts can pin it down.

/** Values below this are stored exactly (one bucket per integer). */
const LINEAR = 256;
/** Sub-buckets per octave above LINEAR. */
const SUB = 128;
const SUB_BITS = 7; // log2(SUB)
/** Highest bucket index: values up to 2^40 µs (12 days) are kept apart. */
const MAX_INDEX = LINEAR + (40 - 8) * SUB + (SUB - 1);

/** A latency histogram; values are non-negative numbers (the benchmarks record µs). */
export interface Histogram {
  /** Sparse counts: bucket index -> count. */
  counts: Map<number, number>;
  total: number;
  sum: number;
  min: number;
  max: number;
}

/** The wire form of a histogram (structured clone / JSON friendly). */
export interface HistogramData {
  buckets: Array<[number, number]>;
  total: number;
  sum: number;
  min: number;
  max: number;
}

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export function createHistogram(): Histogram {
  return { counts: new Map(), total: 0, sum: 0, min: Number.POSITIVE_INFINITY, max: 0 };
}

/** The bucket that holds value v (v is rounded to an integer, negatives count as 0). */
export function bucketIndex(v: number): number {
  const x = v > 0 ? Math.round(v) : 0;
  if (x < LINEAR) return x;
  const k = Math.floor(Math.log2(x));
  // Math.log2 can be off by one at exact powers of two for large x: correct it.
  const octave = 2 ** k > x ? k - 1 : 2 ** (k + 1) <= x ? k + 1 : k;
  const shift = octave - SUB_BITS;
  const m = Math.floor(x / 2 ** shift); // in [SUB, 2*SUB)
  const index = LINEAR + (octave - 8) * SUB + (m - SUB);
  return index > MAX_INDEX ? MAX_INDEX : index;
}

/** The smallest value that falls into bucket i. */
export function bucketLow(i: number): number {
  if (i < LINEAR) return i;
  const octave = Math.floor((i - LINEAR) / SUB) + 8;
  const m = ((i - LINEAR) % SUB) + SUB;
  return m * 2 ** (octave - SUB_BITS);
}

/** The largest value that falls into bucket i. */
export function bucketHigh(i: number): number {
  if (i < LINEAR) return i;
  const octave = Math.floor((i - LINEAR) / SUB) + 8;
  return bucketLow(i) + 2 ** (octave - SUB_BITS) - 1;
}

export function record(h: Histogram, v: number): void {
  const i = bucketIndex(v);
  h.counts.set(i, (h.counts.get(i) ?? 0) + 1);
  h.total += 1;
  h.sum += v;
  if (v < h.min) h.min = v;
  if (v > h.max) h.max = v;
}

export function mergeHistograms(hs: readonly Histogram[]): Histogram {
  const out = createHistogram();
  for (const h of hs) {
    for (const [i, c] of h.counts) out.counts.set(i, (out.counts.get(i) ?? 0) + c);
    out.total += h.total;
    out.sum += h.sum;
    if (h.min < out.min) out.min = h.min;
    if (h.max > out.max) out.max = h.max;
  }
  return out;
}

export function toData(h: Histogram): HistogramData {
  return { buckets: [...h.counts.entries()], total: h.total, sum: h.sum, min: h.min, max: h.max };
}

export function fromData(d: HistogramData): Histogram {
  return { counts: new Map(d.buckets), total: d.total, sum: d.sum, min: d.min, max: d.max };
}

/**
 * Nearest-rank percentile (q in [0, 1]): the value of the ceil(q*n)-th smallest sample,
 * reported as the middle of its bucket and clamped to the observed [min, max].
 * Returns NaN for an empty histogram.
 */
export function histogramPercentile(h: Histogram, q: number): number {
  if (h.total === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(clamp01(q) * h.total));
  const indices = [...h.counts.keys()].sort((a, b) => a - b);
  let seen = 0;
  for (const i of indices) {
    seen += h.counts.get(i) ?? 0;
    if (seen >= rank) {
      const mid = i < LINEAR ? i : (bucketLow(i) + bucketHigh(i)) / 2;
      return Math.min(h.max, Math.max(h.min, mid));
    }
  }
  return h.max;
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentileOfSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(clamp01(q) * sorted.length));
  return sorted[rank - 1];
}

/** count, mean and p50/p99/p999/max of a histogram of µs, converted to ms. */
export function summarizeMs(h: Histogram): LatencySummary {
  const ms = (us: number): number => round3(us / 1000);
  return {
    count: h.total,
    mean: h.total === 0 ? Number.NaN : ms(h.sum / h.total),
    p50: ms(histogramPercentile(h, 0.5)),
    p99: ms(histogramPercentile(h, 0.99)),
    p999: ms(histogramPercentile(h, 0.999)),
    max: h.total === 0 ? Number.NaN : ms(h.max),
  };
}

/** a / b, or null when either side is missing or b is not a positive finite number. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return null;
  return a / b;
}

/** Events per second; 0 for an empty window. */
export function perSecond(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : 0;
}

/** CPU use in percent of one core, from clock ticks spent over a wall-clock window. */
export function cpuPercent(ticks: number, clkTck: number, wallMs: number): number {
  if (wallMs <= 0 || clkTck <= 0) return 0;
  return (ticks / clkTck / (wallMs / 1000)) * 100;
}

export type Bottleneck = 'generator' | 'broker' | 'both' | 'neither';

/**
 * Which side a figure measured: a side is saturated when it used at least `threshold`
 * (fraction) of the cores it is pinned to.
 */
export function bottleneck(
  gen: { cpuPct: number; cores: number },
  broker: { cpuPct: number; cores: number },
  threshold = 0.9,
): Bottleneck {
  const genSat = gen.cpuPct >= threshold * 100 * gen.cores;
  const brokerSat = broker.cpuPct >= threshold * 100 * broker.cores;
  if (genSat && brokerSat) return 'both';
  if (genSat) return 'generator';
  if (brokerSat) return 'broker';
  return 'neither';
}

/** Parse a CPU list as taskset writes it ("0", "1-3", "0,2-3") into core numbers. */
export function parseCpuList(list: string): number[] {
  const out = new Set<number>();
  for (const part of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`bad CPU list "${list}"`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new Error(`bad CPU list "${list}"`);
    for (let c = lo; c <= hi; c++) out.add(c);
  }
  return [...out].sort((a, b) => a - b);
}

/** Split n items into k near-equal contiguous shares: [start, end) pairs. */
export function shares(n: number, k: number): Array<[number, number]> {
  const parts = Math.max(1, Math.min(k, Math.max(n, 1)));
  const out: Array<[number, number]> = [];
  for (let i = 0; i < parts; i++) {
    out.push([Math.floor((i * n) / parts), Math.floor(((i + 1) * n) / parts)]);
  }
  return out;
}

/** Bytes per item of a memory growth; null when nothing was added. */
export function perItem(bytesBefore: number, bytesAfter: number, items: number): number | null {
  return items > 0 ? (bytesAfter - bytesBefore) / items : null;
}

function clamp01(q: number): number {
  return q < 0 ? 0 : q > 1 ? 1 : q;
}

function round3(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1000) / 1000 : x;
}
