import t from 'tap';
import { Receiver } from '../src/channels/receiver.js';
import type { ClientSocket } from '../src/channels/transport.js';

/** An in-memory socket whose buffer the test controls (stands in for uWebSockets.js backpressure). */
class FakeSocket implements ClientSocket {
  sent: Array<string | number[]> = [];
  buffered = 0;
  closedWith: [number, string] | undefined;
  sendBinary(data: Uint8Array): void {
    this.sent.push([...data]);
    this.buffered += data.byteLength;
  }
  sendText(text: string): void {
    this.sent.push(text);
  }
  bufferedAmount(): number {
    return this.buffered;
  }
  close(code: number, reason: string): void {
    this.closedWith ??= [code, reason];
  }
}

const info = { id: 1, ip: '127.0.0.1', channel: 'c', key: 'k' };
const chunk = (...values: number[]): Uint8Array => Uint8Array.from(values);
const push = (receiver: Receiver, data: Uint8Array): void => receiver.push(data, () => data.slice());

t.test('an idle receiver ignores live data until started', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 10);
  push(receiver, chunk(1));
  t.same(socket.sent, []);
  receiver.start([chunk(9)]);
  push(receiver, chunk(2));
  t.same(socket.sent, [[9], [2]]);
});

t.test('sends straight to the socket up to exactly the limit, then queues until drain', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 10);
  receiver.start([]);
  push(receiver, chunk(1, 1, 1, 1, 1, 1, 1, 1)); // 8 buffered
  push(receiver, chunk(2, 2)); // 10: fits exactly
  t.same(socket.sent, [[1, 1, 1, 1, 1, 1, 1, 1], [2, 2]]);
  t.equal(receiver.bufferedBytes, 10);
  t.equal(socket.closedWith, undefined);
  push(receiver, chunk(3)); // over the limit: waits in the queue
  push(receiver, chunk(4));
  t.equal(socket.sent.length, 2);
  socket.buffered = 0; // the kernel took everything
  receiver.flush();
  t.same(socket.sent.slice(2), [[3], [4]], 'flushed in order on drain');
  t.equal(socket.closedWith, undefined);
});

t.test('a receiver more than the limit behind the live stream is closed as too slow', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 10);
  receiver.start([]);
  push(receiver, chunk(...new Array<number>(10).fill(1))); // the socket buffer is full
  push(receiver, chunk(...new Array<number>(10).fill(2))); // 10 bytes wait: still tolerated
  t.equal(socket.closedWith, undefined);
  t.equal(receiver.bufferedBytes, 20);
  push(receiver, chunk(3)); // 11 bytes wait: more than the limit behind
  t.same(socket.sent.at(-1), 'ERROR: Receiver too slow');
  t.same(socket.closedWith, [1013, 'Receiver too slow']);
  push(receiver, chunk(4));
  t.equal(socket.sent.length, 2, 'nothing is sent after closing');
});

t.test('the cache backlog is paced by drain and does not count as falling behind', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 4);
  const backlog = [chunk(1, 1, 1, 1), chunk(2, 2, 2, 2), chunk(3, 3, 3, 3)];
  receiver.start(backlog);
  t.equal(socket.sent.length, 1, 'only what fits is handed to the socket');
  push(receiver, chunk(4));
  t.equal(socket.closedWith, undefined, 'backlog bytes are not the receiver\'s fault');
  for (let i = 0; i < 3; i++) {
    socket.buffered = 0;
    receiver.flush();
  }
  t.same(socket.sent, [[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3], [4]]);
});

t.test('one chunk larger than the limit still goes to an empty socket', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 2);
  receiver.start([]);
  push(receiver, chunk(1, 2, 3, 4, 5));
  t.same(socket.sent, [[1, 2, 3, 4, 5]]);
});

t.test('probe: the first chunk only, then a normal close', async (t) => {
  const fromCache = new FakeSocket();
  new Receiver(info, 'probe', fromCache, 10).start([chunk(7)]);
  t.same(fromCache.sent, [[7]]);
  t.same(fromCache.closedWith, [1000, 'Probe done']);

  const live = new FakeSocket();
  const receiver = new Receiver(info, 'probe', live, 10);
  receiver.start([]);
  push(receiver, chunk(8));
  push(receiver, chunk(9));
  t.same(live.sent, [[8]]);
});

t.test('backlog chunks never count as live data, before or after they are sent', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 4);
  receiver.start([chunk(1, 1, 1, 1), chunk(2, 2, 2, 2)]);
  socket.buffered = 0;
  receiver.flush(); // backlog fully sent
  // The socket holds 4 bytes; live data may now wait up to the limit (4), and no more.
  for (let i = 0; i < 4; i++) push(receiver, chunk(3));
  t.equal(socket.closedWith, undefined, '4 live bytes waiting: tolerated');
  push(receiver, chunk(4));
  t.same(socket.closedWith, [1013, 'Receiver too slow'], 'the sent backlog earned no extra room');
});

t.test('a receiver that stays a little behind for a long time keeps a small queue', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 1000);
  receiver.start([]);
  push(receiver, chunk(...new Array<number>(1000).fill(0))); // the socket is full
  for (let i = 0; i < 5; i++) push(receiver, chunk(9)); // five chunks always wait
  for (let i = 0; i < 100_000; i++) {
    push(receiver, chunk(i % 256)); // one more waits...
    socket.buffered = 999; // ...and the socket takes one byte
    receiver.flush();
  }
  t.equal(socket.closedWith, undefined);
  t.ok(receiver.bufferedBytes < 1100, `bounded (${receiver.bufferedBytes} bytes)`);
  const queue = (receiver as unknown as { live: { items: unknown[] } }).live.items;
  t.ok(queue.length < 3000, `the queue's array stays compact (${queue.length} slots)`);
});
