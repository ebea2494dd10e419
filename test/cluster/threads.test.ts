// Worker threads (WORKERS > 1): a channel's publisher and its receivers on different threads,
// chosen through the test hooks' per-worker loopback ports (never the kernel's hashing). Each
// behaviour of a single-thread server must hold for a receiver on any thread.
import t from 'tap';
import { mergeStates } from '../../src/cluster/index.js';
import { HttpRejection, TestClient, patternBytes } from '../helpers/client.js';
import { startThreaded } from './helpers.js';

t.test('a publisher on one thread reaches receivers on every thread, byte-exact and in order', async (t) => {
  const { app, onThread } = await startThreaded(t, 3);
  const receivers = await Promise.all([1, 2, 3].map((thread) => TestClient.connect(onThread(thread, '/show/k/receive'))));
  const publisher = await TestClient.connect(onThread(1, '/show/k/publish'));
  const chunks = Array.from({ length: 40 }, (_, i) => patternBytes(1000 + i * 37, i + 1));
  for (const chunk of chunks) await publisher.send(chunk);
  const expected = Buffer.concat(chunks);
  for (const [index, receiver] of receivers.entries()) {
    await receiver.until((client) => client.binaryBytes >= expected.length, `receiver on thread ${index + 1} got everything`);
    t.same(Buffer.concat(receiver.binaryMessages), expected, `thread ${index + 1}: byte-exact`);
  }
  const ids = mergeStates(await app.cluster!.state()).channels.get('show')!.receivers.map((receiver) => receiver.id);
  t.equal(new Set(ids).size, 3, `session ids are unique across threads (${ids.join(', ')}): one session, one id in the logs and stats`);
  await publisher.close();
  for (const receiver of receivers) t.same(await receiver.closed, { code: 1000, reason: 'Publisher ended' }, 'the publisher ended: closed as on its own thread');
});

t.test('viewers waiting on other threads get the stream from its first byte, with no cache to fall back on', async (t) => {
  // No cache: a thread that started relaying only once told of the publisher would miss what
  // came before. One thread gives a waiting viewer everything; so must every thread.
  const { onThread } = await startThreaded(t, 3, { gopCacheSizeMb: '0' });
  // Each round is a race the relay must win every time; several make a loss without it near certain.
  for (const round of [1, 2, 3, 4, 5]) {
    const receivers = await Promise.all([2, 3].map((thread) => TestClient.connect(onThread(thread, '/first/k/receive'))));
    const publisher = await TestClient.connect(onThread(1, '/first/k/publish'));
    const chunks = Array.from({ length: 20 }, (_, i) => patternBytes(500 + i, round * 100 + i));
    // In one burst right after the upgrade: long before another thread could ask for the stream.
    for (const chunk of chunks.slice(0, -1)) publisher.socket.send(chunk);
    await publisher.send(chunks.at(-1)!);
    for (const [index, receiver] of receivers.entries()) {
      await receiver.until((client) => client.binaryMessages.at(-1)?.equals(chunks.at(-1)!) === true, `thread ${index + 2}: the last chunk`);
      t.same(Buffer.concat(receiver.binaryMessages), Buffer.concat(chunks), `session ${round}, thread ${index + 2}: every byte from the first`);
    }
    await publisher.close();
    for (const receiver of receivers) await receiver.closed;
  }
});

t.test('a viewer that joins while its thread still believes in an ended stream gets the next one from its first byte', async (t) => {
  const { app, onThread } = await startThreaded(t, 3, { gopCacheSizeMb: '0' });
  const ended = await TestClient.connect(onThread(1, '/next/k/publish'));
  // Once the main thread lists the stream, its word to thread 2 is on the way, ahead of the hold.
  while (!app.cluster!.publications().some((publication) => publication.channel === 'next')) await app.cluster!.state();
  // Thread 2 believes thread 1 publishes the channel, and from now on does not hear that this
  // stream ends, nor who publishes next: as a thread whose news from the main thread come late.
  await app.cluster!.holdMessages(2, 'main', true);
  await ended.close();
  const viewer = await TestClient.connect(onThread(2, '/next/k/receive'));
  const publisher = await TestClient.connect(onThread(3, '/next/k/publish'));
  const chunks = Array.from({ length: 20 }, (_, i) => patternBytes(500 + i, 200 + i));
  for (const chunk of chunks.slice(0, -1)) publisher.socket.send(chunk);
  await publisher.send(chunks.at(-1)!);
  await viewer.until((client) => client.binaryMessages.at(-1)?.equals(chunks.at(-1)!) === true, 'the last chunk, before thread 2 hears of the new stream');
  t.same(Buffer.concat(viewer.binaryMessages), Buffer.concat(chunks), 'every byte of the next stream from the first, with no cache to fall back on');
  await app.cluster!.holdMessages(2, 'main', false);
  const more = patternBytes(700, 300);
  await publisher.send(more);
  await viewer.until((client) => client.binaryMessages.at(-1)?.equals(more) === true, 'a chunk sent once thread 2 heard the news');
  t.equal(viewer.binaryMessages.length, chunks.length + 1, 'the late news change nothing: each chunk once');
  await publisher.close();
  t.same(await viewer.closed, { code: 1000, reason: 'Publisher ended' });
});

