// Origin + two edges + an edge of an edge, as real server processes on loopback.
import t from 'tap';
import { TestClient, patternBytes } from '../helpers/client.js';
import { freePort } from '../helpers/ports.js';
import { channelInfo, receiverCount, relays, startServer, until } from './helpers.js';

t.test('a chain of edges delivers byte-exact with one upstream per channel per edge', async (t) => {
  const origin = await startServer(t, { env: { PUBLIC_STREAM_LIST: 'YES' } });
  const dead = await freePort();
  const edge1 = await startServer(t, { env: { ORIGIN_URL: origin.url(''), PUBLIC_STREAM_LIST: 'YES', METRICS_PER_CHANNEL: 'YES' } });
  // The first origin of the list does not answer: the edge goes on to the next.
  const edge2 = await startServer(t, { env: { ORIGIN_URL: `ws://127.0.0.1:${dead},${origin.url('')}` } });
  const edge3 = await startServer(t, { env: { ORIGIN_URL: edge1.url('/') } });

  const viewers = [
    ...(await Promise.all([1, 2, 3].map(() => TestClient.connect(edge1.url('/chain/k/receive'))))),
    ...(await Promise.all([1, 2, 3, 4].map(() => TestClient.connect(edge2.url('/chain/k/receive'))))),
    ...(await Promise.all([1, 2].map(() => TestClient.connect(edge3.url('/chain/k/receive'))))),
  ];
  const direct = await TestClient.connect(origin.url('/chain/k/receive'));
  // The origin sees one receiver per edge (edge1, edge2) besides the direct one; edge1 sees
  // its 3 viewers and edge3's one upstream.
  await until('the edges connected upstream', async () => [await receiverCount(origin, 'chain'), await receiverCount(edge1, 'chain')], ([o, e]) => o === 3 && e === 4);
  await until('edge3 connected upstream', async () => (await relays(edge3))[0]?.state, (state) => state === 'waiting');

  const publisher = await TestClient.connect(origin.url('/chain/k/publish'));
  const chunks = Array.from({ length: 40 }, (_, i) => patternBytes(1000 + i * 997, i + 1));
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  for (const chunk of chunks) await publisher.send(chunk);
  const expected = Buffer.concat(chunks);
  for (const viewer of [...viewers, direct]) {
    await viewer.until((client) => client.binaryBytes >= total, `${total} bytes`);
    t.ok(Buffer.concat(viewer.binaryMessages).equals(expected), 'byte-exact through the chain');
  }
  t.equal(await receiverCount(origin, 'chain'), 3, 'still one upstream per edge whatever the number of viewers');
  const [relay] = await relays(edge2);
  t.match(relay, { channel: 'chain', upstream: origin.url(''), state: 'live', viewers: 4, bytesIn: total, reconnects: 0 }, 'edge2 shows its relay, on the second origin of its list');
  t.notOk(JSON.stringify(await edge2.admin('/api/v1/server')).includes('/chain/k'), 'the admin API never shows the key');
  const streams = (await (await fetch(`http://127.0.0.1:${edge1.port}/streams`)).json()) as { streams: Array<{ channel: string; receivers: number }> };
  t.match(streams.streams, [{ channel: 'chain', receivers: 4 }], '/streams on the edge lists the relayed channel');
  const metrics = await edge1.adminText('/metrics');
  t.match(metrics, /wss_edge_relays\{state="live"\} 1/);
  t.match(metrics, new RegExp(`wss_edge_upstream_received_bytes\\{channel="chain",upstream="${origin.url('').replaceAll('/', '\\/')}",state="live"\\} ${total}`));
  t.match(metrics, /wss_edge_upstream_reconnects\{channel="chain".*\} 0/);
  t.equal((await channelInfo(edge1, 'chain'))?.publishing, true, 'the relay is the local publisher');

  await publisher.close();
  for (const viewer of [...viewers, direct]) t.same(await viewer.closed, { code: 1000, reason: 'Publisher ended' }, 'the same closure as on the origin');
  await until('the upstreams closed', async () => receiverCount(origin, 'chain'), (count) => count === 0);
  t.same(await relays(edge1), [], 'no relay kept after the publisher ended');
});

t.test('publishing to an edge is refused', async (t) => {
  const origin = await startServer(t);
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url('') } });
  const refused = await TestClient.rejection(edge.url('/chan/k/publish'));
  t.same([refused.status, refused.body], [403, 'Cannot publish on an edge server.']);
  t.same(await relays(edge), [], 'no upstream opened');
});
