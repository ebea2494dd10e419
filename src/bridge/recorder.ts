import { createWriteStream, existsSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Receiver } from '../channels/receiver.js';
import type { Channel, Publisher } from '../channels/channel.js';
import type { ClientSocket } from '../channels/transport.js';
import type { Logger } from '../log/logger.js';
import type { MediaTick } from '../media/chunk-cache.js';
import type { ContainerKind } from '../media/types.js';
import { internalInfo } from './bridge.js';
import { ChildWithStdin, describeExit } from './process.js';

export interface RecorderOptions {
  /** RECORD_DIR. */
  readonly dir: string;
  /** RECORD_MAX_SIZE_MB in bytes; 0: no cap. */
  readonly maxBytes: number;
  /** RECORD_REMUX (WebM only): the ffmpeg to remux with, or undefined. */
  readonly remuxWith: string | undefined;
  /** BRIDGE_BUFFER_MB in bytes: data waiting for the disk before the recording skips ahead. */
  readonly bufferBytes: number;
  readonly logger: Logger;
}

export type RecordingState = 'waiting' | 'recording' | 'finishing' | 'done' | 'failed';

export interface RecordingStatus {
  state: RecordingState;
  /** The part being written (or the last one). */
  file: string | null;
  files: string[];
  bytes: number;
  error: string | null;
}

const EXTENSIONS: Record<ContainerKind | 'opaque' | 'unknown', string> = {
  webm: 'webm',
  flv: 'flv',
  mpegts: 'ts',
  fmp4: 'mp4',
  opaque: 'bin',
  unknown: 'bin',
};

/** Where a clean cut is possible in the chunk being pushed: a keyframe point, with the init to start a new part with. */
interface CutPoint {
  readonly data: Uint8Array;
  readonly offset: number;
  readonly init: readonly Uint8Array[];
}

/**
 * The recording's receiver: like any receiver, plus it tells its socket where the chunk being
 * pushed has a keyframe point, so a size-capped recording rolls to a new part exactly there
 * (the new part starts with the init and a keyframe, and nothing is lost or repeated).
 */
class RecordingReceiver extends Receiver {
  constructor(
    channel: Channel,
    publisher: Publisher,
    private readonly file: FileSocket,
    bufferBytes: number,
  ) {
    super(internalInfo(channel, publisher), 'receive', file, bufferBytes);
  }

  override push(data: Uint8Array, stable: () => Uint8Array, media: MediaTick | null = null): void {
    const point = media?.points[0];
    this.file.cut = point !== undefined && point.lead.length === 0 ? { data, offset: point.offset, init: media!.fullInit } : undefined;
    try {
      super.push(data, stable, media);
    } finally {
      this.file.cut = undefined;
    }
  }
}

/** The recording's ClientSocket: writes the stream to files, flushed as it goes. */
class FileSocket implements ClientSocket {
  cut: CutPoint | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private stream: WriteStream | undefined;
  private partBytes = 0;
  private closed = false;
  /** Bytes handed to the files so far. */
  totalBytes = 0;

  constructor(
    private readonly owner: {
      /** The part to open: undefined until the container is known and the folder exists. */
      nextPath(): string | undefined;
      opaque(): boolean;
      opened(stream: WriteStream, path: string): void;
      closed(): void;
    },
    private readonly maxBytes: number,
  ) {}

  sendBinary(data: Uint8Array): void {
    if (this.closed) return;
    if (this.stream === undefined && !this.open()) {
      this.pending.push(Buffer.from(data));
      this.pendingBytes += data.byteLength;
      return;
    }
    if (this.maxBytes > 0 && this.partBytes >= this.maxBytes) {
      const cut = this.cut;
      if (cut !== undefined && cut.data === data) {
        this.write(data.subarray(0, cut.offset));
        this.roll(cut.init);
        this.write(data.subarray(cut.offset));
        return;
      }
      // An opaque stream has no better place to cut.
      if (this.owner.opaque()) this.roll([]);
    }
    this.write(data);
  }

