/**
 * Receiver worker process (child_process.fork of this file).
 *
 * Holds many receiver sockets, parses incoming frames with FrameParser and
 * checks every message (order, loss, bytes, latency) without copying
 * payloads. Latencies go into one histogram per worker, merged by the parent.
 * Exits when told to or when the parent's IPC channel goes away.
 */
import net from 'node:net';
import { FrameParser, Opcode, type FrameHandler } from './frame-parser.js';
import { Histogram } from './histogram.js';
import type {
  ConnectCommand,
  FinishCommand,
  PausedReceiverReport,
  StatsReply,
  TeardownCommand,
  TeardownReply,
  WorkerCommand,
  WorkerReply,
} from './ipc.js';
import { MessageAssembler, makeTemplate } from './payload.js';
import { encodeClientFrame, HEARTBEAT_FRAME, openWebSocket } from './ws-client.js';

const HEARTBEAT_MS = 10_000;
const PROGRESS_MS = 5;
const MAX_TEXT = 256;

/** Per-scenario state shared by the receivers of this worker. */
class Session {
  readonly histogram = new Histogram();
  fromNs = BigInt(Number.MAX_SAFE_INTEGER) ** 2n; // nothing measured until 'measure'
  measuredMessages = 0;
  measuredBytes = 0;
  okMessages = 0;
  readonly bad = { short: 0, foreign: 0, length: 0, corrupt: 0 };
  readonly errorTexts: Record<string, number> = {};
  readonly template: Buffer;
  receivers: Receiver[] = [];

  constructor(readonly cmd: ConnectCommand) {
    this.template = makeTemplate(cmd.messageBytes);
  }
}

class Receiver implements FrameHandler {
  socket: net.Socket | null = null;
  private readonly parser: FrameParser;
  private readonly msg: MessageAssembler;
  private text: string | null = null; // current text message, or null while in a binary one
  private now = 0n; // arrival time of the socket chunk being parsed
  private rawOffset = 0; // tcp transport: position inside the fixed-size message

  nextSeq = 0;
  okMessages = 0;
  outOfOrder = 0;
  open = false;
  gotCloseFrame = false;
  closeCode: number | null = null;
  errorText: string | null = null;
  protocolError = false;

  constructor(
    private readonly session: Session,
    readonly index: number,
    readonly paused: boolean,
    /** Channel index (0 with one channel). */
    readonly channel: number,
  ) {
    this.parser = new FrameParser(this, { maxMessageBytes: Math.max(64 << 20, session.cmd.messageBytes * 2) });
    this.msg = new MessageAssembler(session.template, session.cmd.runId, session.cmd.verify);
  }

  attach(socket: net.Socket, rest: Buffer): void {
    this.socket = socket;
    this.open = true;
    const onData = this.session.cmd.transport === 'ws' ? this.onWsData : this.onRawData;
    socket.on('data', onData);
    socket.on('error', () => undefined); // 'close' follows; resets are expected at teardown
    socket.on('close', () => {
      this.open = false;
    });
    if (rest.length > 0) onData(rest);
    if (!this.paused) socket.resume();
  }

  private onWsData = (chunk: Buffer): void => {
    this.now = process.hrtime.bigint();
    this.parser.push(chunk);
  };

  /** Plain-TCP baseline: the stream is back-to-back fixed-size messages, no framing. */
  private onRawData = (chunk: Buffer): void => {
    this.now = process.hrtime.bigint();
    const size = this.session.cmd.messageBytes;
    let pos = 0;
    while (pos < chunk.length) {
      if (this.rawOffset === 0) this.msg.begin();
      const take = Math.min(size - this.rawOffset, chunk.length - pos);
      this.msg.data(chunk, pos, pos + take);
      pos += take;
      this.rawOffset += take;
      if (this.rawOffset === size) {
        this.rawOffset = 0;
        this.completeMessage();
      }
    }
  };

  onMessageStart(opcode: number): void {
    if (opcode === Opcode.Text) {
      this.text = '';
    } else {
      this.text = null;
      this.msg.begin();
    }
  }

  onMessageData(data: Buffer, start: number, end: number): void {
    if (this.text === null) this.msg.data(data, start, end);
    else if (this.text.length < MAX_TEXT) this.text += data.toString('utf8', start, Math.min(end, start + MAX_TEXT));
  }

