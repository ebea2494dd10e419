import { ByteReader } from './byte-reader.js';
import { videoThenAudio, webmCodecString } from './codec-strings.js';
import { MediaParseError } from './types.js';
import type { ContainerParser, ParserEvents, TrackInfo } from './types.js';

const ID = {
  EBML: 0x1a45dfa3,
  SEGMENT: 0x18538067,
  SEEK_HEAD: 0x114d9b74,
  INFO: 0x1549a966,
  TIMECODE_SCALE: 0x2ad7b1,
  TRACKS: 0x1654ae6b,
  TRACK_ENTRY: 0xae,
  TRACK_NUMBER: 0xd7,
  TRACK_TYPE: 0x83,
  CODEC_ID: 0x86,
  CODEC_PRIVATE: 0x63a2,
  VIDEO: 0xe0,
  PIXEL_WIDTH: 0xb0,
  PIXEL_HEIGHT: 0xba,
  CLUSTER: 0x1f43b675,
  TIMECODE: 0xe7,
  SIMPLE_BLOCK: 0xa3,
  BLOCK_GROUP: 0xa0,
  BLOCK: 0xa1,
  REFERENCE_BLOCK: 0xfb,
  CUES: 0x1c53bb6b,
  CHAPTERS: 0x1043a770,
  TAGS: 0x1254c367,
  ATTACHMENTS: 0x1941a469,
  VOID: 0xec,
  CRC32: 0xbf,
} as const;

const SEGMENT_CHILDREN = new Set<number>([ID.SEEK_HEAD, ID.INFO, ID.TRACKS, ID.CLUSTER, ID.CUES, ID.CHAPTERS, ID.TAGS, ID.ATTACHMENTS, ID.VOID, ID.CRC32]);
const CLUSTER_CHILDREN = new Set<number>([ID.TIMECODE, 0x5854, 0xa7, 0xab, ID.SIMPLE_BLOCK, ID.BLOCK_GROUP, 0xaf, ID.VOID, ID.CRC32]);
/** Info and Tracks are read whole (to learn the timescale and the codecs) up to this size. */
const MAX_HEADER_ELEMENT_BYTES = 1024 * 1024;
const UNKNOWN = Number.POSITIVE_INFINITY;

const CODECS: Readonly<Record<string, string>> = {
  V_VP8: 'VP8', V_VP9: 'VP9', V_AV1: 'AV1', 'V_MPEG4/ISO/AVC': 'H.264', 'V_MPEGH/ISO/HEVC': 'HEVC', V_THEORA: 'Theora',
  A_OPUS: 'Opus', A_VORBIS: 'Vorbis', A_AAC: 'AAC', A_FLAC: 'FLAC', A_MPEG_L3: 'MP3', A_AC3: 'AC-3', A_EAC3: 'E-AC-3',
};

interface Master {
  readonly id: number;
  /** Absolute end offset; Infinity for an element of unknown size (ended by a sibling or parent). */
  readonly end: number;
}

interface Header {
  readonly id: number;
  readonly size: number;
  readonly length: number;
}

interface Track {
  readonly number: number;
  readonly info: TrackInfo;
}

/**
 * WebM/Matroska: everything before the first Cluster (EBML header, Segment start, Info,
 * Tracks…) is the init; a keyframe point is the start of a Cluster whose first video block is a
 * keyframe (SimpleBlock keyframe flag, or a BlockGroup without ReferenceBlock). Without video,
 * every Cluster start is one. Segments and Clusters of unknown size (MediaRecorder) end where an
 * element that cannot be their child begins.
 */
export class WebmParser implements ContainerParser {
  readonly kind = 'webm';
  private readonly reader = new ByteReader();
  private readonly stack: Master[] = [];
  private skipLeft = 0;
  /** Where the current EBML stream (its header) began, and whether its init has been reported. */
  private streamStart = 0;
  private initReported = false;
  private seenSegment = false;
  private timecodeScale = 1_000_000;
  private tracks: Track[] = [];
  private videoTrack: number | undefined;
  /** The open Cluster whose first video block has not been seen yet. */
  private clusterStart: number | undefined;
  private clusterTime: number | undefined;
  /** The block group being read: its block's track, and whether it references another frame. */
  private groupTrack: number | undefined;
  private groupHasReference = false;
  /** End offset of the keyframe block, reported once the stream gets there. */
  private keyframeEndAt: number | undefined;
  private codecs: readonly string[] = [];

