import t from 'tap';
import { Channel } from '../../src/channels/channel.js';
import { Receiver } from '../../src/channels/receiver.js';
import type { ClientSocket } from '../../src/channels/transport.js';
import { GopCache } from '../../src/media/gop-cache.js';
import { MediaCache } from '../../src/media/media-cache.js';
import { parseBuffer } from '../../src/media/parsers.js';
import { patternBytes } from '../helpers/client.js';
import { aacFrame, aacSequenceHeader, avcFrame, avcSequenceHeader, flvHeader, flvMetadata } from './builders.js';
import { concat, cut, decode, makeSample, randomChunkSizes, scratchDir } from './helpers.js';
import type { SampleName } from './helpers.js';

const MiB = 1024 * 1024;

/**
 * A socket whose buffer fills until the test drains it (a paused, then resumed, client), or,
 * with `reading`, one whose client reads everything at once.
 */
class FakeSocket implements ClientSocket {
  readonly received: Uint8Array[] = [];
  buffered = 0;
  constructor(private readonly reading = false) {}
  closedWith: [number, string] | undefined;
  texts: string[] = [];
  sendBinary(data: Uint8Array): void {
    this.received.push(data.slice());
    this.buffered += data.byteLength;
  }
  sendText(text: string): void {
    this.texts.push(text);
  }
  bufferedAmount(): number {
    return this.reading ? 0 : this.buffered;
  }
  close(code: number, reason: string): void {
    this.closedWith ??= [code, reason];
  }
}

const info = (id: number): { id: number; ip: string; channel: string; key: string } => ({ id, ip: '127.0.0.1', channel: 'c', key: 'k' });
const publisher = { info: info(0), streamId: '', socket: new FakeSocket(), startedAt: 0, bytesIn: 0, chunksIn: 0 };

function publishAll(channel: Channel, chunks: readonly Uint8Array[], after?: () => void): void {
  for (const chunk of chunks) {
    channel.publish(chunk);
    after?.();
  }
}

const samples: SampleName[] = ['webm-vp8', 'flv', 'mpegts', 'fmp4'];

for (const name of samples) {
  t.test(`${name}: a slow receiver skips to a keyframe and keeps getting decodable data`, async (t) => {
    const dir = scratchDir(t);
    const bytes = await makeSample(name, { seconds: 8 });
    const chunks = cut(bytes, randomChunkSizes(bytes.length, 41, 64 * 1024));
    const channel = new Channel('c', new MediaCache({ capacityBytes: 256 * MiB, gops: 1 }), { overflow: 'skip' });
    channel.startPublishing(publisher);
    const socket = new FakeSocket();
    // A limit above one GOP (about 270 KB here): when it overflows, its queue holds a keyframe point to cut at.
    const receiver = new Receiver(info(1), 'receive', socket, 384 * 1024);
    t.ok(channel.addReceiver(receiver));
    const paused = Math.floor(chunks.length * 0.6);
    // Paused for 60% of the stream (5 s): nothing drains; then it reads everything as it comes.
    publishAll(channel, chunks.slice(0, paused));
    t.ok(receiver.skips >= 1, `it skipped ${receiver.skips} time(s) instead of being closed`);
    t.equal(socket.closedWith, undefined);
    publishAll(channel, chunks.slice(paused), () => {
      socket.buffered = 0;
      receiver.flush();
    });
    const received = concat(socket.received);
    t.ok(received.length < bytes.length, `it got ${received.length} of ${bytes.length} bytes`);
    const report = await decode(received, dir);
    t.same(report.errors, [], 'everything it got decodes');
    t.ok(report.frames.length > 50, `${report.frames.length} frames`);
    t.equal(report.frames[0]?.key, true);
    t.equal(socket.closedWith, undefined);
  });
}

t.test('RECEIVER_OVERFLOW=close, and opaque streams, close a slow receiver as before', async (t) => {
  const bytes = await makeSample('flv', { seconds: 3 });
  const chunks = cut(bytes, randomChunkSizes(bytes.length, 43, 64 * 1024));
  for (const [overflow, stream] of [['close', chunks], ['skip', [patternBytes(300_000, 3), ...Array.from({ length: 20 }, (_, i) => patternBytes(50_000, i))]]] as const) {
    const channel = new Channel('c', new MediaCache({ capacityBytes: 256 * MiB }), { overflow });
    channel.startPublishing(publisher);
    const socket = new FakeSocket();
    channel.addReceiver(new Receiver(info(1), 'receive', socket, 64 * 1024));
    publishAll(channel, stream);
    t.same(socket.closedWith, [1013, 'Receiver too slow'], `${overflow} / ${channel.media.container}`);
    t.same(socket.texts, ['ERROR: Receiver too slow']);
  }
});

