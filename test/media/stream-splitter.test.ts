// The receiver-side splitter the test page uses: a stream start is found whole whatever the
// message boundaries (a 1-byte first message, splits inside the EBML header, the Segment, the
// Tracks), and the media after it comes out unchanged.
import t from 'tap';
import { StreamSplitter } from '../../src/media/stream-splitter.js';
import type { SplitPiece, StreamStart } from '../../src/media/stream-splitter.js';
import { concat, cut, makeSample, mediaRecorderFixture } from './helpers.js';

const { bytes: recording } = mediaRecorderFixture();

/** Offset of the first Cluster (1f 43 b6 75): the end of MediaRecorder's init. */
function firstCluster(bytes: Uint8Array): number {
  for (let i = 0; i + 4 <= bytes.length; i++) if (bytes[i] === 0x1f && bytes[i + 1] === 0x43 && bytes[i + 2] === 0xb6 && bytes[i + 3] === 0x75) return i;
  throw new Error('no Cluster');
}

function feed(messages: readonly Uint8Array[], flush = false): SplitPiece[] {
  const splitter = new StreamSplitter();
  const pieces = messages.flatMap((message) => splitter.push(message));
  return flush ? [...pieces, ...splitter.flush()] : pieces;
}

function starts(pieces: readonly SplitPiece[]): StreamStart[] {
  return pieces.flatMap((piece) => (piece.type === 'start' ? [piece.start] : []));
}

function media(pieces: readonly SplitPiece[]): Buffer {
  return concat(pieces.flatMap((piece) => (piece.type === 'media' ? [piece.bytes] : [])));
}

/** Messages of `bytes` cut at these offsets. */
function splitAt(bytes: Uint8Array, offsets: readonly number[]): Uint8Array[] {
  const points = [0, ...offsets, bytes.length];
  return points.slice(1).map((end, i) => bytes.subarray(points[i]!, end));
}

const initEnd = firstCluster(recording);

t.test('a MediaRecorder stream start is found whole, however the messages cut it', async (t) => {
  t.ok(initEnd > 100, `the recording's init is ${initEnd} bytes`);
  const cases: Array<[string, number[]]> = [
    ['one message per chunk, as recorded', []],
    ['a 1-byte first message (Chromium)', [1]],
    ['1 byte, then inside the EBML header', [1, 3, 20]],
    ['at the Segment header', [initEnd - (initEnd - 40), 45]],
    ['inside the Tracks', [1, initEnd - 60, initEnd - 5]],
    ['right at the first Cluster', [1, initEnd]],
    ['one byte into the first Cluster', [initEnd + 1]],
    ['every byte its own message, through the init', Array.from({ length: initEnd + 40 }, (_, i) => i + 1)],
  ];
  for (const [name, offsets] of cases) {
    const messages = offsets.length === 0 ? cut(recording, mediaRecorderFixture().chunkSizes) : splitAt(recording, offsets);
    const pieces = feed(messages);
    const found = starts(pieces);
    t.equal(found.length, 1, `${name}: one stream start`);
    t.equal(pieces[0]!.type, 'start', `${name}: the start comes first`);
    t.same(Buffer.from(found[0]!.init), recording.subarray(0, initEnd), `${name}: the init, whole`);
    t.equal(found[0]!.mimeType, 'video/webm; codecs="vp8,opus"', `${name}: its MediaSource type`);
    t.same(found[0]!.tracks.map((track) => track.codec), ['VP8', 'Opus']);
    t.equal(found[0]!.firstTimeMs, 0, `${name}: the first Cluster's time`);
    t.ok(media(pieces).equals(recording.subarray(initEnd)), `${name}: the media after it, unchanged`);
  }
});

t.test('a second stream start mid-connection (the recorder restarted) is found, split anywhere', async (t) => {
  const twice = concat([recording, recording]);
  for (const offset of [0, 1, 2, 30, initEnd - 10]) {
    const at = recording.length + offset;
    const pieces = feed(splitAt(twice, offset === 0 ? [recording.length] : [recording.length - 7, at]));
    const found = starts(pieces);
    t.equal(found.length, 2, `split ${offset} bytes into the second header: two starts`);
    t.same(Buffer.from(found[1]!.init), recording.subarray(0, initEnd), 'the second init, whole');
    t.same(pieces.map((piece) => piece.type).filter((type, i, all) => type !== all[i - 1]), ['start', 'media', 'start', 'media'], 'in stream order');
    t.ok(media(pieces).equals(concat([recording.subarray(initEnd), recording.subarray(initEnd)])), 'the media of both, unchanged');
  }
});

