/**
 * Layout of a bench message and the receiver-side check of one.
 *
 *   0  u32 magic 'WSB1'     8  u32 payload length    16 u64 send time (ns)
 *   4  u32 sequence        12  u32 run id
 *
 * The send time is process.hrtime.bigint(): CLOCK_MONOTONIC on Linux, shared
 * by every process on the machine, so a receiver in another process can
 * subtract it from its own clock. Bytes after the header are a fixed
 * pseudo-random filler, so byte-exact delivery is checked with memcmp.
 */

export const HEADER_BYTES = 24;
const MAGIC = 0x57534231; // 'WSB1'

/** Deterministic filler for a message of `size` bytes (header bytes are zero). */
export function makeTemplate(size: number): Buffer {
  if (size < HEADER_BYTES) throw new RangeError(`message size must be >= ${HEADER_BYTES}`);
  const buf = Buffer.alloc(size);
  let x = 0x9e3779b9;
  for (let i = HEADER_BYTES; i < size; i++) {
    // xorshift32: cheap, and no run of equal bytes a buggy relay could fake.
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

export function writeHeader(buf: Buffer, offset: number, seq: number, length: number, runId: number, sendNs: bigint): void {
  buf.writeUInt32BE(MAGIC, offset);
  buf.writeUInt32BE(seq, offset + 4);
  buf.writeUInt32BE(length, offset + 8);
  buf.writeUInt32BE(runId, offset + 12);
  buf.writeBigUInt64BE(sendNs, offset + 16);
}

/** Outcome of one complete message, as seen by MessageAssembler.end(). */
export type MessageVerdict =
  | { ok: true; seq: number; sendNs: bigint; bytes: number }
  | { ok: false; reason: 'short' | 'foreign' | 'length' | 'corrupt'; bytes: number };

/**
 * Follows one message fed in slices (from the WebSocket parser or the raw TCP
 * splitter): keeps the header, memcmps the rest against the template.
 */
export class MessageAssembler {
  private readonly head = Buffer.alloc(HEADER_BYTES);
  private offset = 0;
  private corrupt = false;

  constructor(
    private readonly template: Buffer,
    private readonly runId: number,
    private readonly verify: boolean,
  ) {}

  begin(): void {
    this.offset = 0;
    this.corrupt = false;
  }

  data(chunk: Buffer, start: number, end: number): void {
    let s = start;
    if (this.offset < HEADER_BYTES) {
      const take = Math.min(HEADER_BYTES - this.offset, end - s);
      chunk.copy(this.head, this.offset, s, s + take);
      this.offset += take;
      s += take;
    }
    if (s === end) return;
    const n = end - s;
    if (this.verify && !this.corrupt) {
      const tEnd = this.offset + n;
      if (tEnd > this.template.length || chunk.compare(this.template, this.offset, tEnd, s, end) !== 0) {
        this.corrupt = true;
      }
    }
    this.offset += n;
  }

  end(): MessageVerdict {
    const bytes = this.offset;
    if (bytes < HEADER_BYTES) return { ok: false, reason: 'short', bytes };
    const h = this.head;
    if (h.readUInt32BE(0) !== MAGIC || h.readUInt32BE(12) !== this.runId) return { ok: false, reason: 'foreign', bytes };
    if (h.readUInt32BE(8) !== bytes) return { ok: false, reason: 'length', bytes };
    if (this.corrupt) return { ok: false, reason: 'corrupt', bytes };
    return { ok: true, seq: h.readUInt32BE(4), sendNs: h.readBigUInt64BE(16), bytes };
  }
}
