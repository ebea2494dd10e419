import t from 'tap';
import { ConfigError, cacheMemoryLimitBytes, loadConfig } from '../src/config/index.js';
import { CacheBudget, LOW_WATER_FRACTION, OPAQUE_FLOOR_BYTES, waterLevel } from '../src/media/cache-budget.js';
import { CHUNK_OVERHEAD_BYTES } from '../src/media/chunk-cache.js';
import { MediaCache } from '../src/media/media-cache.js';
import { avcFrame, avcSequenceHeader, flvHeader } from './media/builders.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** An opaque stream's cache (no sniffing) in `budget`, with a per-channel cap far above it. */
const opaque = (budget: CacheBudget): MediaCache => new MediaCache({ capacityBytes: 256 * MiB, detect: false, budget });
/** A chunk whose every byte is `seq` mod 256, so what a snapshot keeps can be read back. */
const chunk = (seq: number, size = 16 * KiB): Uint8Array => new Uint8Array(size).fill(seq & 0xff);

/** A synthetic FLV (H.264) stream: header and sequence headers, then GOPs of `frames` frames. */
function flvStart(): Buffer {
  return Buffer.concat([flvHeader(false, true), avcSequenceHeader(0)]);
}
function flvGop(startMs: number, frames: number, frameBytes: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < frames; i++) out.push(avcFrame(startMs + i * 40, i === 0, frameBytes));
  return out;
}

t.test('waterLevel cuts the largest surpluses to one common level', async (t) => {
  t.equal(waterLevel([100, 10, 10], 50), 50);
  // Cutting 100 and 60 to 40 frees 80.
  t.equal(waterLevel([100, 60, 10], 80), 40);
  t.equal(waterLevel([30, 30, 30], 90), 0);
  const surpluses = [7_000, 3_000, 900, 50];
  const level = waterLevel(surpluses, 5_000);
  const freed = surpluses.reduce((sum, s) => sum + Math.max(0, s - level), 0);
  t.ok(freed >= 5_000 && freed < 5_000 + surpluses.length, `frees what is needed (${freed})`);
});

t.test('the total follows every size change, and ending or clearing releases it', async (t) => {
  const budget = new CacheBudget(0);
  const a = opaque(budget);
  const b = opaque(budget);
  for (let i = 0; i < 10; i++) a.push(chunk(i));
  for (let i = 0; i < 5; i++) b.push(chunk(i));
  t.equal(budget.total, a.size + b.size);
  t.equal(budget.total, 15 * (16 * KiB + CHUNK_OVERHEAD_BYTES));
  t.equal(budget.count, 2);
  b.clearAndDisable();
  t.equal(budget.total, a.size);
  t.equal(budget.count, 1);
  a.reset();
  t.equal(budget.total, 0);
  t.equal(budget.count, 0);
  t.equal(budget.trims, 0, 'no limit: never trims');
});

t.test('over the limit, the oldest opaque bytes go first, down to the low-water mark', async (t) => {
  const limit = 4 * MiB;
  const budget = new CacheBudget(limit);
  const cache = opaque(budget);
  let seq = 0;
  while (budget.trims === 0) cache.push(chunk(seq++));
  t.ok(budget.total <= limit * LOW_WATER_FRACTION, `trimmed to the low-water mark (${budget.total})`);
  const kept = cache.snapshot().chunks.map((part) => part[0]);
  // The newest chunks, contiguous up to the last one pushed.
  t.equal(kept.at(-1), (seq - 1) & 0xff);
  t.same(kept, kept.map((_, i) => (seq - kept.length + i) & 0xff));
  // Amortised: the next trim only after the limit is passed again.
  const trimsBefore = budget.trims;
  const pushes = Math.floor((limit - budget.total) / (16 * KiB + CHUNK_OVERHEAD_BYTES));
  for (let i = 0; i < pushes; i++) cache.push(chunk(seq++));
  t.equal(budget.trims, trimsBefore, 'no trim while under the limit');
  for (let i = 0; i < 1000; i++) {
    cache.push(chunk(seq++));
    t.ok(budget.total <= limit, 'never over the limit after a push');
    if (budget.total > limit) break;
  }
  t.ok(budget.trims < trimsBefore + 1000 / 16, `few trims (${budget.trims - trimsBefore} for 1000 chunks)`);
});

t.test('the caches holding the most lose the most; a small one keeps its bytes', async (t) => {
  const budget = new CacheBudget(6 * MiB);
  const big = opaque(budget);
  const small = opaque(budget);
  for (let i = 0; i < 32; i++) small.push(chunk(i)); // 512 KiB
  let seq = 0;
  while (budget.trims === 0) big.push(chunk(seq++));
  t.equal(small.size, 32 * (16 * KiB + CHUNK_OVERHEAD_BYTES), 'the small cache is untouched');
  t.ok(big.size < 6 * MiB * LOW_WATER_FRACTION, 'the big one was trimmed');
});

