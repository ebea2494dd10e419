// Relay messages between threads go in batches, one post per turn of the event loop, over a real
// MessageChannel (src/cluster/relay-outbox.ts).
import { once } from 'node:events';
import { MessageChannel } from 'node:worker_threads';
import t from 'tap';
import type { Test } from 'tap';
import type { RelayMessage } from '../../src/cluster/messages.js';
import { RelayOutbox } from '../../src/cluster/relay-outbox.js';

function channelPair(t: Test): { outbox: RelayOutbox; posts: RelayMessage[][]; next: () => Promise<RelayMessage[]> } {
  const { port1, port2 } = new MessageChannel();
  t.teardown(() => {
    port1.close();
    port2.close();
  });
  const outbox = new RelayOutbox(port1);
  const posts: RelayMessage[][] = [];
  port2.on('message', (batch: RelayMessage[]) => posts.push(batch));
  return { outbox, posts, next: async () => ((await once(port2, 'message')) as [RelayMessage[]])[0] };
}

t.test('what one turn posts crosses as one batch, in order; the next turn is the next batch', async (t) => {
  const { outbox, next } = channelPair(t);
  outbox.post({ type: 'subscribe', channel: 'a' });
  outbox.postChunk('a', new Uint8Array([1, 2, 3]));
  outbox.post({ type: 'end', channel: 'a', code: 1000, reason: 'Publisher ended' });
  const first = await next();
  t.same(
    first.map((message) => message.type),
    ['subscribe', 'chunk', 'end'],
    'three messages, one post, in the order given',
  );
  outbox.post({ type: 'clear', channel: 'b' });
  t.same((await next()).map((message) => message.type), ['clear'], 'a later turn: a batch of its own');
});

t.test('a chunk is copied when posted, only its bytes, and moved (not copied again) when sent', async (t) => {
  const { outbox, next } = channelPair(t);
  const whole = new Uint8Array(1024).fill(7);
  const part = whole.subarray(100, 104);
  part.set([1, 2, 3, 4]);
  outbox.postChunk('a', part);
  // The socket library reuses its buffer after the callback: later bytes must not leak in.
  whole.fill(0);
  const [message] = await next();
  t.equal(message?.type, 'chunk');
  const data = (message as Extract<RelayMessage, { type: 'chunk' }>).data;
  t.same([...data], [1, 2, 3, 4], 'the bytes as they were when posted');
  t.equal(data.buffer.byteLength, 4, 'a buffer of its own: not the 1024 bytes it was part of');
});

t.test('Node Buffers (an edge\'s upstream gives them) are copied too, even views of one pool', async (t) => {
  const { outbox, next } = channelPair(t);
  // Allocated on its own (Node's small-Buffer pool is never transferred): as a socket's frames are.
  const pool = Buffer.alloc(6);
  pool.set([1, 2, 3, 4, 5, 6]);
  // Buffer#slice is a view: copying that way would hand over (and detach) the pool, twice.
  outbox.postChunk('a', pool.subarray(0, 3));
  outbox.postChunk('a', pool.subarray(3));
  const batch = (await next()) as Array<Extract<RelayMessage, { type: 'chunk' }>>;
  t.same(
    batch.map((message) => [...message.data]),
    [
      [1, 2, 3],
      [4, 5, 6],
    ],
    'both chunks cross in one batch',
  );
  t.equal(pool.byteLength, 6, 'the pool stays with its owner');
});

t.test('flush() posts at once (a thread about to close its ports or fail)', async (t) => {
  const { outbox, posts, next } = channelPair(t);
  outbox.post({ type: 'unsubscribe', channel: 'a' });
  outbox.flush();
  outbox.post({ type: 'unsubscribe', channel: 'b' });
  const first = await next();
  t.same(first, [{ type: 'unsubscribe', channel: 'a' }], 'flushed on its own, before the turn ended');
  await next();
  t.same(posts, [[{ type: 'unsubscribe', channel: 'a' }], [{ type: 'unsubscribe', channel: 'b' }]], 'then what came after, in its own batch');
  outbox.flush();
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(posts.length, 2, 'nothing waiting: nothing posted');
});
