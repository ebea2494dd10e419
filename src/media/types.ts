/** The containers whose structure the server understands. Anything else is `opaque`. */
export type ContainerKind = 'webm' | 'flv' | 'mpegts' | 'fmp4';

/** One elementary stream of a recognised container, as far as its headers tell. */
export interface TrackInfo {
  readonly type: 'video' | 'audio' | 'other';
  /** E.g. `VP8`, `VP9`, `AV1`, `H.264`, `HEVC`, `Opus`, `AAC`; the container's own id when unknown. */
  readonly codec: string;
  readonly width?: number;
  readonly height?: number;
}

/** What was detected about a channel's current publishing session (for logs and the stats API). */
export interface MediaInfo {
  /** `unknown` until enough bytes arrived to tell. */
  readonly container: ContainerKind | 'opaque' | 'unknown';
  readonly tracks: readonly TrackInfo[];
  /** Set when a recognised container stopped parsing: the rest of the session is opaque. */
  readonly degradedFrom?: ContainerKind;
  readonly error?: string;
}

/**
 * A part of the init (the headers a decoder needs before any frame). Offsets are absolute
 * stream offsets: the bytes are [start, end). A later part with the same slot replaces it,
 * unless its content bytes are identical (a re-sent header is not a change).
 */
export interface InitPart {
  readonly slot: string;
  readonly start: number;
  readonly end: number;
  /** The bytes that identify the part, absolute, within [start, end) (e.g. without timestamps). */
  readonly contentStart: number;
  readonly contentEnd: number;
  /**
   * Part of the file header, sent once at the start of a stream (the FLV signature, a WebM or
   * MP4 header): a receiver that already has it must not get it again mid-stream.
   */
  readonly fileHeader: boolean;
  /** Not needed to decode (FLV onMetaData): a change does not make cached frames stale. */
  readonly informational?: boolean;
}

/** What a parser reports, in stream order. Offsets are absolute stream offsets. */
export interface ParserEvents {
  initPart(part: InitPart): void;
  /** A new stream starts at `offset` (a new EBML header or `ftyp`): the init before it is obsolete. */
  restart(offset: number): void;
  /**
   * A receiver may start at `offset`: the first video frame from there is a keyframe (or, without
   * video, an audio frame). It may lie before the bytes fed last (see `retainFrom`).
   */
  keyframe(offset: number, timeMs: number | undefined): void;
  /** The keyframe of the last `keyframe()` is complete once the stream reaches `offset`. */
  keyframeEnd(offset: number): void;
  tracks(tracks: readonly TrackInfo[]): void;
}

/** An incremental parser: fed the stream in chunks of any size, it reads headers, not payloads. */
export interface ContainerParser {
  readonly kind: ContainerKind;
  /** Parses the next chunk. Throws MediaParseError when the bytes are not this container. */
  push(chunk: Uint8Array): void;
  /** The oldest stream offset a later event may still refer to; bytes before it may be dropped. */
  readonly retainFrom: number;
}

/** The stream is not (or no longer) the container its start looked like. */
export class MediaParseError extends Error {
  constructor(
    readonly container: ContainerKind,
    readonly offset: number,
    message: string,
  ) {
    super(`${container} at byte ${offset}: ${message}`);
    this.name = 'MediaParseError';
  }
}
