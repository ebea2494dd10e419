import type { ContainerKind } from './types.js';

const TS_PACKET = 188;
/** Enough bytes to decide in every case: three MPEG-TS sync bytes. */
export const SNIFF_BYTES = 2 * TS_PACKET + 1;

const EBML_MAGIC = [0x1a, 0x45, 0xdf, 0xa3];
const FLV_MAGIC = [0x46, 0x4c, 0x56, 0x01];
const MP4_FIRST_BOXES = ['ftyp', 'styp', 'moov', 'moof'];

type Verdict = 'yes' | 'no' | 'maybe';

/**
 * Tells the container from the first bytes of a publishing session: a container, `opaque`, or
 * undefined when more bytes are needed (never with SNIFF_BYTES or more).
 */
export function sniffContainer(bytes: Uint8Array): ContainerKind | 'opaque' | undefined {
  const verdicts: Array<[ContainerKind, Verdict]> = [
    ['webm', prefix(bytes, EBML_MAGIC)],
    ['flv', prefix(bytes, FLV_MAGIC)],
    ['mpegts', transportStream(bytes)],
    ['fmp4', mp4(bytes)],
  ];
  for (const [kind, verdict] of verdicts) if (verdict === 'yes') return kind;
  return verdicts.some(([, verdict]) => verdict === 'maybe') ? undefined : 'opaque';
}

function prefix(bytes: Uint8Array, magic: readonly number[]): Verdict {
  const length = Math.min(bytes.byteLength, magic.length);
  for (let i = 0; i < length; i++) if (bytes[i] !== magic[i]) return 'no';
  return length === magic.length ? 'yes' : 'maybe';
}

function transportStream(bytes: Uint8Array): Verdict {
  for (let at = 0; at < SNIFF_BYTES; at += TS_PACKET) {
    if (at >= bytes.byteLength) return 'maybe';
    if (bytes[at] !== 0x47) return 'no';
  }
  return 'yes';
}

function mp4(bytes: Uint8Array): Verdict {
  if (bytes.byteLength >= 4) {
    const size = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
    if (size !== 1 && size < 8) return 'no';
  }
  const type = String.fromCharCode(...bytes.subarray(4, 8));
  const candidates = MP4_FIRST_BOXES.filter((box) => box.startsWith(type));
  if (candidates.length === 0) return 'no';
  return bytes.byteLength >= 8 ? 'yes' : 'maybe';
}