t.test('a viewer whose thread has not heard of the stream yet gets it, also when it ends before that thread hears of it', async (t) => {
  const { app, onThread } = await startThreaded(t, 3);
  // Thread 2 hears nothing from the main thread from now on: no subscription of its own.
  await app.cluster!.holdMessages(2, 'main', true);
  const publisher = await TestClient.connect(onThread(1, '/short/k/publish'));
  const first = patternBytes(3000, 7);
  await publisher.send(first);
  const viewer = await TestClient.connect(onThread(2, '/short/k/receive'));
  t.same(await viewer.binary(1), [first], 'it gets the cache, as a late joiner on one thread');
  const next = patternBytes(900, 8);
  await publisher.send(next);
  t.same(await viewer.binary(2), [first, next], 'then the live stream');
  await publisher.close();
  t.same(await viewer.closed, { code: 1000, reason: 'Publisher ended' }, 'then the end');

  // Now thread 1 also hears late: the news of its own stream, and the word to serve thread 2's
  // viewer, come after the stream ended.
  await app.cluster!.holdMessages(1, 'main', true);
  const ending = await TestClient.connect(onThread(1, '/shorter/k/publish'));
  const only = patternBytes(2500, 9);
  await ending.send(only);
  const late = await TestClient.connect(onThread(2, '/shorter/k/receive'));
  // Every thread answered, thread 2 too: the main thread has had its word of the viewer (the same
  // port, in order), and has told thread 1 (held there).
  await app.cluster!.state();
  await ending.close();
  await app.cluster!.holdMessages(1, 'main', false);
  t.same(await late.closed, { code: 1000, reason: 'Publisher ended' }, 'a viewer that joined during the stream is closed by its end, not left waiting');
  t.same(late.binaryMessages, [only], 'with what a late joiner got before the end, as on one thread');
  // A viewer that joins after the end, its thread not knowing yet, waits for the next stream.
  const after = await TestClient.connect(onThread(2, '/shorter/k/receive'));
  await app.cluster!.holdMessages(2, 'main', false);
  const again = await TestClient.connect(onThread(3, '/shorter/k/publish'));
  await again.send(patternBytes(100, 10));
  t.same(await after.binary(1), [patternBytes(100, 10)], 'and gets the next stream, not the end of the last one');
});

t.test('keys: a wrong key is refused on another thread, live and idle; a second publisher on another thread is refused', async (t) => {
  const { onThread } = await startThreaded(t, 3);
  const idleWrong = await TestClient.connect(onThread(2, '/ch/wrong/receive'));
  const idleRight = await TestClient.connect(onThread(3, '/ch/k/receive'));
  const publisher = await TestClient.connect(onThread(1, '/ch/k/publish'));
  t.same(await idleWrong.closed, { code: 1008, reason: 'Invalid streaming key' }, 'an idle receiver with a wrong key is refused when the stream starts elsewhere');
  t.same(idleWrong.textMessages, ['ERROR: Invalid streaming key'], 'with the ERROR text');
  const liveWrong = await TestClient.connect(onThread(3, '/ch/wrong/receive'));
  t.same(await liveWrong.closed, { code: 1008, reason: 'Invalid streaming key' }, 'a live receiver with a wrong key is refused');
  for (const thread of [2, 3]) {
    const refused = await TestClient.rejection(onThread(thread, '/ch/k/publish'));
    t.equal(refused.status, 403, `a second publisher on thread ${thread}: refused`);
    t.match(refused.body, /Already publishing/);
  }
  await publisher.send(patternBytes(5000, 7));
  await idleRight.until((client) => client.binaryBytes >= 5000, 'the idle receiver with the right key went live');
  t.same(Buffer.concat(idleRight.binaryMessages), patternBytes(5000, 7));
});

t.test('a second publisher racing on two threads: exactly one wins', async (t) => {
  const { onThread } = await startThreaded(t, 2);
  const attempts = await Promise.allSettled([TestClient.connect(onThread(1, '/race/k/publish')), TestClient.connect(onThread(2, '/race/k/publish'))]);
  const won = attempts.filter((attempt) => attempt.status === 'fulfilled');
  const lost = attempts.flatMap((attempt) => (attempt.status === 'rejected' ? [attempt.reason as Error] : []));
  t.equal(won.length, 1, 'one publisher');
  t.equal(lost.length, 1, 'one refusal');
  t.equal((lost[0] as HttpRejection).status, 403);
});

t.test('MAX_IP_CONCURRENT_CONNECTIONS counts an address across threads', async (t) => {
  const { onThread } = await startThreaded(t, 3, { maxIpConcurrentConnections: '2' });
  const first = await TestClient.connect(onThread(1, '/a/k/receive'));
  const second = await TestClient.connect(onThread(2, '/b/k/receive'));
  const third = await TestClient.rejection(onThread(3, '/c/k/receive'));
  t.equal(third.status, 429, 'the third connection, on a third thread, is over the limit');
  await first.close();
  const again = await TestClient.connect(onThread(3, '/c/k/receive'));
  t.pass('a slot freed on thread 1 is free on thread 3');
  await Promise.all([second.close(), again.close()]);
});
