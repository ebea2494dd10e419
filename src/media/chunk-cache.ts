import { ChunkQueue } from './chunk-queue.js';

import type { MediaInfo } from './types.js';

/**
 * A keyframe point in the chunk being published: a receiver that waits for one (a late joiner
 * with nothing cached, or a slow receiver that skipped) starts with `lead`, then the chunk from
 * `offset`.
 */
export interface KeyframePoint {
  /** Where the point is in the chunk; 0 when it began in earlier chunks. */
  readonly offset: number;
  /** The point's bytes that came in earlier chunks (stable views), usually none. */
  readonly lead: readonly Uint8Array[];
}

/** What the cache learnt from one chunk of a recognised container, for the receivers. */
export interface MediaTick {
  /** Keyframe points in this chunk, in order (usually none). */
  readonly points: readonly KeyframePoint[];
  /** Changes when a new file header (a new stream) starts: a receiver then needs `fullInit`. */
  readonly generation: number;
  /** Changes whenever any part of the init changes. */
  readonly version: number;
  /** The whole init: what a decoder needs before the first frame. */
  readonly fullInit: readonly Uint8Array[];
  /** The init without the file header, safe to repeat mid-stream (FLV sequence headers, PAT/PMT). */
  readonly resyncInit: readonly Uint8Array[];
}

/** What a late receiver gets first. */
export interface Backlog {
  readonly chunks: readonly Uint8Array[];
  /** Indexes in `chunks` of those that begin at a keyframe point. */
  readonly points: readonly number[];
  /** Nothing keyframe-aligned is cached: after `chunks` (the init), wait for the next keyframe point. */
  readonly awaitKeyframe: boolean;
  /** The init `generation` and `version` the backlog carries (see MediaTick). */
  readonly generation: number;
  readonly version: number;
}

/** What a probe gets: these parts as one message, the next live chunk, or nothing yet. */
export type ProbeAnswer = { readonly parts: readonly Uint8Array[] } | 'next-chunk' | 'wait';

/**
 * What a channel keeps for receivers that join late, and what it knows of the stream. Fed every
 * chunk of a publishing session (while `wantsChunks`); the media cache parses recognised
 * containers, the byte FIFO keeps opaque streams.
 */
export interface StreamCache {
  /** False when the channel may skip `push` (an opaque stream that is not cached). */
  readonly wantsChunks: boolean;
  /**
   * Takes a chunk of the stream; `chunk` must not be mutated afterwards. Returns what it meant
   * for a recognised container, or null for an opaque (or not yet recognised) stream.
   */
  push(chunk: Uint8Array): MediaTick | null;
  snapshot(): Backlog;
  probe(): ProbeAnswer;
  /** Stops caching until `reset()` (receive-clear-cache); a recognised container's init stays. */
  clearAndDisable(): void;
  /** Forgets the session and enables caching again (publisher ended). */
  reset(): void;
  /** Bytes held, with the per-chunk overhead. */
  readonly size: number;
  readonly enabled: boolean;
  readonly info: MediaInfo;
}

/** Accounting overhead per cached chunk, as the Go server counts it. */
export const CHUNK_OVERHEAD_BYTES = 16;

/**
 * The cache of opaque streams: a FIFO of whole chunks (message boundaries kept) capped at
 * `capacityBytes`; the oldest chunks are dropped first.
 */
export class ByteFifoCache {
  private readonly chunks = new ChunkQueue();
  private disabled = false;

  constructor(private readonly capacityBytes: number) {}

  get size(): number {
    return this.chunks.bytes + this.chunks.length * CHUNK_OVERHEAD_BYTES;
  }

  get enabled(): boolean {
    return this.capacityBytes > 0 && !this.disabled;
  }

  push(chunk: Uint8Array): void {
    if (!this.enabled) return;
    this.chunks.push(chunk);
    while (this.size > this.capacityBytes) this.chunks.shift();
  }

  snapshot(): Uint8Array[] {
    return this.chunks.toArray();
  }

  /** Bytes held beyond `floor`, never counting the last chunk (the cache budget's view). */
  surplus(floor: number): number {
    const last = this.chunks.peekLast();
    if (last === undefined) return 0;
    return Math.max(0, this.size - Math.max(floor, last.byteLength + CHUNK_OVERHEAD_BYTES));
  }

  /** Drops the oldest chunks until about `bytes` are freed, keeping the last chunk (the cache budget). */
  release(bytes: number): void {
    const target = this.size - bytes;
    while (this.chunks.length > 1 && this.size > target) this.chunks.shift();
  }

  first(): Uint8Array | undefined {
    return this.chunks.peek();
  }

  clearAndDisable(): void {
    this.chunks.clear();
    this.disabled = true;
  }

  reset(): void {
    this.chunks.clear();
    this.disabled = false;
  }
}
