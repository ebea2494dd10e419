/**
 * A FIFO of byte chunks with O(1) shift and a running byte count. Dropped slots are released
 * at once and the backing array is compacted as the head advances, so a queue that never
 * empties completely still does not grow.
 */
export class ChunkQueue {
  private items: Uint8Array[] = [];
  private head = 0;
  private total = 0;

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

  shift(): Uint8Array | undefined {
    if (this.head >= this.items.length) return undefined;
    const chunk = this.items[this.head]!;
    this.items[this.head] = EMPTY;
    this.head++;
    this.total -= chunk.byteLength;
    if (this.head === this.items.length) this.clear();
    else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return chunk;
  }

  toArray(): Uint8Array[] {
    return this.items.slice(this.head);
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.total = 0;
  }
}

const EMPTY = new Uint8Array(0);
