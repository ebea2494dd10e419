import { ByteLog } from './byte-log.js';
import { CHUNK_OVERHEAD_BYTES } from './chunk-cache.js';
import type { Backlog, KeyframePoint, MediaTick, ProbeAnswer } from './chunk-cache.js';
import { createParser } from './parsers.js';
import type { ContainerKind, ContainerParser, InitPart, TrackInfo } from './types.js';
import { equalBytes } from './bytes.js';

/** Without video every audio frame is a keyframe point; they are grouped this long… */
const AUDIO_GROUP_MS = 500;
/** …and this many groups are kept per GOP_CACHE_GOPS (about 2 s of audio). */
const AUDIO_GROUPS_PER_GOP = 4;

export interface GopCacheOptions {
  /** GOP_CACHE_SIZE_MB in bytes: init + cached groups, with 16 bytes per chunk. 0 caches no group. */
  readonly capacityBytes: number;
  /** GOP_CACHE_GOPS: how many groups (from a keyframe point to the next) to keep. */
  readonly gops: number;
}

/** A run of the stream from a keyframe point (or, for `prefix`, from the stream's start). */
interface Group {
  readonly start: number;
  /** The stream's beginning, before its first keyframe point: the init is in it. */
  readonly prefix: boolean;
  readonly timeMs: number | undefined;
  /** Where its keyframe ends, once known. */
  keyEnd: number | undefined;
}

interface InitSlot {
  readonly bytes: Uint8Array;
  readonly content: Uint8Array;
  readonly part: InitPart;
}

const NO_POINTS: readonly KeyframePoint[] = [];
const NO_BYTES: readonly Uint8Array[] = [];

/**
 * The cache of one publishing session of a recognised container. The parser runs once per chunk
 * (publisher side); the cache pins the init (small copies) and keeps the last groups starting
 * at keyframe points as views of the published chunks, so memory is bounded by the GOPs kept.
 */
export class GopCache {
  private readonly log = new ByteLog();
  private readonly parser: ContainerParser;
  private groups: Group[] = [];
  private caching: boolean;
  private readonly slots = new Map<string, InitSlot>();
  private fullInit: readonly Uint8Array[] = NO_BYTES;
  private resyncInit: readonly Uint8Array[] = NO_BYTES;
  private initBytes = 0;
  private generation = 0;
  private version = 0;
  private currentTracks: readonly TrackInfo[] = [];
  private audioOnly = false;
  /** Start of the latest keyframe while it is incomplete, and the last complete keyframe (for probes). */
  private pendingKey: number | undefined;
  private lastKeyframe: readonly Uint8Array[] | undefined;
  private chunkStart = 0;
  private points: KeyframePoint[] | undefined;

  constructor(
    readonly kind: ContainerKind,
    private readonly options: GopCacheOptions,
  ) {
    this.caching = options.capacityBytes > 0;
    if (this.caching) this.groups.push({ start: 0, prefix: true, timeMs: undefined, keyEnd: undefined });
    this.parser = createParser(kind, {
      initPart: (part) => this.onInitPart(part),
      restart: (offset) => this.onRestart(offset),
      keyframe: (offset, timeMs) => this.onKeyframe(offset, timeMs),
      keyframeEnd: (offset) => this.onKeyframeEnd(offset),
      tracks: (tracks) => this.onTracks(tracks),
    });
  }

  get tracks(): readonly TrackInfo[] {
    return this.currentTracks;
  }

  /** Bytes held: the init, the chunks kept, 16 bytes per chunk. */
  get size(): number {
    return this.initBytes + this.log.bytes + this.log.count * CHUNK_OVERHEAD_BYTES;
  }

  get enabled(): boolean {
    return this.caching;
  }

  /** Parses and keeps a chunk. Throws MediaParseError when the stream stops being this container. */
  push(chunk: Uint8Array): MediaTick {
    this.chunkStart = this.log.end;
    this.log.append(chunk);
    this.points = undefined;
    this.parser.push(chunk);
    this.enforceCapacity();
    this.trim();
    return {
      points: this.points ?? NO_POINTS,
      generation: this.generation,
      version: this.version,
      fullInit: this.fullInit,
      resyncInit: this.resyncInit,
    };
  }

  snapshot(): Backlog {
    const first = this.groups[0];
    if (first === undefined) {
      return { chunks: [...this.fullInit], points: [], awaitKeyframe: true, generation: this.generation, version: this.version };
    }
    // The prefix group holds the stream from its start, init included.
    const chunks: Uint8Array[] = first.prefix ? [] : [...this.fullInit];
    const points: number[] = [];
    for (let i = 0; i < this.groups.length; i++) {
      const group = this.groups[i]!;
      const end = this.groups[i + 1]?.start ?? this.log.end;
      if (!group.prefix) points.push(chunks.length);
      for (const part of this.log.range(group.start, end)) chunks.push(part);
    }
    return { chunks, points, awaitKeyframe: false, generation: this.generation, version: this.version };
  }

  /**
   * The init plus the stream from the first cached keyframe point to the end of its keyframe
   * (where the stream may end cleanly), once that keyframe is complete.
   */
  probe(): ProbeAnswer {
    const group = this.groups.find((candidate) => !candidate.prefix && candidate.keyEnd !== undefined);
    if (group !== undefined) return { parts: [...this.fullInit, ...this.log.range(group.start, group.keyEnd)] };
    if (this.lastKeyframe !== undefined) return { parts: [...this.fullInit, ...this.lastKeyframe] };
    return 'wait';
  }

