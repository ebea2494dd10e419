// A receiver that stops reading and then catches up gets everything that was queued for it
// (or, past its buffer on a recognised container, a clean skip to a keyframe) and stays live.
// Regression: the library stopped polling the socket after a large send made inside its
// `drain` callback was only partly written, so the receiver stalled for good.
import t from 'tap';
import type { Test } from 'tap';
import type { ServerState } from '../src/cluster/index.js';
import { startTestServer } from './helpers/server.js';
import type { TestServer } from './helpers/server.js';
import { TestClient, patternBytes } from './helpers/client.js';
import { cluster, simpleBlock, webmInit } from './media/builders.js';

const MiB = 1024 * 1024;

/** Waits for `condition` over what `client` received, failing after `ms` instead of hanging. */
async function within(client: TestClient, ms: number, what: string, condition: (client: TestClient) => boolean): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms (got ${client.binaryBytes} bytes)`)), ms);
  });
  try {
    await Promise.race([client.until(condition, what), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

interface Setup {
  server: TestServer;
  publisher: TestClient;
  paused: TestClient;
  witness: TestClient;
}

/** A publisher, a receiver that stops reading, and a witness that reads everything. */
async function setup(t: Test, channel: string, settings: Parameters<typeof startTestServer>[1]): Promise<Setup> {
  const server = await startTestServer(t, settings);
  const publisher = await TestClient.connect(server.url(`/${channel}/k/publish`));
  const paused = await TestClient.connect(server.url(`/${channel}/k/receive`));
  const witness = await TestClient.connect(server.url(`/${channel}/k/receive`));
  t.teardown(() => [publisher, paused, witness].forEach((client) => client.socket.terminate()));
  paused.socket.pause();
  return { server, publisher, paused, witness };
}

/**
 * Publishes `chunks`, each once the witness got the one before (a reader that keeps up, as with
 * a real-time stream: with worker threads the server does not share this process's thread, and
 * a burst of megabytes could leave the witness itself behind by more than its buffer), and
 * returns what the server holds for the paused receiver once it holds more than `atLeast` (with
 * worker threads the paused receiver's thread may still be applying the relayed stream when the
 * witness has it all).
 */
async function publishWhilePaused(s: Setup, channel: string, chunks: readonly Buffer[], atLeast: number): Promise<number> {
  let total = s.witness.binaryBytes;
  for (const chunk of chunks) {
    await s.publisher.send(chunk);
    total += chunk.length;
    await within(s.witness, 10_000, 'the witness gets everything', (client) => client.binaryBytes >= total);
  }
  const heldIn = (state: ServerState): number => Math.max(0, ...(state.channels.get(channel)?.receivers ?? []).map((receiver) => receiver.bufferedBytes));
  return heldIn(await s.server.until((state) => heldIn(state) > atLeast, `the server holds more than ${atLeast} bytes for the paused receiver`));
}

for (const cache of ['0', '256']) {
  t.test(`opaque stream, GOP_CACHE_SIZE_MB=${cache}: a resumed receiver gets every byte in order, then live data`, async (t) => {
    const s = await setup(t, 'resume', { gopCacheSizeMb: cache });
    // 12 MiB: more than loopback TCP absorbs, within the default 16 MiB receiver buffer.
    const chunks = Array.from({ length: 48 }, (_, i) => patternBytes(256 * 1024, i + 1));
    const held = await publishWhilePaused(s, 'resume', chunks, 1 * MiB);
    t.ok(held > 1 * MiB, `the server holds ${held} bytes for the paused receiver (well beyond its 256 KiB socket share)`);

    s.paused.socket.resume();
    const expected = Buffer.concat(chunks);
    await within(s.paused, 10_000, 'the resumed receiver catches up', (client) => client.binaryBytes >= expected.length);
    t.ok(Buffer.concat(s.paused.binaryMessages).equals(expected), 'all 12 MiB arrived byte-exact and in order');

    const live = patternBytes(300 * 1024, 99);
    await s.publisher.send(live);
    await within(s.paused, 10_000, 'live data after catching up', (client) => client.binaryMessages.length === chunks.length + 1);
    t.ok(s.paused.binaryMessages.at(-1)!.equals(live), 'it keeps getting live data');
    t.same(s.paused.textMessages.filter((text) => text.startsWith('ERROR')), [], 'it was never told it is too slow');
  });
}

t.test('WebM within the buffer: a resumed receiver gets every cluster in order, then live data', async (t) => {
  const s = await setup(t, 'webm', { gopCacheSizeMb: '0' });
  const clusters = Array.from({ length: 48 }, (_, i) => cluster(i, [simpleBlock(1, true, 256 * 1024 - 64 + (i % 7))]));
  const chunks = [webmInit(), ...clusters];
  const held = await publishWhilePaused(s, 'webm', chunks, 1 * MiB);
  t.ok(held > 1 * MiB, `the server holds ${held} bytes for the paused receiver`);

  s.paused.socket.resume();
  const expected = Buffer.concat(chunks);
  await within(s.paused, 10_000, 'the resumed receiver catches up', (client) => client.binaryBytes >= expected.length);
  t.ok(Buffer.concat(s.paused.binaryMessages).equals(expected), 'every byte arrived in order');

  const live = cluster(48, [simpleBlock(1, true, 300 * 1024)]);
  await s.publisher.send(live);
  await within(s.paused, 10_000, 'live data after catching up', (client) => client.binaryBytes >= expected.length + live.length);
  t.ok(s.paused.binaryMessages.at(-1)!.equals(live), 'it keeps getting live data');
});

t.test('WebM past the buffer with RECEIVER_OVERFLOW=skip: a resumed receiver gets whole clusters, skips ahead once behind, then live data', async (t) => {
  const s = await setup(t, 'skip', { gopCacheSizeMb: '0', maxReceiverBufferMb: '8', receiverOverflow: 'skip' });
  const init = webmInit();
  const clusterOf = (i: number): Buffer => cluster(i, [simpleBlock(1, true, 256 * 1024 - 64 + (i % 7))]);
  // 24 MiB of one-keyframe clusters: the paused receiver falls more than 8 MiB behind.
  const clusters = Array.from({ length: 96 }, (_, i) => clusterOf(i));
  await publishWhilePaused(s, 'skip', [init, ...clusters], 0);
  const receiver = (await s.server.channel('skip'))?.receivers.find((r) => r.skips > 0);
  t.ok(receiver !== undefined, 'the paused receiver skipped ahead instead of being closed');
  // Then fill its queue again to just under the limit, so that it has megabytes to catch up on.
  const room = Math.floor((8 * MiB - receiver!.bufferedBytes - MiB) / (256 * 1024));
  const more = Array.from({ length: Math.max(room, 0) }, (_, i) => clusterOf(96 + i));
  clusters.push(...more);
  const held = await publishWhilePaused(s, 'skip', more, 4 * MiB);
  t.ok(held > 4 * MiB, `the server holds ${held} bytes for the paused receiver`);

  s.paused.socket.resume();
  const live = cluster(clusters.length, [simpleBlock(1, true, 300 * 1024)]);
  // Published once the receiver caught up: it must arrive after whatever was queued.
  await within(s.paused, 10_000, 'the resumed receiver gets what was queued', (client) => client.binaryMessages.some((data) => data.equals(clusters.at(-1)!)));
  await s.publisher.send(live);
  await within(s.paused, 10_000, 'live data after catching up', (client) => client.binaryMessages.some((data) => data.equals(live)));

  // Every message is the init or a whole cluster, in publishing order, with at least one gap.
  const order = s.paused.binaryMessages.map((data) => (data.equals(init) ? -1 : data.equals(live) ? clusters.length : clusters.findIndex((c) => c.equals(data))));
  t.equal(order[0], -1, 'the init comes first');
  t.notOk(order.slice(1).includes(-1), 'every later message is a whole cluster');
  t.ok(order.every((index, i) => i === 0 || index > order[i - 1]!), 'clusters arrive in order, none twice');
  t.ok(order.length < clusters.length + 2, `it skipped ${clusters.length + 2 - order.length} clusters`);
  t.equal(order.at(-1), clusters.length, 'the live cluster comes last');
});
