import t from 'tap';
import type { Test } from 'tap';
import { parseBuffer } from '../../src/media/parsers.js';
import { startTestServer } from '../helpers/server.js';
import type { TestServer } from '../helpers/server.js';
import { TestClient } from '../helpers/client.js';
import { concat, cut, decode, keyframePositions, makeSample, mediaRecorderFixture, randomChunkSizes, scratchDir } from './helpers.js';
import type { SampleName } from './helpers.js';

/** Container framing between a keyframe point and the keyframe's packet (cluster/moof headers, audio blocks first). */
const FRAMING_SLACK = 4096;

interface Published {
  /** Bytes the late joiner received before live data (total minus what was published after it joined). */
  backlog: number;
  received: Buffer;
  joinedAt: number;
}

/**
 * Publishes `chunks` through a real server; receivers join once the server has processed the
 * chunks before each index in `joinBefore` (a witness that has been there from the start proves
 * it). Returns what each late joiner got.
 */
async function publishWithLateJoiners(
  t: Test,
  server: TestServer,
  channel: string,
  chunks: readonly Uint8Array[],
  joinBefore: readonly number[],
  onBeforeClose?: () => Promise<void>,
): Promise<Published[]> {
  const witness = await TestClient.connect(server.url(`/${channel}/k/receive`));
  const publisher = await TestClient.connect(server.url(`/${channel}/k/publish`));
  const joiners: Array<{ client: TestClient; joinedAt: number }> = [];
  let sent = 0;
  for (let i = 0; i < chunks.length; i++) {
    if (joinBefore.includes(i)) {
      await witness.until((client) => client.binaryBytes >= sent, `the witness got ${sent} bytes`);
      const joiner = await TestClient.connect(server.url(`/${channel}/k/receive`));
      // Joined once its backlog comes (with worker threads, a thread's first viewer joins when
      // the publisher's thread serves that thread): only then does the stream go on.
      await joiner.binary(1);
      joiners.push({ client: joiner, joinedAt: sent });
    }
    await publisher.send(Buffer.from(chunks[i]!));
    sent += chunks[i]!.byteLength;
  }
  await witness.until((client) => client.binaryBytes >= sent, 'the witness got everything');
  t.same(
    witness.binaryMessages.map((message) => message.length),
    chunks.map((chunk) => chunk.byteLength),
    'live messages are forwarded as received',
  );
  await onBeforeClose?.();
  await publisher.close();
  await witness.closed;
  const results: Published[] = [];
  for (const { client, joinedAt } of joiners) {
    t.equal((await client.closed).code, 1000, 'the late joiner ends normally');
    const received = concat(client.binaryMessages);
    results.push({ received, joinedAt, backlog: received.length - (sent - joinedAt) });
  }
  return results;
}

/** The init bytes in force at `offset`, as the parser reports them (latest part of each slot). */
function initSizeAt(bytes: Uint8Array, offset: number): number {
  const slots = new Map<string, number>();
  for (const part of parseBuffer(bytes).initParts) if (part.end <= offset) slots.set(part.slot, part.end - part.start);
  return [...slots.values()].reduce((sum, size) => sum + size, 0);
}

/** The keyframe points as the server's parser reports them, each with where its keyframe is whole. */
function parsedKeyframes(bytes: Uint8Array): Array<{ position: number; complete: number }> {
  const { keyframes, keyframeEnds } = parseBuffer(bytes);
  return keyframes.map((position, i) => ({
    position,
    complete: keyframeEnds.find((end) => end > position && end <= (keyframes[i + 1] ?? Number.POSITIVE_INFINITY)) ?? Number.POSITIVE_INFINITY,
  }));
}

