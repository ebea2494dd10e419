// Worker threads (WORKERS > 1): a channel's publisher and its receivers on different threads,
// chosen through the test hooks' per-worker loopback ports (never the kernel's hashing). Each
// behaviour of a single-thread server must hold for a receiver on any thread.
import t from 'tap';
import { mergeStates } from '../../src/cluster/index.js';
import { TestClient, patternBytes } from '../helpers/client.js';
import { startThreaded } from './helpers.js';

t.test('receive-clear-cache on another thread empties and disables the publisher thread\'s cache', async (t) => {
  const { app, onThread } = await startThreaded(t, 3);
  const publisher = await TestClient.connect(onThread(1, '/cc/k/publish'));
  const witness = await TestClient.connect(onThread(1, '/cc/k/receive'));
  const sent = [patternBytes(3000, 1), patternBytes(3000, 2)];
  for (const chunk of sent) await publisher.send(chunk);
  await witness.until((client) => client.binaryBytes >= 6000, 'published');
  const clearer = await TestClient.connect(onThread(2, '/cc/k/receive-clear-cache'));
  await clearer.until((client) => client.binaryBytes >= 6000, 'the clearer got the cache');
  t.same(Buffer.concat(clearer.binaryMessages), Buffer.concat(sent), 'the clearer gets the cache, as on the publisher\'s thread');
  // The clear reaches the publisher's thread through the relay: poll the real state.
  for (;;) {
    const channel = mergeStates(await app.cluster!.state()).channels.get('cc');
    if (channel?.cacheEnabled === false) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.pass('the publisher thread\'s cache is disabled');
  const later = await TestClient.connect(onThread(3, '/cc/k/receive'));
  // With no cache, "next" on a third thread begins when that thread relays the channel: chunks
  // go out every 10 ms until the first one arrives there.
  const next: Buffer[] = [];
  while (later.binaryMessages.length === 0 && later.textMessages.length === 0) {
    if (next.length === 500) throw new Error('the later receiver got nothing in 5 s of chunks');
    next.push(patternBytes(100, next.length + 3));
    await publisher.send(next.at(-1)!);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const first = next.findIndex((chunk) => chunk.equals(later.binaryMessages[0]!));
  t.ok(first >= 0, 'a later receiver on a third thread gets no cached data, only what comes next');
  await later.until((client) => client.binaryMessages.length >= next.length - first, 'the chunks after its first');
  t.same(later.binaryMessages, next.slice(first), 'in order, from there on');
});

t.test('with no cache, a late joiner on another thread gets what was sent after it joined, also when its question to the publisher\'s thread comes late', async (t) => {
  for (const [settings, clearing, what] of [
    [{ gopCacheSizeMb: '0' }, false, 'GOP_CACHE_SIZE_MB=0'],
    [{}, true, 'after a receive-clear-cache'],
  ] as const) {
    const { app, onThread } = await startThreaded(t, 2, settings);
    const publisher = await TestClient.connect(onThread(1, '/nc/k/publish'));
    const witness = await TestClient.connect(onThread(2, '/nc/k/receive'));
    await publisher.send(patternBytes(1000, 1));
    await witness.binary(1);
    if (clearing) await (await TestClient.connect(onThread(1, '/nc/k/receive-clear-cache'))).binary(1);
    // Thread 1 hears from thread 2 late: the late joiners' questions come after the next chunk.
    await app.cluster!.holdMessages(1, 2, true);
    const late = await TestClient.connect(onThread(2, '/nc/k/receive'));
    const probe = await TestClient.connect(onThread(2, '/nc/k/probe'));
    const next = patternBytes(800, 2);
    await publisher.send(next);
    await witness.binary(2);
    await app.cluster!.holdMessages(1, 2, false);
    const more = patternBytes(600, 3);
    await publisher.send(more);
    await late.until((client) => client.binaryMessages.at(-1)?.equals(more) === true, 'the last chunk');
    t.same(late.binaryMessages, [next, more], `${what}: the receiver gets the chunk sent after it joined, then the live stream, each once`);
    t.same(await probe.closed, { code: 1000, reason: 'Probe done' }, `${what}: the probe is answered`);
    t.same(probe.binaryMessages, [next], `${what}: with the first chunk sent after it joined, as on one thread`);
    await publisher.close();
  }
});

t.test('a channel is cached once, on its publisher\'s thread: late joiners elsewhere get that cache', async (t) => {
  const { app, onThread } = await startThreaded(t, 3);
  const publisher = await TestClient.connect(onThread(1, '/once/k/publish'));
  // Threads 2 and 3 relay the channel from its first byte.
  const viewers = await Promise.all([2, 3].map((thread) => TestClient.connect(onThread(thread, '/once/k/receive'))));
  const sent = Array.from({ length: 12 }, (_, index) => patternBytes(5000, index + 1));
  for (const chunk of sent) await publisher.send(chunk);
  for (const viewer of viewers) await viewer.until((client) => client.binaryBytes >= 12 * 5000, 'everything relayed');
  const states = await app.cluster!.state();
  const cached = new Map(states.map((state) => [state.thread, state.cache.bytes]));
  t.equal(cached.get(1), 12 * (5000 + 16), 'the publisher\'s thread caches the stream (16 bytes per chunk counted)');
  t.equal(cached.get(2), 0, 'thread 2, which relays it, holds no copy');
  t.equal(cached.get(3), 0, 'nor thread 3');
  t.equal(mergeStates(states).cache.bytes, 12 * (5000 + 16), 'the server\'s total is one cache, as with one thread');
  // Late joiners on the relaying threads get the publisher thread's cache, exactly.
  const late = await Promise.all([2, 3].map((thread) => TestClient.connect(onThread(thread, '/once/k/receive'))));
  for (const viewer of late) await viewer.until((client) => client.binaryBytes >= 12 * 5000, 'the backlog');
  const next = patternBytes(700, 99);
  await publisher.send(next);
  for (const viewer of late) await viewer.until((client) => client.binaryMessages.length === 13, 'the next chunk');
  for (const [index, viewer] of late.entries()) t.same(viewer.binaryMessages, [...sent, next], `late joiner on thread ${index + 2}: the cache, then live, nothing twice`);
});

t.test('probe on another thread: one message, then a normal close', async (t) => {
  const { onThread } = await startThreaded(t, 2);
  const publisher = await TestClient.connect(onThread(1, '/p/k/publish'));
  await publisher.send(patternBytes(2000, 4));
  const probe = await TestClient.connect(onThread(2, '/p/k/probe'));
  t.same(await probe.closed, { code: 1000, reason: 'Probe done' });
  t.same(probe.binaryMessages, [patternBytes(2000, 4)], 'exactly one message: the first chunk of an opaque stream');
});

t.test('CACHE_MEMORY_LIMIT_MB is shared out: the threads\' limits add up to it, the main thread\'s share only when it caches', async (t) => {
  for (const [settings, shares, what] of [
    [{}, 3, 'three workers; the main thread caches nothing'],
    [{ bridgeHls: 'YES' }, 3, 'with bridges, which read the streams relayed to the main thread, cached where they are published'],
    // Nothing connects to the origin before a viewer asks for a channel.
    [{ originUrl: 'ws://127.0.0.1:9' }, 4, 'an edge: the main thread, which publishes the upstreams, takes a share'],
  ] as const) {
    const { app } = await startThreaded(t, 3, { cacheMemoryLimitMb: '12', ...settings });
    const states = await app.cluster!.state();
    const limits = states.map((state) => state.cache.limitBytes).filter((limit) => limit > 0);
    t.equal(limits.length, shares, `${what}: ${shares} shares`);
    t.ok(limits.every((limit) => limit === Math.floor((12 * 1024 * 1024) / shares)), 'even ones');
    t.equal(mergeStates(states).cache.limitBytes, 12 * 1024 * 1024 - ((12 * 1024 * 1024) % shares), 'adding up to the limit');
  }
});
