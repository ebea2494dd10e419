import { ByteReader } from './byte-reader.js';
import { mp4CodecString, videoThenAudio } from './codec-strings.js';
import { MediaParseError } from './types.js';
import type { ContainerParser, ParserEvents, TrackInfo } from './types.js';

/** Top-level boxes a fragmented MP4 stream may carry; anything else means it is not one. */
const TOP_LEVEL = new Set(['ftyp', 'styp', 'moov', 'moof', 'mdat', 'sidx', 'ssix', 'free', 'skip', 'wide', 'mfra', 'emsg', 'prft', 'uuid', 'meta', 'pdin']);
/** moov and moof are read whole; larger ones are not believed. */
const MAX_MOOV_BYTES = 16 * 1024 * 1024;
const MAX_MOOF_BYTES = 8 * 1024 * 1024;
const SAMPLE_IS_NON_SYNC = 0x10000;

const CODECS: Readonly<Record<string, string>> = {
  avc1: 'H.264', avc3: 'H.264', hvc1: 'HEVC', hev1: 'HEVC', av01: 'AV1', vp08: 'VP8', vp09: 'VP9',
  mp4a: 'AAC', Opus: 'Opus', fLaC: 'FLAC', 'ac-3': 'AC-3', 'ec-3': 'E-AC-3', '.mp3': 'MP3',
};

interface Track {
  readonly id: number;
  readonly info: TrackInfo;
  /** RFC 6381 codec string. */
  readonly codecString: string;
  readonly timescale: number;
  defaultFlags: number | undefined;
}

interface BoxHeader {
  readonly type: string;
  /** Whole box, header included. */
  readonly size: number;
  readonly headerLength: number;
}

/**
 * Fragmented MP4 (Safari's MediaRecorder, ffmpeg with frag_keyframe): everything before the
 * first `moof` (`ftyp` + `moov`) is the init; a keyframe point is a `moof` whose first video
 * sample is a sync sample. Without video, every `moof` is one.
 */
export class Fmp4Parser implements ContainerParser {
  readonly kind = 'fmp4';
  private readonly reader = new ByteReader();
  private skipLeft = 0;
  private streamStart = 0;
  private initReported = false;
  private tracks: Track[] = [];
  /** After a keyframe moof: its mdat ends the keyframe. */
  private keyframeOpen = false;
  private keyframeEndAt: number | undefined;
  private codecs: readonly string[] = [];

  constructor(private readonly events: ParserEvents) {}

  /** RFC 6381 codec strings of the current track list, video first (for a browser's MediaSource). */
  get codecStrings(): readonly string[] {
    return this.codecs;
  }

  get retainFrom(): number {
    return this.initReported ? this.reader.position : Math.min(this.streamStart, this.reader.position);
  }

  push(chunk: Uint8Array): void {
    this.reader.push(chunk);
    for (;;) {
      if (this.skipLeft > 0) {
        this.skipLeft -= this.reader.skip(this.skipLeft);
        if (this.skipLeft > 0) return;
      }
      if (this.keyframeEndAt !== undefined && this.reader.position >= this.keyframeEndAt) {
        this.events.keyframeEnd(this.keyframeEndAt);
        this.keyframeEndAt = undefined;
      }
      if (!this.readBox()) return;
    }
  }

  private readBox(): boolean {
    const header = this.readHeader();
    if (header === undefined) return false;
    const start = this.reader.position;
    switch (header.type) {
      case 'ftyp':
        if (this.initReported) {
          this.events.restart(start);
          this.initReported = false;
          this.tracks = [];
        }
        this.streamStart = start;
        break;
      case 'moov': {
        if (header.size > MAX_MOOV_BYTES) this.fail(`moov of ${header.size} bytes`);
        const box = this.reader.peek(header.size);
        if (box === undefined) return false;
        this.readMoov(box.subarray(header.headerLength));
        break;
      }
      case 'moof': {
        if (header.size > MAX_MOOF_BYTES) this.fail(`moof of ${header.size} bytes`);
        const box = this.reader.peek(header.size);
        if (box === undefined) return false;
        if (!this.initReported) {
          this.initReported = true;
          this.events.initPart({ slot: 'init', start: this.streamStart, end: start, contentStart: this.streamStart, contentEnd: start, fileHeader: true });
        }
        const key = this.readMoof(box.subarray(header.headerLength));
        this.keyframeOpen = key.sync;
        if (key.sync) this.events.keyframe(start, key.timeMs);
        break;
      }
      case 'mdat':
        if (this.keyframeOpen) {
          this.keyframeOpen = false;
          this.keyframeEndAt = start + header.size;
        }
        break;
      default:
        break;
    }
    this.reader.skip(header.headerLength);
    this.skipLeft = header.size - header.headerLength;
    return true;
  }

