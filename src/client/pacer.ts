// `publish --realtime`: sends a recorded FLV, MPEG-TS or WebM stream at the speed its own
// timestamps say, like ffmpeg's -re. The readers below only find timestamps (FLV tag times,
// MPEG-TS PCR or else PES PTS, WebM cluster timecode + block offset); they skip everything else.
import { readPts } from '../media/mpegts.js';
import { sniffContainer, SNIFF_BYTES } from '../media/sniff.js';
import { concatBytes } from '../media/bytes.js';

/** A unit (tag, packet, block) that starts at `offset` in the chunk just pushed (negative: in an earlier chunk). */
export interface TimePoint {
  readonly offset: number;
  readonly timeMs: number;
}

export interface TimestampReader {
  /** Reads the next chunk of the stream; returns the units that start in it, in order. */
  push(chunk: Uint8Array): TimePoint[];
}

export type PacedContainer = 'flv' | 'mpegts' | 'webm';

/**
 * The shared machinery: bytes to skip (payloads), and a carry of the few bytes of a header
 * that was cut by a chunk boundary. `parse` looks at data[at…] and returns how many bytes it
 * consumed, or 0 when it needs more.
 */
abstract class IncrementalReader implements TimestampReader {
  protected points: TimePoint[] = [];
  protected skip = 0;
  private carry: Uint8Array = new Uint8Array(0);
  /** Stream offset of data[0] in the current push. */
  private base = 0;
  private chunkStart = 0;

  push(chunk: Uint8Array): TimePoint[] {
    this.points = [];
    this.chunkStart = this.base + this.carry.byteLength;
    let data = chunk;
    if (this.carry.byteLength > 0) {
      data = new Uint8Array(this.carry.byteLength + chunk.byteLength);
      data.set(this.carry);
      data.set(chunk, this.carry.byteLength);
    }
    let at = 0;
    while (at < data.byteLength) {
      if (this.skip > 0) {
        const skipped = Math.min(this.skip, data.byteLength - at);
        this.skip -= skipped;
        at += skipped;
        continue;
      }
      const used = this.parse(data, at);
      if (used === 0) break;
      at += used;
    }
    this.carry = data.slice(at);
    this.base += at;
    return this.points;
  }

  protected point(at: number, timeMs: number): void {
    this.points.push({ offset: this.base + at - this.chunkStart, timeMs });
  }

  protected abstract parse(data: Uint8Array, at: number): number;
}

const u24 = (data: Uint8Array, at: number): number => (data[at]! << 16) | (data[at + 1]! << 8) | data[at + 2]!;
const u32 = (data: Uint8Array, at: number): number => ((data[at]! << 24) | u24(data, at + 1)) >>> 0;

/** FLV: a 9+ byte header, then tags of 11 header bytes (24-bit time + 8 high bits), data, and a 4-byte size. */
class FlvReader extends IncrementalReader {
  private header = true;

  protected parse(data: Uint8Array, at: number): number {
    if (this.header) {
      if (data.byteLength - at < 9) return 0;
      this.header = false;
      this.skip = Math.max(0, u32(data, at + 5) - 9) + 4;
      return 9;
    }
    if (data.byteLength - at < 11) return 0;
    const size = u24(data, at + 1);
    const timeMs = (u24(data, at + 4) | (data[at + 7]! << 24)) >>> 0;
    this.point(at, timeMs);
    this.skip = size + 4;
    return 11;
  }
}

const TS_PACKET = 188;

/**
 * MPEG-TS: 188-byte packets. The PES PTS of one PID (the first that has one), about one per
 * frame; before the first PTS, the PCR. PCR alone is too coarse: some muxers send it once per GOP.
 */
class MpegTsReader extends IncrementalReader {
  private ptsPid: number | undefined;
  /** Added to PTS so that the switch from PCR to PTS does not look like a jump. */
  private ptsShift: number | undefined;
  private lastMs: number | undefined;

  protected parse(data: Uint8Array, at: number): number {
    if (data[at] !== 0x47) return 1; // Lost sync: look for the next sync byte.
    if (data.byteLength - at < TS_PACKET) return 0;
    const pid = ((data[at + 1]! & 0x1f) << 8) | data[at + 2]!;
    const unitStart = (data[at + 1]! & 0x40) !== 0;
    const control = (data[at + 3]! >> 4) & 0x3;
    let pes = at + 4;
    if (control & 0x2) {
      const length = data[at + 4]!;
      pes += 1 + length;
      if (this.ptsPid === undefined && length >= 7 && data[at + 5]! & 0x10) this.time(at, clock33(data, at + 6) / 90);
    }
    const pesHasPts = unitStart && control & 0x1 && pes + 14 <= at + TS_PACKET && data[pes] === 0 && data[pes + 1] === 0 && data[pes + 2] === 1 && data[pes + 7]! & 0x80;
    if (pesHasPts && (this.ptsPid ?? pid) === pid) {
      this.ptsPid = pid;
      const pts = clock33(data, pes + 9, true) / 90;
      this.ptsShift ??= this.lastMs === undefined ? 0 : this.lastMs - pts;
      this.time(at, pts + this.ptsShift);
    }
    return TS_PACKET;
  }

  private time(at: number, timeMs: number): void {
    this.lastMs = timeMs;
    this.point(at, timeMs);
  }
}

