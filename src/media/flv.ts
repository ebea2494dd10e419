import { ByteReader } from './byte-reader.js';
import { MediaParseError } from './types.js';
import type { ContainerParser, ParserEvents, TrackInfo } from './types.js';

const TAG_AUDIO = 8;
const TAG_VIDEO = 9;
const TAG_SCRIPT = 18;
const TAG_HEADER_BYTES = 11;
const PREVIOUS_TAG_SIZE_BYTES = 4;
/** Tag data read for classification: codec byte + packet type or FourCC, or a script name. */
const CLASSIFY_BYTES = 16;
/** Largest onMetaData parsed for width/height; bigger ones are still kept, just not read. */
const MAX_METADATA_BYTES = 64 * 1024;

const VIDEO_CODECS: Readonly<Record<number, string>> = { 2: 'H.263', 3: 'Screen', 4: 'VP6', 5: 'VP6A', 6: 'Screen2', 7: 'H.264', 12: 'HEVC' };
const VIDEO_FOURCCS: Readonly<Record<string, string>> = { avc1: 'H.264', hvc1: 'HEVC', av01: 'AV1', vp09: 'VP9', vp08: 'VP8' };
const AUDIO_CODECS: Readonly<Record<number, string>> = {
  0: 'PCM', 1: 'ADPCM', 2: 'MP3', 3: 'PCM', 4: 'Nellymoser', 5: 'Nellymoser', 6: 'Nellymoser', 7: 'G.711A', 8: 'G.711U',
  10: 'AAC', 11: 'Speex', 14: 'MP3', 15: 'Device',
};
const AUDIO_FOURCCS: Readonly<Record<string, string>> = { Opus: 'Opus', mp4a: 'AAC', fLaC: 'FLAC', '.mp3': 'MP3', 'ac-3': 'AC-3', 'ec-3': 'E-AC-3' };

/** What the tag being skipped means once it is complete. */
type Pending = 'none' | 'video-init' | 'audio-init' | 'metadata' | 'keyframe';

/**
 * FLV: the file header, onMetaData and the AVC/HEVC/AAC sequence headers are the init (a new
 * sequence header replaces the old one); a keyframe point is a video tag with frame type 1. In
 * a stream without video, every audio frame is one.
 */
export class FlvParser implements ContainerParser {
  readonly kind = 'flv';
  private readonly reader = new ByteReader();
  private headerDone = false;
  private hasVideo = true;
  /** Bytes of the current tag still to skip, and what to report when they are gone. */
  private skipLeft = 0;
  private pending: Pending = 'none';
  private tagStart = 0;
  private tagDataSize = 0;
  private videoCodec: string | undefined;
  private audioCodec: string | undefined;
  private width: number | undefined;
  private height: number | undefined;

  constructor(private readonly events: ParserEvents) {}

  get retainFrom(): number {
    return this.pending === 'none' || this.pending === 'keyframe' ? this.reader.position : this.tagStart;
  }

  push(chunk: Uint8Array): void {
    this.reader.push(chunk);
    for (;;) {
      if (this.skipLeft > 0) {
        this.skipLeft -= this.reader.skip(this.skipLeft);
        if (this.skipLeft > 0) return;
        this.tagDone();
        continue;
      }
      if (!this.headerDone) {
        if (!this.readFileHeader()) return;
        continue;
      }
      if (!this.readTag()) return;
    }
  }

  private readFileHeader(): boolean {
    const fixed = this.reader.peek(9);
    if (fixed === undefined) return false;
    if (fixed[0] !== 0x46 || fixed[1] !== 0x4c || fixed[2] !== 0x56) this.fail('no FLV signature');
    const headerSize = readU32(fixed, 5);
    if (headerSize < 9 || headerSize > 1024) this.fail(`bad header size ${headerSize}`);
    const total = headerSize + PREVIOUS_TAG_SIZE_BYTES;
    if (this.reader.available < total) return false;
    const start = this.reader.position;
    // The flags are often wrong about audio; a declared video track is what matters here.
    this.hasVideo = (fixed[4]! & 0x01) !== 0;
    this.events.initPart({ slot: 'header', start, end: start + total, contentStart: start, contentEnd: start + 9, fileHeader: true });
    this.reader.skip(total);
    this.headerDone = true;
    return true;
  }