  sendText(): void {
    // Control messages are for WebSocket clients.
  }

  bufferedAmount(): number {
    return this.pendingBytes + (this.stream?.writableLength ?? 0);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.owner.closed();
  }

  /** The session is over: writes what still waits (opening a file if none was), ends the file. */
  finish(): void {
    this.closed = true;
    if (this.pendingBytes > 0 && this.stream === undefined) this.open();
    this.stream?.end();
  }

  /** Opens the first part once its name is known, and writes what waited. */
  private open(): boolean {
    const path = this.owner.nextPath();
    if (path === undefined) return false;
    this.startPart(path);
    const pending = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const chunk of pending) this.write(chunk);
    return true;
  }

  /** The part is over its cap: the next starts here, with `init` first. */
  private roll(init: readonly Uint8Array[]): void {
    const path = this.owner.nextPath();
    if (path === undefined) return;
    this.stream?.end();
    this.startPart(path);
    for (const part of init) this.write(part);
  }

  private startPart(path: string): void {
    this.partBytes = 0;
    this.stream = createWriteStream(path, { flags: 'wx' });
    this.owner.opened(this.stream, path);
  }

  private write(data: Uint8Array): void {
    if (data.byteLength === 0 || this.stream === undefined) return;
    this.stream.write(Buffer.from(data));
    this.partBytes += data.byteLength;
    this.totalBytes += data.byteLength;
  }
}

/**
 * One publishing session written as-is to `RECORD_DIR/<channel>/<UTC start>_<streamId>.<ext>`
 * (then `…_part2.<ext>` and so on past RECORD_MAX_SIZE_MB), through an internal receiver. A
 * disk error stops the recording, never the stream.
 */
export class Recording {
  private state: RecordingState = 'waiting';
  private readonly receiver: RecordingReceiver;
  private readonly socket: FileSocket;
  private folderReady = false;
  private readonly files: string[] = [];
  private readonly streams: WriteStream[] = [];
  private error: string | null = null;
  private finished: Promise<void> | undefined;
  private remux: ChildWithStdin | undefined;
  private readonly folder: string;
  private readonly base: string;
  private readonly label: string;

  constructor(
    private readonly channel: Channel,
    publisher: Publisher,
    private readonly options: RecorderOptions,
  ) {
    this.folder = join(options.dir, channel.name);
    const streamId = publisher.streamId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
    this.base = `${utcStamp(publisher.startedAt)}${streamId === '' ? '' : `_${streamId}`}`;
    this.label = `[RECORD] '${channel.name}'`;
    this.socket = new FileSocket(
      {
        nextPath: () => this.nextPath(),
        opaque: () => this.channel.media.container === 'opaque',
        opened: (stream, path) => this.opened(stream, path),
        closed: () => {
          // The receiver was closed: the session ended, or the disk could not keep up with an opaque stream.
          if (this.channel.publisher === publisher) this.options.logger.error(`${this.label}: the disk cannot keep up: recording stopped (the stream goes on)`);
          void this.stop();
        },
      },
      options.maxBytes,
    );
    this.receiver = new RecordingReceiver(channel, publisher, this.socket, options.bufferBytes);
  }

  /** Creates the folder and attaches the receiver: the recording starts at the stream's first byte. */
  start(): void {
    if (!this.channel.addReceiver(this.receiver)) {
      this.fail('the channel refused the recorder');
      return;
    }
    this.receiver.overflow = 'skip';
    mkdir(this.folder, { recursive: true }).then(
      () => {
        this.folderReady = true;
        // Anything that arrived meanwhile goes out with the next chunk, or at the end.
      },
      (error: Error) => this.fail(`cannot create ${this.folder}: ${error.message}`),
    );
  }

  status(): RecordingStatus {
    return { state: this.state, file: this.files.at(-1) ?? null, files: [...this.files], bytes: this.socket.totalBytes, error: this.error };
  }

