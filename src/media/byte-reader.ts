/**
 * The unread bytes of a stream fed in chunks, for incremental parsers. Reads are in place: a
 * header that lies within one chunk is a view of it; only one that straddles chunks is copied,
 * and payloads are skipped without being touched. Consumed chunks are released at once.
 */
export class ByteReader {
  private chunks: Uint8Array[] = [];
  private head = 0;
  /** Offset of the first unread byte within chunks[head]. */
  private offset = 0;
  private unread = 0;
  private consumed = 0;

  /** Absolute stream offset of the next unread byte. */
  get position(): number {
    return this.consumed;
  }

  /** Bytes fed but not read yet. */
  get available(): number {
    return this.unread;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.unread += chunk.byteLength;
  }

  /** The unread byte at `index` (0 = next); the caller checks `available`. */
  byte(index: number): number {
    let i = this.head;
    let at = this.offset + index;
    for (;;) {
      const chunk = this.chunks[i]!;
      if (at < chunk.byteLength) return chunk[at]!;
      at -= chunk.byteLength;
      i++;
    }
  }

  /**
   * The next `length` bytes, contiguous, without consuming them; undefined until they have all
   * arrived. A view when they lie in one chunk, otherwise a copy.
   */
  peek(length: number): Uint8Array | undefined {
    if (length > this.unread) return undefined;
    const first = this.chunks[this.head];
    if (first === undefined) return EMPTY;
    if (this.offset + length <= first.byteLength) return first.subarray(this.offset, this.offset + length);
    const out = new Uint8Array(length);
    let filled = 0;
    let i = this.head;
    let from = this.offset;
    while (filled < length) {
      const chunk = this.chunks[i]!;
      const take = Math.min(chunk.byteLength - from, length - filled);
      out.set(chunk.subarray(from, from + take), filled);
      filled += take;
      from = 0;
      i++;
    }
    return out;
  }

  /** Consumes up to `length` bytes; returns how many were consumed. */
  skip(length: number): number {
    const wanted = Math.min(length, this.unread);
    let left = wanted;
    while (left > 0) {
      const chunk = this.chunks[this.head]!;
      const rest = chunk.byteLength - this.offset;
      if (left < rest) {
        this.offset += left;
        break;
      }
      left -= rest;
      this.chunks[this.head] = EMPTY;
      this.head++;
      this.offset = 0;
    }
    this.unread -= wanted;
    this.consumed += wanted;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    return wanted;
  }
}

const EMPTY = new Uint8Array(0);