  private readHeader(): BoxHeader | undefined {
    const bytes = this.reader.peek(8);
    if (bytes === undefined) return undefined;
    const type = String.fromCharCode(bytes[4]!, bytes[5]!, bytes[6]!, bytes[7]!);
    if (!TOP_LEVEL.has(type)) this.fail(`unexpected top-level box "${printable(type)}"`);
    let size = readU32(bytes, 0);
    let headerLength = 8;
    if (size === 1) {
      const large = this.reader.peek(16);
      if (large === undefined) return undefined;
      size = readU32(large, 8) * 2 ** 32 + readU32(large, 12);
      headerLength = 16;
    } else if (size === 0) {
      this.fail(`box "${type}" extends to the end of the file`);
    }
    if (size < headerLength) this.fail(`box "${type}" of size ${size}`);
    return { type, size, headerLength };
  }

  private readMoov(body: Uint8Array): void {
    const tracks: Track[] = [];
    const trex = new Map<number, number>();
    for (const box of boxes(body)) {
      if (box.type === 'trak') {
        const track = readTrak(box.body);
        if (track !== undefined) tracks.push(track);
      } else if (box.type === 'mvex') {
        for (const child of boxes(box.body)) {
          if (child.type === 'trex' && child.body.byteLength >= 24) trex.set(readU32(child.body, 4), readU32(child.body, 20));
        }
      }
    }
    for (const track of tracks) track.defaultFlags = trex.get(track.id);
    this.tracks = tracks;
    this.codecs = videoThenAudio(tracks.map((track) => ({ type: track.info.type, codec: track.codecString })));
    this.events.tracks(tracks.map((track) => track.info));
  }

  /** Whether the fragment starts with a sync sample of the video track (any fragment without video). */
  private readMoof(body: Uint8Array): { sync: boolean; timeMs: number | undefined } {
    const video = this.tracks.find((track) => track.info.type === 'video');
    let first: { sync: boolean; timeMs: number | undefined } | undefined;
    for (const traf of boxes(body)) {
      if (traf.type !== 'traf') continue;
      const fragment = readTraf(traf.body, this.tracks);
      if (fragment === undefined) continue;
      if (video === undefined) first ??= { sync: true, timeMs: fragment.timeMs };
      else if (fragment.trackId === video.id) return { sync: fragment.sync, timeMs: fragment.timeMs };
    }
    return first ?? { sync: false, timeMs: undefined };
  }

  private fail(message: string): never {
    throw new MediaParseError('fmp4', this.reader.position, message);
  }
}

function readTrak(body: Uint8Array): Track | undefined {
  let id: number | undefined;
  let timescale = 1000;
  let handler = '';
  let entry = '';
  let width: number | undefined;
  let height: number | undefined;
  let config: { type: string; body: Uint8Array } | undefined;
  for (const box of boxes(body)) {
    if (box.type === 'tkhd') id = readU32(box.body, box.body[0] === 1 ? 20 : 12);
    else if (box.type === 'mdia') {
      for (const child of boxes(box.body)) {
        if (child.type === 'mdhd') timescale = readU32(child.body, child.body[0] === 1 ? 20 : 12) || 1000;
        else if (child.type === 'hdlr') handler = fourcc(child.body, 8);
        else if (child.type === 'minf') {
          const stsd = find(find(child.body, 'stbl'), 'stsd');
          // stsd: version/flags, entry count, then the first sample entry box.
          if (stsd !== undefined && stsd.byteLength >= 16) {
            entry = fourcc(stsd, 12);
            if (handler === 'vide' && stsd.byteLength >= 8 + 8 + 28) {
              width = (stsd[8 + 32]! << 8) | stsd[8 + 33]!;
              height = (stsd[8 + 34]! << 8) | stsd[8 + 35]!;
              // A visual sample entry's boxes (avcC, av1C…) follow its 78 bytes of fields.
              const entry = boxes(stsd.subarray(8)).next().value;
              if (entry !== undefined) config = boxes(entry.body.subarray(78)).next().value ?? undefined;
            }
          }
        }
      }
    }
  }
  if (id === undefined) return undefined;
  const type = handler === 'vide' ? 'video' : handler === 'soun' ? 'audio' : 'other';
  const codec = CODECS[entry] ?? entry;
  const info: TrackInfo = type === 'video' && width !== undefined && height !== undefined ? { type, codec, width, height } : { type, codec };
  return { id, info, codecString: mp4CodecString(entry, config), timescale, defaultFlags: undefined };
}