  private readTag(): boolean {
    const header = this.reader.peek(TAG_HEADER_BYTES);
    if (header === undefined) return false;
    const type = header[0]! & 0x1f;
    if ((header[0]! & 0xc0) !== 0 || (type !== TAG_AUDIO && type !== TAG_VIDEO && type !== TAG_SCRIPT)) {
      this.fail(`unknown tag type ${header[0]}`);
    }
    if (header[8] !== 0 || header[9] !== 0 || header[10] !== 0) this.fail('tag stream id is not 0');
    const dataSize = (header[1]! << 16) | (header[2]! << 8) | header[3]!;
    const classify = Math.min(dataSize, CLASSIFY_BYTES);
    const head = this.reader.peek(TAG_HEADER_BYTES + classify);
    if (head === undefined) return false;
    const timeMs = ((header[7]! << 24) | (header[4]! << 16) | (header[5]! << 8) | header[6]!) >>> 0;
    this.tagStart = this.reader.position;
    this.tagDataSize = dataSize;
    this.pending = 'none';
    const data = head.subarray(TAG_HEADER_BYTES);
    if ((header[0]! & 0x20) === 0 && dataSize > 0) {
      if (type === TAG_VIDEO) this.classifyVideo(data, timeMs);
      else if (type === TAG_AUDIO) this.classifyAudio(data, timeMs);
      else if (isMetadataName(data)) {
        // Small enough to read whole (it waits in the reader until complete) for width/height.
        if (dataSize <= MAX_METADATA_BYTES) {
          const tag = this.reader.peek(TAG_HEADER_BYTES + dataSize);
          if (tag === undefined) return false;
          this.readMetadata(tag.subarray(TAG_HEADER_BYTES));
        }
        this.pending = 'metadata';
      }
    }
    this.skipLeft = TAG_HEADER_BYTES + dataSize + PREVIOUS_TAG_SIZE_BYTES;
    return true;
  }

  private classifyVideo(data: Uint8Array, timeMs: number): void {
    const first = data[0]!;
    const frameType = (first >> 4) & 0x07;
    let codec: string;
    let sequenceHeader: boolean;
    let codedFrame: boolean;
    if ((first & 0x80) !== 0) {
      // Enhanced RTMP: packet type in the low nibble, then a FourCC.
      const packetType = first & 0x0f;
      const fourcc = data.byteLength >= 5 ? String.fromCharCode(data[1]!, data[2]!, data[3]!, data[4]!) : '';
      codec = VIDEO_FOURCCS[fourcc] ?? fourcc;
      sequenceHeader = packetType === 0;
      codedFrame = packetType === 1 || packetType === 3;
    } else {
      const codecId = first & 0x0f;
      codec = VIDEO_CODECS[codecId] ?? `flv-video-${codecId}`;
      const hasPacketType = codecId === 7 || codecId === 12;
      sequenceHeader = hasPacketType && data[1] === 0;
      codedFrame = hasPacketType ? data[1] === 1 : true;
    }
    this.hasVideo = true;
    if (codec !== this.videoCodec) {
      this.videoCodec = codec;
      this.reportTracks();
    }
    if (sequenceHeader) this.pending = 'video-init';
    else if (codedFrame && frameType === 1) {
      this.events.keyframe(this.reader.position, timeMs);
      this.pending = 'keyframe';
    }
  }

