import type { Backoff } from '../coordinator/backoff.js';
import { Emitter } from './emitter.js';
import { StreamClientError } from './errors.js';
import { Connection, newBackoff, resolveStreamUrl, settleable } from './session.js';
import type { ConnectionOptions, ReconnectInfo, ReconnectOptions } from './session.js';

export interface PublisherOptions extends ConnectionOptions {
  /** write() returns false once this many bytes are buffered; `drain` when half of it is left. Default 1 MiB. */
  readonly highWaterMark?: number;
  /**
   * Hard limit of buffered bytes: a write() that would go past it throws BUFFER_FULL and is
   * not taken (a single chunk into an empty buffer always is). Default 16 MiB.
   */
  readonly maxBuffered?: number;
  /**
   * Reconnect after a lost connection. Off by default: the server ends the session, so the
   * receivers see a new stream that must start with its headers again.
   */
  readonly reconnect?: boolean | ReconnectOptions;
}

export type PublisherEvents = {
  open: [];
  drain: [];
  reconnecting: [ReconnectInfo];
  /** The publisher failed; `close` follows. */
  error: [StreamClientError];
  /** Last event: error undefined after end() or close(). */
  close: [StreamClientError | undefined];
};

type Phase = 'connecting' | 'open' | 'waiting' | 'closed';

/**
 * Publishes a stream: every write() is one binary message. Connects on construction; writes
 * before the connection opens are queued (within the same limits).
 */
export class StreamPublisher extends Emitter<PublisherEvents> {
  readonly url: string;
  /** Resolves when the first connection opens; rejects with a StreamClientError if it never does. */
  readonly opened: Promise<void>;
  /** Resolves after end() or close(); rejects with the StreamClientError that ended the publisher. */
  readonly closed: Promise<void>;
  private readonly highWaterMark: number;
  private readonly maxBuffered: number;
  private readonly reconnect: ReconnectOptions | undefined;
  private readonly backoff: Backoff;
  private connection!: Connection;
  private phase: Phase = 'connecting';
  private ending = false;
  private everOpened = false;
  private attempts = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private needDrain = false;
  private drainArmed = false;
  private failure: StreamClientError | undefined;
  private settleOpened!: (error?: StreamClientError) => void;
  private settleClosed!: (error?: StreamClientError) => void;

  constructor(
    url: string | URL,
    private readonly options: PublisherOptions = {},
  ) {
    super();
    this.url = resolveStreamUrl(url, ['publish'], 'publish');
    this.highWaterMark = options.highWaterMark ?? 1024 * 1024;
    this.maxBuffered = Math.max(options.maxBuffered ?? 16 * 1024 * 1024, this.highWaterMark);
    this.reconnect = options.reconnect === true ? {} : options.reconnect || undefined;
    this.backoff = newBackoff(this.reconnect ?? {});
    this.opened = settleable((settle) => (this.settleOpened = settle));
    this.closed = settleable((settle) => (this.settleClosed = settle));
    this.connect();
  }

  /** A publisher whose connection is open; rejects with the StreamClientError if it cannot connect. */
  static async connect(url: string | URL, options: PublisherOptions = {}): Promise<StreamPublisher> {
    const publisher = new StreamPublisher(url, options);
    await publisher.opened;
    return publisher;
  }

  /** Bytes written and not yet handed to the network: the queue plus the socket's buffer. */
  get bufferedAmount(): number {
    return this.queuedBytes + (this.phase === 'open' ? (this.connection.socket?.bufferedAmount ?? 0) : 0);
  }

  /** The error that ended the publisher, if one did. */
  get error(): StreamClientError | undefined {
    return this.failure;
  }

