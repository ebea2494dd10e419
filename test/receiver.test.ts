import t from 'tap';
import { Channel } from '../src/channels/channel.js';
import type { Publisher } from '../src/channels/channel.js';
import { Receiver, SOCKET_HIGH_WATER_BYTES } from '../src/channels/receiver.js';
import type { ClientSocket } from '../src/channels/transport.js';
import type { MediaTick } from '../src/media/chunk-cache.js';
import { MediaCache } from '../src/media/media-cache.js';

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

// Skipping on recognised containers. A MediaTick is what the channel's cache learnt from a chunk.
const tick = (points: Array<number | [number, Uint8Array[]]> = [], version = 1): MediaTick => ({
  points: points.map((point) => (typeof point === 'number' ? { offset: point, lead: [] } : { offset: point[0], lead: point[1] })),
  generation: 1,
  version,
  fullInit: [chunk(0xf1, 0xf2)],
  resyncInit: [chunk(0xf2)],
});
const media = (receiver: Receiver, data: Uint8Array, points: Array<number | [number, Uint8Array[]]> = [], version = 1): void =>
  receiver.push(data, () => data.slice(), tick(points, version));
const fill = (value: number, length: number): Uint8Array => new Uint8Array(length).fill(value);
const flat = (socket: FakeSocket): number[] => socket.sent.flatMap((item) => (typeof item === 'string' ? [] : item));
/** The client reads everything, one socket buffer at a time. */
const drain = (receiver: Receiver, socket: FakeSocket): void => {
  for (let i = 0; i < 10; i++) {
    socket.buffered = 0;
    receiver.flush();
  }
};

t.test('skip: over the limit, the queue is cut at its first keyframe point and resumes at the next one', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 10);
  receiver.start({ chunks: [chunk(0xf1, 0xf2)], points: [], awaitKeyframe: false, generation: 1, version: 1 });
  media(receiver, fill(1, 8)); // straight to the socket (10 buffered)
  media(receiver, fill(2, 4), [2]); // queued; a keyframe point at its byte 2
  media(receiver, fill(3, 8)); // 12 bytes queued: over the limit
  t.equal(socket.closedWith, undefined, 'not closed');
  t.equal(receiver.skips, 1);
  t.ok(receiver.waitingForKeyframe);
  media(receiver, fill(4, 5)); // no keyframe point: dropped
  media(receiver, fill(5, 6), [3]); // resumes here
  drain(receiver, socket);
  t.same(flat(socket), [0xf1, 0xf2, ...fill(1, 8), 2, 2, 0xf2, 5, 5, 5], 'up to the first point, the repeatable init, then from the next point');
  t.notOk(receiver.waitingForKeyframe);
  media(receiver, fill(6, 1));
  t.same(flat(socket).slice(-1), [6], 'then live as usual');
});

t.test('skip: with no keyframe point queued, the cut waits for the next one (within twice the limit)', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 10);
  receiver.start([]);
  media(receiver, fill(1, 10));
  media(receiver, fill(2, 11)); // over, nothing to cut at
  t.equal(receiver.skips, 0);
  t.equal(socket.closedWith, undefined);
  media(receiver, fill(3, 4), [1]); // cut at its byte 1: keeps 2×11 + 3×1
  t.equal(receiver.skips, 1);
  media(receiver, fill(4, 3), [[0, [chunk(3, 3, 3)]]]); // resumes at a point that began in the previous chunk
  drain(receiver, socket);
  t.same(flat(socket), [...fill(1, 10), ...fill(2, 11), 3, 0xf2, 3, 3, 3, 4, 4, 4]);

  const tooFar = new FakeSocket();
  const stuck = new Receiver(info, 'receive', tooFar, 10);
  stuck.start([]);
  media(stuck, fill(1, 10));
  media(stuck, fill(2, 11));
  media(stuck, fill(3, 10)); // 21 bytes queued, still no point: more than twice the limit
  t.same(tooFar.closedWith, [1013, 'Receiver too slow']);
});

t.test('skip: a keyframe point that began in an earlier, still queued chunk is a place to cut', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 10);
  receiver.start([]);
  media(receiver, fill(1, 10));
  media(receiver, fill(2, 5));
  media(receiver, fill(3, 6), [[0, [chunk(2, 2)]]]); // the point began 2 bytes before this chunk
  t.equal(receiver.skips, 1, 'cut there');
  drain(receiver, socket);
  t.same(flat(socket), [...fill(1, 10), 2, 2, 2]);
});

