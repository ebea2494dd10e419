import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t from 'tap';
import { WebSocketServer } from 'ws';
import { StreamClientError, StreamPublisher, StreamReceiver, probe, streamUrl } from '../../src/client/index.js';
import type { ReconnectInfo } from '../../src/client/index.js';
import { TestClient, patternBytes } from '../helpers/client.js';
import { freePort } from '../helpers/ports.js';
import { startTestServer } from '../helpers/server.js';

const fast = { minDelayMs: 10, maxDelayMs: 50 };

/** Counts a receiver's `open` or `end` events, and waits for the n-th. */
function counter(receiver: StreamReceiver, event: 'open' | 'end'): { readonly count: number; reached(n: number): Promise<void> } {
  let count = 0;
  const waiters: Array<() => void> = [];
  receiver.on(event, () => {
    count++;
    for (const wake of waiters.splice(0)) wake();
  });
  return {
    get count() {
      return count;
    },
    async reached(n) {
      while (count < n) await new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}

async function collect(receiver: StreamReceiver): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of receiver) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The StreamClientError a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<StreamClientError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof StreamClientError) return error;
    throw error;
  }
  throw new Error('expected a StreamClientError');
}

t.test('a publisher and a waiting receiver: byte-exact, one message per write, `end` when the publisher ends', async (t) => {
  const { url } = await startTestServer(t);
  const receiver = new StreamReceiver(url('/sdk/k'));
  const ends = counter(receiver, 'end');
  await counter(receiver, 'open').reached(1);
  const publisher = await StreamPublisher.connect(url('/sdk/k'));
  const chunks = [patternBytes(1000, 1), patternBytes(100_000, 2), patternBytes(1, 3)];
  const received = (async () => {
    const got: Uint8Array[] = [];
    for await (const chunk of receiver) got.push(chunk);
    return got;
  })();
  for (const chunk of chunks) t.equal(publisher.write(chunk), true, 'below the high-water mark');
  await publisher.end();
  t.same((await received).map((chunk) => Buffer.from(chunk)), chunks);
  await receiver.closed;
  t.equal(ends.count, 1, 'one `end` event');
  t.throws(() => publisher.write(chunks[0]!), { code: 'CLOSED' }, 'no writes after end()');
});

t.test('writes before the connection opens are queued and sent in order', async (t) => {
  const { url } = await startTestServer(t);
  const watcher = await TestClient.connect(url('/early/k/receive'));
  const publisher = new StreamPublisher(streamUrl(url('/'), 'early', 'k', 'publish'));
  publisher.write(patternBytes(10, 1));
  publisher.write(patternBytes(20, 2));
  t.equal(publisher.bufferedAmount, 30);
  await publisher.opened;
  t.same(await watcher.binary(2), [patternBytes(10, 1), patternBytes(20, 2)]);
  await publisher.end();
});

t.test('toStream() is a Node Readable of the stream', async (t) => {
  const { url } = await startTestServer(t);
  const publisher = await StreamPublisher.connect(url('/pipe/k/publish'));
  publisher.write(patternBytes(70_000, 4));
  const receiver = new StreamReceiver(url('/pipe/k/receive'));
  await counter(receiver, 'open').reached(1); // Else the publisher could end before it joins.
  const got: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      got.push(chunk);
      done();
    },
  });
  const piping = pipeline(receiver.toStream(), sink);
  publisher.write(patternBytes(5, 5));
  await publisher.end();
  await piping;
  t.same(Buffer.concat(got), Buffer.concat([patternBytes(70_000, 4), patternBytes(5, 5)]));
});

t.test('refusals of the upgrade are typed errors with the HTTP status and the server\'s text', async (t) => {
  const { url } = await startTestServer(t, { idMaxLength: '8', playWhitelist: '10.1.2.3' });
  const holder = await StreamPublisher.connect(url('/busy/k'));
  const busy = await failure(StreamPublisher.connect(url('/busy/k')));
  t.match(busy, { code: 'ALREADY_PUBLISHING', category: 'refused', status: 403, message: 'Already publishing. (HTTP 403)', retryable: false });
  t.match(await failure(new StreamReceiver(url('/busy/k')).closed), { code: 'NOT_WHITELISTED', status: 403 });
  t.match(await failure(StreamPublisher.connect(url('/a-very-long-channel/k'))), { code: 'INVALID_CHANNEL', status: 404 });
  await holder.end();

  const limited = await startTestServer(t, { maxIpConcurrentConnections: '1' });
  const first = await StreamPublisher.connect(limited.url('/one/k'));
  t.match(await failure(StreamPublisher.connect(limited.url('/two/k'))), { code: 'TOO_MANY_REQUESTS', category: 'refused', status: 429 });
  await first.end();
});

t.test('ERROR texts and close codes of an open connection are typed errors', async (t) => {
  const { url } = await startTestServer(t, { maxMessageSizeMb: String(1 / 1024) });
  const publisher = await StreamPublisher.connect(url('/err/right'));
  const intruder = new StreamReceiver(url('/err/wrong'));
  const error = await failure(collect(intruder));
  t.match(error, { code: 'INVALID_STREAMING_KEY', category: 'refused', closeCode: 1008 });
  t.equal(intruder.error, error);

  publisher.write(patternBytes(2048, 1));
  const tooBig = await failure(publisher.closed);
  t.match(tooBig, { code: 'MESSAGE_TOO_BIG', category: 'limit', closeCode: 1009 });
  t.throws(() => publisher.write(patternBytes(1, 1)), tooBig, 'later writes throw the failure');
});

