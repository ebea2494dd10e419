import t from 'tap';
import type { Test } from 'tap';
import { openConnections, startTestServer } from './helpers/server.js';
import { TestClient, patternBytes } from './helpers/client.js';

const MiB = 1024 * 1024;

async function fill(t: Test, url: (path: string) => string, count: number): Promise<TestClient[]> {
  const clients: TestClient[] = [];
  for (let i = 0; i < count; i++) clients.push(await TestClient.connect(url(`/ip${i}/k/receive`)));
  t.teardown(() => clients.forEach((client) => client.socket.terminate()));
  return clients;
}

t.test('per-IP limit: 4 by default, 429 Too many requests. for the fifth, slot back after close', async (t) => {
  const server = await startTestServer(t, { maxIpConcurrentConnections: '4' });
  const { url } = server;
  const clients = await fill(t, url, 4);
  const refused = await TestClient.rejection(url('/ip9/k/receive'));
  t.same([refused.status, refused.body], [429, 'Too many requests.']);
  await clients[0]!.close();
  await server.until((state) => openConnections(state) === 3, 'the closed slot is free');
  const again = await TestClient.connect(url('/ip9/k/receive'));
  await again.close();
});

t.test('the default per-IP limit is 4', async (t) => {
  const { loadConfig } = await import('../src/config/index.js');
  t.equal(loadConfig().maxIpConcurrentConnections, 4);
});

t.test('rejected upgrades give their slot back', async (t) => {
  const { url } = await startTestServer(t, { maxIpConcurrentConnections: '1' });
  for (let i = 0; i < 3; i++) {
    const refused = await TestClient.rejection(url('/bad!/k/receive'));
    t.equal(refused.status, 404);
  }
  const publisher = await TestClient.connect(url('/one/k/publish'));
  const refused = await TestClient.rejection(url('/one/k/publish'));
  t.equal(refused.status, 429, 'the one slot is in use by the publisher');
  await publisher.close();
});

t.test('custom limit, and exemption by CIDR and by plain IP', async (t) => {
  const custom = await startTestServer(t, { maxIpConcurrentConnections: '2' });
  await fill(t, custom.url, 2);
  t.equal((await TestClient.rejection(custom.url('/x/k/receive'))).status, 429);

  for (const whitelist of ['127.0.0.0/8', '10.0.0.1, 127.0.0.1']) {
    const exempt = await startTestServer(t, { maxIpConcurrentConnections: '1', concurrentLimitWhitelist: whitelist });
    const clients = await fill(t, exempt.url, 3);
    t.equal(clients.length, 3, `exempt with ${whitelist}`);
  }
});

t.test('PLAY_WHITELIST with plain IP, CIDR, IPv6 and *', async (t) => {
  const refusedBy = async (settings: Record<string, string>, host: string): Promise<number | 'accepted'> => {
    const { url } = await startTestServer(t, { bindAddress: '::', ...settings });
    try {
      const client = await TestClient.connect(url('/w/k/receive', host));
      await client.close();
      return 'accepted';
    } catch (error) {
      return (error as { status: number; body: string }).status;
    }
  };
  t.equal(await refusedBy({ playWhitelist: '127.0.0.1' }, '127.0.0.1'), 'accepted', 'plain IPv4 (seen IPv4-mapped on a dual-stack socket)');
  t.equal(await refusedBy({ playWhitelist: '10.0.0.0/8' }, '127.0.0.1'), 403, 'outside the CIDR');
  t.equal(await refusedBy({ playWhitelist: '10.0.0.0/8,127.0.0.0/8' }, '127.0.0.1'), 'accepted', 'inside the CIDR');
  t.equal(await refusedBy({ playWhitelist: '::1' }, '[::1]'), 'accepted', 'IPv6');
  t.equal(await refusedBy({ playWhitelist: '::1' }, '127.0.0.1'), 403, 'IPv6 entry does not admit IPv4');
  t.equal(await refusedBy({ playWhitelist: 'fd00::/8' }, '[::1]'), 403, 'outside an IPv6 CIDR');
  t.equal(await refusedBy({ playWhitelist: '::ffff:127.0.0.0/104' }, '127.0.0.1'), 'accepted', 'IPv4-mapped CIDR entry');
  t.equal(await refusedBy({ playWhitelist: '*' }, '[::1]'), 'accepted', '* admits all');

  const { url } = await startTestServer(t, { playWhitelist: '10.1.2.3' });
  const refused = await TestClient.rejection(url('/w/k/probe'));
  t.same([refused.status, refused.body], [403, 'Cannot play: Not whitelisted.']);
  const publisher = await TestClient.connect(url('/w/k/publish'));
  t.pass('publishing is not subject to the play whitelist');
  await publisher.close();
});

