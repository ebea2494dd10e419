// An edge's upstreams over time: origin restarts, idle linger, heartbeat, slow viewers.
import t from 'tap';
import { TestClient, patternBytes } from '../helpers/client.js';
import { receiverCount, relays, startServer, until } from './helpers.js';

t.test('origin killed and restarted: viewers wait, the edge retries with backoff and resumes', async (t) => {
  const origin = await startServer(t);
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url(''), LOG_DEBUG: 'YES' } });
  const viewer = await TestClient.connect(edge.url('/restart/k/receive'));
  await until('the upstream', async () => receiverCount(origin, 'restart'), (count) => count === 1);
  const publisher = await TestClient.connect(origin.url('/restart/k/publish'));
  const before = patternBytes(20_000, 1);
  await publisher.send(before);
  await viewer.binary(1);

  await origin.kill();
  t.same(await viewer.closed, { code: 1000, reason: 'Publisher ended' }, 'the stream ended for the edge\'s viewers');
  // A viewer reconnecting meanwhile waits like an idle receiver.
  const again = await TestClient.connect(edge.url('/restart/k/receive'));
  const retries = (): number => edge.output().split('\n').filter((line) => line.includes("[EDGE] 'restart' next attempt in")).length;
  await until('a few attempts while the origin is down', async () => retries(), (count) => count >= 3);

  const restarted = await startServer(t, { port: origin.port, adminPort: origin.adminPort });
  const publisher2 = await TestClient.connect(restarted.url('/restart/k/publish'));
  const after = patternBytes(30_000, 2);
  await publisher2.send(after);
  await again.until((client) => client.binaryBytes >= after.length, 'the stream after the restart');
  t.ok(Buffer.concat(again.binaryMessages).equals(after), 'byte-exact after the restart');
  t.equal(await receiverCount(restarted, 'restart'), 1, 'one upstream on the restarted origin');
  const [relay] = await relays(edge);
  t.match(relay, { state: 'live', reconnects: 1, viewers: 1 });

  const lines = edge.output().split('\n');
  const count = (text: string): number => lines.filter((line) => line.includes(`[EDGE] 'restart' upstream`) && line.includes(text)).length;
  t.equal(count('lost'), 1, 'the lost connection is logged once');
  t.equal(count('unreachable'), 1, `the unreachable origin is logged once, over ${retries()} attempts`);
  t.equal(count('connected'), 2, 'each connection is logged');
  await publisher2.close();
  t.same(await again.closed, { code: 1000, reason: 'Publisher ended' });
});

t.test('the upstream lingers EDGE_IDLE_SECONDS after the last viewer, then closes', async (t) => {
  const origin = await startServer(t);
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url(''), EDGE_IDLE_SECONDS: '1' } });
  const first = await TestClient.connect(edge.url('/linger/k/receive'));
  await until('the upstream', async () => receiverCount(origin, 'linger'), (count) => count === 1);
  await first.close();
  await until('the relay lingering', async () => (await relays(edge))[0], (relay) => relay?.lingering === true && relay.viewers === 0);
  const back = await TestClient.connect(edge.url('/linger/k/receive'));
  t.match(await relays(edge), [{ lingering: false, viewers: 1, reconnects: 0, state: 'waiting' }], 'a viewer back quickly finds the same upstream');
  t.equal(await receiverCount(origin, 'linger'), 1, 'the origin saw no new connection');

  const left = Date.now();
  await back.close();
  await until('the upstream closed', async () => receiverCount(origin, 'linger'), (count) => count === 0);
  t.ok(Date.now() - left >= 950, `closed ${Date.now() - left} ms after the last viewer left, not before EDGE_IDLE_SECONDS`);
  t.same(await relays(edge), []);
});

t.test('the upstream heartbeats: the origin\'s idle timeout does not cut it', async (t) => {
  const origin = await startServer(t, { env: { IDLE_TIMEOUT_SECONDS: '0.6' } });
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url(''), HEARTBEAT_INTERVAL_SECONDS: '0.1' } });
  const viewer = await TestClient.connect(edge.url('/beat/k/receive'));
  const beat = setInterval(() => viewer.socket.ping(), 100);
  t.teardown(() => clearInterval(beat));
  await until('the upstream', async () => receiverCount(origin, 'beat'), (count) => count === 1);
  // A silent client connected after the upstream is cut by the origin's idle timeout...
  const silent = await TestClient.connect(origin.url('/beat/k/receive'));
  t.equal((await silent.closed).code, 4000);
  // ...while the upstream, idle at the origin for longer, is still the same connection.
  t.match(await relays(edge), [{ state: 'waiting', reconnects: 0 }]);
  t.equal(await receiverCount(origin, 'beat'), 1);
});

