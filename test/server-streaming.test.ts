import t from 'tap';
import { startTestServer } from './helpers/server.js';
import { TestClient, patternBytes } from './helpers/client.js';

const chunk = (n: number, size = 1000): Buffer => patternBytes(size, n + 1);

t.test('an idle receiver starts getting data when a publisher arrives, and is closed with 1000 when it leaves', async (t) => {
  const { url } = await startTestServer(t);
  const receiver = await TestClient.connect(url('/live/k/receive'));
  const publisher = await TestClient.connect(url('/live/k/publish'));
  const sent = [chunk(1), chunk(2, 70_000), chunk(3, 1)];
  for (const data of sent) await publisher.send(data);
  t.same(await receiver.binary(3), sent, 'byte-exact and in order');
  await publisher.close();
  t.same(await receiver.closed, { code: 1000, reason: 'Publisher ended' });
});

t.test('a late receiver gets the cached chunks, then live ones, byte-exact', async (t) => {
  const { url } = await startTestServer(t);
  const publisher = await TestClient.connect(url('/late/k/publish'));
  const early = [chunk(1), chunk(2, 100_000), chunk(3)];
  for (const data of early) await publisher.send(data);
  // An earlier receiver proves the chunks went through the server before the late one joins.
  const witness = await TestClient.connect(url('/late/k/receive'));
  t.same(await witness.binary(3), early);
  const late = await TestClient.connect(url('/late/k/receive'));
  t.same(await late.binary(3), early, 'cache first');
  const live = chunk(4, 5000);
  await publisher.send(live);
  t.same(await late.binary(4), [...early, live], 'then live');
  await publisher.close();
});

t.test('text messages from a publisher are not part of the stream', async (t) => {
  const { url } = await startTestServer(t);
  const publisher = await TestClient.connect(url('/text/k/publish'));
  const receiver = await TestClient.connect(url('/text/k/receive'));
  await publisher.send('h');
  await publisher.send('hello');
  await publisher.send(chunk(1));
  t.same(await receiver.binary(1), [chunk(1)]);
  t.same(receiver.textMessages, []);
  await publisher.close();
});

t.test('a receiver with the wrong key is refused while the channel is published', async (t) => {
  const { url } = await startTestServer(t);
  const publisher = await TestClient.connect(url('/keyed/right/publish'));
  const intruder = await TestClient.connect(url('/keyed/wrong/receive'));
  t.same(await intruder.closed, { code: 1008, reason: 'Invalid streaming key' });
  t.same(intruder.textMessages, ['ERROR: Invalid streaming key']);
  const prober = await TestClient.connect(url('/keyed/wrong/probe'));
  t.equal((await prober.closed).code, 1008);
  await publisher.close();
});

t.test('idle receivers whose key does not match the publisher that starts are refused; the others go live', async (t) => {
  const { url } = await startTestServer(t);
  const intruder = await TestClient.connect(url('/early/guess/receive'));
  const viewer = await TestClient.connect(url('/early/secret/receive'));
  const publisher = await TestClient.connect(url('/early/secret/publish'));
  t.same(await intruder.closed, { code: 1008, reason: 'Invalid streaming key' });
  t.same(intruder.textMessages, ['ERROR: Invalid streaming key']);
  await publisher.send(chunk(1));
  t.same(await viewer.binary(1), [chunk(1)]);
  t.same(intruder.binaryMessages, [], 'the intruder got nothing of the stream');
  await publisher.close();
});

t.test('probe gets exactly one message, the first chunk of the stream, then a 1000 close', async (t) => {
  const { url } = await startTestServer(t);
  const waiting = await TestClient.connect(url('/probe/k/probe'));
  const publisher = await TestClient.connect(url('/probe/k/publish'));
  await publisher.send(chunk(1));
  await publisher.send(chunk(2));
  t.same(await waiting.closed, { code: 1000, reason: 'Probe done' });
  t.same(waiting.binaryMessages, [chunk(1)]);

  // A probe joining later gets the first cached chunk.
  const late = await TestClient.connect(url('/probe/k/probe'));
  await late.closed;
  t.same(late.binaryMessages, [chunk(1)]);
  await publisher.close();
});

t.test('receive-clear-cache gets the cache, then the cache is emptied and disabled for the session', async (t) => {
  const { url } = await startTestServer(t);
  const publisher = await TestClient.connect(url('/hls/k/publish'));
  const witness = await TestClient.connect(url('/hls/k/receive'));
  await publisher.send(chunk(1));
  await publisher.send(chunk(2));
  await witness.binary(2);
  const encoder = await TestClient.connect(url('/hls/k/receive-clear-cache'));
  t.same(await encoder.binary(2), [chunk(1), chunk(2)], 'the encoder gets the cache');
  await publisher.send(chunk(3));
  await witness.binary(3);
  const late = await TestClient.connect(url('/hls/k/receive'));
  await publisher.send(chunk(4));
  t.same(await late.binary(1), [chunk(4)], 'a later receiver gets no cached chunk, only live data');
  t.same(await encoder.binary(4), [chunk(1), chunk(2), chunk(3), chunk(4)]);
  await publisher.close();

  // The next publishing session caches again.
  const next = await TestClient.connect(url('/hls/k/publish'));
  await next.send(chunk(5));
  const witness2 = await TestClient.connect(url('/hls/k/receive'));
  t.same(await witness2.binary(1), [chunk(5)], 'caching is back for a new session');
  await next.close();
});

t.test('GOP_CACHE_SIZE_MB=1 keeps only the newest chunks that fit in 1 MiB', async (t) => {
  const { url } = await startTestServer(t, { gopCacheSizeMb: '1' });
  const publisher = await TestClient.connect(url('/cap/k/publish'));
  const witness = await TestClient.connect(url('/cap/k/receive'));
  const sent = Array.from({ length: 12 }, (_, i) => chunk(i, 200_000));
  for (const data of sent) await publisher.send(data);
  await witness.binary(12);
  const late = await TestClient.connect(url('/cap/k/receive'));
  const marker = chunk(99, 10);
  await publisher.send(marker);
  const received = await late.binary(6);
  // 5 × (200000 + 16) bytes fit in 1 MiB, 6 do not.
  t.same(received, [...sent.slice(-5), marker]);
  await publisher.close();
});

t.test('GOP_CACHE_SIZE_MB=0 disables the cache', async (t) => {
  const { url } = await startTestServer(t, { gopCacheSizeMb: '0' });
  const publisher = await TestClient.connect(url('/nocache/k/publish'));
  const witness = await TestClient.connect(url('/nocache/k/receive'));
  await publisher.send(chunk(1));
  await witness.binary(1);
  const late = await TestClient.connect(url('/nocache/k/receive'));
  await publisher.send(chunk(2));
  t.same(await late.binary(1), [chunk(2)]);
  await publisher.close();
});

t.test('channels are independent and dropped when unused', async (t) => {
  const server = await startTestServer(t);
  const { url } = server;
  const a = await TestClient.connect(url('/one/k/publish'));
  const b = await TestClient.connect(url('/two/k/publish'));
  const ra = await TestClient.connect(url('/one/k/receive'));
  const rb = await TestClient.connect(url('/two/k/receive'));
  await a.send(chunk(1));
  await b.send(chunk(2));
  t.same(await ra.binary(1), [chunk(1)]);
  t.same(await rb.binary(1), [chunk(2)]);
  await a.close();
  await ra.closed;
  await b.close();
  await rb.closed;
  t.equal((await server.state()).channels.size, 0);
});