t.test('a 4 MiB message passes; one above MAX_MESSAGE_SIZE_MB closes that client only, with 1009', async (t) => {
  const { url } = await startTestServer(t, { maxMessageSizeMb: '4' });
  const publisher = await TestClient.connect(url('/big/k/publish'));
  const receiver = await TestClient.connect(url('/big/k/receive'));
  const bystander = await TestClient.connect(url('/big/k/receive'));
  const fourMiB = patternBytes(4 * MiB, 7);
  await publisher.send(fourMiB);
  t.ok((await receiver.binary(1))[0]!.equals(fourMiB), '4 MiB delivered byte-exact');

  const oversized = await TestClient.connect(url('/other/k/publish'));
  await oversized.send(Buffer.alloc(4 * MiB + 1));
  t.same(await oversized.closed, { code: 1009, reason: 'Message too big' });
  t.same(oversized.textMessages, ['ERROR: Message too big']);

  // An oversized message from a receiver is refused the same way; the channel carries on.
  await bystander.send(Buffer.alloc(4 * MiB + 1));
  t.equal((await bystander.closed).code, 1009);
  await publisher.send(Buffer.from('still live'));
  t.equal((await receiver.binary(2))[1]!.toString(), 'still live');
  await publisher.close();
});

t.test('a paused receiver slows neither the publisher nor the others, and is closed past its buffer', async (t) => {
  const server = await startTestServer(t, { maxReceiverBufferMb: '1', gopCacheSizeMb: '0' });
  const { url } = server;
  const publisher = await TestClient.connect(url('/slow/k/publish'));
  const paused = await TestClient.connect(url('/slow/k/receive'));
  const healthy = await TestClient.connect(url('/slow/k/receive'));
  paused.socket.pause();

  // Far more than the paused client's buffer limit plus what loopback TCP can absorb, sent as
  // fast as the healthy receiver takes it: at most 1 MiB ahead of it, so that it keeps up by
  // its own reading, not by how this process shares its time with the publisher's sends (with
  // worker threads, the publisher's thread reads it at full speed).
  const chunks = Array.from({ length: 160 }, (_, i) => patternBytes(256 * 1024, i + 1));
  for (const [i, data] of chunks.entries()) {
    if (i >= 4) await healthy.binary(i - 3);
    await publisher.send(data);
  }
  const received = await healthy.binary(chunks.length);
  t.ok(received.every((data, i) => data.equals(chunks[i]!)), 'the healthy receiver got all 40 MiB byte-exact while the other was paused');

  // With worker threads the paused receiver may be on another thread, reached a little later.
  const state = await server.until((state) => state.channels.get('slow')?.receivers.length === 1, 'the paused receiver dropped');
  t.equal(state.channels.get('slow')?.receivers.length, 1, 'the paused receiver was dropped from the channel');
  paused.socket.resume();
  const closed = await paused.closed;
  t.same(closed, { code: 1013, reason: 'Receiver too slow' });
  t.equal(paused.textMessages.at(-1), 'ERROR: Receiver too slow');
  t.ok(paused.binaryBytes < 20 * MiB, `the paused receiver got only what fit in buffers (${paused.binaryBytes} bytes)`);
  await publisher.close();
});
