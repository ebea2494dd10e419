import t from 'tap';
import { TestClient } from './helpers/client.js';
import { startTestServer } from './helpers/server.js';
import { concat, cut, decode, makeSample, randomChunkSizes, scratchDir } from './media/helpers.js';

// CACHE_MEMORY_LIMIT_MB on recognised containers: the budget drops older GOPs, never the init
// or the last complete GOP (the opaque case and the admin API are in cache-budget-server.test.ts).

const KiB = 1024;
const MiB = 1024 * KiB;

for (const name of ['flv', 'webm-vp8'] as const) {
  t.test(`${name}: a late joiner on a trimmed stream starts on a keyframe with its init`, async (t) => {
    const dir = scratchDir(t);
    // About 2 Mbit/s, a keyframe every second: 6 GOPs of about 250 KB, where 10 would be cached.
    const bytes = await makeSample(name, { seconds: 6, gop: 25 });
    const limit = 0.75 * MiB;
    const server = await startTestServer(t, { cacheMemoryLimitMb: String(limit / MiB), gopCacheGops: '10' });
    const { url } = server;
    const witness = await TestClient.connect(url('/trim/k/receive'));
    const publisher = await TestClient.connect(url('/trim/k/publish'));
    const parts = cut(bytes, randomChunkSizes(bytes.length, 5, 32 * KiB));
    // The last part is held back: sent after the joiner came, it follows the joiner's backlog.
    const last = Buffer.from(parts.pop()!);
    for (const part of parts) await publisher.send(Buffer.from(part));
    await witness.until((client) => client.binaryBytes >= bytes.length - last.length, 'the witness got everything so far');
    // Every thread's budget (with worker threads, each keeps its share of the limit).
    const { cache } = await server.state();
    t.ok(cache.trims > 0, `the budget trimmed (${cache.trims} times)`);
    t.ok(cache.bytes <= limit, `cache ${cache.bytes} ≤ ${limit}`);
    const joiner = await TestClient.connect(url('/trim/k/receive'));
    await publisher.send(last);
    await joiner.until((client) => client.binaryMessages.at(-1)?.equals(last) === true, 'the joiner got the cache, then the live end');
    await publisher.close();
    await joiner.closed;
    const received = concat(joiner.binaryMessages);
    t.ok(received.length < bytes.length / 2, `the backlog (${received.length} B) is the trimmed cache, not the whole stream`);
    const report = await decode(received, dir, `${name}.bin`);
    t.same(report.errors, [], 'decodes without errors');
    t.ok(report.frames.length > 10, `${report.frames.length} frames`);
    t.equal(report.frames[0]?.key, true, 'starts on a keyframe');
    await witness.closed;
  });
}