async function checkLateJoins(
  t: Test,
  bytes: Buffer,
  chunkSizes: readonly number[],
  options: { name: string; gops?: number; container: string; codecs: string[] },
): Promise<void> {
  const dir = scratchDir(t);
  const keyframes = await keyframePositions(bytes, dir);
  const wholeKeyframes = parsedKeyframes(bytes);
  t.ok(keyframes.length >= 4, `the sample has ${keyframes.length} keyframes`);
  const gops = options.gops ?? 1;
  const server = await startTestServer(t, { gopCacheGops: String(gops) });
  const chunks = cut(bytes, chunkSizes);
  // Join at several moments: early, in the middle of GOPs, near the end.
  const joinBefore = [0.08, 0.3, 0.55, 0.8, 0.97].map((fraction) => {
    let sum = 0;
    const index = chunks.findIndex((chunk) => (sum += chunk.byteLength) >= fraction * bytes.length);
    return Math.max(1, index);
  });
  let media: unknown;
  const results = await publishWithLateJoiners(t, server, options.name, chunks, [...new Set(joinBefore)], async () => {
    media = (await server.channel(options.name))?.media;
  });
  t.match(media, { container: options.container, tracks: options.codecs.map((codec) => ({ codec })) }, 'the channel records container and codecs');

  for (const [i, result] of results.entries()) {
    const label = `joined at byte ${result.joinedAt}`;
    const report = await decode(result.received, dir, `join-${i}.bin`);
    t.same(report.errors, [], `${label}: decodes without errors`);
    t.ok(report.frames.length > 0, `${label}: ${report.frames.length} video frames decoded`);
    t.equal(report.frames[0]?.key, true, `${label}: the first video frame is a keyframe`);
    // At most init + GOP_CACHE_GOPS groups (the newest keyframes before the join) + framing.
    // Keyframes complete before the join (a BlockGroup keyframe is known only once whole).
    const before = keyframes.filter((keyframe) => keyframe.complete <= result.joinedAt).map((keyframe) => keyframe.position);
    // While the newest keyframe is still arriving the group before it stays, and the server
    // knows a keyframe whole only where the stream may end (a WebM Cluster of known size or an
    // MP4 fragment at its end): count those too.
    const whole = wholeKeyframes.filter((keyframe) => keyframe.complete <= result.joinedAt).map((keyframe) => keyframe.position);
    const oldestKept = Math.min(before.at(-gops) ?? 0, whole.at(-gops) ?? 0);
    const init = initSizeAt(bytes, result.joinedAt);
    const bound = init + (result.joinedAt - oldestKept) + FRAMING_SLACK;
    t.ok(result.backlog <= bound, `${label}: ${result.backlog} bytes before live data, at most init ${init} + ${gops} GOP(s) (${bound})`);
    t.ok(result.backlog >= init, `${label}: the backlog includes the init`);
    if (before.length > gops + 1) t.ok(result.backlog < result.joinedAt - FRAMING_SLACK, `${label}: not the whole history (${result.joinedAt} bytes)`);
  }
}

const samples: Array<{ name: SampleName; container: string; codecs: string[]; seed: number }> = [
  { name: 'webm-vp8', container: 'webm', codecs: ['VP8', 'Opus'], seed: 11 },
  { name: 'webm-vp9', container: 'webm', codecs: ['VP9', 'Opus'], seed: 12 },
  { name: 'flv', container: 'flv', codecs: ['H.264', 'AAC'], seed: 13 },
  { name: 'mpegts', container: 'mpegts', codecs: ['H.264', 'AAC'], seed: 14 },
  { name: 'fmp4', container: 'fmp4', codecs: ['H.264', 'AAC'], seed: 15 },
];

for (const sample of samples) {
  t.test(`${sample.name}: late joiners start on a keyframe within one GOP of the live edge`, async (t) => {
    const bytes = await makeSample(sample.name);
    await checkLateJoins(t, bytes, randomChunkSizes(bytes.length, sample.seed), { name: `late-${sample.name}`, container: sample.container, codecs: sample.codecs });
  });
}

t.test('GOP_CACHE_GOPS=2 keeps two groups', async (t) => {
  const bytes = await makeSample('flv');
  await checkLateJoins(t, bytes, randomChunkSizes(bytes.length, 21), { name: 'late-gops2', gops: 2, container: 'flv', codecs: ['H.264', 'AAC'] });
});

t.test('a real MediaRecorder recording (Chromium, VP8+Opus, unknown-size clusters)', async (t) => {
  const { bytes, chunkSizes } = mediaRecorderFixture();
  t.test('published in the browser\'s own chunks', async (t) => {
    await checkLateJoins(t, bytes, chunkSizes, { name: 'recorder', container: 'webm', codecs: ['VP8', 'Opus'] });
  });
  t.test('published in random chunks', async (t) => {
    await checkLateJoins(t, bytes, randomChunkSizes(bytes.length, 31), { name: 'recorder-random', container: 'webm', codecs: ['VP8', 'Opus'] });
  });
});