t.test('a paused edge viewer does not affect the other viewers or the upstream', async (t) => {
  const origin = await startServer(t);
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url(''), MAX_RECEIVER_BUFFER_MB: '1' } });
  const fast = await TestClient.connect(edge.url('/slow/k/receive'));
  const slow = await TestClient.connect(edge.url('/slow/k/receive'));
  slow.socket.pause();
  await until('the upstream', async () => receiverCount(origin, 'slow'), (count) => count === 1);
  const publisher = await TestClient.connect(origin.url('/slow/k/publish'));
  const chunks = Array.from({ length: 320 }, (_, i) => patternBytes(64 * 1024, i + 1));
  // Paced by the fast viewer (never more than 512 KiB behind), so only the paused one is slow.
  for (let i = 0; i < chunks.length; i++) {
    await publisher.send(chunks[i]!);
    if (i % 8 === 7) await fast.until((client) => client.binaryBytes >= (i + 1) * 64 * 1024, 'the fast viewer keeping up');
  }
  const total = chunks.length * 64 * 1024;
  await fast.until((client) => client.binaryBytes >= total, `${total} bytes`);
  t.ok(Buffer.concat(fast.binaryMessages).equals(Buffer.concat(chunks)), 'the other viewer got everything, byte-exact');
  await until('the paused viewer closed by the edge', async () => receiverCount(edge, 'slow'), (count) => count === 1);
  slow.socket.resume();
  t.same(await slow.closed, { code: 1013, reason: 'Receiver too slow' }, 'the slow-receiver policy of the edge applies');
  t.match(await relays(edge), [{ state: 'live', reconnects: 0, bytesIn: total }], 'the upstream was not affected');
  const originServer = (await origin.admin('/api/v1/server')) as { receiversClosedSlow: number };
  t.equal(originServer.receiversClosedSlow, 0, 'the origin never found the edge slow');
});

t.test('killing a relayed channel on the edge (admin API) closes its viewers and its upstream', async (t) => {
  const origin = await startServer(t);
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url('') } });
  const viewer = await TestClient.connect(edge.url('/killed/k/receive'));
  await until('the upstream', async () => receiverCount(origin, 'killed'), (count) => count === 1);
  const publisher = await TestClient.connect(origin.url('/killed/k/publish'));
  await publisher.send(patternBytes(1000, 9));
  await viewer.binary(1);
  const response = await fetch(`http://127.0.0.1:${edge.adminPort}/api/v1/channels/killed/kill`, { method: 'POST' });
  t.equal(response.status, 200);
  t.same(await viewer.closed, { code: 1000, reason: 'Publisher ended' });
  await until('the upstream closed', async () => receiverCount(origin, 'killed'), (count) => count === 0);
  t.same(await relays(edge), []);
  t.equal(publisher.socket.readyState, publisher.socket.OPEN, 'the origin\'s publisher is untouched');
});

t.test('SIGTERM on an edge with open upstreams: viewers get 1001, the upstreams close, the process exits 0', async (t) => {
  const origin = await startServer(t);
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url('') } });
  const live = await TestClient.connect(edge.url('/term/k/receive'));
  const waiting = await TestClient.connect(edge.url('/idle/k/receive'));
  await until('the upstreams', async () => [await receiverCount(origin, 'term'), await receiverCount(origin, 'idle')], ([a, b]) => a === 1 && b === 1);
  const publisher = await TestClient.connect(origin.url('/term/k/publish'));
  await publisher.send(patternBytes(1000, 4));
  await live.binary(1);
  edge.process.kill('SIGTERM');
  for (const viewer of [live, waiting]) t.same(await viewer.closed, { code: 1001, reason: 'Server shutting down' });
  t.equal(await edge.exited, 0);
  await until('the upstreams closed', async () => [await receiverCount(origin, 'term'), await receiverCount(origin, 'idle')], ([a, b]) => a === 0 && b === 0);
});

t.test('a probe answered at once from the edge\'s cache does not keep the upstream open', async (t) => {
  const origin = await startServer(t);
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url(''), EDGE_IDLE_SECONDS: '0.3' } });
  const viewer = await TestClient.connect(edge.url('/quick/k/receive'));
  await until('the upstream', async () => receiverCount(origin, 'quick'), (count) => count === 1);
  const publisher = await TestClient.connect(origin.url('/quick/k/publish'));
  const chunk = patternBytes(2000, 6);
  await publisher.send(chunk);
  await viewer.binary(1);
  const probe = await TestClient.connect(edge.url('/quick/k/probe'));
  t.same(await probe.closed, { code: 1000, reason: 'Probe done' });
  t.ok(probe.binaryMessages[0]?.equals(chunk), 'the probe got the cached chunk');
  t.match(await relays(edge), [{ viewers: 1 }], 'the probe is not counted as a viewer any more');
  await viewer.close();
  await until('the upstream closed once the last viewer left', async () => receiverCount(origin, 'quick'), (count) => count === 0);
  t.same(await relays(edge), []);
});