t.test('a connection that cannot open fails at once, even for receivers (no retry before a first open)', async (t) => {
  const port = await freePort();
  const error = await failure(StreamPublisher.connect(`ws://127.0.0.1:${port}/c/k`));
  t.match(error, { code: 'CONNECTION_FAILED', category: 'connection', retryable: true });
  t.match(error.message, 'ECONNREFUSED');
  const receiver = new StreamReceiver(`ws://127.0.0.1:${port}/c/k`, { reconnect: fast });
  t.match(await failure(collect(receiver)), { code: 'CONNECTION_FAILED' });
  t.throws(() => new StreamReceiver('http://127.0.0.1/c/k/publish'), { code: 'INVALID_URL', category: 'usage' });
  t.throws(() => new StreamPublisher('ftp://127.0.0.1/c/k'), { code: 'INVALID_URL' });
});

t.test('a connection lost to a socket error says which error, with it as the cause', async (t) => {
  // A broken server (a party this project does not run): it accepts the upgrade, then sends a
  // frame with an opcode no WebSocket has.
  const server = createServer((socket) => {
    socket.once('data', (request) => {
      const key = /^Sec-WebSocket-Key: (.+)$/im.exec(request.toString('latin1'))![1]!.trim();
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.write(Buffer.from([0x83, 0x00]));
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.close();
  });
  const publisher = await StreamPublisher.connect(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/c/k`);
  const error = await failure(publisher.closed);
  t.match(error, { code: 'CONNECTION_LOST', category: 'connection', retryable: true });
  t.match(error.message, /^connection lost: Invalid WebSocket frame: invalid opcode 3$/);
  t.type(error.cause, Error, 'the socket\'s error is the cause');
});

t.test('a waiting receiver reconnects with backoff when the server restarts, then gets the stream', async (t) => {
  const port = await freePort();
  const first = await startTestServer(t, { httpPort: String(port) });
  const receiver = new StreamReceiver(first.url('/restart/k'), { reconnect: fast });
  const opens = counter(receiver, 'open');
  await opens.reached(1);
  const retried = new Promise<ReconnectInfo>((resolve) => receiver.once('reconnecting', resolve));
  await first.close();
  const info = await retried;
  t.match(info, { attempt: 1, error: { code: 'SHUTTING_DOWN', closeCode: 1001 } });
  t.ok(info.delayMs >= 10 && info.delayMs <= 50, 'within the backoff bounds');

  const second = await startTestServer(t, { httpPort: String(port) });
  await opens.reached(2);
  const publisher = await StreamPublisher.connect(second.url('/restart/k'));
  publisher.write(patternBytes(3000, 7));
  await publisher.end();
  t.same(await collect(receiver), patternBytes(3000, 7));
});

t.test('with `wait`, a receiver keeps going across publishing sessions', async (t) => {
  const { url } = await startTestServer(t);
  const receiver = new StreamReceiver(url('/follow/k'), { wait: true });
  const opens = counter(receiver, 'open');
  const ends = counter(receiver, 'end');
  const got: Buffer[] = [];
  for (const seed of [1, 2, 3]) {
    await opens.reached(seed);
    const publisher = await StreamPublisher.connect(url('/follow/k'));
    publisher.write(patternBytes(500, seed));
    await publisher.end();
    got.push(Buffer.from((await receiver.read())!));
  }
  t.same(got, [patternBytes(500, 1), patternBytes(500, 2), patternBytes(500, 3)]);
  await ends.reached(3);
  await opens.reached(4);
  receiver.close();
  t.equal(await receiver.read(), undefined, 'close() ends the iteration');
});

t.test('probe() waits for a publisher and resolves with the first chunk', async (t) => {
  const { url } = await startTestServer(t);
  const probing = probe(url('/probe/k'));
  const publisher = await StreamPublisher.connect(url('/probe/k'));
  publisher.write(patternBytes(900, 1));
  publisher.write(patternBytes(900, 2));
  t.same(Buffer.from(await probing), patternBytes(900, 1));
  t.same(Buffer.from(await probe(url('/probe/k/probe'))), patternBytes(900, 1), 'a later probe gets the first cached chunk');
  const aborted = new AbortController();
  const never = probe(url('/nobody/k'), { signal: aborted.signal });
  aborted.abort(new Error('gave up'));
  await t.rejects(never, { message: 'gave up' });
  await publisher.end();
});

t.test('a publisher with `reconnect` reconnects after the server restarts and goes on publishing', async (t) => {
  const port = await freePort();
  const first = await startTestServer(t, { httpPort: String(port) });
  const publisher = await StreamPublisher.connect(first.url('/again/k'), { reconnect: fast });
  const retried = new Promise<ReconnectInfo>((resolve) => publisher.once('reconnecting', resolve));
  await first.close();
  t.match(await retried, { error: { code: 'SHUTTING_DOWN' } });
  publisher.write(patternBytes(100, 1)); // Queued while disconnected.
  const second = await startTestServer(t, { httpPort: String(port) });
  const watcher = await TestClient.connect(second.url('/again/k/receive'));
  t.same(await watcher.binary(1), [patternBytes(100, 1)]);
  await publisher.end();
});

t.test('the heartbeat `h` is sent at the configured interval', async (t) => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const beats = new Promise<string[]>((resolve) => {
    server.on('connection', (socket) => {
      const texts: string[] = [];
      socket.on('message', (data, isBinary) => {
        if (!isBinary) texts.push(data.toString());
        if (texts.length === 3) resolve(texts);
      });
    });
  });
  const { port } = server.address() as { port: number };
  const publisher = await StreamPublisher.connect(`ws://127.0.0.1:${port}/hb/k`, { heartbeatMs: 20 });
  t.same(await beats, ['h', 'h', 'h']);
  publisher.close();
});
