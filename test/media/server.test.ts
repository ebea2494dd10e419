import t from 'tap';
import { parseBuffer } from '../../src/media/parsers.js';
import { startTestServer } from '../helpers/server.js';
import type { ServerState } from '../../src/cluster/index.js';
import { TestClient } from '../helpers/client.js';
import { concat, cut, decode, ffmpeg, makeSample, randomChunkSizes, scratchDir } from './helpers.js';
import type { SampleName } from './helpers.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const samples: Array<{ name: SampleName; video: RegExp; audio: RegExp }> = [
  { name: 'webm-vp8', video: /Video: vp8.*480x270/, audio: /Audio: opus/ },
  { name: 'webm-vp9', video: /Video: vp9.*480x270/, audio: /Audio: opus/ },
  { name: 'flv', video: /Video: h264.*480x270/, audio: /Audio: aac/ },
  { name: 'mpegts', video: /Video: h264.*480x270/, audio: /Audio: aac/ },
  { name: 'fmp4', video: /Video: h264.*480x270/, audio: /Audio: aac/ },
];

t.test('probe: one message with the init and a keyframe, enough for ffmpeg to read codecs and resolution', async (t) => {
  const dir = scratchDir(t);
  const { url } = await startTestServer(t);
  for (const sample of samples) {
    const bytes = await makeSample(sample.name, { seconds: 3 });
    const chunks = cut(bytes, randomChunkSizes(bytes.length, 61, 16 * 1024));
    const channel = `probe-${sample.name}`;
    const waiting = await TestClient.connect(url(`/${channel}/k/probe`));
    // Waiting before the publisher, it gets every byte also with worker threads: a receiver
    // joining on another thread once the stream runs starts from its publisher's cache.
    const witness = await TestClient.connect(url(`/${channel}/k/receive`));
    const publisher = await TestClient.connect(url(`/${channel}/k/publish`));
    for (const chunk of chunks) await publisher.send(Buffer.from(chunk));
    await witness.until((client) => client.binaryBytes >= bytes.length, 'everything published');
    const late = await TestClient.connect(url(`/${channel}/k/probe`));
    for (const [who, probe] of [['a probe waiting for the publisher', waiting], ['a late probe', late]] as const) {
      t.same(await probe.closed, { code: 1000, reason: 'Probe done' }, `${sample.name}, ${who}: closed after one message`);
      t.equal(probe.binaryMessages.length, 1, `${sample.name}, ${who}: exactly one message`);
      const path = join(dir, `${sample.name}-probe.bin`);
      writeFileSync(path, probe.binaryMessages[0]!);
      const { stderr } = await ffmpeg(['-loglevel', 'level+info', '-i', path, '-f', 'null', '-']);
      t.match(stderr, sample.video, `${sample.name}, ${who}: video codec and resolution`);
      t.match(stderr, sample.audio, `${sample.name}, ${who}: audio codec`);
      t.notMatch(stderr, /\[error\]/, `${sample.name}, ${who}: no errors`);
    }
    await publisher.close();
  }
});

t.test('receive-clear-cache gets the cache; later receivers get the pinned init and start at the next keyframe', async (t) => {
  const dir = scratchDir(t);
  const server = await startTestServer(t);
  const { url } = server;
  const bytes = await makeSample('webm-vp8', { seconds: 5 });
  const chunks = cut(bytes, randomChunkSizes(bytes.length, 63, 32 * 1024));
  const keyframes = parseBuffer(bytes).keyframes;
  // Before the publisher: every byte, whatever thread it lands on (see the probe test above).
  const witness = await TestClient.connect(url('/hls/k/receive'));
  const publisher = await TestClient.connect(url('/hls/k/publish'));
  let sent = 0;
  let encoder: TestClient | undefined;
  let later: TestClient | undefined;
  for (const chunk of chunks) {
    if (encoder === undefined && sent > keyframes[1]!) {
      await witness.until((client) => client.binaryBytes >= sent);
      encoder = await TestClient.connect(url('/hls/k/receive-clear-cache'));
      // With worker threads the encoder may be on another thread than the publisher: its clear crosses over.
      const state = await server.until((state) => state.channels.get('hls')?.cacheEnabled === false, 'caching stops for the session');
      t.equal(state.channels.get('hls')?.cacheEnabled, false, 'caching stops for the session');
    } else if (encoder !== undefined && later === undefined && sent > keyframes[2]! + 50_000) {
      await witness.until((client) => client.binaryBytes >= sent);
      later = await TestClient.connect(url('/hls/k/receive'));
    }
    await publisher.send(Buffer.from(chunk));
    sent += chunk.byteLength;
  }
  await witness.until((client) => client.binaryBytes >= sent);
  await publisher.close();
  for (const [who, client] of [['the encoder', encoder!], ['a later receiver', later!]] as const) {
    await client.closed;
    const report = await decode(concat(client.binaryMessages), dir, 'clear-cache.bin');
    t.same(report.errors, [], `${who}: decodes`);
    t.equal(report.frames[0]?.key, true, `${who}: starts on a keyframe`);
  }
  t.ok(concat(later!.binaryMessages).length < bytes.length - keyframes[2]!, 'the later receiver got no cached GOP');
});

