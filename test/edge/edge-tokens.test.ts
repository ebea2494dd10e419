// One upstream per channel serves every viewer the origin accepts: play tokens, play keys and
// the publisher's key through an edge that knows no secret.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { mintPlayToken } from '../../src/coordinator/index.js';
import { TestClient, patternBytes } from '../helpers/client.js';
import type { Closed } from '../helpers/client.js';
import { receiverCount, relays, startServer, until } from './helpers.js';

const SECRET = 'edge-play-secret';
const WRONG_KEY: Closed = { code: 1008, reason: 'Invalid streaming key' };
const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const token = (channel: string, ttl = 3600, secret = SECRET): string => mintPlayToken(secret, channel, nowSeconds() + ttl);

/** Edge log lines (LOG_DEBUG) containing `text`. */
function lines(output: string, text: string): string[] {
  return output.split('\n').filter((line) => line.includes(text));
}

async function refused(url: string): Promise<{ closed: Closed; texts: string[] }> {
  const client = await TestClient.connect(url);
  return { closed: await client.closed, texts: client.textMessages };
}

t.test('viewers with different play tokens share one upstream; bad tokens get the origin\'s answer', async (t) => {
  const origin = await startServer(t, { env: { PLAY_TOKEN_SECRET: SECRET } });
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url(''), LOG_DEBUG: 'YES' } });
  const [t1, t2, t3] = [token('tv', 3600), token('tv', 3601), token('tv', 3602)];

  // Before the publisher: the first token opens the upstream, the second waits on its check.
  const first = await TestClient.connect(edge.url(`/tv/${t1}/receive`));
  const early = await TestClient.connect(edge.url(`/tv/${t2}/receive`));
  // A bad token is refused at once, as the origin refuses it before any publisher.
  const tampered = `${t3.slice(0, -1)}${t3.endsWith('A') ? 'B' : 'A'}`;
  for (const bad of [tampered, token('tv', -10), token('other', 3600), token('tv', 3600, 'another-secret')]) {
    t.same(await refused(edge.url(`/tv/${bad}/receive`)), { closed: WRONG_KEY, texts: ['ERROR: Invalid streaming key'] }, 'a bad token is refused before the stream');
  }

  const publisher = await TestClient.connect(origin.url('/tv/pub/publish'));
  const part1 = patternBytes(40_000, 11);
  await publisher.send(part1);
  for (const viewer of [first, early]) await viewer.until((client) => client.binaryBytes >= part1.length, 'the first part');

  // While live: three viewers with a third token (one check for all), and the publisher's key.
  const late = await Promise.all([1, 2, 3].map(() => TestClient.connect(edge.url(`/tv/${t3}/receive`))));
  const withPublishKey = await TestClient.connect(edge.url('/tv/pub/receive'));
  for (const viewer of [...late, withPublishKey]) await viewer.until((client) => client.binaryBytes >= part1.length, 'the cached first part');
  for (const bad of [tampered, token('tv', -10), token('other', 3600)]) {
    t.same(await refused(edge.url(`/tv/${bad}/receive`)), { closed: WRONG_KEY, texts: ['ERROR: Invalid streaming key'] }, 'a bad token is refused while live');
  }

  // Probes on the edge: with a key already accepted, and with a new token (asked about first).
  for (const key of [t3, token('tv', 3700)]) {
    const probe = await TestClient.connect(edge.url(`/tv/${key}/probe`));
    t.same(await probe.closed, { code: 1000, reason: 'Probe done' });
    t.ok(probe.binaryMessages[0]?.equals(part1), 'the probe got the cached chunk');
  }

  const part2 = patternBytes(30_000, 12);
  await publisher.send(part2);
  const expected = Buffer.concat([part1, part2]);
  const all = [first, early, ...late, withPublishKey];
  for (const viewer of all) {
    await viewer.until((client) => client.binaryBytes >= expected.length, 'both parts');
    t.ok(Buffer.concat(viewer.binaryMessages).equals(expected), 'byte-exact through the edge');
  }
  await until('the checks closed: one upstream at the origin', async () => receiverCount(origin, 'tv'), (count) => count === 1);
  t.match(await relays(edge), [{ channel: 'tv', state: 'live', viewers: all.length }], 'one relay serves every viewer');
  // t2, t3, the publisher's key, the probe's new token: one check each, whatever the number of viewers.
  t.equal(lines(edge.output(), "[EDGE] 'tv' the origin accepted a viewer's key").length, 4, 'one accepted check per key');
  t.equal(lines(edge.output(), "[EDGE] 'tv' the origin refused a viewer's key").length, 7, 'every bad token was asked about');

  await publisher.close();
  for (const viewer of all) t.same(await viewer.closed, { code: 1000, reason: 'Publisher ended' });
});