  /**
   * Bytes held before the last group a late joiner can start with: the last one whose keyframe
   * is complete (the cache budget may release them; the init is pinned apart).
   */
  get surplus(): number {
    const keep = this.keepIndex();
    return keep <= 0 ? 0 : Math.max(0, this.groups[keep]!.start - this.log.start);
  }

  /** Drops the oldest groups before that one until about `bytes` are freed (the cache budget). */
  release(bytes: number): void {
    const target = this.size - bytes;
    let keep = this.keepIndex();
    while (keep > 0 && this.size > target) {
      this.groups.shift();
      keep--;
      this.trim();
    }
  }

  /** Index of the last group that starts at a complete keyframe, or -1. */
  private keepIndex(): number {
    for (let i = this.groups.length - 1; i >= 0; i--) {
      const group = this.groups[i]!;
      if (!group.prefix && group.keyEnd !== undefined) return i;
    }
    return -1;
  }

  /** Stops caching groups (receive-clear-cache); the init stays and parsing goes on. */
  clearAndDisable(): void {
    this.caching = false;
    this.groups = [];
    this.trim();
  }

  private onInitPart(part: InitPart): void {
    const bytes = this.log.copy(part.start, part.end);
    const content = bytes.subarray(part.contentStart - part.start, part.contentEnd - part.start);
    const existing = this.slots.get(part.slot);
    if (existing !== undefined && equalBytes(existing.content, content)) return;
    this.slots.set(part.slot, { bytes, content, part });
    this.rebuildInit();
    this.version++;
    if (part.fileHeader) this.generation++;
    // Frames cached so far were coded against the old headers: start again at the next keyframe.
    if (existing !== undefined && part.informational !== true) this.dropGroupsAfterPrefix();
  }

  private onRestart(offset: number): void {
    this.slots.clear();
    this.rebuildInit();
    this.version++;
    this.generation++;
    this.lastKeyframe = undefined;
    this.pendingKey = undefined;
    this.groups = this.caching ? [{ start: offset, prefix: true, timeMs: undefined, keyEnd: undefined }] : [];
  }

  private onKeyframe(offset: number, timeMs: number | undefined): void {
    const lead = offset < this.chunkStart ? this.log.range(offset, this.chunkStart) : NO_BYTES;
    (this.points ??= []).push({ offset: Math.max(0, offset - this.chunkStart), lead });
    this.pendingKey = offset;
    if (!this.caching) return;
    const current = this.groups.at(-1);
    if (
      this.audioOnly &&
      current !== undefined &&
      !current.prefix &&
      timeMs !== undefined &&
      current.timeMs !== undefined &&
      timeMs >= current.timeMs &&
      timeMs - current.timeMs < AUDIO_GROUP_MS
    ) {
      return;
    }
    this.groups.push({ start: offset, prefix: false, timeMs, keyEnd: undefined });
    this.keepLastGroups();
  }

  private onKeyframeEnd(offset: number): void {
    const start = this.pendingKey;
    if (start === undefined) return;
    this.pendingKey = undefined;
    this.lastKeyframe = this.log.range(start, offset);
    const group = this.groups.at(-1);
    if (group !== undefined && group.start === start) {
      group.keyEnd = offset;
      this.keepLastGroups();
    }
  }

  /**
   * GOP_CACHE_GOPS: drops the oldest groups. While the newest keyframe is still arriving it does
   * not count: the group before it, whose keyframe is whole, stays until then, so a late joiner
   * always gets a keyframe it can show at once (as a probe does), not the first bytes of one.
   */
  private keepLastGroups(): void {
    let keep = this.audioOnly ? this.options.gops * AUDIO_GROUPS_PER_GOP + 1 : this.options.gops;
    const newest = this.groups.at(-1);
    const previous = this.groups.at(-2);
    if (newest?.keyEnd === undefined && previous !== undefined && !previous.prefix && previous.keyEnd !== undefined) keep++;
    while (this.groups.length > keep) this.groups.shift();
  }

  private onTracks(tracks: readonly TrackInfo[]): void {
    this.currentTracks = tracks;
    this.audioOnly = tracks.length > 0 && !tracks.some((track) => track.type === 'video');
  }

  private dropGroupsAfterPrefix(): void {
    this.groups = this.groups.filter((group) => group.prefix);
    this.lastKeyframe = undefined;
    this.pendingKey = undefined;
  }

  private rebuildInit(): void {
    const all: Uint8Array[] = [];
    const resync: Uint8Array[] = [];
    let bytes = 0;
    for (const slot of this.slots.values()) {
      all.push(slot.bytes);
      if (!slot.part.fileHeader) resync.push(slot.bytes);
      bytes += slot.bytes.byteLength;
    }
    this.fullInit = all;
    this.resyncInit = resync;
    this.initBytes = bytes;
  }

  /** GOP_CACHE_SIZE_MB: drop the oldest groups; a group alone over the cap goes too. */
  private enforceCapacity(): void {
    while (this.groups.length > 0 && this.size > this.options.capacityBytes) {
      this.groups.shift();
      this.trim();
    }
  }

  /** Releases the chunks nothing refers to any more. */
  private trim(): void {
    let from = Math.min(this.groups[0]?.start ?? this.log.end, this.parser.retainFrom);
    if (this.pendingKey !== undefined) from = Math.min(from, this.pendingKey);
    this.log.dropBefore(from);
  }
}

