// ThreadRelays between two "threads" of this process, joined by a real MessageChannel (the
// structured clone the worker threads use): a relayed stream and a late joiner's backlog reach
// the other thread by reference to the publisher thread's chunks, never as copies.
import { MessageChannel } from 'node:worker_threads';
import t from 'tap';
import { ChannelRegistry, Receiver } from '../../src/channels/index.js';
import type { ClientSocket, Publisher } from '../../src/channels/index.js';
import { ThreadRelays } from '../../src/cluster/relays.js';
import type { RelayMessage } from '../../src/cluster/messages.js';
import { patternBytes } from '../helpers/client.js';

/** A receiver's socket that keeps what it is sent, and says when it has `count` messages. */
function recordingSocket(): ClientSocket & { readonly got: Uint8Array[]; messages(count: number): Promise<void> } {
  const got: Uint8Array[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  return {
    got,
    sendBinary(data) {
      got.push(data);
      for (const waiter of waiters.filter((each) => got.length >= each.count)) waiter.resolve();
    },
    sendText: () => {},
    bufferedAmount: () => 0,
    close: () => {},
    messages: (count) => (got.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }))),
  };
}

t.test('a relayed stream and a late joiner\'s backlog share the publisher thread\'s memory', async (t) => {
  const registries = [1, 2].map(() => ChannelRegistry.withMediaCache({ capacityBytes: 1024 * 1024, sharedChunks: true }));
  const [one, two] = registries.map((registry, index) => new ThreadRelays(registry, { self: index + 1 }));
  const { port1, port2 } = new MessageChannel();
  t.teardown(() => port1.close());
  // What thread 1 posts on port2 arrives at port1, for thread 2; and the other way round.
  port1.on('message', (message: RelayMessage) => two!.handle(1, message));
  port2.on('message', (message: RelayMessage) => one!.handle(2, message));
  one!.addPeer(2, port2);
  two!.addPeer(1, port1);

  // The publisher on thread 1.
  const owner = registries[0]!.getOrCreate('c');
  const publisher: Publisher = { info: { id: 1, ip: '127.0.0.1', channel: 'c', key: 'k' }, streamId: 's', socket: recordingSocket(), startedAt: Date.now(), bytesIn: 0, chunksIn: 0 };
  owner.startPublishing(publisher);
  for (const relays of [one!, two!]) relays.setOwner('c', 1);

  // A viewer on thread 2: the thread subscribes, and gets the stream.
  const relayed = registries[1]!.getOrCreate('c');
  const first = recordingSocket();
  t.ok(relayed.addReceiver(new Receiver({ id: 1, ip: '127.0.0.1', channel: 'c', key: 'k' }, 'receive', first, 1024 * 1024)), 'a viewer joins on thread 2');
  two!.viewerJoined(relayed);
  const sent = [patternBytes(3000, 1), patternBytes(3000, 2), patternBytes(3000, 3)];
  owner.publish(sent[0]!);
  await first.messages(1);
  for (const chunk of sent.slice(1)) owner.publish(chunk);
  await first.messages(3);
  t.same(first.got.map((data) => Buffer.from(data)), sent, 'the viewer on thread 2 gets the stream');
  t.ok(first.got.every((data) => data.buffer instanceof SharedArrayBuffer), 'in shared memory');
  t.equal(relayed.cache.size, 0, 'thread 2 caches nothing');

  // A late joiner on thread 2 gets thread 1's cache, by reference: a byte changed in that cache shows.
  const late = recordingSocket();
  t.ok(relayed.addReceiver(new Receiver({ id: 2, ip: '127.0.0.1', channel: 'c', key: 'k' }, 'receive', late, 1024 * 1024)), 'a late joiner on thread 2');
  await late.messages(3);
  t.same(late.got.map((data) => Buffer.from(data)), sent, 'the late joiner gets the cache of thread 1');
  const cached = owner.cache.snapshot().chunks;
  cached[1]![0] ^= 0xff;
  t.equal(late.got[1]![0], cached[1]![0], 'the same bytes as thread 1\'s cache, not a copy');
  t.equal(first.got[1]![0], cached[1]![0], 'and the same as the live chunk thread 2 got');
  owner.endPublishing();
});