function readTraf(body: Uint8Array, tracks: readonly Track[]): { trackId: number; sync: boolean; timeMs: number | undefined } | undefined {
  let trackId: number | undefined;
  let defaultFlags: number | undefined;
  let firstFlags: number | undefined;
  let decodeTime: number | undefined;
  for (const box of boxes(body)) {
    const b = box.body;
    if (box.type === 'tfhd' && b.byteLength >= 8) {
      const flags = readU32(b, 0) & 0xffffff;
      trackId = readU32(b, 4);
      let at = 8;
      if (flags & 0x01) at += 8;
      if (flags & 0x02) at += 4;
      if (flags & 0x08) at += 4;
      if (flags & 0x10) at += 4;
      if (flags & 0x20 && at + 4 <= b.byteLength) defaultFlags = readU32(b, at);
    } else if (box.type === 'tfdt' && b.byteLength >= 8) {
      decodeTime = b[0] === 1 && b.byteLength >= 12 ? readU32(b, 4) * 2 ** 32 + readU32(b, 8) : readU32(b, 4);
    } else if (box.type === 'trun' && firstFlags === undefined && b.byteLength >= 8) {
      const flags = readU32(b, 0) & 0xffffff;
      if (readU32(b, 4) === 0) continue;
      let at = 8;
      if (flags & 0x01) at += 4;
      if (flags & 0x04) {
        if (at + 4 <= b.byteLength) firstFlags = readU32(b, at);
      } else if (flags & 0x400) {
        if (flags & 0x100) at += 4;
        if (flags & 0x200) at += 4;
        if (at + 4 <= b.byteLength) firstFlags = readU32(b, at);
      }
    }
  }
  if (trackId === undefined) return undefined;
  const track = tracks.find((candidate) => candidate.id === trackId);
  const flags = firstFlags ?? defaultFlags ?? track?.defaultFlags;
  const timeMs = decodeTime === undefined || track === undefined ? undefined : (decodeTime * 1000) / track.timescale;
  // Without any flags the sample is taken as sync, as demuxers do.
  return { trackId, sync: flags === undefined || (flags & SAMPLE_IS_NON_SYNC) === 0, timeMs };
}

/** The child boxes of a complete box body (stops at anything malformed). */
function* boxes(body: Uint8Array): Generator<{ type: string; body: Uint8Array }> {
  let at = 0;
  while (at + 8 <= body.byteLength) {
    let size = readU32(body, at);
    let header = 8;
    if (size === 1) {
      if (at + 16 > body.byteLength) return;
      size = readU32(body, at + 8) * 2 ** 32 + readU32(body, at + 12);
      header = 16;
    } else if (size === 0) size = body.byteLength - at;
    if (size < header || at + size > body.byteLength) return;
    yield { type: fourcc(body, at + 4), body: body.subarray(at + header, at + size) };
    at += size;
  }
}

function find(body: Uint8Array | undefined, type: string): Uint8Array | undefined {
  if (body === undefined) return undefined;
  for (const box of boxes(body)) if (box.type === type) return box.body;
  return undefined;
}

function fourcc(bytes: Uint8Array, at: number): string {
  if (at + 4 > bytes.byteLength) return '';
  return String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
}

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}
