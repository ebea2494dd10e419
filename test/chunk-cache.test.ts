import t from 'tap';
import { ByteFifoCache, CHUNK_OVERHEAD_BYTES } from '../src/media/chunk-cache.js';
import { ChunkQueue } from '../src/media/chunk-queue.js';
import { MediaCache } from '../src/media/media-cache.js';

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

t.test('ChunkQueue marks: cut at the first mark still queued, keeping what comes before it', async (t) => {
  const queue = new ChunkQueue();
  t.notOk(queue.cutAtFirstMark(), 'no mark, no cut');
  queue.push(Uint8Array.of(1, 1, 1));
  queue.push(Uint8Array.of(2, 2, 2));
  queue.markLast(1);
  queue.push(Uint8Array.of(3, 3));
  queue.markLast(0);
  t.ok(queue.cutAtFirstMark());
  t.same(queue.toArray().map((part) => [...part]), [[1, 1, 1], [2]]);
  t.equal(queue.bytes, 4);

  const sent = new ChunkQueue();
  sent.push(Uint8Array.of(1, 1));
  sent.markLast(1);
  sent.shift(); // the marked chunk went to the socket: too late to cut there
  sent.push(Uint8Array.of(2, 2));
  t.notOk(sent.cutAtFirstMark());

  const back = new ChunkQueue();
  back.push(Uint8Array.of(1, 1, 1));
  back.push(Uint8Array.of(2, 2));
  t.ok(back.markFromEnd(3), 'a point that began 3 bytes before the end');
  t.notOk(back.markFromEnd(6), 'not queued any more');
  t.ok(back.cutAtFirstMark());
  t.same(back.toArray().map((part) => [...part]), [[1, 1]]);
});

t.test('MediaCache on an opaque stream is the byte FIFO, message boundaries included', async (t) => {
  const cache = new MediaCache({ capacityBytes: 3 * (100 + CHUNK_OVERHEAD_BYTES) });
  t.equal(cache.info.container, 'unknown');
  t.equal(cache.probe(), 'wait', 'a probe waits until the stream is recognised or not');
  for (let i = 1; i <= 5; i++) t.equal(cache.push(bytes(100, i)), null);
  t.equal(cache.info.container, 'opaque');
  t.same(cache.snapshot(), { chunks: [bytes(100, 3), bytes(100, 4), bytes(100, 5)], points: [], awaitKeyframe: false, generation: 0, version: 0 });
  t.same(cache.probe(), { parts: [bytes(100, 3)] });
  cache.clearAndDisable();
  t.notOk(cache.wantsChunks, 'a cleared opaque cache needs no chunks');
  t.equal(cache.probe(), 'next-chunk');
  cache.reset();
  t.ok(cache.wantsChunks);

  // A first chunk too short to tell waits (kept whole) for the next one.
  const short = new MediaCache({ capacityBytes: 10_000 });
  short.push(Uint8Array.of(0x47));
  t.equal(short.info.container, 'unknown');
  t.same(short.snapshot().chunks, [Uint8Array.of(0x47)]);
  short.push(bytes(500, 9));
  t.equal(short.info.container, 'opaque');
  t.same(short.snapshot().chunks, [Uint8Array.of(0x47), bytes(500, 9)], 'boundaries kept');

  const off = new MediaCache({ capacityBytes: 10_000, detect: false });
  off.push(Uint8Array.of(0x1a, 0x45, 0xdf, 0xa3));
  t.equal(off.info.container, 'opaque', 'detection can be turned off');
});