t.test('opaque FIFOs are trimmed before a recognised stream loses any GOP', async (t) => {
  const budget = new CacheBudget(4 * MiB);
  const flv = new MediaCache({ capacityBytes: 256 * MiB, gops: 4, budget });
  flv.push(flvStart());
  // 4 GOPs of about 250 KiB.
  for (let gop = 0; gop < 4; gop++) for (const frame of flvGop(gop * 1000, 25, 10 * KiB)) flv.push(frame);
  const flvSize = flv.size;
  const pointsBefore = flv.snapshot().points.length;
  t.ok(pointsBefore >= 3, `the FLV cache holds several GOPs (${pointsBefore})`);
  const fifo = opaque(budget);
  let seq = 0;
  while (budget.trims < 3) fifo.push(chunk(seq++));
  t.equal(flv.size, flvSize, 'the recognised stream kept all its GOPs');
  t.ok(fifo.size < 4 * MiB, 'the opaque stream paid');
});

t.test('a recognised stream keeps its init and last complete GOP; older GOPs go oldest first', async (t) => {
  const budget = new CacheBudget(1 * MiB);
  const flv = new MediaCache({ capacityBytes: 256 * MiB, gops: 10, budget });
  flv.push(flvStart());
  let gops = 0;
  // GOPs of about 150 KiB: the budget fits about 6 of them.
  while (budget.trims < 4) for (const frame of flvGop(gops++ * 1000, 15, 10 * KiB)) flv.push(frame);
  const backlog = flv.snapshot();
  t.ok(budget.total <= 1 * MiB, `within the limit (${budget.total})`);
  t.ok(backlog.points.length >= 1 && backlog.points.length < 7, `older GOPs dropped (${backlog.points.length} left of ${gops})`);
  const bytes = Buffer.concat(backlog.chunks);
  t.same(bytes.subarray(0, flvStart().length), flvStart(), 'the backlog starts with the init');
  // The first group starts on a keyframe tag (video, frame type 1), and the groups kept are the newest.
  const first = Buffer.concat(backlog.chunks.slice(backlog.points[0]));
  t.equal(first[0], 9);
  t.equal(first[11], 0x17);
  const firstTime = first.readUIntBE(4, 3);
  t.equal(firstTime, (gops - backlog.points.length) * 1000, 'the newest GOPs are the ones kept');
});

t.test('when the minimums alone exceed the limit, caches keep them and the budget does not rescan per chunk', async (t) => {
  const budget = new CacheBudget(256 * KiB);
  const caches = Array.from({ length: 4 }, () => new MediaCache({ capacityBytes: 256 * MiB, gops: 1, budget }));
  for (const cache of caches) cache.push(flvStart());
  // One 400 KiB GOP each, never complete enough to drop (gops 1 keeps only the current GOP).
  for (let i = 0; i < 40; i++) for (const cache of caches) cache.push(avcFrame(i * 40, i === 0, 10 * KiB));
  for (const cache of caches) t.equal(cache.snapshot().points.length, 1, 'each keeps its current GOP');
  // At most one trim per (limit - low water) of growth, not one per chunk (160 chunks).
  const step = 256 * KiB * (1 - LOW_WATER_FRACTION);
  t.ok(budget.trims <= Math.ceil(budget.total / step), `${budget.trims} trims for ${budget.total} bytes held`);
  t.ok(budget.trims < 160 / 2);
  // Once the total falls under the limit again, the limit applies again.
  for (const cache of caches) cache.reset();
  t.equal(budget.total, 0);
  const fifo = opaque(budget);
  for (let i = 0; i < 64; i++) fifo.push(chunk(i));
  t.ok(budget.total <= 256 * KiB, `trimmed to the limit again (${budget.total})`);
  t.ok(fifo.size <= Math.max(OPAQUE_FLOOR_BYTES, 256 * KiB), 'opaque within the floor');
});

t.test('CACHE_MEMORY_LIMIT_MB: auto is the smaller of 1 GiB and a quarter of the memory; 0 is no limit', async (t) => {
  t.equal(loadConfig().cacheMemoryLimitMb, 'auto');
  t.equal(cacheMemoryLimitBytes('auto', 2048 * MiB), 512 * MiB);
  t.equal(cacheMemoryLimitBytes('auto', 64 * 1024 * MiB), 1024 * MiB);
  t.equal(cacheMemoryLimitBytes(loadConfig({ env: { CACHE_MEMORY_LIMIT_MB: '64' } }).cacheMemoryLimitMb), 64 * MiB);
  t.equal(cacheMemoryLimitBytes(loadConfig({ flags: { cacheMemoryLimitMb: '0' } }).cacheMemoryLimitMb), 0);
  const auto = cacheMemoryLimitBytes('auto');
  t.ok(auto > 0 && auto <= 1024 * MiB, `on this machine: ${auto / MiB} MiB`);
  const error = t.throws(() => loadConfig({ env: { CACHE_MEMORY_LIMIT_MB: 'lots' } })) as unknown;
  t.ok(error instanceof ConfigError);
  t.match((error as Error).message, /Invalid CACHE_MEMORY_LIMIT_MB \(--cache-memory-limit-mb\): "lots" is not a number/);
  t.throws(() => loadConfig({ env: { CACHE_MEMORY_LIMIT_MB: '-1' } }), /CACHE_MEMORY_LIMIT_MB/);
});