  constructor(private readonly events: ParserEvents) {}

  /** RFC 6381 codec strings of the current track list, video first (for a browser's MediaSource). */
  get codecStrings(): readonly string[] {
    return this.codecs;
  }

  get retainFrom(): number {
    const position = this.reader.position;
    let from = position;
    if (!this.initReported) from = Math.min(from, this.streamStart);
    if (this.clusterStart !== undefined) from = Math.min(from, this.clusterStart);
    return from;
  }

  push(chunk: Uint8Array): void {
    this.reader.push(chunk);
    for (;;) {
      if (this.skipLeft > 0) {
        this.skipLeft -= this.reader.skip(this.skipLeft);
        if (this.skipLeft > 0) return;
      }
      this.closeFinished();
      if (!this.readElement()) return;
    }
  }

  /** Pops the masters that end here, and reports a keyframe that is complete. */
  private closeFinished(): void {
    const position = this.reader.position;
    if (this.keyframeEndAt !== undefined && position >= this.keyframeEndAt) {
      this.events.keyframeEnd(this.keyframeEndAt);
      this.keyframeEndAt = undefined;
    }
    for (let top = this.stack.at(-1); top !== undefined && position >= top.end; top = this.stack.at(-1)) {
      this.stack.pop();
      this.masterEnded(top);
    }
  }

  private masterEnded(master: Master): void {
    if (master.id === ID.CLUSTER) this.clusterStart = undefined;
    else if (master.id === ID.BLOCK_GROUP) {
      const track = this.groupTrack;
      this.groupTrack = undefined;
      if (track !== undefined) this.blockSeen(track, !this.groupHasReference, this.reader.position);
    }
  }

  private readElement(): boolean {
    const header = this.readHeader();
    if (header === undefined) return false;
    const start = this.reader.position;
    const parent = this.stack.at(-1);
    // An element of unknown size ends where something that cannot be its child begins.
    if (parent !== undefined && parent.end === UNKNOWN && !isChild(parent.id, header.id)) {
      this.stack.pop();
      this.masterEnded(parent);
      return true;
    }
    const end = start + header.length + header.size;
    if (parent !== undefined && end > parent.end) this.fail(`element 0x${header.id.toString(16)} overruns its parent`);
    if (header.size === UNKNOWN && header.id !== ID.SEGMENT && header.id !== ID.CLUSTER) {
      this.fail(`element 0x${header.id.toString(16)} of unknown size`);
    }
    switch (parent?.id) {
      case undefined:
        return this.topLevel(header, start, end);
      case ID.SEGMENT:
        return this.segmentLevel(header, start, end);
      case ID.CLUSTER:
        return this.clusterLevel(header, end);
      case ID.BLOCK_GROUP:
        return this.blockGroupLevel(header);
      default:
        return this.skipElement(header);
    }
  }

  private topLevel(header: Header, start: number, end: number): boolean {
    if (header.id === ID.EBML) {
      if (this.seenSegment) {
        // A new stream (chained segments): start over with its init.
        this.events.restart(start);
        this.seenSegment = false;
        this.initReported = false;
        this.tracks = [];
        this.videoTrack = undefined;
        this.timecodeScale = 1_000_000;
      }
      this.streamStart = start;
      return this.skipElement(header);
    }
    if (header.id === ID.SEGMENT) {
      this.seenSegment = true;
      return this.enter(header, end);
    }
    if (header.id === ID.VOID || header.id === ID.CRC32) return this.skipElement(header);
    return this.fail(`unexpected top-level element 0x${header.id.toString(16)}`);
  }

