import t from 'tap';
import { createParser, parseBuffer } from '../../src/media/parsers.js';
import type { ParseSummary } from '../../src/media/parsers.js';
import { SNIFF_BYTES, sniffContainer } from '../../src/media/sniff.js';
import type { ContainerKind, InitPart, TrackInfo } from '../../src/media/types.js';
import { patternBytes } from '../helpers/client.js';
import {
  WEBM, aacFrame, aacSequenceHeader, avcFrame, avcSequenceHeader, blockGroup, cluster, ebml, flvHeader, flvMetadata, simpleBlock, webmInit,
} from './builders.js';
import { makeSample, mediaRecorderFixture } from './helpers.js';
import type { SampleName } from './helpers.js';

/** Feeds `chunks` to a fresh parser, collecting events like parseBuffer does. */
function parseChunks(kind: ContainerKind, chunks: readonly Uint8Array[]): Omit<ParseSummary, 'container'> {
  const summary = { initParts: [] as InitPart[], keyframes: [] as number[], keyframeEnds: [] as number[], restarts: [] as number[], tracks: [] as readonly TrackInfo[] };
  const parser = createParser(kind, {
    initPart: (part) => summary.initParts.push(part),
    restart: (offset) => summary.restarts.push(offset),
    keyframe: (offset) => summary.keyframes.push(offset),
    keyframeEnd: (offset) => summary.keyframeEnds.push(offset),
    tracks: (tracks) => (summary.tracks = tracks),
  });
  for (const chunk of chunks) parser.push(chunk);
  return summary;
}

function withoutContainer(summary: ParseSummary): Omit<ParseSummary, 'container'> {
  const { initParts, keyframes, keyframeEnds, restarts, tracks, error } = summary;
  return error === undefined ? { initParts, keyframes, keyframeEnds, restarts, tracks } : { initParts, keyframes, keyframeEnds, restarts, tracks, error };
}

const samples: Array<{ name: SampleName; kind: ContainerKind }> = [
  { name: 'webm-vp8', kind: 'webm' },
  { name: 'webm-vp9', kind: 'webm' },
  { name: 'flv', kind: 'flv' },
  { name: 'mpegts', kind: 'mpegts' },
  { name: 'fmp4', kind: 'fmp4' },
];

t.test('sniffing tells each container from its first bytes, and waits only as long as needed', async (t) => {
  const starts: Array<[ContainerKind, Uint8Array]> = [
    ['webm', Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x9f])],
    ['flv', Buffer.from('FLV\x01\x05\0\0\0\x09', 'latin1')],
    ['fmp4', Buffer.from('\0\0\0\x20ftypisom', 'latin1')],
    ['fmp4', Buffer.from('\0\0\0\x10moof\0\0\0\0', 'latin1')],
  ];
  for (const [kind, bytes] of starts) {
    t.equal(sniffContainer(bytes), kind, kind);
    t.equal(sniffContainer(bytes.subarray(0, 3)), undefined, `${kind}: 3 bytes are not enough`);
  }
  const ts = Buffer.alloc(SNIFF_BYTES);
  for (let at = 0; at < ts.length; at += 188) ts[at] = 0x47;
  t.equal(sniffContainer(ts), 'mpegts');
  t.equal(sniffContainer(ts.subarray(0, 300)), undefined, 'MPEG-TS needs three sync bytes');
  ts[188] = 0;
  t.equal(sniffContainer(ts), 'opaque', 'one 0x47 is not a transport stream');
  t.equal(sniffContainer(Buffer.from('hello world')), 'opaque');
  t.equal(sniffContainer(patternBytes(1000, 2)), 'opaque');
  t.equal(sniffContainer(new Uint8Array(0)), undefined);
});