  onMessageEnd(): void {
    if (this.text === null) return this.completeMessage();
    const text = this.text;
    this.text = null;
    if (text === 'h') return; // server heartbeat
    const key = text.slice(0, 80);
    this.session.errorTexts[key] = (this.session.errorTexts[key] ?? 0) + 1;
    if (text.startsWith('ERROR:')) this.errorText = key;
  }

  private completeMessage(): void {
    const s = this.session;
    const v = this.msg.end();
    if (!v.ok) {
      s.bad[v.reason]++;
      return;
    }
    if (this.paused) {
      this.okMessages++;
      return;
    }
    if (v.seq < this.nextSeq) {
      this.outOfOrder++;
    } else {
      this.nextSeq = v.seq + 1;
      this.okMessages++;
    }
    s.okMessages++;
    if (v.sendNs >= s.fromNs) {
      s.measuredMessages++;
      s.measuredBytes += v.bytes;
      s.histogram.record(Number(this.now - v.sendNs) / 1000);
    }
  }

  onPing(payload: Buffer): void {
    this.socket?.write(encodeClientFrame(Opcode.Pong, payload));
  }

  onPong(): void {}

  onClose(code: number | undefined): void {
    this.gotCloseFrame = true;
    this.closeCode = code ?? null;
    const echo = Buffer.alloc(code === undefined ? 0 : 2);
    if (code !== undefined) echo.writeUInt16BE(code);
    this.socket?.end(encodeClientFrame(Opcode.Close, echo));
  }

  onError(): void {
    this.protocolError = true;
    this.socket?.destroy();
  }
}

async function connectAll(session: Session): Promise<WorkerReply> {
  const cmd = session.cmd;
  const started = performance.now();
  const paused = new Set(cmd.paused);
  let failed = 0;
  let firstError: string | null = null;
  let next = 0;
  const connectOne = async (i: number): Promise<void> => {
    const g = cmd.indexBase + i;
    const channel = g % (cmd.channels ?? 1);
    const r = new Receiver(session, i, paused.has(i), channel);
    const localAddress = cmd.sourceAddrs[g % cmd.sourceAddrs.length];
    const path = cmd.path.replaceAll('{channel}', String(channel));
    try {
      const { socket, rest } =
        cmd.transport === 'ws'
          ? await openWebSocket({ host: cmd.host, port: cmd.port, path, timeoutMs: cmd.timeoutMs, tls: cmd.tls ?? false, ...(localAddress ? { localAddress } : {}) })
          : await openTcpReader(cmd.host, cmd.port, localAddress, cmd.timeoutMs);
      r.attach(socket, rest);
      session.receivers.push(r);
    } catch (err) {
      failed++;
      firstError ??= (err as Error).message;
    }
  };
  const lanes = Array.from({ length: Math.min(cmd.concurrency, cmd.count) }, async () => {
    while (next < cmd.count) await connectOne(next++);
  });
  await Promise.all(lanes);
  return { type: 'connected', ok: session.receivers.length, failed, firstError, connectMs: performance.now() - started };
}

/** Baseline reader: announce the role with 'R', wait for the relay's 'K' ack. */
function openTcpReader(host: string, port: number, localAddress: string | undefined, timeoutMs: number): Promise<{ socket: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    const timer = setTimeout(() => fail(new Error('tcp ack timeout')), timeoutMs);
    function fail(err: Error): void {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    }
    socket.once('error', fail);
    socket.once('connect', () => socket.write('R'));
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      socket.off('error', fail);
      socket.pause();
      if (chunk[0] !== 0x4b) return fail(new Error('bad relay ack'));
      resolve({ socket, rest: chunk.subarray(1) });
    });
  });
}

/** Messages published on receiver r's channel. */
function publishedFor(cmd: FinishCommand, r: Receiver): number {
  return cmd.publishedPerChannel?.[r.channel] ?? cmd.published;
}

