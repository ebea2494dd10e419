import { ChunkQueue } from './chunk-queue.js';

/**
 * What a channel keeps for receivers that join late. The simple cache is a byte FIFO; the
 * keyframe-aware one (a later issue) implements the same interface.
 */
export interface StreamCache {
  /** Stores a chunk the cache may keep; `chunk` must not be mutated afterwards. */
  push(chunk: Uint8Array): void;
  /** The chunks a late receiver gets first, oldest first. */
  snapshot(): Uint8Array[];
  /** The first chunk a probe gets, if any is cached. */
  first(): Uint8Array | undefined;
  /** Empties the cache and stops caching until `reset()` (receive-clear-cache). */
  clearAndDisable(): void;
  /** Empties the cache and enables it again (publisher ended). */
  reset(): void;
  /** Bytes held, with the per-chunk overhead. */
  readonly size: number;
  readonly enabled: boolean;
}

/** Accounting overhead per cached chunk, as the Go server counts it. */
export const CHUNK_OVERHEAD_BYTES = 16;

/** FIFO of whole chunks capped at `capacityBytes`; the oldest chunks are dropped first. */
export class ByteFifoCache implements StreamCache {
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