t.test('a message that begins a new stream after chunks were dropped (congestion) starts over there', async (t) => {
  const { chunkSizes } = mediaRecorderFixture();
  const chunks = cut(recording, chunkSizes);
  // Chunks 3 and 4 dropped: the old stream stops inside a block, where the parser cannot see the new header.
  const sent = [...chunks.slice(0, 3), ...chunks.slice(5, 8), ...chunks];
  const pieces = feed(sent);
  t.equal(starts(pieces).length, 2, 'both stream starts');
  t.equal(pieces.filter((piece) => piece.type === 'unplayable').length, 0, 'no parse error reported');
  const cutStream = concat([...chunks.slice(0, 3), ...chunks.slice(5, 8)]);
  t.ok(media(pieces).equals(concat([cutStream.subarray(initEnd), recording.subarray(initEnd)])), 'all media handed on, the cut stream included');
});

t.test('joining mid-stream: messages are skipped until one starts a stream', async (t) => {
  const clusterStart = initEnd;
  const pieces = feed([recording.subarray(clusterStart + 500, clusterStart + 900), recording.subarray(clusterStart + 900, clusterStart + 1000), recording.subarray(0, 1), recording.subarray(1)]);
  t.same(pieces.slice(0, 2), [{ type: 'skipped', bytes: 400 }, { type: 'skipped', bytes: 100 }], 'the middle of a stream is skipped');
  t.equal(starts(pieces).length, 1, 'then the next stream start is found, though its first message is 1 byte');
  t.ok(media(pieces).equals(recording.subarray(initEnd)));
  t.same(feed([recording.subarray(initEnd, initEnd + 100)], true), [{ type: 'skipped', bytes: 100 }], 'flush() finds no start in the middle of a stream');
});

t.test('FLV and MPEG-TS are reported as unplayable at once; garbage after the start passes through', async (t) => {
  t.same(feed([Uint8Array.of(0x46, 0x4c), Uint8Array.of(0x56, 0x01, 5, 0, 0, 0, 9)]), [{ type: 'unplayable', container: 'flv' }]);
  const pieces = feed([recording.subarray(0, initEnd + 2000), Uint8Array.of(0, 0, 0, 0), recording.subarray(initEnd + 2000, initEnd + 3000)]);
  t.equal(starts(pieces).length, 1);
  t.equal(media(pieces).length, 2000 + 4 + 1000, 'bytes the parser rejects are still handed on: the decoder judges them');
  const broken = feed([recording.subarray(0, 36), Uint8Array.of(0, 0, 0, 0)]); // after the EBML header
  t.match(broken.at(-1), { type: 'unplayable', container: 'opaque', reason: /webm/ }, 'a broken header is unplayable, with the reason');
});

t.test('fragmented MP4: the init (ftyp + moov) is found whole and gives avc1 with its profile', async (t) => {
  const mp4 = await makeSample('fmp4', { seconds: 2 });
  const moof = mp4.indexOf('moof') - 4;
  for (const offsets of [[1], [3, 9, moof - 100], [moof + 1]]) {
    const pieces = feed(splitAt(mp4, offsets));
    const found = starts(pieces);
    t.equal(found.length, 1, `split at ${offsets.join(', ')}: one start`);
    t.same(Buffer.from(found[0]!.init), mp4.subarray(0, moof), 'ftyp + moov, whole');
    t.match(found[0]!.mimeType, /^video\/mp4; codecs="avc1\.[0-9A-F]{6},mp4a\.40\.2"$/, `type ${found[0]!.mimeType}`);
    t.ok(media(pieces).equals(mp4.subarray(moof)), 'the fragments, unchanged');
  }
  const probe = feed([mp4.subarray(0, moof)], true);
  t.equal(starts(probe).length, 1, 'flush(): an init without media yet (a probe) is still reported');
  t.equal(starts(probe)[0]!.mimeType, starts(feed([mp4]))[0]!.mimeType, 'with the same type');
});