t.test('a late joiner with nothing cached gets the init, then starts at the next keyframe', async (t) => {
  const dir = scratchDir(t);
  for (const name of samples) {
    const bytes = await makeSample(name, { seconds: 4 });
    const chunks = cut(bytes, randomChunkSizes(bytes.length, 45, 32 * 1024));
    const channel = new Channel('c', new MediaCache({ capacityBytes: 0 }));
    channel.startPublishing(publisher);
    const half = Math.floor(chunks.length / 2);
    publishAll(channel, chunks.slice(0, half));
    const socket = new FakeSocket(true);
    const receiver = new Receiver(info(1), 'receive', socket, 16 * MiB);
    channel.addReceiver(receiver);
    t.ok(receiver.waitingForKeyframe, `${name}: waiting for a keyframe`);
    const init = concat(socket.received);
    t.ok(init.length > 0 && init.length < 2000, `${name}: got the init first (${init.length} bytes)`);
    publishAll(channel, chunks.slice(half));
    const report = await decode(concat(socket.received), dir);
    t.same(report.errors, [], `${name}: decodes`);
    t.equal(report.frames[0]?.key, true, `${name}: starts on a keyframe`);
    t.ok(channel.cache.size < 300_000, `${name}: GOP_CACHE_SIZE_MB=0 holds little (${channel.cache.size} bytes)`);
  }
});

t.test('the cap: a GOP larger than GOP_CACHE_SIZE_MB is dropped and late joiners start at the next keyframe', async (t) => {
  const bytes = await makeSample('flv', { seconds: 4 });
  const keyframes = parseBuffer(bytes).keyframes;
  const cache = new GopCache('flv', { capacityBytes: 100_000, gops: 1 });
  let largest = 0;
  for (const chunk of cut(bytes, randomChunkSizes(bytes.length, 47, 16 * 1024))) {
    cache.push(chunk.slice());
    largest = Math.max(largest, cache.size);
  }
  t.ok(largest <= 100_000 + 16 * 1024, `never above the cap but for the chunk being parsed (${largest} bytes at most)`);
  const backlog = cache.snapshot();
  t.equal(backlog.awaitKeyframe, true, 'the last GOP did not fit');
  t.ok(backlog.chunks.length === 4, 'only the init is left (header, metadata, two sequence headers)');
  t.ok(keyframes.length >= 3);
  const probe = cache.probe();
  t.ok(typeof probe === 'object' && probe.parts.length > 4, 'a probe still gets the init and the last complete keyframe');
});

t.test('probe: the init and a complete keyframe; receive-clear-cache keeps the init', async (t) => {
  const dir = scratchDir(t);
  const bytes = await makeSample('fmp4', { seconds: 3 });
  const summary = parseBuffer(bytes);
  const cache = new MediaCache({ capacityBytes: 256 * MiB });
  t.equal(cache.probe(), 'wait', 'nothing before the first bytes');
  const chunks = cut(bytes, randomChunkSizes(bytes.length, 49, 16 * 1024));
  let answeredAt = -1;
  let sent = 0;
  for (const chunk of chunks) {
    cache.push(chunk.slice());
    sent += chunk.byteLength;
    if (answeredAt < 0 && cache.probe() !== 'wait') answeredAt = sent;
  }
  t.ok(answeredAt >= summary.keyframeEnds[0]!, `a probe is answered once the first keyframe is complete (${answeredAt} ≥ ${summary.keyframeEnds[0]})`);
  const answer = cache.probe();
  if (answer === 'wait' || answer === 'next-chunk') throw new Error('no probe answer');
  const report = await decode(concat(answer.parts), dir);
  t.same(report.errors, []);
  t.equal(report.frames[0]?.key, true);
  t.same(cache.info, { container: 'fmp4', tracks: [{ type: 'video', codec: 'H.264', width: 480, height: 270 }, { type: 'audio', codec: 'AAC' }] });

  cache.clearAndDisable();
  const after = cache.snapshot();
  t.equal(after.awaitKeyframe, true, 'after receive-clear-cache: no GOP…');
  t.equal(concat(after.chunks).length, summary.initParts[0]!.end, '…but the init stays pinned');
  t.notOk(cache.enabled);
  cache.reset();
  t.same(cache.info, { container: 'unknown', tracks: [] });
  t.ok(cache.enabled);
});

