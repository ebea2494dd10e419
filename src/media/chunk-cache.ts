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
  private chunks: Uint8Array[] = [];
  /** Index of the oldest live entry: dropping from the front is O(1), compaction is amortised. */
  private head = 0;
  private bytes = 0;
  private disabled = false;

  constructor(private readonly capacityBytes: number) {}

  get size(): number {
    return this.bytes;
  }

  get enabled(): boolean {
    return this.capacityBytes > 0 && !this.disabled;
  }

  push(chunk: Uint8Array): void {
    if (!this.enabled) return;
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength + CHUNK_OVERHEAD_BYTES;
    while (this.bytes > this.capacityBytes && this.head < this.chunks.length) {
      const dropped = this.chunks[this.head]!;
      this.chunks[this.head] = EMPTY;
      this.head++;
      this.bytes -= dropped.byteLength + CHUNK_OVERHEAD_BYTES;
    }
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  snapshot(): Uint8Array[] {
    return this.chunks.slice(this.head);
  }

  first(): Uint8Array | undefined {
    return this.chunks[this.head];
  }

  clearAndDisable(): void {
    this.clear();
    this.disabled = true;
  }

  reset(): void {
    this.clear();
    this.disabled = false;
  }

  private clear(): void {
    this.chunks = [];
    this.head = 0;
    this.bytes = 0;
  }
}

const EMPTY = new Uint8Array(0);