t.test('keys-file play keys share one upstream through an edge', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wss-edge-keys-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'keys.json');
  await writeFile(file, JSON.stringify({ show: { publish: 'k1', play: ['k2', 'k3'] } }));
  const origin = await startServer(t, { env: { STREAM_KEYS_FILE: file } });
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url('') } });

  const publisher = await TestClient.connect(origin.url('/show/k1/publish'));
  const chunk = patternBytes(25_000, 21);
  await publisher.send(chunk);
  const k2 = await TestClient.connect(edge.url('/show/k2/receive'));
  await k2.until((client) => client.binaryBytes >= chunk.length, 'the stream with k2');
  const k3 = await TestClient.connect(edge.url('/show/k3/receive'));
  await k3.until((client) => client.binaryBytes >= chunk.length, 'the stream with k3');
  t.same(await refused(edge.url('/show/k4/receive')), { closed: WRONG_KEY, texts: ['ERROR: Invalid streaming key'] }, 'a key not in the file is refused');
  for (const viewer of [k2, k3]) t.ok(Buffer.concat(viewer.binaryMessages).equals(chunk), 'byte-exact');
  await until('one upstream at the origin', async () => receiverCount(origin, 'show'), (count) => count === 1);
  t.match(await relays(edge), [{ channel: 'show', state: 'live', viewers: 2 }]);
});

t.test('key checks are bounded: at most 8 open at once, the others wait their turn', async (t) => {
  const origin = await startServer(t, { env: { PLAY_TOKEN_SECRET: SECRET } });
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url(''), LOG_DEBUG: 'YES' } });
  const tokens = Array.from({ length: 11 }, (_, i) => token('many', 3600 + i));
  // The first token opens the upstream; ten checks for the ten others, before any publisher.
  const viewers = await Promise.all(tokens.map((key) => TestClient.connect(edge.url(`/many/${key}/receive`))));
  await until('the upstream and 8 checks waiting at the origin', async () => receiverCount(origin, 'many'), (count) => count === 9);

  const publisher = await TestClient.connect(origin.url('/many/pub/publish'));
  const chunk = patternBytes(10_000, 31);
  await publisher.send(chunk);
  for (const viewer of viewers) {
    await viewer.until((client) => client.binaryBytes >= chunk.length, 'the stream');
    t.ok(Buffer.concat(viewer.binaryMessages).equals(chunk), 'byte-exact');
  }
  const open = lines(edge.output(), "[EDGE] 'many' checking a viewer's key").map((line) => Number(/\((\d+) of 8 checks open\)/.exec(line)?.[1]));
  t.equal(open.length, 10, 'one check per other token');
  t.equal(Math.max(...open), 8, 'never more than 8 checks open at once');
  await until('the checks closed', async () => receiverCount(origin, 'many'), (count) => count === 1);
});

t.test('origin unreachable during a check: the viewer waits like an idle receiver, then joins', async (t) => {
  const origin = await startServer(t, { env: { PLAY_TOKEN_SECRET: SECRET } });
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url(''), LOG_DEBUG: 'YES' } });
  const [t1, t2] = [token('down', 3600), token('down', 3601)];
  const first = await TestClient.connect(edge.url(`/down/${t1}/receive`));
  const publisher = await TestClient.connect(origin.url('/down/pub/publish'));
  await publisher.send(patternBytes(5000, 41));
  await first.binary(1);

  await origin.kill();
  t.same(await first.closed, { code: 1000, reason: 'Publisher ended' });
  const waiting = await TestClient.connect(edge.url(`/down/${t2}/receive`));
  await until('checks without an answer', async () => lines(edge.output(), "[EDGE] 'down' key check without an answer").length, (count) => count >= 2);
  t.equal(waiting.binaryMessages.length, 0, 'nothing received meanwhile');

  const restarted = await startServer(t, { port: origin.port, adminPort: origin.adminPort, env: { PLAY_TOKEN_SECRET: SECRET } });
  const publisher2 = await TestClient.connect(restarted.url('/down/pub/publish'));
  const after = patternBytes(20_000, 42);
  await publisher2.send(after);
  await waiting.until((client) => client.binaryBytes >= after.length, 'the stream after the restart');
  t.ok(Buffer.concat(waiting.binaryMessages).equals(after), 'byte-exact after the restart');
  await until('one upstream on the restarted origin', async () => receiverCount(restarted, 'down'), (count) => count === 1);
});