t.test('FLV: a sequence header change mid-stream replaces the init; cached frames of the old one are dropped', async (t) => {
  const before = [flvHeader(), flvMetadata({ width: 320, height: 240 }), avcSequenceHeader(0), aacSequenceHeader(), avcFrame(0, true), aacFrame(0), avcFrame(40, false)];
  const change = [avcSequenceHeader(1), aacFrame(60), avcFrame(80, false)];
  const after = [avcFrame(120, true), avcFrame(160, false)];
  const cache = new GopCache('flv', { capacityBytes: MiB, gops: 1 });
  for (const tag of before) cache.push(tag);
  const firstVersion = cache.snapshot();
  t.equal(firstVersion.awaitKeyframe, false);
  for (const tag of change) cache.push(tag);
  const changed = cache.snapshot();
  t.equal(changed.awaitKeyframe, true, 'the GOP coded with the old headers is gone');
  t.same(concat(changed.chunks), concat([before[0]!, before[1]!, change[0]!, before[3]!]), 'init: header, metadata, the new video sequence header, the audio one');
  t.ok(changed.version > firstVersion.version);
  for (const tag of after) cache.push(tag);
  const resumed = cache.snapshot();
  t.same(concat(resumed.chunks), concat([before[0]!, before[1]!, change[0]!, before[3]!, ...after]));
  const tick = cache.push(avcSequenceHeader(1));
  t.equal(tick.version, resumed.version, 'an identical sequence header re-sent is no change');
  t.equal(cache.snapshot().awaitKeyframe, false);
});

t.test('FLV with real encoders: after a resolution change, a late joiner decodes at the new size', async (t) => {
  const dir = scratchDir(t);
  const first = await makeSample('flv', { seconds: 2, size: '320x240' });
  const second = await makeSample('flv', { seconds: 2, size: '480x270' });
  // The second stream's tags (without its file header), later in time: what an encoder restarting its video does.
  const tags: Buffer[] = [];
  for (let at = 13; at + 11 <= second.length; ) {
    const size = second.readUIntBE(at + 1, 3);
    const tag = Buffer.from(second.subarray(at, at + 11 + size + 4));
    const time = tag.readUIntBE(4, 3) + 2100;
    tag.writeUIntBE(time & 0xffffff, 4, 3);
    tag[7] = time >>> 24;
    tags.push(tag);
    at += 11 + size + 4;
  }
  const stream = Buffer.concat([first, ...tags]);
  const cache = new MediaCache({ capacityBytes: 256 * MiB });
  for (const chunk of cut(stream, randomChunkSizes(stream.length, 51, 32 * 1024))) cache.push(chunk.slice());
  t.match(cache.info, { container: 'flv', tracks: [{ codec: 'H.264', width: 480, height: 270 }, { codec: 'AAC' }] });
  const report = await decode(concat(cache.snapshot().chunks), dir);
  t.same(report.errors, []);
  t.ok(report.frames.length > 0 && report.frames.every((frame) => frame.size === '480x270'), 'every frame at the new size');
  t.equal(report.frames[0]?.key, true);
});

t.test('garbage after a valid start: the cache degrades to the byte FIFO, receivers keep going', async (t) => {
  const bytes = await makeSample('webm-vp8', { seconds: 2 });
  const garbage = patternBytes(300_000, 5);
  const stream = Buffer.concat([bytes.subarray(0, parseBuffer(bytes).keyframes[1]), garbage]);
  const chunks = cut(stream, randomChunkSizes(stream.length, 53, 16 * 1024));
  const channel = new Channel('c', new MediaCache({ capacityBytes: 256 * MiB }));
  channel.startPublishing(publisher);
  const early = new FakeSocket(true);
  channel.addReceiver(new Receiver(info(1), 'receive', early, 16 * MiB));
  publishAll(channel, chunks);
  t.match(channel.media, { container: 'opaque', degradedFrom: 'webm', error: /^webm at byte \d+/ });
  t.ok(concat(early.received).equals(stream), 'a receiver that was there gets every byte');
  const late = new FakeSocket(true);
  channel.addReceiver(new Receiver(info(2), 'receive', late, 16 * MiB));
  const backlog = concat(late.received);
  t.ok(backlog.subarray(-garbage.length).equals(garbage), 'a late joiner gets the byte FIFO (the garbage included)');
  const more = patternBytes(1000, 6);
  channel.publish(more);
  t.ok(concat(late.received).subarray(-1000).equals(more), 'and live data after it');
  t.equal(late.closedWith, undefined);
});
