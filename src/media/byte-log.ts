/**
 * The recent part of a stream as the chunks it arrived in, addressed by absolute stream offset.
 * Ranges come back as views of those chunks (no copy); whole chunks are dropped from the front.
 */
export class ByteLog {
  private chunks: Uint8Array[] = [];
  private starts: number[] = [];
  private head = 0;
  private total = 0;
  private endOffset = 0;

  /** Absolute offset just past the last byte appended. */
  get end(): number {
    return this.endOffset;
  }

  /** Offset of the first byte still held. */
  get start(): number {
    return this.starts[this.head] ?? this.endOffset;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.total;
  }

  /** Chunks held. */
  get count(): number {
    return this.chunks.length - this.head;
  }

  append(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.starts.push(this.endOffset);
    this.endOffset += chunk.byteLength;
    this.total += chunk.byteLength;
  }

  /** Views of the bytes [from, to); both must be within what is held. */
  range(from: number, to: number = this.endOffset): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (to <= from) return out;
    if (from < this.start || to > this.endOffset) throw new RangeError(`bytes ${from}-${to} are not held (${this.start}-${this.endOffset})`);
    for (let i = this.indexOf(from); i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!;
      const chunkStart = this.starts[i]!;
      if (chunkStart >= to) break;
      const begin = Math.max(from - chunkStart, 0);
      const finish = Math.min(to - chunkStart, chunk.byteLength);
      out.push(begin === 0 && finish === chunk.byteLength ? chunk : chunk.subarray(begin, finish));
    }
    return out;
  }

  /** A copy of the bytes [from, to), for data that outlives the chunks (the pinned init). */
  copy(from: number, to: number): Uint8Array {
    const out = new Uint8Array(to - from);
    let at = 0;
    for (const part of this.range(from, to)) {
      out.set(part, at);
      at += part.byteLength;
    }
    return out;
  }

  /** Drops the chunks that end at or before `offset`. */
  dropBefore(offset: number): void {
    while (this.head < this.chunks.length) {
      const chunk = this.chunks[this.head]!;
      if (this.starts[this.head]! + chunk.byteLength > offset) break;
      this.total -= chunk.byteLength;
      this.chunks[this.head] = EMPTY;
      this.head++;
    }
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.starts = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.starts = this.starts.slice(this.head);
      this.head = 0;
    }
  }

  /** Index of the chunk holding `offset` (binary search). */
  private indexOf(offset: number): number {
    let low = this.head;
    let high = this.chunks.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.starts[middle]! <= offset) low = middle;
      else high = middle - 1;
    }
    return low;
  }
}

const EMPTY = new Uint8Array(0);