function collectStats(session: Session, cmd: FinishCommand, cpuUs: number, drained: boolean): StatsReply {
  let receivers = 0;
  let missing = 0;
  let expected = 0;
  let outOfOrder = 0;
  let protocolErrors = 0;
  const closedEarly: Record<string, number> = {};
  for (const r of session.receivers) {
    if (r.protocolError) protocolErrors++;
    if (r.paused) continue;
    receivers++;
    const published = publishedFor(cmd, r);
    expected += published;
    missing += Math.max(0, published - r.okMessages);
    outOfOrder += r.outOfOrder;
    if (!r.open) {
      const key = r.closeCode === null ? 'none' : String(r.closeCode);
      closedEarly[key] = (closedEarly[key] ?? 0) + 1;
    }
  }
  return {
    type: 'stats',
    receivers,
    histogram: session.histogram.toJSON(),
    okMessages: session.okMessages,
    measuredMessages: session.measuredMessages,
    measuredBytes: session.measuredBytes,
    missing,
    expected,
    outOfOrder,
    bad: { ...session.bad },
    closedEarly,
    errorTexts: { ...session.errorTexts },
    protocolErrors,
    cpuUs,
    drained,
  };
}

/** Polls until fn() is true or the deadline passes; bounded by construction. */
async function waitUntil(fn: () => boolean, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!fn()) {
    if (performance.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return true;
}

async function teardown(session: Session, cmd: TeardownCommand): Promise<TeardownReply> {
  // Paused receivers read now, to see whether the server kicked them (1013 / ERROR text).
  for (const r of session.receivers) if (r.paused) r.socket?.resume();
  await waitUntil(() => session.receivers.every((r) => !r.open), cmd.waitCloseMs);
  const closeCodes: Record<string, number> = {};
  let closedByServer = 0;
  let stillOpen = 0;
  const paused: PausedReceiverReport[] = [];
  for (const r of session.receivers) {
    if (r.paused) {
      paused.push({ index: r.index, okMessages: r.okMessages, closeCode: r.closeCode, errorText: r.errorText });
      continue;
    }
    if (r.gotCloseFrame) closedByServer++;
    if (r.open) stillOpen++;
    const key = r.closeCode === null ? 'none' : String(r.closeCode);
    closeCodes[key] = (closeCodes[key] ?? 0) + 1;
  }
  for (const r of session.receivers) r.socket?.destroy();
  return { type: 'closed', closedByServer, closeCodes, stillOpen, paused };
}

function main(): void {
  let session: Session | null = null;
  let cpuAtMeasure = process.cpuUsage();
  const send = (m: WorkerReply): void => {
    process.send?.(m);
  };
  const heartbeat = setInterval(() => {
    if (session?.cmd.transport !== 'ws') return;
    const frame = HEARTBEAT_FRAME();
    for (const r of session.receivers) if (r.open) r.socket?.write(frame);
  }, HEARTBEAT_MS);

  // Flow-control feedback for the saturating publisher (cheap: one small IPC message per tick).
  const progress = setInterval(() => {
    if (session === null) return;
    let minOk: number | null = null;
    for (const r of session.receivers) if (r.open && !r.paused) minOk = minOk === null ? r.okMessages : Math.min(minOk, r.okMessages);
    send({ type: 'progress', minOk });
  }, PROGRESS_MS);
  progress.unref();

  process.on('disconnect', () => process.exit(0)); // parent gone: never linger
  process.on('message', (raw: WorkerCommand) => {
    const handle = async (): Promise<void> => {
      switch (raw.type) {
        case 'connect':
          session = new Session(raw);
          send(await connectAll(session));
          break;
        case 'measure':
          if (!session) throw new Error('measure before connect');
          session.fromNs = BigInt(raw.fromNs);
          cpuAtMeasure = process.cpuUsage();
          break;
        case 'finish': {
          const s = session;
          if (!s) throw new Error('finish before connect');
          const cpu = process.cpuUsage(cpuAtMeasure);
          const drained = await waitUntil(
            () => s.receivers.every((r) => r.paused || !r.open || r.nextSeq >= publishedFor(raw, r)),
            raw.drainTimeoutMs,
          );
          send(collectStats(s, raw, cpu.user + cpu.system, drained));
          break;
        }
        case 'teardown':
          if (!session) throw new Error('teardown before connect');
          send(await teardown(session, raw));
          session = null;
          break;
        case 'exit':
          clearInterval(heartbeat);
          process.exit(0);
      }
    };
    handle().catch((err: unknown) => send({ type: 'fatal', error: String((err as Error)?.stack ?? err) }));
  });
}

main();