  /**
   * Sends one chunk as one binary message (the chunk must not be modified afterwards). Returns
   * false when the buffer is at the high-water mark: wait for `drain` (or drained()) before
   * writing more. Throws BUFFER_FULL past `maxBuffered`, CLOSED (or the failure) once ended.
   */
  write(chunk: Uint8Array): boolean {
    if (this.phase === 'closed' || this.ending) throw this.failure ?? new StreamClientError('CLOSED', 'write after end() or close()');
    const buffered = this.bufferedAmount;
    if (buffered > 0 && buffered + chunk.byteLength > this.maxBuffered) {
      throw new StreamClientError('BUFFER_FULL', `write of ${chunk.byteLength} bytes refused: ${buffered} bytes buffered, limit ${this.maxBuffered}`);
    }
    const socket = this.connection.socket;
    if (this.phase === 'open' && socket !== undefined) {
      socket.send(chunk);
    } else {
      this.queue.push(chunk);
      this.queuedBytes += chunk.byteLength;
    }
    if (this.bufferedAmount < this.highWaterMark) return true;
    this.needDrain = true;
    this.armDrain();
    return false;
  }

  /** Resolves at once below the high-water mark, else at the next `drain`; rejects if the publisher fails first. */
  drained(): Promise<void> {
    if (!this.needDrain && this.phase !== 'closed') return Promise.resolve();
    if (this.phase === 'closed') return Promise.reject(this.failure ?? new StreamClientError('CLOSED', 'publisher closed'));
    return new Promise((resolve, reject) => {
      const onDrain = (): void => {
        this.off('close', onClose);
        resolve();
      };
      const onClose = (error: StreamClientError | undefined): void => {
        this.off('drain', onDrain);
        reject(error ?? new StreamClientError('CLOSED', 'publisher closed'));
      };
      this.once('drain', onDrain).once('close', onClose);
    });
  }

  /** Sends what is buffered, closes with 1000 and resolves once the server has it all. */
  end(): Promise<void> {
    if (this.phase !== 'closed' && !this.ending) {
      this.ending = true;
      if (this.phase === 'open') this.connection.close(1000);
    }
    return this.closed;
  }

  /** Closes at once; what is still buffered is dropped. */
  close(): void {
    if (this.phase === 'closed') return;
    this.connection.close(1000);
    this.finish(undefined);
  }

  private connect(): void {
    this.phase = 'connecting';
    this.connection = new Connection(this.url, this.options, {
      open: () => this.onOpen(),
      binary: () => {},
      closed: (error) => this.onClosed(error),
    });
  }

  private onOpen(): void {
    this.phase = 'open';
    this.everOpened = true;
    this.attempts = 0;
    this.backoff.reset();
    const socket = this.connection.socket!;
    for (const chunk of this.queue) socket.send(chunk);
    this.queue = [];
    this.queuedBytes = 0;
    this.settleOpened();
    this.emit('open');
    if (this.ending) this.connection.close(1000);
    else if (this.needDrain) this.armDrain();
  }

  private onClosed(error: StreamClientError | undefined): void {
    if (this.phase === 'closed') return;
    if (this.ending && error === undefined) return this.finish(undefined);
    const cause = error ?? new StreamClientError('CONNECTION_LOST', 'the server closed the connection');
    const reconnect = this.reconnect;
    if (reconnect !== undefined && cause.retryable && this.everOpened && !this.ending && this.attempts < (reconnect.maxAttempts ?? Infinity)) {
      this.phase = 'waiting';
      this.drainArmed = false;
      this.attempts++;
      const delayMs = this.backoff.next();
      this.retryTimer = setTimeout(() => this.connect(), delayMs);
      this.emit('reconnecting', { attempt: this.attempts, delayMs, error: cause });
      return;
    }
    this.finish(cause);
  }

  private armDrain(): void {
    const socket = this.connection.socket;
    if (this.drainArmed || this.phase !== 'open' || socket === undefined) return;
    this.drainArmed = true;
    socket.whenBelow(this.highWaterMark / 2, () => {
      this.drainArmed = false;
      if (this.phase !== 'open' || !this.needDrain) return;
      if (this.bufferedAmount > this.highWaterMark / 2) return this.armDrain();
      this.needDrain = false;
      this.emit('drain');
    });
  }

  private finish(error: StreamClientError | undefined): void {
    this.phase = 'closed';
    clearTimeout(this.retryTimer);
    this.failure = error;
    this.queue = [];
    this.queuedBytes = 0;
    this.settleOpened(error ?? new StreamClientError('CLOSED', 'closed before the connection opened'));
    this.settleClosed(error);
    if (error !== undefined) this.emit('error', error);
    this.emit('close', error);
  }
}