for (const { name, kind } of samples) {
  t.test(`${name}: chunk boundaries anywhere give the same result`, async (t) => {
    const bytes = await makeSample(name, { seconds: 4 });
    const reference = parseBuffer(bytes, bytes.length);
    t.equal(reference.container, kind);
    t.equal(reference.error, undefined, 'parses without error');
    t.ok(reference.keyframes.length >= 3, `${reference.keyframes.length} keyframe points`);
    t.equal(reference.keyframeEnds.length, reference.keyframes.length, 'every keyframe is seen to end');
    t.ok(reference.initParts.length > 0, 'the init is reported');
    t.ok(reference.tracks.some((track) => track.type === 'video') && reference.tracks.some((track) => track.type === 'audio'), 'tracks');

    const oneByte = bytes.subarray(0, Math.min(bytes.length, 400_000));
    t.same(parseChunks(kind, Array.from(oneByte, (_, i) => oneByte.subarray(i, i + 1))), withoutContainer(parseBuffer(oneByte, oneByte.length)), 'fed one byte at a time');

    // Every split offset over the headers at the start and around the first keyframe points.
    const windows: Array<[number, number]> = [[1, reference.keyframes[0]! + 256]];
    for (const point of reference.keyframes.slice(1, 3)) windows.push([point - 48, point + 128]);
    let splits = 0;
    let mismatches = 0;
    for (const [from, to] of windows) {
      const prefix = bytes.subarray(0, to + 4096);
      const expected = withoutContainer(parseBuffer(prefix, prefix.length));
      for (let split = from; split < to; split++) {
        const got = parseChunks(kind, [prefix.subarray(0, split), prefix.subarray(split)]);
        splits++;
        if (JSON.stringify(got) !== JSON.stringify(expected)) mismatches++;
      }
    }
    t.equal(mismatches, 0, `${splits} two-chunk splits over the headers all agree`);
  });
}