/** A 33-bit 90 kHz clock: PCR base (6 bytes, first 33 bits), or PTS (5 bytes with marker bits). */
function clock33(data: Uint8Array, at: number, pts = false): number {
  if (pts) return readPts(data, at);
  return data[at]! * 2 ** 25 + data[at + 1]! * 2 ** 17 + data[at + 2]! * 2 ** 9 + data[at + 3]! * 2 + (data[at + 4]! >> 7);
}

const EBML = {
  SEGMENT: 0x18538067,
  INFO: 0x1549a966,
  TIMECODE_SCALE: 0x2ad7b1,
  CLUSTER: 0x1f43b675,
  TIMECODE: 0xe7,
  BLOCK_GROUP: 0xa0,
  BLOCK: 0xa1,
  SIMPLE_BLOCK: 0xa3,
};
/** Masters whose children are read; every other element is skipped whole. */
const EBML_MASTERS = new Set([EBML.SEGMENT, EBML.INFO, EBML.CLUSTER, EBML.BLOCK_GROUP]);

/** WebM (Matroska): element headers; Cluster Timecode, then each block's signed 16-bit offset, times TimecodeScale. */
class WebmReader extends IncrementalReader {
  private scaleMs = 1;
  private clusterTime = 0;

  protected parse(data: Uint8Array, at: number): number {
    const id = readVint(data, at, 4, true);
    if (id === undefined) return 0;
    if (id === null) return 1; // Not an element ID: resync byte by byte.
    const size = readVint(data, at + id.length, 8, false);
    if (size === undefined) return 0;
    if (size === null) return 1;
    const header = id.length + size.length;
    if (EBML_MASTERS.has(id.value) || size.unknown) return header;
    const body = at + header;
    if (id.value === EBML.TIMECODE || id.value === EBML.TIMECODE_SCALE) {
      if (size.value > 8) {
        this.skip = size.value;
        return header;
      }
      if (data.byteLength - body < size.value) return 0;
      let value = 0;
      for (let i = 0; i < size.value; i++) value = value * 256 + data[body + i]!;
      if (id.value === EBML.TIMECODE) this.clusterTime = value;
      else this.scaleMs = value / 1e6;
      return header + size.value;
    }
    if (id.value === EBML.SIMPLE_BLOCK || id.value === EBML.BLOCK) {
      const track = readVint(data, body, 8, false);
      if (track === undefined || data.byteLength - body - (track?.length ?? 0) < 2) return 0;
      if (track !== null) {
        const relative = ((data[body + track.length]! << 24) >> 16) | data[body + track.length + 1]!;
        this.point(at, (this.clusterTime + relative) * this.scaleMs);
      }
    }
    this.skip = size.value;
    return header;
  }
}

/**
 * An EBML variable-length integer at data[at]: undefined when more bytes are needed, null when
 * invalid. IDs keep their marker bit; a size with all value bits set is unknown.
 */
function readVint(data: Uint8Array, at: number, maxLength: number, keepMarker: boolean): { length: number; value: number; unknown: boolean } | null | undefined {
  if (at >= data.byteLength) return undefined;
  const first = data[at]!;
  const length = first === 0 ? 9 : Math.clz32(first) - 23;
  if (length > maxLength) return null;
  if (at + length > data.byteLength) return undefined;
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    const byte = data[at + i]!;
    value = value * 256 + byte;
    allOnes &&= byte === 0xff;
  }
  return { length, value, unknown: !keepMarker && allOnes };
}

export function createTimestampReader(container: PacedContainer): TimestampReader {
  switch (container) {
    case 'flv':
      return new FlvReader();
    case 'mpegts':
      return new MpegTsReader();
    case 'webm':
      return new WebmReader();
  }
}

export interface PaceOptions {
  /** Monotonic milliseconds. Default performance.now(). */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** A jump in the timestamps larger than this (a loop, a wrap, a splice) is not waited for. */
const MAX_JUMP_MS = 10_000;

/**
 * Yields the bytes of `source` no earlier than their timestamps say, relative to the first
 * one. Bytes before a unit go out before waiting for that unit's time. Throws when the stream
 * is not FLV, MPEG-TS or WebM.
 */
export async function* paceByTimestamps(source: AsyncIterable<Uint8Array>, options: PaceOptions = {}): AsyncGenerator<Uint8Array> {
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let reader: TimestampReader | undefined;
  let head: Uint8Array = new Uint8Array(0);
  let start = 0;
  let first: number | undefined;
  let last = 0;
  for await (let chunk of source) {
    if (reader === undefined) {
      head = concatBytes([head, chunk]);
      const container = sniffContainer(head.subarray(0, SNIFF_BYTES));
      if (container === undefined) continue;
      if (container !== 'flv' && container !== 'mpegts' && container !== 'webm') {
        throw new Error(`--realtime paces FLV, MPEG-TS and WebM; this input is ${container === 'opaque' ? 'none of them' : container}`);
      }
      reader = createTimestampReader(container);
      chunk = head;
      start = now();
    }
    let sent = 0;
    for (const { offset, timeMs } of reader.push(chunk)) {
      if (first === undefined) first = last = timeMs;
      if (Math.abs(timeMs - last) > MAX_JUMP_MS) first += timeMs - last;
      last = timeMs;
      const wait = timeMs - first - (now() - start);
      if (wait <= 0) continue;
      const cut = Math.max(offset, sent);
      if (cut > sent) yield chunk.subarray(sent, cut);
      sent = cut;
      await sleep(wait);
    }
    if (sent < chunk.byteLength) yield chunk.subarray(sent);
  }
  if (reader === undefined && head.byteLength > 0) throw new Error('--realtime: input too short to tell its container');
}

