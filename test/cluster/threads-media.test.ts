// Worker threads with real media: a late joiner on another thread gets what a late joiner on the
// publisher's thread gets (the same init and GOPs, starting on a keyframe).
import t from 'tap';
import { TestClient } from '../helpers/client.js';
import { concat, cut, decode, makeSample, randomChunkSizes, scratchDir } from '../media/helpers.js';
import { startThreaded } from './helpers.js';

t.test('a late joiner on another thread gets the same backlog as one on the publisher\'s thread, from a keyframe', async (t) => {
  const dir = scratchDir(t);
  const bytes = await makeSample('flv', { seconds: 4, gop: 25, videoBitrate: '600k' });
  const { onThread } = await startThreaded(t, 3);
  const publisher = await TestClient.connect(onThread(1, '/late/k/publish'));
  const witnesses = await Promise.all([1, 2].map((thread) => TestClient.connect(onThread(thread, '/late/k/receive'))));
  const chunks = cut(bytes, randomChunkSizes(bytes.length, 5, 32 * 1024));
  const half = Math.floor(chunks.length / 2);
  // The first chunk reaching both witnesses means thread 2 relays the stream: every later chunk
  // follows in order. (A subscription made after a GOP had passed would get only the cache: the
  // init and the last GOP, never `sent` bytes.)
  await publisher.send(Buffer.from(chunks[0]!));
  let sent = chunks[0]!.length;
  for (const witness of witnesses) await witness.until((client) => client.binaryBytes >= sent, 'the first chunk arrived');
  for (const chunk of chunks.slice(1, half)) {
    await publisher.send(Buffer.from(chunk));
    sent += chunk.length;
  }
  // Both threads have relayed everything so far: the late joiners see the same moment.
  for (const witness of witnesses) await witness.until((client) => client.binaryBytes >= sent, 'the first half arrived');
  const sameThread = await TestClient.connect(onThread(1, '/late/k/receive'));
  const otherThread = await TestClient.connect(onThread(2, '/late/k/receive'));
  const thirdThread = await TestClient.connect(onThread(3, '/late/k/receive'));
  await Promise.all([sameThread, otherThread, thirdThread].map((client) => client.binary(1)));
  for (const chunk of chunks.slice(half)) await publisher.send(Buffer.from(chunk));
  await publisher.close();
  for (const client of [sameThread, otherThread, thirdThread]) t.same(await client.closed, { code: 1000, reason: 'Publisher ended' });

  const reference = concat(sameThread.binaryMessages);
  t.ok(reference.length < bytes.length, 'the late joiner on the publisher\'s thread did not get the whole stream (a real late join)');
  t.ok(concat(otherThread.binaryMessages).equals(reference), 'thread 2 (it had a receiver): exactly the same bytes');
  t.ok(concat(thirdThread.binaryMessages).equals(reference), 'thread 3 (its first receiver of the channel): exactly the same bytes');
  const decoded = await decode(concat(thirdThread.binaryMessages), dir, 'third.flv');
  t.same(decoded.errors, [], 'decodes without errors');
  t.equal(decoded.frames[0]?.key, true, 'starts with a keyframe');
});