t.test('a paused real client on a recognised stream skips ahead instead of being closed', async (t) => {
  const dir = scratchDir(t);
  const server = await startTestServer(t, { maxReceiverBufferMb: '0.25' });
  const { url } = server;
  // About 12 MB: while the client is paused, the loopback socket buffers fill, then 0.25 MiB more.
  const bytes = await makeSample('flv', { seconds: 12, videoBitrate: '8000k', gop: 50 });
  const chunks = cut(bytes, randomChunkSizes(bytes.length, 65, 64 * 1024));
  const publisher = await TestClient.connect(url('/slowmedia/k/publish'));
  const healthy = await TestClient.connect(url('/slowmedia/k/receive'));
  const paused = await TestClient.connect(url('/slowmedia/k/receive'));
  paused.socket.pause();
  const whilePaused = Math.floor(chunks.length * 0.7);
  let sent = 0;
  // At most 256 KiB ahead of the healthy receiver: it keeps up by its own reading (with worker
  // threads, the publisher's thread reads at full speed, whatever this process's reading).
  const send = async (chunk: Uint8Array): Promise<void> => {
    await healthy.until((client) => client.binaryBytes >= sent - 256 * 1024, 'the healthy receiver kept up');
    await publisher.send(Buffer.from(chunk));
    sent += chunk.byteLength;
  };
  for (const chunk of chunks.slice(0, whilePaused)) await send(chunk);
  await healthy.until((client) => client.binaryBytes >= sent, 'the healthy receiver kept up');
  // The paused receiver's thread (with workers, maybe not the healthy one's) skips as the stream reaches it.
  const skipped = (state: ServerState) => state.channels.get('slowmedia')?.receivers.find((receiver) => receiver.skips >= 1);
  const { id, thread, skips } = skipped(await server.until((state) => skipped(state) !== undefined, 'the paused receiver skipped ahead'))!;
  t.ok(skips >= 1, `the paused receiver skipped ahead ${skips} time(s) instead of being closed`);
  paused.socket.resume();
  // From now on the publisher waits for it too (what the server holds for it, within 64 KiB):
  // a client slowed by a loaded machine would otherwise skip again, maybe past the last keyframe.
  const heldFor = (state: ServerState): number => state.channels.get('slowmedia')?.receivers.find((receiver) => receiver.id === id && receiver.thread === thread)?.bufferedBytes ?? 0;
  for (const chunk of chunks.slice(whilePaused)) {
    await server.until((state) => heldFor(state) <= 64 * 1024, 'the resumed receiver keeps up');
    await send(chunk);
  }
  const last = Buffer.from(chunks.at(-1)!);
  await paused.until((client) => client.binaryMessages.at(-1)?.equals(last) === true, 'the paused receiver caught up with the live edge');
  await publisher.close();
  t.same(await paused.closed, { code: 1000, reason: 'Publisher ended' }, 'it was not closed as too slow');
  const received = concat(paused.binaryMessages);
  t.ok(received.length < bytes.length, `it got ${received.length} of ${bytes.length} bytes`);
  const report = await decode(received, dir);
  t.same(report.errors, [], 'everything it got decodes');
  t.equal(report.frames[0]?.key, true);
  t.ok(concat(healthy.binaryMessages).equals(bytes), 'the healthy receiver got every byte');
});
