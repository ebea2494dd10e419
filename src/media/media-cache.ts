import { totalBytes } from './bytes.js';
import { ByteFifoCache, CHUNK_OVERHEAD_BYTES } from './chunk-cache.js';
import type { Backlog, MediaTick, ProbeAnswer, StreamCache } from './chunk-cache.js';
import { OPAQUE_FLOOR_BYTES } from './cache-budget.js';
import type { BudgetAccount, BudgetMember, CacheBudget, TrimTier } from './cache-budget.js';
import { GopCache } from './gop-cache.js';
import { SNIFF_BYTES, sniffContainer } from './sniff.js';
import { MediaParseError } from './types.js';
import type { MediaInfo } from './types.js';

export interface MediaCacheOptions {
  /** GOP_CACHE_SIZE_MB in bytes (0: no cached data, but a recognised container's init is kept). */
  readonly capacityBytes: number;
  /** GOP_CACHE_GOPS. */
  readonly gops?: number;
  /** False treats every stream as opaque (the plain byte FIFO). */
  readonly detect?: boolean;
  /** CACHE_MEMORY_LIMIT_MB: the budget shared by all channels' caches, told of every size change. */
  readonly budget?: CacheBudget;
}

const UNKNOWN: MediaInfo = { container: 'unknown', tracks: [] };
const OPAQUE: MediaInfo = { container: 'opaque', tracks: [] };

/**
 * A channel's cache: sniffs the first bytes of each publishing session, then keeps a recognised
 * container keyframe-aware (GopCache) and anything else as today's byte FIFO. A container that
 * stops parsing degrades to the FIFO for the rest of the session.
 */
export class MediaCache implements StreamCache, BudgetMember {
  private state: 'sniff' | 'opaque' | 'media';
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private readonly fifo: ByteFifoCache;
  private gop: GopCache | undefined;
  private detected: MediaInfo;
  private cleared = false;
  private readonly account: BudgetAccount | undefined;

  constructor(private readonly options: MediaCacheOptions) {
    this.account = options.budget?.open(this);
    this.fifo = new ByteFifoCache(options.capacityBytes);
    this.state = this.initialState();
    this.detected = this.state === 'opaque' ? OPAQUE : UNKNOWN;
  }

  get wantsChunks(): boolean {
    return this.state !== 'opaque' || this.fifo.enabled;
  }

  get enabled(): boolean {
    return this.options.capacityBytes > 0 && !this.cleared;
  }

  get size(): number {
    if (this.state === 'media') return this.gop!.size;
    if (this.state === 'opaque') return this.fifo.size;
    return this.pendingBytes + this.pending.length * CHUNK_OVERHEAD_BYTES;
  }

  get info(): MediaInfo {
    if (this.state === 'media') return { container: this.gop!.kind, tracks: this.gop!.tracks };
    return this.detected;
  }

  push(chunk: Uint8Array): MediaTick | null {
    const tick = this.pushChunk(chunk);
    this.account?.update(this.size);
    return tick;
  }

  surplus(tier: TrimTier): number {
    if (this.state === 'media') return tier === 'older-gops' ? this.gop!.surplus : 0;
    if (this.state !== 'opaque' || tier === 'older-gops') return 0;
    return this.fifo.surplus(tier === 'opaque' ? OPAQUE_FLOOR_BYTES : 0);
  }

  release(tier: TrimTier, bytes: number): void {
    if (this.state === 'media') {
      if (tier === 'older-gops') this.gop!.release(bytes);
    } else if (this.state === 'opaque' && tier !== 'older-gops') {
      this.fifo.release(Math.min(bytes, this.surplus(tier)));
    }
    this.account?.update(this.size);
  }

  private pushChunk(chunk: Uint8Array): MediaTick | null {
    if (this.state === 'opaque') {
      this.fifo.push(chunk);
      return null;
    }
    if (this.state === 'media') return this.pushMedia(chunk);
    this.pending.push(chunk);
    this.pendingBytes += chunk.byteLength;
    const kind = sniffContainer(this.pending.length === 1 ? chunk : head(this.pending, SNIFF_BYTES));
    if (kind === undefined) return null;
    const pending = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    if (kind === 'opaque') {
      this.state = 'opaque';
      this.detected = OPAQUE;
      for (const part of pending) this.fifo.push(part);
      return null;
    }
    this.state = 'media';
    this.gop = new GopCache(kind, { capacityBytes: this.cleared ? 0 : this.options.capacityBytes, gops: this.options.gops ?? 1 });
    let tick: MediaTick | null = null;
    for (let i = 0; i < pending.length; i++) {
      tick = this.pushMedia(pending[i]!);
      if (tick === null) {
        // Degraded already: the rest is opaque.
        for (const part of pending.slice(i + 1)) this.fifo.push(part);
        break;
      }
    }
    return tick;
  }

  snapshot(): Backlog {
    if (this.state === 'media') return this.gop!.snapshot();
    const chunks = this.state === 'opaque' ? this.fifo.snapshot() : this.cleared ? [] : [...this.pending];
    return { chunks, points: [], awaitKeyframe: false, generation: 0, version: 0 };
  }

  probe(): ProbeAnswer {
    if (this.state === 'media') return this.gop!.probe();
    if (this.state === 'sniff') return 'wait';
    const first = this.fifo.first();
    return first === undefined ? 'next-chunk' : { parts: [first] };
  }

  clearAndDisable(): void {
    this.cleared = true;
    this.fifo.clearAndDisable();
    this.gop?.clearAndDisable();
    this.account?.update(this.size);
  }

  reset(): void {
    this.state = this.initialState();
    this.detected = this.state === 'opaque' ? OPAQUE : UNKNOWN;
    this.pending = [];
    this.pendingBytes = 0;
    this.fifo.reset();
    this.gop = undefined;
    this.cleared = false;
    this.account?.update(this.size);
  }

  private initialState(): 'sniff' | 'opaque' {
    return this.options.detect === false ? 'opaque' : 'sniff';
  }

  private pushMedia(chunk: Uint8Array): MediaTick | null {
    const gop = this.gop!;
    try {
      return gop.push(chunk);
    } catch (error) {
      if (!(error instanceof MediaParseError)) throw error;
      // Not the container it looked like (or corrupt): keep what decodes, then bytes as they come.
      const seed = gop.snapshot().chunks;
      this.state = 'opaque';
      this.gop = undefined;
      this.detected = { container: 'opaque', tracks: gop.tracks, degradedFrom: gop.kind, error: error.message };
      if (!this.cleared) for (const part of seed) this.fifo.push(part);
      return null;
    }
  }
}

/** The first `length` bytes of `chunks`, contiguous (only while sniffing: a few hundred bytes). */
function head(chunks: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(Math.min(length, totalBytes(chunks)));
  let at = 0;
  for (const chunk of chunks) {
    if (at >= out.byteLength) break;
    const take = Math.min(chunk.byteLength, out.byteLength - at);
    out.set(chunk.subarray(0, take), at);
    at += take;
  }
  return out;
}
