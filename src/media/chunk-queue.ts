/**
 * A FIFO of byte chunks with O(1) shift and a running byte count. Dropped slots are released
 * at once and the backing array is compacted as the head advances, so a queue that never
 * empties completely still does not grow.
 *
 * Positions in the queued bytes can be marked (keyframe points); `cutAtFirstMark` then drops
 * everything from the first mark on, which is how a slow receiver skips cleanly.
 */
export class ChunkQueue {
  private items: Uint8Array[] = [];
  private head = 0;
  private total = 0;
  /** Sequence number of items[0]: items keep their number across shifts and compaction. */
  private base = 0;
  /** Marked positions, in queue order: item sequence number and offset in that item. */
  private marks: Array<{ seq: number; offset: number }> = [];

  get length(): number {
    return this.items.length - this.head;
  }

  /** Sum of the chunks' byte lengths. */
  get bytes(): number {
    return this.total;
  }

  push(chunk: Uint8Array): void {
    this.items.push(chunk);
    this.total += chunk.byteLength;
  }

  peek(): Uint8Array | undefined {
    return this.items[this.head];
  }

  /** The chunk pushed last, if still queued. */
  peekLast(): Uint8Array | undefined {
    return this.length > 0 ? this.items[this.items.length - 1] : undefined;
  }

  shift(): Uint8Array | undefined {
    if (this.head >= this.items.length) return undefined;
    const chunk = this.items[this.head]!;
    this.items[this.head] = EMPTY;
    this.head++;
    this.total -= chunk.byteLength;
    if (this.head === this.items.length) this.clear();
    else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.base += this.head;
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return chunk;
  }

  toArray(): Uint8Array[] {
    return this.items.slice(this.head);
  }

  clear(): void {
    this.base += this.items.length;
    this.items = [];
    this.head = 0;
    this.total = 0;
    this.marks = [];
  }

  /** Marks the position `offset` in the chunk pushed last. */
  markLast(offset: number): void {
    if (this.length === 0) return;
    this.addMark(this.base + this.items.length - 1, offset);
  }

  /** Marks the position `back` bytes before the end; false if those bytes are no longer queued. */
  markFromEnd(back: number): boolean {
    let left = back;
    for (let i = this.items.length - 1; i >= this.head; i--) {
      const length = this.items[i]!.byteLength;
      if (left <= length) {
        this.addMark(this.base + i, length - left);
        return true;
      }
      left -= length;
    }
    return false;
  }

  /** Drops everything from the first mark still queued on; false if there is none. */
  cutAtFirstMark(): boolean {
    const first = this.marks.find((mark) => mark.seq >= this.base + this.head);
    if (first === undefined) return false;
    const index = first.seq - this.base;
    for (let i = index; i < this.items.length; i++) this.total -= this.items[i]!.byteLength;
    const kept = this.items[index]!.subarray(0, first.offset);
    this.items.length = index;
    this.marks = [];
    if (kept.byteLength > 0) this.push(kept);
    if (this.head === this.items.length) this.clear();
    return true;
  }

  private addMark(seq: number, offset: number): void {
    // Keep the list short: marks of chunks already sent are of no use.
    const live = this.base + this.head;
    if (this.marks.length > 0 && this.marks[0]!.seq < live) this.marks = this.marks.filter((mark) => mark.seq >= live);
    const last = this.marks.at(-1);
    if (last !== undefined && (last.seq > seq || (last.seq === seq && last.offset >= offset))) return;
    this.marks.push({ seq, offset });
  }
}

const EMPTY = new Uint8Array(0);
