import { Receiver } from '../channels/receiver.js';
import type { Channel, Publisher } from '../channels/channel.js';
import type { ClientSocket, SessionInfo } from '../channels/transport.js';
import type { Logger } from '../log/logger.js';
import { ffmpegArgs, formatCommand, planCodecs } from './args.js';
import type { CodecPlan, EncodeSettings, OutputTarget } from './args.js';
import { ChildWithStdin, DEFAULT_STOP_TIMEOUTS, describeExit } from './process.js';
import type { ExitInfo, StopTimeouts } from './process.js';
import { DEFAULT_BACKOFF, RestartPolicy } from './restart-policy.js';
import type { BackoffOptions } from './restart-policy.js';

/** The IP of the server's own receivers (bridges, recordings), for logs and the stats API. */
export const INTERNAL_IP = 'internal';

/** True for the server's own receivers: they are not viewers. */
export function isInternalReceiver(receiver: Receiver): boolean {
  return receiver.info.ip === INTERNAL_IP;
}

/** The session info of an internal receiver: it must carry the publisher's key to be let in. */
export function internalInfo(channel: Channel, publisher: Publisher): SessionInfo {
  return { id: 0, ip: INTERNAL_IP, channel: channel.name, key: publisher.info.key };
}

/** One output of a channel: where ffmpeg writes, and what must be ready before it starts. */
export interface BridgeOutput {
  readonly kind: 'rtmp' | 'hls';
  /** Where it goes, safe for logs (no stream key). */
  readonly description: string;
  readonly target: OutputTarget;
  /** Runs before each ffmpeg start (`first` for the session's first one), e.g. creating the folder. */
  prepare?(first: boolean): Promise<void>;
  /** The command line as logged: the real one may hold a secret (an RTMP stream key). */
  redact?(args: readonly string[]): readonly string[];
}

export interface BridgeOptions {
  readonly ffmpeg: string;
  readonly encode: EncodeSettings;
  /** BRIDGE_BUFFER_MB in bytes: what may wait for ffmpeg's stdin before the stream skips. */
  readonly bufferBytes: number;
  /** BRIDGE_MAX_RESTARTS. */
  readonly maxRestarts: number;
  readonly logger: Logger;
  readonly backoff?: BackoffOptions;
  readonly stopTimeouts?: StopTimeouts;
  /** How long to wait for the codecs to be known before starting ffmpeg anyway (5 s). */
  readonly mediaWaitMs?: number;
}

export type BridgeState = 'waiting' | 'starting' | 'running' | 'restarting' | 'failed' | 'stopped';

/** What the stats API shows of a bridge. */
export interface BridgeStatus {
  output: 'rtmp' | 'hls';
  target: string;
  state: BridgeState;
  pid: number | null;
  video: CodecPlan['video'] | null;
  audio: CodecPlan['audio'] | null;
  /** ffmpeg starts after the first, this session. */
  restarts: number;
  startedAt: string | null;
  bytesToFfmpeg: number;
  /** Times the bridge skipped ahead to a keyframe because ffmpeg was too slow. */
  skips: number;
  lastExit: string | null;
  lastError: string | null;
}

/**
 * The stream fed to an ffmpeg child: the ClientSocket of the bridge's internal receiver. Until
 * ffmpeg runs (the codecs are being detected, the output is being prepared) chunks wait here,
 * counted as buffered so the receiver's limit applies to them too.
 */
class FfmpegSocket implements ClientSocket {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private process: ChildWithStdin | undefined;
  private closed = false;

  constructor(private readonly events: { data(): void; closed(): void }) {}

  get isClosed(): boolean {
    return this.closed;
  }

  sendBinary(data: Uint8Array): void {
    if (this.closed) return;
    if (this.process !== undefined) {
      this.process.write(data);
      return;
    }
    this.pending.push(Buffer.from(data));
    this.pendingBytes += data.byteLength;
    this.events.data();
  }

  sendText(): void {
    // Control messages (heartbeats, errors) are for WebSocket clients.
  }

  bufferedAmount(): number {
    return this.process === undefined ? this.pendingBytes : this.process.writableLength;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.events.closed();
  }

  /** ffmpeg is up: what waited goes to its stdin, and so does everything after. */
  attach(process: ChildWithStdin): void {
    this.process = process;
    for (const chunk of this.pending) process.write(chunk);
    this.pending = [];
    this.pendingBytes = 0;
  }
}

/**
 * The ffmpeg side of one output of one publishing session: an internal receiver of the channel
 * (so it starts with the init and cached GOP, and skips to the next keyframe when ffmpeg falls
 * behind) whose socket is ffmpeg's stdin. When ffmpeg exits while the publisher is live, it is
 * started again with backoff behind a fresh receiver, which resumes at a keyframe; an opaque
 * stream that falls behind restarts ffmpeg the same way, as it cannot skip.
 */