  private classifyAudio(data: Uint8Array, timeMs: number): void {
    const format = data[0]! >> 4;
    let codec: string;
    let sequenceHeader: boolean;
    if (format === 9) {
      // Enhanced RTMP audio: packet type in the low nibble, then a FourCC.
      const fourcc = data.byteLength >= 5 ? String.fromCharCode(data[1]!, data[2]!, data[3]!, data[4]!) : '';
      codec = AUDIO_FOURCCS[fourcc] ?? fourcc;
      sequenceHeader = (data[0]! & 0x0f) === 0;
    } else {
      codec = AUDIO_CODECS[format] ?? `flv-audio-${format}`;
      sequenceHeader = format === 10 && data[1] === 0;
    }
    if (codec !== this.audioCodec) {
      this.audioCodec = codec;
      this.reportTracks();
    }
    if (sequenceHeader) this.pending = 'audio-init';
    else if (!this.hasVideo) {
      this.events.keyframe(this.reader.position, timeMs);
      this.pending = 'keyframe';
    }
  }

  /** The whole current tag (with its trailing PreviousTagSize) has been read. */
  private tagDone(): void {
    const start = this.tagStart;
    const end = this.reader.position;
    const contentStart = start + TAG_HEADER_BYTES;
    const contentEnd = contentStart + this.tagDataSize;
    const pending = this.pending;
    this.pending = 'none';
    if (pending === 'keyframe') this.events.keyframeEnd(end);
    else if (pending === 'video-init' || pending === 'audio-init') {
      this.events.initPart({ slot: pending === 'video-init' ? 'video' : 'audio', start, end, contentStart, contentEnd, fileHeader: false });
    } else if (pending === 'metadata') {
      this.events.initPart({ slot: 'metadata', start, end, contentStart, contentEnd, fileHeader: false, informational: true });
    }
  }

  private readMetadata(body: Uint8Array): void {
    const values = readMetadataNumbers(body);
    const width = values.get('width');
    const height = values.get('height');
    if (width !== undefined && height !== undefined && (width !== this.width || height !== this.height)) {
      this.width = width;
      this.height = height;
      this.reportTracks();
    }
  }

  private reportTracks(): void {
    const tracks: TrackInfo[] = [];
    if (this.videoCodec !== undefined) {
      tracks.push(this.width !== undefined && this.height !== undefined
        ? { type: 'video', codec: this.videoCodec, width: this.width, height: this.height }
        : { type: 'video', codec: this.videoCodec });
    }
    if (this.audioCodec !== undefined) tracks.push({ type: 'audio', codec: this.audioCodec });
    this.events.tracks(tracks);
  }

  private fail(message: string): never {
    throw new MediaParseError('flv', this.reader.position, message);
  }
}

function isMetadataName(data: Uint8Array): boolean {
  // AMF0 string marker, length 10, "onMetaData".
  if (data.byteLength < 13 || data[0] !== 0x02 || data[1] !== 0 || data[2] !== 10) return false;
  return String.fromCharCode(...data.subarray(3, 13)) === 'onMetaData';
}

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/** The numeric top-level properties of an AMF0 onMetaData body (after the name). Tolerant: stops at anything odd. */
export function readMetadataNumbers(body: Uint8Array): Map<string, number> {
  const values = new Map<string, number>();
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let at = 13; // after the "onMetaData" string
  const marker = body[at];
  if (marker === 0x08) at += 5; // ECMA array: marker + approximate count
  else if (marker === 0x03) at += 1; // object
  else return values;
  while (at + 3 <= body.byteLength) {
    const keyLength = view.getUint16(at);
    at += 2;
    if (keyLength === 0) break; // object end (00 00 09)
    if (at + keyLength >= body.byteLength) break;
    const key = String.fromCharCode(...body.subarray(at, at + keyLength));
    at += keyLength;
    const type = body[at]!;
    at += 1;
    if (type === 0x00) {
      if (at + 8 > body.byteLength) break;
      values.set(key, view.getFloat64(at));
      at += 8;
    } else if (type === 0x01) at += 1;
    else if (type === 0x02) {
      if (at + 2 > body.byteLength) break;
      at += 2 + view.getUint16(at);
    } else if (type === 0x05 || type === 0x06) continue;
    else break; // nested values are not needed: stop rather than guess
  }
  return values;
}
