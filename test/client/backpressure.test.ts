import t from 'tap';
import { StreamClientError, StreamPublisher, StreamReceiver } from '../../src/client/index.js';
import { TestClient, patternBytes } from '../helpers/client.js';
import { startTestServer } from '../helpers/server.js';

const KiB = 1024;
const MiB = 1024 * KiB;

t.test('a stalled receiver does not make the publisher buffer grow: write()/drain keep it bounded', async (t) => {
  const server = await startTestServer(t, { maxReceiverBufferMb: '1' });
  const { url } = server;
  const stalled = await TestClient.connect(url('/bp/k/receive'));
  stalled.socket.pause();
  // Once the server has dropped it, it reads again: the close frame waits behind what the kernel
  // holds for it, and a reader still stalled seconds later would be cut off without one (1006)
  // by the library's closing timeout.
  const dropped = server
    .until((state) => (state.channels.get('bp')?.receivers.length ?? 0) === 0, 'the stalled receiver dropped')
    .then(() => stalled.socket.resume());
  const publisher = await StreamPublisher.connect(url('/bp/k/publish'), { highWaterMark: 256 * KiB, maxBuffered: MiB });
  let drains = 0;
  publisher.on('drain', () => drains++);
  const chunk = patternBytes(64 * KiB, 1);
  let most = 0;
  let refusals = 0;
  let total = 0;
  // 64 MiB, or more (up to 256) until write() said "wait" more than 10 times: with one thread
  // the server runs in this process and writing in a loop without awaiting fills the socket at
  // once; with worker threads the server reads on its own threads, and fills it less often.
  for (; total < 64 * MiB || (refusals <= 10 && total < 256 * MiB); total += chunk.length) {
    if (!publisher.write(chunk)) {
      refusals++;
      most = Math.max(most, publisher.bufferedAmount);
      await publisher.drained();
    }
    most = Math.max(most, publisher.bufferedAmount);
  }
  await publisher.end();
  t.ok(refusals > 10 && drains > 10, `write() returned false and drain followed (${refusals} times, ${drains} drains)`);
  t.ok(most <= 256 * KiB + chunk.length, `buffered at most the high-water mark plus one chunk (${most} bytes) while writing ${total / MiB} MiB`);

  await dropped;
  t.same(await stalled.closed, { code: 1013, reason: 'Receiver too slow' }, 'the stalled receiver was dropped, not waited for');
  t.ok(stalled.binaryBytes < 16 * MiB, `and got only part of the stream (${stalled.binaryBytes} bytes; kernel buffers hold some)`);
});

t.test('a publisher that ignores write() === false gets BUFFER_FULL at the hard limit, and nothing more is buffered', async (t) => {
  const { url } = await startTestServer(t);
  const publisher = await StreamPublisher.connect(url('/hard/k'), { highWaterMark: 128 * KiB, maxBuffered: 512 * KiB });
  const chunk = patternBytes(32 * KiB, 2);
  let error: unknown;
  let writes = 0;
  try {
    // Synchronous writes: the (same-process) server cannot read meanwhile, so the buffer only grows.
    for (; writes < 10_000; writes++) publisher.write(chunk);
  } catch (caught) {
    error = caught;
  }
  t.type(error, StreamClientError);
  t.match(error, { code: 'BUFFER_FULL', category: 'limit' });
  t.ok(publisher.bufferedAmount <= 512 * KiB, `buffered ${publisher.bufferedAmount} bytes, limit 512 KiB`);
  t.ok(writes * chunk.length > 512 * KiB, 'the socket had taken some before the limit');
  await publisher.drained();
  t.equal(publisher.write(chunk), true, 'usable again once drained');
  await publisher.end();
});

t.test('an unread SDK receiver stops reading from the network; the server drops it, and the iteration says why', async (t) => {
  const { url } = await startTestServer(t, { maxReceiverBufferMb: '1' });
  const receiver = new StreamReceiver(url('/slow/k'), { highWaterMark: 256 * KiB });
  await new Promise<void>((resolve) => receiver.once('open', () => resolve()));
  const publisher = await StreamPublisher.connect(url('/slow/k'));
  const chunk = patternBytes(64 * KiB, 3);
  for (let written = 0; written < 32 * MiB; written += chunk.length) {
    if (!publisher.write(chunk)) await publisher.drained();
  }
  await publisher.end();
  t.ok(receiver.queuedAmount <= 256 * KiB + MiB, `queued ${receiver.queuedAmount} bytes: reading stopped near the high-water mark`);
  let received = 0;
  const error = await (async () => {
    try {
      for await (const data of receiver) received += data.byteLength;
    } catch (caught) {
      return caught;
    }
    return undefined;
  })();
  t.match(error, { code: 'RECEIVER_TOO_SLOW', closeCode: 1013 });
  t.ok(received > 0 && received < 16 * MiB, `got ${received} of 32 MiB before being dropped`);
});
