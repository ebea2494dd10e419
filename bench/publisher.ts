/**
 * The one publisher of a scenario: paced to a bitrate, or saturating (send as
 * fast as socket writes drain). Every message is stamped with seq and the
 * shared monotonic clock right before it is written.
 *
 * Masking cost is kept off the hot path: one random key per connection, the
 * filler pre-masked once, so each message only masks its 24-byte header.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { FrameParser, Opcode } from './frame-parser.js';
import type { Transport } from './ipc.js';
import { HEADER_BYTES, makeTemplate, writeHeader } from './payload.js';
import { clientHeaderLength, encodeClientFrame, HEARTBEAT_FRAME, maskInPlace, openWebSocket, writeClientHeader } from './ws-client.js';

/**
 * `saturate` sends as fast as the socket takes it, but stays at most `windowBytes` ahead of the
 * slowest reading receiver (end-to-end flow control, given by `progress()`): the same
 * throttle for every server under test, so a server that never pushes back on its publisher
 * (like ours: a live publisher is never slowed) is measured at the rate its receivers sustain.
 */
export type Pace = { kind: 'paced'; bitsPerSecond: number } | { kind: 'saturate'; windowBytes?: number };

export interface PublishResult {
  sent: number;
  bytes: number;
  firstSendNs: bigint;
  lastSendNs: bigint;
  /** Send time of the first message stamped at or after measureFromNs (0n if none). */
  firstMeasuredNs: bigint;
  /** Messages stamped at or after measureFromNs. */
  measuredSent: number;
  /** Largest socket write backlog seen (bytes), a sign of server backpressure. */
  maxBacklogBytes: number;
  /** Paced only: messages sent more than one interval late. */
  lateSends: number;
  serverTexts: string[];
  closedByServer: boolean;
}

export interface PublisherOptions {
  transport: Transport;
  host: string;
  port: number;
  path: string;
  messageBytes: number;
  runId: number;
  timeoutMs: number;
  /** wss: TLS (transport 'ws' only). */
  tls?: boolean;
}

const HEARTBEAT_MS = 10_000;
const SATURATE_BATCH = 64; // writes per macrotask before yielding to timers/IPC

export class Publisher {
  private readonly frameHeader: number;
  private readonly key = randomBytes(4);
  private readonly maskedFiller: Buffer;
  private readonly serverTexts: string[] = [];
  private closed = false;
  private heartbeat: NodeJS.Timeout | null = null;

