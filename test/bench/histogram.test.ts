import t from 'tap';
import { bucketIndex, bucketRange, Histogram, HISTOGRAM_MAX_VALUE } from '../../bench/histogram.js';

/** Exact percentile with the same rank rule (ceil(p% * n)-th smallest). */
function exactPercentile(sorted: number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/** Deterministic PRNG so failures reproduce. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

t.test('empty histogram', async (t) => {
  const h = new Histogram();
  t.equal(h.count, 0);
  t.ok(Number.isNaN(h.percentile(50)));
  t.ok(Number.isNaN(h.max));
  t.ok(Number.isNaN(h.mean));
  t.same(h.toJSON().buckets, []);
});

t.test('small values are exact', async (t) => {
  const h = new Histogram();
  for (let v = 1; v <= 200; v++) h.record(v);
  t.equal(h.percentile(50), 100);
  t.equal(h.percentile(90), 180);
  t.equal(h.percentile(99), 198);
  t.equal(h.percentile(100), 200);
  t.equal(h.percentile(0), 1);
  t.equal(h.min, 1);
  t.equal(h.mean, 100.5);
});

t.test('buckets tile the value range without gaps or overlaps', async (t) => {
  let expectedLow = 0;
  let bad = 0;
  for (let i = 0; ; i++) {
    const [low, high] = bucketRange(i);
    if (low !== expectedLow || high < low) bad++;
    if (bucketIndex(low) !== i || bucketIndex(high) !== i) bad++;
    expectedLow = high + 1;
    if (high >= 1e12) break;
  }
  t.equal(bad, 0);
});

t.test('bucket width stays within 1/128 of the value', async (t) => {
  const rnd = lcg(42);
  let worst = 0;
  let outside = 0;
  for (let k = 0; k < 20000; k++) {
    const v = Math.floor(2 ** (rnd() * 40));
    const [low, high] = bucketRange(bucketIndex(v));
    if (v < low || v > high) outside++;
    worst = Math.max(worst, (high - low) / Math.max(1, v));
  }
  t.equal(outside, 0, 'every value lies inside its own bucket');
  t.ok(worst <= 1 / 128, `worst relative width ${worst}`);
});

t.test('percentiles of a skewed sample are within 1% of the exact ones', async (t) => {
  const rnd = lcg(7);
  const values: number[] = [];
  const h = new Histogram();
  for (let i = 0; i < 50_000; i++) {
    // Long-tailed, like latencies: mostly ~1-5 ms, some up to seconds (µs units).
    const v = Math.round(800 + 4000 * rnd() + (rnd() < 0.02 ? 2_000_000 * rnd() : 0));
    values.push(v);
    h.record(v);
  }
  values.sort((a, b) => a - b);
  for (const p of [50, 90, 99, 99.9]) {
    const exact = exactPercentile(values, p);
    const got = h.percentile(p);
    t.ok(got >= exact, `p${p} ${got} is not below exact ${exact}`);
    t.ok((got - exact) / exact <= 0.01, `p${p} ${got} within 1% of ${exact}`);
  }
  t.equal(h.max, values.at(-1), 'max is exact');
  t.equal(h.min, values[0], 'min is exact');
  t.equal(h.count, 50_000);
});

t.test('merge and the wire form are lossless', async (t) => {
  const rnd = lcg(3);
  const all = new Histogram();
  const parts = [new Histogram(), new Histogram(), new Histogram()];
  for (let i = 0; i < 30_000; i++) {
    const v = Math.floor(rnd() * 1e6);
    all.record(v);
    parts[i % 3]!.record(v);
  }
  const merged = new Histogram();
  for (const p of parts) merged.merge(JSON.parse(JSON.stringify(p.toJSON())));
  t.same(merged.toJSON(), all.toJSON());
  for (const p of [50, 90, 99]) t.equal(merged.percentile(p), all.percentile(p));
  t.same(Histogram.from(all.toJSON()).toJSON(), all.toJSON(), 'from(toJSON()) round-trips');
});

t.test('merging an empty histogram changes nothing', async (t) => {
  const h = new Histogram();
  h.record(5);
  h.merge(new Histogram());
  t.equal(h.min, 5);
  t.equal(h.max, 5);
  t.equal(h.count, 1);
});

t.test('out-of-range inputs are clamped, not lost', async (t) => {
  const h = new Histogram();
  h.record(-5);
  h.record(Number.NaN);
  h.record(1e20);
  t.equal(h.count, 3);
  t.equal(h.min, 0);
  t.equal(h.max, HISTOGRAM_MAX_VALUE);
  t.equal(h.percentile(50), 0);
});

t.test('weighted record and reset', async (t) => {
  const h = new Histogram();
  h.record(10, 99);
  h.record(1000, 1);
  t.equal(h.count, 100);
  t.equal(h.percentile(99), 10);
  t.equal(h.percentile(99.5), 1000);
  h.reset();
  t.equal(h.count, 0);
  t.ok(Number.isNaN(h.percentile(50)));
});