export class Bridge {
  private state: BridgeState = 'waiting';
  private receiver: Receiver | undefined;
  private socket: FfmpegSocket | undefined;
  private process: ChildWithStdin | undefined;
  /** ffmpeg processes being stopped: a restart waits for them, `stop()` too. */
  private readonly ending = new Set<Promise<ExitInfo>>();
  private readonly policy: RestartPolicy;
  private mediaTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private mediaDeadline: number | undefined;
  private plan: CodecPlan | undefined;
  private starts = 0;
  private bytesBefore = 0;
  private skipsBefore = 0;
  private lastExit: string | null = null;
  private lastError: string | null = null;
  private stopped: Promise<void> | undefined;
  private readonly label: string;

  constructor(
    private readonly channel: Channel,
    private readonly publisher: Publisher,
    private readonly output: BridgeOutput,
    private readonly options: BridgeOptions,
  ) {
    this.policy = new RestartPolicy(options.maxRestarts, options.backoff ?? DEFAULT_BACKOFF);
    this.label = `[BRIDGE] ${output.kind} '${channel.name}'`;
  }

  get currentState(): BridgeState {
    return this.state;
  }

  /** The running ffmpeg's pid (tests kill it to check restarts). */
  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Attaches the first receiver: ffmpeg starts once the codecs are known. */
  start(): void {
    this.attach();
  }

  status(): BridgeStatus {
    return {
      output: this.output.kind,
      target: this.output.description,
      state: this.state,
      pid: this.process?.pid ?? null,
      video: this.plan?.video ?? null,
      audio: this.plan?.audio ?? null,
      restarts: Math.max(0, this.starts - 1),
      startedAt: this.process === undefined ? null : new Date(this.process.startedAt).toISOString(),
      bytesToFfmpeg: this.bytesBefore + (this.process?.bytesWritten ?? 0),
      skips: this.skipsBefore + (this.receiver?.skips ?? 0),
      lastExit: this.lastExit,
      lastError: this.lastError,
    };
  }

  /** The session ended (or the server stops): ffmpeg finishes its output and exits. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.state = 'stopped';
      clearInterval(this.mediaTimer);
      clearTimeout(this.restartTimer);
      this.detach();
      const process = this.process;
      this.process = undefined;
      if (process !== undefined) this.end(process);
      await Promise.all([...this.ending]);
    })();
    return this.stopped;
  }

  private get live(): boolean {
    return this.state !== 'stopped' && this.state !== 'failed' && this.channel.publisher === this.publisher;
  }

  private attach(): void {
    this.state = 'waiting';
    this.mediaDeadline = undefined;
    const socket = new FfmpegSocket({ data: () => this.onData(socket), closed: () => this.onSocketClosed(socket) });
    const receiver = new Receiver(internalInfo(this.channel, this.publisher), 'receive', socket, this.options.bufferBytes);
    this.socket = socket;
    this.receiver = receiver;
    if (!this.channel.addReceiver(receiver)) {
      this.fail('the channel refused the bridge');
      return;
    }
    // A bridge skips to the next keyframe whatever RECEIVER_OVERFLOW says for viewers.
    receiver.overflow = 'skip';
  }

  /** Takes the receiver out of the channel; what it had queued is dropped. */
  private detach(): void {
    const receiver = this.receiver;
    if (receiver === undefined) return;
    this.skipsBefore += receiver.skips;
    this.receiver = undefined;
    this.socket = undefined;
    this.channel.removeReceiver(receiver);
  }

  /** Data waits for ffmpeg: start it once the codecs are known, or after waiting long enough. */
  private onData(socket: FfmpegSocket): void {
    if (socket !== this.socket || this.state !== 'waiting') return;
    if (mediaKnown(this.channel)) {
      this.launch(socket);
      return;
    }
    if (this.mediaDeadline !== undefined) return;
    const waitMs = this.options.mediaWaitMs ?? 5_000;
    this.mediaDeadline = Date.now() + waitMs;
    // Checked again as the stream goes on: once the buffer is full no data reaches the socket
    // (the receiver queues, or skips), so the socket alone would not notice.
    const timer = setInterval(() => {
      if (socket !== this.socket || this.state !== 'waiting') {
        clearInterval(timer);
        return;
      }
      if (mediaKnown(this.channel)) {
        this.launch(socket);
      } else if (Date.now() >= this.mediaDeadline!) {
        this.options.logger.debug(`${this.label}: codecs not detected after ${waitMs} ms, starting ffmpeg anyway`);
        this.launch(socket);
      }
    }, MEDIA_CHECK_MS);
    this.mediaTimer = timer;
  }

  private launch(socket: FfmpegSocket): void {
    clearInterval(this.mediaTimer);
    this.state = 'starting';
    const first = this.starts === 0;
    void (async () => {
      try {
        await Promise.all([...this.ending]);
        await this.output.prepare?.(first);
      } catch (error) {
        if (socket === this.socket && this.state === 'starting') this.fail(`cannot prepare the output: ${(error as Error).message}`);
        return;
      }
      if (socket !== this.socket || this.state !== 'starting') return;
      if (!this.live) return;
      this.spawn(socket);
    })();
  }