  private constructor(
    private readonly socket: net.Socket,
    private readonly opts: PublisherOptions,
  ) {
    const template = makeTemplate(opts.messageBytes);
    if (opts.transport === 'ws') {
      this.frameHeader = clientHeaderLength(opts.messageBytes);
      maskInPlace(template, 0, template.length, this.key);
    } else {
      this.frameHeader = 0;
    }
    this.maskedFiller = template;
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => undefined);
  }

  static async connect(opts: PublisherOptions): Promise<Publisher> {
    if (opts.transport === 'tcp') {
      const socket = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: opts.host, port: opts.port }, () => resolve(s));
        s.once('error', reject);
      });
      socket.setNoDelay(true);
      socket.write('P');
      socket.resume();
      return new Publisher(socket, opts);
    }
    const { socket, rest } = await openWebSocket({ host: opts.host, port: opts.port, path: opts.path, timeoutMs: opts.timeoutMs, tls: opts.tls ?? false });
    const pub = new Publisher(socket, opts);
    pub.listen(rest);
    return pub;
  }

  /** Reads server frames: heartbeats, ERROR texts, pings, close. */
  private listen(rest: Buffer): void {
    let text: string | null = null;
    const parser = new FrameParser({
      onMessageStart: (op) => {
        text = op === Opcode.Text ? '' : null;
      },
      onMessageData: (d, s, e) => {
        if (text !== null && text.length < 256) text += d.toString('utf8', s, e);
      },
      onMessageEnd: () => {
        if (text !== null && text !== 'h' && this.serverTexts.length < 20) this.serverTexts.push(text.slice(0, 200));
      },
      onPing: (p) => this.socket.write(encodeClientFrame(Opcode.Pong, p)),
      onPong: () => undefined,
      onClose: () => {
        this.closed = true;
        this.socket.end(encodeClientFrame(Opcode.Close, Buffer.alloc(0)));
      },
      onError: () => this.socket.destroy(),
    });
    this.socket.on('data', (c: Buffer) => parser.push(c));
    if (rest.length > 0) parser.push(rest);
    this.socket.resume();
    this.heartbeat = setInterval(() => {
      if (!this.closed) this.socket.write(HEARTBEAT_FRAME());
    }, HEARTBEAT_MS);
  }

  private buildMessage(seq: number, sendNs: bigint): Buffer {
    const size = this.opts.messageBytes;
    const buf = Buffer.allocUnsafe(this.frameHeader + size);
    let at = 0;
    if (this.frameHeader > 0) at = writeClientHeader(buf, 0, Opcode.Binary, size, this.key);
    this.maskedFiller.copy(buf, at);
    writeHeader(buf, at, seq, size, this.opts.runId, sendNs);
    if (this.frameHeader > 0) maskInPlace(buf, at, at + HEADER_BYTES, this.key);
    return buf;
  }

  /** Publishes for durationMs (bounded) and reports what was sent. */
  async run(pace: Pace, durationMs: number, measureFromNs: bigint, progress: () => number = () => Infinity): Promise<PublishResult> {
    const res: PublishResult = {
      sent: 0,
      bytes: 0,
      firstSendNs: process.hrtime.bigint(),
      lastSendNs: 0n,
      firstMeasuredNs: 0n,
      measuredSent: 0,
      maxBacklogBytes: 0,
      lateSends: 0,
      serverTexts: this.serverTexts,
      closedByServer: false,
    };
    const endAt = performance.now() + durationMs;
    const sendOne = (): boolean => {
      const now = process.hrtime.bigint();
      const ok = this.socket.write(this.buildMessage(res.sent, now));
      res.lastSendNs = now;
      if (now >= measureFromNs) {
        if (res.measuredSent++ === 0) res.firstMeasuredNs = now;
      }
      res.sent++;
      res.bytes += this.opts.messageBytes;
      res.maxBacklogBytes = Math.max(res.maxBacklogBytes, this.socket.writableLength);
      return ok;
    };

    if (pace.kind === 'paced') {
      const intervalMs = (this.opts.messageBytes * 8 * 1000) / pace.bitsPerSecond;
      const t0 = performance.now();
      while (!this.closed) {
        const due = t0 + res.sent * intervalMs; // schedule from t0: no drift
        if (due >= endAt) break;
        const wait = due - performance.now();
        if (wait > 0) await sleepMs(wait);
        else if (-wait > intervalMs) res.lateSends++;
        sendOne(); // live stream: never wait on backpressure, keep the schedule
      }
    } else {
      const window = Math.max(1, Math.ceil((pace.windowBytes ?? Infinity) / this.opts.messageBytes));
      while (!this.closed && performance.now() < endAt) {
        if (res.sent - progress() > window) {
          await sleepMs(1);
          continue;
        }
        let batch = 0;
        let ok = true;
        while (ok && batch++ < SATURATE_BATCH && res.sent - progress() <= window) ok = sendOne();
        if (!ok) await this.drainOrTimeout(endAt);
        else await new Promise<void>((r) => setImmediate(r));
      }
    }
    res.closedByServer = this.closed;
    return res;
  }

  private drainOrTimeout(endAt: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, endAt - performance.now()));
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  /** Waits until everything queued locally is handed to the kernel (bounded). */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.closed && this.socket.writableLength > 0 && performance.now() < deadline) await sleepMs(10);
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.closed) {
      this.socket.destroy();
      return;
    }
    if (this.opts.transport === 'ws') {
      const code = Buffer.alloc(2);
      code.writeUInt16BE(1000);
      this.socket.end(encodeClientFrame(Opcode.Close, code));
    } else {
      this.socket.end();
    }
    await Promise.race([new Promise((r) => this.socket.once('close', r)), sleepMs(2000)]);
    this.socket.destroy();
  }
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
