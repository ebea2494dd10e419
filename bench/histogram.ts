/**
 * Log-linear latency histogram (HdrHistogram-style, fixed memory).
 *
 * Values are non-negative integers (the bench records microseconds). Values
 * below 2^SUB_BITS are counted exactly; above, each power of two is split into
 * 2^(SUB_BITS-1) equal buckets, so a reported percentile is within 1/128
 * (< 0.8 %) of the true sample value. Counts serialise sparsely so worker
 * processes can ship them to the parent and be merged exactly.
 */

const SUB_BITS = 8;
const EXACT_LIMIT = 1 << SUB_BITS; // 256: values below are their own bucket
const HALF = EXACT_LIMIT >> 1; // 128 buckets per octave above EXACT_LIMIT
const MAX_EXPONENT = 45; // ~3.5e13: 1 year in µs fits comfortably
const BUCKETS = EXACT_LIMIT + (MAX_EXPONENT - SUB_BITS + 1) * HALF;
export const HISTOGRAM_MAX_VALUE = 2 ** (MAX_EXPONENT + 1) - 1;

/** floor(log2(v)) for a positive safe integer, exact even above 2^32. */
function exponentOf(v: number): number {
  let e = Math.floor(Math.log2(v));
  // Math.log2 can be off by one ulp around exact powers of two.
  if (2 ** e > v) e--;
  else if (2 ** (e + 1) <= v) e++;
  return e;
}

export function bucketIndex(value: number): number {
  if (value < EXACT_LIMIT) return value;
  const e = exponentOf(value);
  const width = 2 ** (e - SUB_BITS + 1);
  const mantissa = Math.floor(value / width); // in [HALF, EXACT_LIMIT)
  return EXACT_LIMIT + (e - SUB_BITS) * HALF + (mantissa - HALF);
}

/** Inclusive [low, high] range of values that land in bucket `index`. */
export function bucketRange(index: number): [number, number] {
  if (index < EXACT_LIMIT) return [index, index];
  const rel = index - EXACT_LIMIT;
  const e = SUB_BITS + Math.floor(rel / HALF);
  const mantissa = HALF + (rel % HALF);
  const width = 2 ** (e - SUB_BITS + 1);
  return [mantissa * width, (mantissa + 1) * width - 1];
}

/** Sparse wire form: [bucketIndex, count] pairs plus exact aggregates. */
export interface HistogramData {
  buckets: Array<[number, number]>;
  count: number;
  sum: number;
  min: number;
  max: number;
}

export class Histogram {
  private counts = new Float64Array(BUCKETS);
  private total = 0;
  private sumValues = 0;
  private minValue = Infinity;
  private maxValue = -Infinity;

  get count(): number {
    return this.total;
  }

  /** Records one sample; negatives clamp to 0 and huge values to the max. */
  record(value: number, times = 1): void {
    let v = Math.round(value);
    if (!(v >= 0)) v = 0; // also catches NaN
    if (v > HISTOGRAM_MAX_VALUE) v = HISTOGRAM_MAX_VALUE;
    this.counts[bucketIndex(v)]! += times;
    this.total += times;
    this.sumValues += v * times;
    if (v < this.minValue) this.minValue = v;
    if (v > this.maxValue) this.maxValue = v;
  }

  get min(): number {
    return this.total === 0 ? NaN : this.minValue;
  }

  get max(): number {
    return this.total === 0 ? NaN : this.maxValue;
  }

  get mean(): number {
    return this.total === 0 ? NaN : this.sumValues / this.total;
  }

  /**
   * Value at percentile p (0..100): the upper edge of the bucket holding the
   * ceil(p% * count)-th smallest sample, clamped to the recorded min/max so
   * p0 and p100 are exact. NaN when empty.
   */
  percentile(p: number): number {
    if (this.total === 0) return NaN;
    if (p <= 0) return this.minValue;
    if (p >= 100) return this.maxValue;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) {
        const high = bucketRange(i)[1];
        return Math.max(this.minValue, Math.min(high, this.maxValue));
      }
    }
    return this.maxValue;
  }

  merge(other: Histogram | HistogramData): void {
    const data = other instanceof Histogram ? other.toJSON() : other;
    for (const [index, n] of data.buckets) {
      if (index < 0 || index >= BUCKETS) throw new RangeError(`bucket ${index} out of range`);
      this.counts[index]! += n;
    }
    if (data.count === 0) return;
    this.total += data.count;
    this.sumValues += data.sum;
    this.minValue = Math.min(this.minValue, data.min);
    this.maxValue = Math.max(this.maxValue, data.max);
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.sumValues = 0;
    this.minValue = Infinity;
    this.maxValue = -Infinity;
  }

  toJSON(): HistogramData {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < BUCKETS; i++) {
      const n = this.counts[i]!;
      if (n !== 0) buckets.push([i, n]);
    }
    return {
      buckets,
      count: this.total,
      sum: this.sumValues,
      min: this.total === 0 ? 0 : this.minValue,
      max: this.total === 0 ? 0 : this.maxValue,
    };
  }

  static from(data: HistogramData): Histogram {
    const h = new Histogram();
    h.merge(data);
    return h;
  }
}