  private spawn(socket: FfmpegSocket): void {
    const media = this.channel.media;
    const plan = planCodecs(media, this.options.encode);
    const args = ffmpegArgs(plan, this.options.encode, this.output.target);
    this.plan = plan;
    this.starts++;
    const shown = formatCommand(this.options.ffmpeg, this.output.redact?.(args) ?? args);
    this.options.logger.debug(`${this.label}: ${describeMedia(media)} → video ${plan.video}, audio ${plan.audio}: ${shown}`);
    const process = new ChildWithStdin(this.options.ffmpeg, args, (line) => this.onStderr(line));
    this.process = process;
    this.state = 'running';
    process.onDrain(() => {
      if (this.process === process) this.receiver?.flush();
    });
    void process.exited.then((exit) => this.onExit(process, exit));
    socket.attach(process);
    this.receiver?.flush();
    this.options.logger.info(`${this.label}: ffmpeg started (pid ${process.pid ?? '?'}) → ${this.output.description}`);
  }

  private onStderr(line: string): void {
    const serious = /\[(error|fatal|panic)\]/.test(line);
    if (serious) {
      this.lastError = line;
      this.options.logger.info(`${this.label}: ffmpeg: ${line}`);
    } else {
      this.options.logger.debug(`${this.label}: ffmpeg: ${line}`);
    }
  }

  /** ffmpeg exited by itself (or was killed from outside). */
  private onExit(process: ChildWithStdin, exit: ExitInfo): void {
    this.bytesBefore += process.bytesWritten;
    if (process !== this.process) return;
    this.process = undefined;
    this.lastExit = describeExit(exit);
    if (!this.live) return;
    this.options.logger.info(`${this.label}: ffmpeg ${this.lastExit} while the stream is live${this.lastError === null ? '' : ` (last error: ${this.lastError})`}`);
    this.restart(Date.now() - process.startedAt);
  }

  /** The receiver was closed: the session ended, or an opaque stream fell too far behind. */
  private onSocketClosed(socket: FfmpegSocket): void {
    if (socket !== this.socket) return;
    if (this.channel.publisher !== this.publisher) {
      void this.stop();
      return;
    }
    if (this.state === 'stopped' || this.state === 'failed') return;
    this.options.logger.info(`${this.label}: ffmpeg cannot keep up and the stream has no keyframes to skip to: restarting ffmpeg`);
    const process = this.process;
    this.process = undefined;
    if (process !== undefined) this.end(process, { endMs: 0, termMs: (this.options.stopTimeouts ?? DEFAULT_STOP_TIMEOUTS).termMs });
    this.lastExit = 'restarted: too slow';
    this.restart(process === undefined ? 0 : Date.now() - process.startedAt);
  }

  private restart(ranMs: number): void {
    this.detach();
    const delay = this.policy.next(ranMs);
    if (delay === undefined) {
      const last = `${this.lastExit ?? '?'}${this.lastError === null ? '' : `, ${this.lastError}`}`;
      this.fail(`giving up on this stream: ffmpeg failed again after ${this.options.maxRestarts} restart(s) within a minute (BRIDGE_MAX_RESTARTS; last: ${last})`);
      return;
    }
    this.state = 'restarting';
    this.options.logger.info(`${this.label}: restarting ffmpeg in ${delay / 1000} s`);
    this.restartTimer = setTimeout(() => {
      if (this.live && this.state === 'restarting') this.attach();
    }, delay);
  }

  private fail(reason: string): void {
    this.detach();
    this.state = 'failed';
    this.options.logger.info(`${this.label}: ${reason}`);
    const process = this.process;
    this.process = undefined;
    if (process !== undefined) this.end(process);
  }

  /** Stops a process in the background; restarts and `stop()` wait for it. */
  private end(process: ChildWithStdin, timeouts = this.options.stopTimeouts ?? DEFAULT_STOP_TIMEOUTS): void {
    const ending = process.stop(timeouts);
    this.ending.add(ending);
    void ending.then(() => this.ending.delete(ending));
  }
}

/** While ffmpeg waits for the codecs to be known: how often they are looked at again. */
const MEDIA_CHECK_MS = 50;

/**
 * True when ffmpeg can be started: an opaque stream, or a recognised container whose first
 * keyframe is complete (by then its headers, and so its codecs, have been read).
 */
function mediaKnown(channel: Channel): boolean {
  const { container } = channel.media;
  if (container === 'opaque') return true;
  if (container === 'unknown') return false;
  return channel.cache.probe() !== 'wait';
}

function describeMedia(media: Channel['media']): string {
  const tracks = media.tracks.map((track) => (track.width === undefined ? track.codec : `${track.codec} ${track.width}x${track.height ?? '?'}`));
  return `${media.container}${tracks.length > 0 ? ` (${tracks.join(', ')})` : ''}`;
}