  private segmentLevel(header: Header, start: number, end: number): boolean {
    switch (header.id) {
      case ID.CLUSTER:
        if (!this.initReported) {
          this.initReported = true;
          this.events.initPart({ slot: 'init', start: this.streamStart, end: start, contentStart: this.streamStart, contentEnd: start, fileHeader: true });
        }
        // Decided by its first video block (without video: by its first block).
        this.clusterStart = start;
        this.clusterTime = undefined;
        return this.enter(header, end);
      case ID.INFO:
      case ID.TRACKS: {
        if (header.size > MAX_HEADER_ELEMENT_BYTES) return this.skipElement(header);
        const whole = this.reader.peek(header.length + header.size);
        if (whole === undefined) return false;
        const body = whole.subarray(header.length);
        if (header.id === ID.INFO) this.readInfo(body);
        else this.readTracks(body);
        return this.skipElement(header);
      }
      default:
        if (!SEGMENT_CHILDREN.has(header.id)) this.fail(`unexpected element 0x${header.id.toString(16)} in Segment`);
        return this.skipElement(header);
    }
  }

  private clusterLevel(header: Header, end: number): boolean {
    if (header.id === ID.TIMECODE) {
      const whole = this.reader.peek(header.length + header.size);
      if (whole === undefined) return false;
      this.clusterTime = readUint(whole.subarray(header.length));
      return this.skipElement(header);
    }
    if (header.id === ID.SIMPLE_BLOCK) {
      if (this.clusterStart === undefined) return this.skipElement(header);
      const block = this.readBlockStart(header);
      if (block === undefined) return false;
      this.blockSeen(block.track, (block.flags & 0x80) !== 0, end);
      return this.skipElement(header);
    }
    if (header.id === ID.BLOCK_GROUP) {
      this.groupTrack = undefined;
      this.groupHasReference = false;
      return this.enter(header, end);
    }
    return this.skipElement(header);
  }

  private blockGroupLevel(header: Header): boolean {
    if (header.id === ID.BLOCK && this.clusterStart !== undefined) {
      const block = this.readBlockStart(header);
      if (block === undefined) return false;
      this.groupTrack = block.track;
    } else if (header.id === ID.REFERENCE_BLOCK) this.groupHasReference = true;
    return this.skipElement(header);
  }

  /** The first video block of the open cluster decides whether its start is a keyframe point. */
  private blockSeen(track: number, keyframe: boolean, blockEnd: number): void {
    const clusterStart = this.clusterStart;
    if (clusterStart === undefined || (this.videoTrack !== undefined && track !== this.videoTrack)) return;
    this.clusterStart = undefined;
    if (!keyframe) return;
    const time = this.clusterTime === undefined ? undefined : (this.clusterTime * this.timecodeScale) / 1e6;
    this.events.keyframe(clusterStart, time);
    // The keyframe is usable alone (a probe) where the stream can end cleanly: after the block
    // in a Cluster of unknown size, only at the end of one of known size.
    const cluster = this.stack.findLast((master) => master.id === ID.CLUSTER);
    this.keyframeEndAt = cluster !== undefined && cluster.end !== UNKNOWN ? cluster.end : blockEnd;
  }

  private readBlockStart(header: Header): { track: number; flags: number } | undefined {
    const wanted = Math.min(header.size, 12);
    const bytes = this.reader.peek(header.length + wanted);
    if (bytes === undefined) return undefined;
    const body = bytes.subarray(header.length);
    const track = readVint(body, 0, false);
    if (track === undefined || track.length + 3 > body.byteLength) this.fail('truncated block header');
    return { track: track.value, flags: body[track.length + 2]! };
  }

  private readInfo(body: Uint8Array): void {
    for (const child of children(body)) {
      if (child.id === ID.TIMECODE_SCALE) this.timecodeScale = readUint(child.body) || 1_000_000;
    }
  }