  /** The session ended: the last part is completed (and remuxed with RECORD_REMUX). */
  stop(): Promise<void> {
    this.finished ??= this.finish();
    return this.finished;
  }

  /** Server shutdown: like stop, but a remux still running is stopped in bounded time. */
  async close(): Promise<void> {
    const done = this.stop();
    await this.remux?.stop();
    await done;
  }

  private async finish(): Promise<void> {
    this.channel.removeReceiver(this.receiver);
    if (this.state === 'failed') return;
    this.state = 'finishing';
    if (!this.folderReady) {
      try {
        await mkdir(this.folder, { recursive: true });
        this.folderReady = true;
      } catch (error) {
        this.fail(`cannot create ${this.folder}: ${(error as Error).message}`);
        return;
      }
    }
    this.socket.finish();
    await Promise.all(this.streams.map(settled));
    if (this.state !== 'finishing') return;
    if (this.options.remuxWith !== undefined && this.channel.media.container === 'webm') {
      for (const file of this.files) await this.remuxFile(this.options.remuxWith, file);
    }
    this.state = 'done';
    this.options.logger.info(`${this.label}: recorded ${this.socket.totalBytes} bytes in ${this.files.length} file(s): ${this.files.join(', ')}`);
  }

  private nextPath(): string | undefined {
    const container = this.channel.media.container;
    if (!this.folderReady || this.state === 'failed') return undefined;
    if (container === 'unknown' && this.state !== 'finishing') return undefined;
    const extension = EXTENSIONS[container];
    const part = this.files.length === 0 ? '' : `_part${this.files.length + 1}`;
    let path = join(this.folder, `${this.base}${part}.${extension}`);
    for (let n = 2; existsSync(path); n++) path = join(this.folder, `${this.base}${part}-${n}.${extension}`);
    return path;
  }

  private opened(stream: WriteStream, path: string): void {
    this.state = this.state === 'waiting' ? 'recording' : this.state;
    this.files.push(path);
    this.streams.push(stream);
    if (this.files.length === 1) this.options.logger.info(`${this.label}: recording to ${path}`);
    else this.options.logger.info(`${this.label}: RECORD_MAX_SIZE_MB reached, continuing in ${path}`);
    stream.on('drain', () => this.receiver.flush());
    stream.on('error', (error) => this.fail(`cannot write ${path}: ${error.message}`));
  }

  private fail(reason: string): void {
    if (this.state === 'failed' || this.state === 'done') return;
    this.state = 'failed';
    this.error = reason;
    this.options.logger.error(`${this.label}: ${reason}: recording stopped (the stream goes on)`);
    this.channel.removeReceiver(this.receiver);
    for (const stream of this.streams) stream.destroy();
  }

  /** `ffmpeg -c copy` into a temporary file, renamed over the original: WebM gets its duration and cues. */
  private async remuxFile(ffmpeg: string, file: string): Promise<void> {
    const temporary = `${file}.remux.webm`;
    const child = new ChildWithStdin(ffmpeg, ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-i', file, '-map', '0', '-c', 'copy', '-f', 'webm', temporary], (line) =>
      this.options.logger.debug(`${this.label}: remux: ${line}`),
    );
    this.remux = child;
    child.child.stdin?.end();
    const exit = await child.exited;
    this.remux = undefined;
    if (exit.code === 0) {
      await rename(temporary, file);
      return;
    }
    await rm(temporary, { force: true });
    this.options.logger.info(`${this.label}: remux of ${file} failed (${describeExit(exit)}); the file is kept as recorded`);
  }
}

/** `20240102T030405Z`: sortable, no characters that file systems dislike. */
function utcStamp(time: number): string {
  return new Date(time).toISOString().replace(/\.\d+Z$/, 'Z').replaceAll('-', '').replaceAll(':', '');
}

/** Resolves when the stream has finished writing (or failed). */
function settled(stream: WriteStream): Promise<void> {
  if (stream.closed || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}
