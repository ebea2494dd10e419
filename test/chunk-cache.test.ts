import t from 'tap';
import { ByteFifoCache, CHUNK_OVERHEAD_BYTES } from '../src/media/chunk-cache.js';

const bytes = (size: number, fill = 1): Uint8Array => new Uint8Array(size).fill(fill);

t.test('keeps whole chunks in order and drops the oldest over capacity', async (t) => {
  const cache = new ByteFifoCache(3 * (100 + CHUNK_OVERHEAD_BYTES));
  for (let i = 1; i <= 5; i++) cache.push(bytes(100, i));
  t.same(cache.snapshot().map((chunk) => chunk[0]), [3, 4, 5]);
  t.equal(cache.size, 3 * (100 + CHUNK_OVERHEAD_BYTES));
  t.equal(cache.first()?.[0], 3);
});

t.test('a chunk larger than the capacity is not kept', async (t) => {
  const cache = new ByteFifoCache(1000);
  cache.push(bytes(10));
  cache.push(bytes(2000));
  t.same(cache.snapshot(), []);
  t.equal(cache.size, 0);
});

t.test('capacity 0 disables the cache', async (t) => {
  const cache = new ByteFifoCache(0);
  t.notOk(cache.enabled);
  cache.push(bytes(1));
  t.same(cache.snapshot(), []);
});

t.test('clearAndDisable stops caching until reset', async (t) => {
  const cache = new ByteFifoCache(10_000);
  cache.push(bytes(10));
  cache.clearAndDisable();
  cache.push(bytes(10));
  t.same(cache.snapshot(), []);
  t.notOk(cache.enabled);
  cache.reset();
  cache.push(bytes(10, 7));
  t.same(cache.snapshot().map((chunk) => chunk[0]), [7]);
});

t.test('many pushes stay correct across internal compaction', async (t) => {
  const cache = new ByteFifoCache(10 * (1 + CHUNK_OVERHEAD_BYTES));
  for (let i = 0; i < 5000; i++) cache.push(bytes(1, i % 256));
  t.same(cache.snapshot().map((chunk) => chunk[0]), Array.from({ length: 10 }, (_, i) => (4990 + i) % 256));
});