  private readTracks(body: Uint8Array): void {
    const tracks: Track[] = [];
    const codecs: Array<{ type: TrackInfo['type']; codec: string }> = [];
    for (const entry of children(body)) {
      if (entry.id !== ID.TRACK_ENTRY) continue;
      let number = 0;
      let type = 0;
      let codecId = '';
      let codecPrivate: Uint8Array | undefined;
      let width: number | undefined;
      let height: number | undefined;
      for (const field of children(entry.body)) {
        if (field.id === ID.TRACK_NUMBER) number = readUint(field.body);
        else if (field.id === ID.TRACK_TYPE) type = readUint(field.body);
        else if (field.id === ID.CODEC_ID) codecId = String.fromCharCode(...field.body).replace(/\0+$/, '');
        else if (field.id === ID.CODEC_PRIVATE) codecPrivate = field.body;
        else if (field.id === ID.VIDEO) {
          for (const video of children(field.body)) {
            if (video.id === ID.PIXEL_WIDTH) width = readUint(video.body);
            else if (video.id === ID.PIXEL_HEIGHT) height = readUint(video.body);
          }
        }
      }
      const codec = CODECS[codecId] ?? (codecId.startsWith('A_AAC') ? 'AAC' : codecId.startsWith('A_PCM') ? 'PCM' : codecId);
      const kind = type === 1 ? 'video' : type === 2 ? 'audio' : 'other';
      const info: TrackInfo = kind === 'video' && width !== undefined && height !== undefined ? { type: kind, codec, width, height } : { type: kind, codec };
      tracks.push({ number, info });
      codecs.push({ type: kind, codec: webmCodecString(codecId, codecPrivate) });
    }
    this.tracks = tracks;
    this.codecs = videoThenAudio(codecs);
    this.videoTrack = tracks.find((track) => track.info.type === 'video')?.number;
    this.events.tracks(tracks.map((track) => track.info));
  }

  private readHeader(): Header | undefined {
    const reader = this.reader;
    if (reader.available < 2) return undefined;
    const first = reader.byte(0);
    const idLength = vintLength(first);
    if (idLength === 0 || idLength > 4) this.fail(`invalid element id byte 0x${first.toString(16)}`);
    if (reader.available < idLength + 1) return undefined;
    const sizeLength = vintLength(reader.byte(idLength));
    if (sizeLength === 0) this.fail('invalid element size');
    const length = idLength + sizeLength;
    const bytes = reader.peek(length);
    if (bytes === undefined) return undefined;
    let id = 0;
    for (let i = 0; i < idLength; i++) id = id * 256 + bytes[i]!;
    const size = readVint(bytes, idLength, true)!;
    return { id, size: size.value, length };
  }

  private enter(header: Header, end: number): boolean {
    this.stack.push({ id: header.id, end: header.size === UNKNOWN ? UNKNOWN : end });
    this.reader.skip(header.length);
    return true;
  }

  private skipElement(header: Header): boolean {
    this.reader.skip(header.length);
    this.skipLeft = header.size;
    return true;
  }

  private fail(message: string): never {
    throw new MediaParseError('webm', this.reader.position, message);
  }
}

function isChild(parent: number, child: number): boolean {
  if (parent === ID.SEGMENT) return SEGMENT_CHILDREN.has(child);
  if (parent === ID.CLUSTER) return CLUSTER_CHILDREN.has(child);
  return true;
}

/** Length of a variable-size integer from its first byte (0 if invalid). */
function vintLength(first: number): number {
  if (first === 0) return 0;
  return Math.clz32(first) - 23;
}

/** A vint at `at`; with `size`, an all-ones value means unknown (Infinity). */
function readVint(bytes: Uint8Array, at: number, size: boolean): { value: number; length: number } | undefined {
  const first = bytes[at];
  if (first === undefined) return undefined;
  const length = vintLength(first);
  if (length === 0 || at + length > bytes.byteLength) return undefined;
  let value = first & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    const byte = bytes[at + i]!;
    value = value * 256 + byte;
    allOnes &&= byte === 0xff;
  }
  return { value: size && allOnes ? UNKNOWN : value, length };
}

function readUint(bytes: Uint8Array): number {
  let value = 0;
  for (const byte of bytes) value = value * 256 + byte;
  return value;
}

/** The child elements of a complete master element's body (stops at anything malformed). */
function* children(body: Uint8Array): Generator<{ id: number; body: Uint8Array }> {
  let at = 0;
  while (at < body.byteLength) {
    const idLength = vintLength(body[at]!);
    if (idLength === 0 || idLength > 4 || at + idLength > body.byteLength) return;
    let id = 0;
    for (let i = 0; i < idLength; i++) id = id * 256 + body[at + i]!;
    const size = readVint(body, at + idLength, true);
    if (size === undefined || size.value === UNKNOWN) return;
    const start = at + idLength + size.length;
    const end = start + size.value;
    if (end > body.byteLength) return;
    yield { id, body: body.subarray(start, end) };
    at = end;
  }
}
