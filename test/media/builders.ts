// Tiny writers of synthetic container bytes, for parser tests that need exact structures
// (unknown sizes, sequence header changes) that an encoder does not produce on demand.

/** An EBML element; `size: 'unknown'` writes the 8-byte all-ones size (live streams). */
export function ebml(id: number, body: Uint8Array | readonly Uint8Array[], size: 'known' | 'unknown' = 'known'): Buffer {
  const content = body instanceof Uint8Array ? Buffer.from(body) : Buffer.concat(body);
  const idBytes: number[] = [];
  for (let value = id; value > 0; value = Math.floor(value / 256)) idBytes.unshift(value & 0xff);
  const sizeBytes = size === 'unknown' ? [0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff] : vint(content.length);
  return Buffer.concat([Buffer.from(idBytes), Buffer.from(sizeBytes), content]);
}

function vint(value: number): number[] {
  // 8-byte form keeps it simple and valid for any size.
  const bytes = [0x01];
  for (let shift = 6; shift >= 0; shift--) bytes.push(Math.floor(value / 2 ** (shift * 8)) & 0xff);
  return bytes;
}

export function uint(id: number, value: number): Buffer {
  return ebml(id, Buffer.from([value & 0xff]));
}

export function text(id: number, value: string): Buffer {
  return ebml(id, Buffer.from(value, 'latin1'));
}

export const WEBM = {
  EBML: 0x1a45dfa3,
  SEGMENT: 0x18538067,
  INFO: 0x1549a966,
  TRACKS: 0x1654ae6b,
  TRACK_ENTRY: 0xae,
  CLUSTER: 0x1f43b675,
  CUES: 0x1c53bb6b,
};

/** EBML header + Segment (unknown size) start + Info + Tracks (video track 1 VP8, audio track 2 Opus). */
export function webmInit(): Buffer {
  const header = ebml(WEBM.EBML, [text(0x4282, 'webm')]);
  const info = ebml(WEBM.INFO, [ebml(0x2ad7b1, Buffer.from([0x0f, 0x42, 0x40]))]);
  const video = ebml(WEBM.TRACK_ENTRY, [uint(0xd7, 1), uint(0x83, 1), text(0x86, 'V_VP8'), ebml(0xe0, [ebml(0xb0, Buffer.from([0x01, 0x40])), ebml(0xba, Buffer.from([0xf0]))])]);
  const audio = ebml(WEBM.TRACK_ENTRY, [uint(0xd7, 2), uint(0x83, 2), text(0x86, 'A_OPUS')]);
  const segmentStart = Buffer.from([0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  return Buffer.concat([header, segmentStart, info, ebml(WEBM.TRACKS, [video, audio])]);
}

export function simpleBlock(track: number, keyframe: boolean, payload = 20): Buffer {
  return ebml(0xa3, Buffer.concat([Buffer.from([0x80 | track, 0, 0, keyframe ? 0x80 : 0]), Buffer.alloc(payload, 0x55)]));
}

export function blockGroup(track: number, reference: boolean, payload = 20): Buffer {
  const block = ebml(0xa1, Buffer.concat([Buffer.from([0x80 | track, 0, 0, 0]), Buffer.alloc(payload, 0x66)]));
  return ebml(0xa0, reference ? [block, ebml(0xfb, Buffer.from([0xd8]))] : [block]);
}

/** A Cluster of unknown size (as MediaRecorder writes them) with a Timecode and `blocks`. */
export function cluster(timecode: number, blocks: readonly Buffer[], size: 'known' | 'unknown' = 'unknown'): Buffer {
  return ebml(WEBM.CLUSTER, [ebml(0xe7, Buffer.from([(timecode >> 8) & 0xff, timecode & 0xff])), ...blocks], size);
}

// FLV

export function flvHeader(audio = true, video = true): Buffer {
  return Buffer.from([0x46, 0x4c, 0x56, 0x01, (audio ? 4 : 0) | (video ? 1 : 0), 0, 0, 0, 9, 0, 0, 0, 0]);
}

/** A tag plus its trailing PreviousTagSize. */
export function flvTag(type: 8 | 9 | 18, timeMs: number, data: Uint8Array): Buffer {
  const header = Buffer.alloc(11);
  header[0] = type;
  header.writeUIntBE(data.length, 1, 3);
  header.writeUIntBE(timeMs & 0xffffff, 4, 3);
  header[7] = (timeMs >>> 24) & 0xff;
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32BE(11 + data.length);
  return Buffer.concat([header, data, trailer]);
}

export function avcSequenceHeader(variant: number): Buffer {
  return flvTag(9, 0, Buffer.from([0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f + variant, 0xff]));
}

export function aacSequenceHeader(): Buffer {
  return flvTag(8, 0, Buffer.from([0xaf, 0x00, 0x11, 0x90]));
}

export function avcFrame(timeMs: number, keyframe: boolean, payload = 40): Buffer {
  return flvTag(9, timeMs, Buffer.concat([Buffer.from([keyframe ? 0x17 : 0x27, 0x01, 0, 0, 0]), Buffer.alloc(payload, 0x77)]));
}

export function aacFrame(timeMs: number, payload = 10): Buffer {
  return flvTag(8, timeMs, Buffer.concat([Buffer.from([0xaf, 0x01]), Buffer.alloc(payload, 0x88)]));
}

/** onMetaData with numeric properties (AMF0 ECMA array). */
export function flvMetadata(values: Record<string, number>): Buffer {
  const parts: Buffer[] = [Buffer.from([0x02, 0x00, 0x0a]), Buffer.from('onMetaData'), Buffer.from([0x08, 0, 0, 0, Object.keys(values).length])];
  for (const [key, value] of Object.entries(values)) {
    const name = Buffer.alloc(2);
    name.writeUInt16BE(key.length);
    const number = Buffer.alloc(9);
    number[0] = 0x00;
    number.writeDoubleBE(value, 1);
    parts.push(name, Buffer.from(key), number);
  }
  parts.push(Buffer.from([0, 0, 9]));
  return flvTag(18, 0, Buffer.concat(parts));
}