t.test('skip: an overflow during the cache backlog cuts at the backlog\'s keyframe point', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 4);
  receiver.start({ chunks: [chunk(0xf1, 0xf2), fill(1, 4), fill(2, 4)], points: [1], awaitKeyframe: false, generation: 1, version: 1 });
  media(receiver, fill(3, 5)); // only the init went out; live data over the limit
  t.equal(receiver.skips, 1);
  media(receiver, fill(4, 2), [0]);
  drain(receiver, socket);
  t.same(flat(socket), [0xf1, 0xf2, 0xf2, 4, 4], 'the init, then straight to the next keyframe');
});

t.test('a late joiner waiting for a keyframe: dropped until one comes; an opaque turn resumes it, a skip closes', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 100);
  receiver.start({ chunks: [chunk(0xf1, 0xf2)], points: [], awaitKeyframe: true, generation: 1, version: 1 });
  media(receiver, fill(1, 3));
  media(receiver, fill(2, 3), [1]);
  t.same(flat(socket), [0xf1, 0xf2, 2, 2], 'no init again: it has the current one');

  const degraded = new FakeSocket();
  const waiting = new Receiver(info, 'receive', degraded, 100);
  waiting.start({ chunks: [], points: [], awaitKeyframe: true, generation: 0, version: 0 });
  push(waiting, chunk(7, 7)); // the stream turned opaque: take it as it comes
  t.same(flat(degraded), [7, 7]);

  const skipping = new FakeSocket();
  const slow = new Receiver(info, 'receive', skipping, 4);
  slow.start([]);
  media(slow, fill(1, 4), [0]);
  media(slow, fill(2, 5), [0]);
  t.equal(slow.skips, 1);
  push(slow, chunk(9)); // opaque now: a receiver that was skipping is simply too slow
  t.same(skipping.closedWith, [1013, 'Receiver too slow']);
});

t.test('RECEIVER_OVERFLOW=close closes a slow receiver even on a recognised container', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 4, 'close');
  receiver.start([]);
  media(receiver, fill(1, 4), [0]);
  media(receiver, fill(2, 5), [0]);
  t.same(socket.closedWith, [1013, 'Receiver too slow']);
});

t.test('a receiver far behind keeps little in its socket; the rest waits as shared chunks', async (t) => {
  const socket = new FakeSocket();
  const receiver = new Receiver(info, 'receive', socket, 16 * 1024 * 1024);
  receiver.start([]);
  const chunk64k = new Uint8Array(64 * 1024);
  const kept: Uint8Array[] = [];
  for (let i = 0; i < 64; i++) receiver.push(chunk64k, () => (kept.push(chunk64k), chunk64k));
  t.equal(socket.buffered, SOCKET_HIGH_WATER_BYTES, 'the socket (a private copy) stops at its high-water mark');
  t.equal(kept.length, 64 - SOCKET_HIGH_WATER_BYTES / (64 * 1024), 'the rest is queued as the shared chunk, not copied per receiver');
  t.equal(receiver.bufferedBytes, 4 * 1024 * 1024);
  t.equal(socket.closedWith, undefined);
});

t.test('a late joiner of a relayed stream still waiting for its start when the stream ends waits for the next one', async (t) => {
  const channel = new Channel('c', new MediaCache({ capacityBytes: 1024 }));
  const asked: Receiver[] = [];
  const relayed = (streamId: string): Publisher => ({
    info, streamId, socket: new FakeSocket(), startedAt: 0, bytesIn: 0, chunksIn: 0, relayed: true, lateJoins: { request: (receiver) => asked.push(receiver) },
  });
  channel.startPublishing(relayed('first'));
  const early = new Receiver(info, 'receive', new FakeSocket(), 1024);
  channel.addReceiver(early);
  channel.publish(chunk(1));
  const lateSocket = new FakeSocket();
  const late = new Receiver(info, 'receive', lateSocket, 1024);
  channel.addReceiver(late);
  t.same(asked, [late], 'joining after the first chunk, it asks the publisher\'s thread');
  channel.endPublishing();
  t.equal(early.currentState, 'closed', 'a started receiver is closed by the end');
  t.same([late.currentState, lateSocket.closedWith], ['idle', undefined], 'the one still waiting was not answered before the end: it joined after it');
  t.ok(channel.receivers.has(late), 'and stays in the channel');
  channel.startPublishing(relayed('second'));
  channel.publish(chunk(2));
  t.same(lateSocket.sent, [[2]], 'the next stream reaches it from its first byte');
});