t.test('WebM: Segment and Clusters of unknown size, BlockGroups, audio first, a chained stream', async (t) => {
  const init = webmInit();
  const clusters = [
    cluster(0, [simpleBlock(2, true), simpleBlock(1, true), simpleBlock(1, false)]), // audio first: still a keyframe point
    cluster(1000, [simpleBlock(1, false), simpleBlock(1, false)]), // first video block not a keyframe
    cluster(2000, [simpleBlock(2, true), blockGroup(1, false), blockGroup(1, true)]), // BlockGroup without ReferenceBlock
    cluster(3000, [blockGroup(1, true)]), // with ReferenceBlock: not a keyframe
  ];
  const cues = ebml(WEBM.CUES, [Buffer.alloc(4)]);
  const chained = Buffer.concat([webmInit(), cluster(0, [simpleBlock(1, true)])]);
  const stream = Buffer.concat([init, ...clusters, cues, chained]);
  const starts: number[] = [];
  let at = init.length;
  for (const part of clusters) {
    starts.push(at);
    at += part.length;
  }
  const chainedStart = at + cues.length;
  const summary = parseBuffer(stream, 7);
  t.equal(summary.error, undefined);
  t.same(summary.keyframes, [starts[0], starts[2], chainedStart + init.length], 'clusters whose first video block is a keyframe, in both streams');
  t.same(summary.restarts, [chainedStart], 'a new EBML header restarts the stream');
  t.same(summary.initParts.map((part) => [part.start, part.end, part.fileHeader]), [[0, init.length, true], [chainedStart, chainedStart + init.length, true]]);
  t.same(summary.tracks, [{ type: 'video', codec: 'VP8', width: 320, height: 240 }, { type: 'audio', codec: 'Opus' }]);
  t.same(parseBuffer(stream, 1), summary, 'the same byte by byte');

  const audioOnly = Buffer.concat([
    ebml(WEBM.EBML, []),
    Buffer.from([0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    ebml(WEBM.TRACKS, [ebml(WEBM.TRACK_ENTRY, [ebml(0xd7, Buffer.from([1])), ebml(0x83, Buffer.from([2])), ebml(0x86, Buffer.from('A_OPUS'))])]),
    cluster(0, [simpleBlock(1, true)]),
    cluster(20, [simpleBlock(1, true)]),
  ]);
  t.equal(parseBuffer(audioOnly, 3).keyframes.length, 2, 'without video, every cluster is a keyframe point');
});

t.test('WebM: the real MediaRecorder fixture has unknown-size clusters, each a keyframe point', async (t) => {
  const { bytes, chunkSizes } = mediaRecorderFixture();
  t.ok(bytes.length < 300 * 1024, `the fixture is small (${bytes.length} bytes)`);
  const summary = parseBuffer(bytes, 4096);
  t.equal(summary.error, undefined);
  t.same(summary.tracks, [{ type: 'video', codec: 'VP8', width: 320, height: 240 }, { type: 'audio', codec: 'Opus' }]);
  t.ok(summary.keyframes.length >= 5, `${summary.keyframes.length} keyframe points`);
  const unknownSizeCluster = Buffer.from([0x1f, 0x43, 0xb6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  for (const point of summary.keyframes) t.ok(bytes.subarray(point, point + 12).equals(unknownSizeCluster), `a Cluster of unknown size starts at ${point}`);
  let offset = 0;
  const browserChunks = chunkSizes.map((size) => bytes.subarray(offset, (offset += size)));
  t.same(parseChunks('webm', browserChunks), withoutContainer(summary), 'the same in the browser\'s own chunks');
});

t.test('FLV: a new sequence header mid-stream replaces the old one; onMetaData gives the resolution', async (t) => {
  const stream = Buffer.concat([
    flvHeader(),
    flvMetadata({ width: 640, height: 360, framerate: 25 }),
    avcSequenceHeader(0),
    aacSequenceHeader(),
    avcFrame(0, true),
    aacFrame(0),
    avcFrame(40, false),
    avcSequenceHeader(1),
    avcFrame(80, true),
    avcSequenceHeader(1), // re-sent unchanged
  ]);
  const summary = parseBuffer(stream, 5);
  t.equal(summary.error, undefined);
  t.same(summary.initParts.map((part) => part.slot), ['header', 'metadata', 'video', 'audio', 'video', 'video']);
  t.same(summary.tracks, [{ type: 'video', codec: 'H.264', width: 640, height: 360 }, { type: 'audio', codec: 'AAC' }]);
  t.equal(summary.keyframes.length, 2);
  t.same(parseBuffer(stream, 1), summary);
});

t.test('MPEG-TS without random_access_indicator: keyframes are found by their IDR', async (t) => {
  const bytes = Buffer.from(await makeSample('mpegts', { seconds: 3 }));
  const reference = parseBuffer(bytes);
  let cleared = 0;
  for (let at = 0; at + 188 <= bytes.length; at += 188) {
    const hasAdaptation = (bytes[at + 3]! & 0x20) !== 0;
    if (hasAdaptation && bytes[at + 4]! > 0 && (bytes[at + 5]! & 0x40) !== 0) {
      bytes[at + 5] = bytes[at + 5]! & ~0x40;
      cleared++;
    }
  }
  t.ok(cleared >= 3, `${cleared} random_access_indicator flags cleared`);
  const summary = parseBuffer(bytes, 1000);
  t.same(summary.keyframes, reference.keyframes, 'the same keyframe points');
});

t.test('garbage after a valid start stops the parser with an error, never a crash', async (t) => {
  for (const { name, kind } of samples) {
    const bytes = await makeSample(name, { seconds: 2 });
    const reference = parseBuffer(bytes);
    // Right after a complete element (the next header is garbage), and in the middle of one
    // (the garbage hides in its payload until the next header is due: headers, not payloads, are read).
    const atBoundary = bytes.subarray(0, reference.keyframes[1]);
    const midway = bytes.subarray(0, Math.floor(bytes.length / 2));
    for (const [where, valid, garbage] of [['at a keyframe point', atBoundary, 4096], ['midway', midway, 1024 * 1024]] as const) {
      const stream = Buffer.concat([valid, patternBytes(garbage, 7)]);
      for (const chunkSize of [1000, 65536]) {
        const summary = parseBuffer(stream, chunkSize, kind);
        t.match(summary.error, new RegExp(`^${kind} at byte \\d+`), `${name}, garbage ${where}, chunks of ${chunkSize}: ${summary.error}`);
        t.ok(summary.keyframes.length >= 1, 'the valid part was parsed');
      }
    }
    const oneByte = parseBuffer(Buffer.concat([atBoundary, patternBytes(4096, 9)]), 1, kind);
    t.match(oneByte.error, new RegExp(`^${kind} at byte ${atBoundary.length}:`), `${name}, one byte at a time: the error is at the garbage`);
  }
  t.match(parseBuffer(Buffer.concat([flvHeader(), Buffer.from('garbage!garbage!')])).error, /flv at byte 13: unknown tag type/);
  t.match(parseBuffer(Buffer.concat([webmInit(), Buffer.from([0x00, 0x01, 0x02])])).error, /invalid element id/);
});

t.test('audio-only streams: every audio frame is a keyframe point', async (t) => {
  for (const { name, kind } of samples.filter((sample) => sample.name !== 'webm-vp9')) {
    const bytes = await makeSample(name, { seconds: 2, audioOnly: true });
    const summary = parseBuffer(bytes, 4096);
    t.equal(summary.error, undefined, `${name} parses`);
    t.notOk(summary.tracks.some((track) => track.type === 'video'), `${name}: no video track`);
    // AAC frames are 21.3 ms; WebM groups frames per cluster, fragmented MP4 per fragment, MPEG-TS per PES.
    const minimum = kind === 'webm' || kind === 'fmp4' ? 2 : kind === 'mpegts' ? 5 : 50;
    t.ok(summary.keyframes.length >= minimum, `${name}: ${summary.keyframes.length} keyframe points in 2 s of audio`);
  }
});
