/**
 * Incremental WebSocket frame parser for the client side (RFC 6455 §5).
 *
 * A pure state machine: feed it whatever byte chunks the socket delivers and
 * it reports events through callbacks; it does no I/O and never buffers data
 * payloads. Data messages are streamed as slices (start / data... / end) so a
 * receiver can inspect a 64 KiB message without copying it; only control
 * frames (<= 125 bytes) are assembled. Server frames must be unmasked.
 */

export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

export interface FrameHandler {
  /** First frame of a data message (opcode Text or Binary). */
  onMessageStart(opcode: number): void;
  /** Payload bytes data[start, end) of the current message; valid only during the call. */
  onMessageData(data: Buffer, start: number, end: number): void;
  /** Final fragment of the current data message is complete. */
  onMessageEnd(): void;
  onPing(payload: Buffer): void;
  onPong(payload: Buffer): void;
  /** code is undefined for an empty close payload. */
  onClose(code: number | undefined, reason: string): void;
  /** Protocol violation: the parser stops and ignores further input. */
  onError(error: Error): void;
}

export interface FrameParserOptions {
  /** Largest accepted data message (sum of fragments), in bytes. */
  maxMessageBytes?: number;
}

const MAX_CONTROL_PAYLOAD = 125;
const DEFAULT_MAX_MESSAGE = 1 << 30;

export class FrameParser {
  // Header bytes are copied here (at most 2 + 8 + 4) so a header split across
  // chunks at any offset parses the same as a contiguous one.
  private readonly header = Buffer.alloc(14);
  private headerLen = 0;
  private headerNeeded = 2;
  private inPayload = false;

  private fin = false;
  private opcode = 0;
  private remaining = 0;
  private control: Buffer | null = null;
  private controlOffset = 0;

  private inMessage = false;
  private messageBytes = 0;
  private failed = false;
  private readonly maxMessageBytes: number;

  constructor(
    private readonly handler: FrameHandler,
    options: FrameParserOptions = {},
  ) {
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE;
  }

  get hasFailed(): boolean {
    return this.failed;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len && !this.failed) {
      if (!this.inPayload) {
        const take = Math.min(this.headerNeeded - this.headerLen, len - pos);
        chunk.copy(this.header, this.headerLen, pos, pos + take);
        this.headerLen += take;
        pos += take;
        if (this.headerLen === this.headerNeeded) this.onHeaderBytes();
        continue;
      }
      const take = Math.min(this.remaining, len - pos);
      if (this.control !== null) {
        chunk.copy(this.control, this.controlOffset, pos, pos + take);
        this.controlOffset += take;
      } else {
        this.handler.onMessageData(chunk, pos, pos + take);
      }
      pos += take;
      this.remaining -= take;
      if (this.remaining === 0) this.finishFrame();
    }
  }

  /** Called each time the header buffer reaches headerNeeded bytes. */
  private onHeaderBytes(): void {
    const b0 = this.header[0]!;
    const b1 = this.header[1]!;
    if (this.headerNeeded === 2) {
      // Now we know how many extended-length and mask bytes follow.
      const len7 = b1 & 0x7f;
      const extra = (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
      if (extra > 0) {
        this.headerNeeded = 2 + extra;
        return;
      }
    }
    if (b1 & 0x80) return this.fail('server frames must not be masked');
    if (b0 & 0x70) return this.fail('RSV bits set without a negotiated extension');

    this.fin = (b0 & 0x80) !== 0;
    this.opcode = b0 & 0x0f;
    const len7 = b1 & 0x7f;
    let length: number;
    if (len7 === 126) {
      length = this.header.readUInt16BE(2);
    } else if (len7 === 127) {
      const high = this.header.readUInt32BE(2);
      if (high & 0x80000000) return this.fail('64-bit length has its most significant bit set');
      if (high > 0x1fffff) return this.fail('64-bit length exceeds 2^53');
      length = high * 2 ** 32 + this.header.readUInt32BE(6);
    } else {
      length = len7;
    }

    this.headerLen = 0;
    this.headerNeeded = 2;

    const op = this.opcode;
    if (op >= 0x8) {
      if (op > Opcode.Pong) return this.fail(`reserved control opcode ${op}`);
      if (!this.fin) return this.fail('fragmented control frame');
      if (length > MAX_CONTROL_PAYLOAD) return this.fail('control frame payload over 125 bytes');
      this.control = Buffer.allocUnsafe(length);
      this.controlOffset = 0;
    } else {
      if (op > Opcode.Binary) return this.fail(`reserved data opcode ${op}`);
      if (op === Opcode.Continuation) {
        if (!this.inMessage) return this.fail('continuation frame without a message in progress');
      } else {
        if (this.inMessage) return this.fail('new data frame while a fragmented message is in progress');
        this.inMessage = true;
        this.messageBytes = 0;
        this.handler.onMessageStart(op);
      }
      this.messageBytes += length;
      if (this.messageBytes > this.maxMessageBytes) return this.fail('message exceeds maxMessageBytes');
      this.control = null;
    }
    this.remaining = length;
    this.inPayload = true;
    if (length === 0) this.finishFrame();
  }

  private finishFrame(): void {
    this.inPayload = false;
    const control = this.control;
    if (control === null) {
      if (this.fin) {
        this.inMessage = false;
        this.handler.onMessageEnd();
      }
      return;
    }
    this.control = null;
    switch (this.opcode) {
      case Opcode.Ping:
        this.handler.onPing(control);
        break;
      case Opcode.Pong:
        this.handler.onPong(control);
        break;
      default: // Close
        if (control.length === 1) return this.fail('close payload of 1 byte');
        this.handler.onClose(
          control.length >= 2 ? control.readUInt16BE(0) : undefined,
          control.toString('utf8', 2),
        );
    }
  }

  private fail(message: string): void {
    this.failed = true;
    this.handler.onError(new Error(`WebSocket protocol error: ${message}`));
  }
}
