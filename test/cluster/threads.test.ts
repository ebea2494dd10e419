// Worker threads (WORKERS > 1): a channel's publisher and its receivers on different threads,
// chosen through the test hooks' per-worker loopback ports (never the kernel's hashing).
import t from 'tap';
import { TestClient, patternBytes } from '../helpers/client.js';
import { startThreaded } from './helpers.js';

t.test('a publisher on one thread reaches receivers on every thread, byte-exact and in order', async (t) => {
  const { onThread } = await startThreaded(t, 3);
  const receivers = await Promise.all([1, 2, 3].map((thread) => TestClient.connect(onThread(thread, '/show/k/receive'))));
  const publisher = await TestClient.connect(onThread(1, '/show/k/publish'));
  const chunks = Array.from({ length: 40 }, (_, i) => patternBytes(1000 + i * 37, i + 1));
  for (const chunk of chunks) await publisher.send(chunk);
  const expected = Buffer.concat(chunks);
  for (const [index, receiver] of receivers.entries()) {
    await receiver.until((client) => client.binaryBytes >= expected.length, `receiver on thread ${index + 1} got everything`);
    t.same(Buffer.concat(receiver.binaryMessages), expected, `thread ${index + 1}: byte-exact`);
  }
  await publisher.close();
  for (const receiver of receivers) t.equal((await receiver.closed).code, 1000, 'the publisher ended: closed like on its own thread');
});
