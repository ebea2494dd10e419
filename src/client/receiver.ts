import type { Readable } from 'node:stream';
import type { Backoff } from '../coordinator/backoff.js';
import { Emitter } from './emitter.js';
import { StreamClientError } from './errors.js';
import { Connection, newBackoff, resolveStreamUrl, settleable } from './session.js';
import type { ConnectionOptions, ReconnectInfo, ReconnectOptions } from './session.js';

export interface ReceiverOptions extends ConnectionOptions {
  /**
   * Keep going across publishing sessions: after the publisher ends (an `end` event) or the
   * connection drops, connect again and wait for the next publisher. Default false: the
   * iteration finishes when the publisher ends.
   */
  readonly wait?: boolean;
  /**
   * Reconnect with backoff when a connection that had opened drops while waiting for a
   * publisher (or at any time with `wait`). On by default; a first connection that fails is
   * always an error.
   */
  readonly reconnect?: boolean | ReconnectOptions;
  /**
   * Queued bytes not yet consumed above which reading from the network stops (Node), so the
   * server holds the backlog and applies its slow-receiver limit. Default 4 MiB.
   */
  readonly highWaterMark?: number;
  /**
   * Hard limit of queued bytes; past it the receiver fails with RECEIVER_TOO_SLOW. Reached
   * only where the network cannot be paused (browsers). Default 64 MiB.
   */
  readonly maxQueued?: number;
}

export type ReceiverEvents = {
  /** A connection opened: waiting for a publisher, or receiving. */
  open: [];
  /** The publisher ended (close 1000 "Publisher ended"). Without `wait` the iteration then finishes. */
  end: [];
  reconnecting: [ReconnectInfo];
  /** The receiver failed; the iteration throws it, and `close` follows. */
  error: [StreamClientError];
  /** Last event. */
  close: [StreamClientError | undefined];
};

type Phase = 'connecting' | 'open' | 'waiting' | 'closed';

/**
 * Receives a stream (`receive`, `receive-clear-cache` or `probe` URL; `/<channel>/<key>`
 * means `receive`). Connects on construction; read the chunks with `for await` (one consumer)
 * or toStream().
 */
export class StreamReceiver extends Emitter<ReceiverEvents> implements AsyncIterable<Uint8Array> {
  readonly url: string;
  /** Resolves when the receiver is done (publisher ended or close()); rejects with its error. */
  readonly closed: Promise<void>;
  private readonly isProbe: boolean;
  private readonly highWaterMark: number;
  private readonly maxQueued: number;
  private readonly reconnect: ReconnectOptions | undefined;
  private readonly backoff: Backoff;
  private connection!: Connection;
  private phase: Phase = 'connecting';
  private everOpened = false;
  private gotData = false;
  private attempts = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private paused = false;
  private failure: StreamClientError | undefined;
  private failureSeen = false;
  private wake: (() => void) | undefined;
  private settleClosed!: (error?: StreamClientError) => void;

  constructor(
    url: string | URL,
    private readonly options: ReceiverOptions = {},
  ) {
    super();
    this.url = resolveStreamUrl(url, ['receive', 'receive-clear-cache', 'probe'], 'receive');
    this.isProbe = new URL(this.url).pathname.endsWith('/probe');
    this.highWaterMark = options.highWaterMark ?? 4 * 1024 * 1024;
    this.maxQueued = Math.max(options.maxQueued ?? 64 * 1024 * 1024, this.highWaterMark);
    this.reconnect = options.reconnect === false ? undefined : options.reconnect === true || options.reconnect === undefined ? {} : options.reconnect;
    this.backoff = newBackoff(this.reconnect ?? {});
    this.closed = settleable((settle) => (this.settleClosed = settle));
    this.connect();
  }

  /** Bytes received and not yet consumed. */
  get queuedAmount(): number {
    return this.queuedBytes;
  }

  get error(): StreamClientError | undefined {
    return this.failure;
  }

  /** The next chunk, or undefined when the stream is over; throws the receiver's error. */
  async read(): Promise<Uint8Array | undefined> {
    for (;;) {
      const chunk = this.queue.shift();
      if (chunk !== undefined) {
        this.queuedBytes -= chunk.byteLength;
        if (this.paused && this.queuedBytes <= this.highWaterMark / 2) {
          this.paused = false;
          this.connection.socket?.resume();
        }
        return chunk;
      }
      if (this.phase === 'closed') {
        if (this.failure === undefined || this.failureSeen) return undefined;
        this.failureSeen = true;
        throw this.failure;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: async () => {
        const value = await this.read();
        return value === undefined ? { done: true, value: undefined } : { done: false, value };
      },
      return: async () => {
        this.close();
        return { done: true, value: undefined };
      },
    };
  }

  /** A Node Readable of the chunks (Node only); destroying it closes the receiver. */
  toStream(): Readable {
    const runtime = globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } };
    const stream = runtime.process?.getBuiltinModule?.('node:stream') as typeof import('node:stream') | undefined;
    if (stream === undefined) throw new Error('toStream() needs Node.js 20.16 or newer; iterate the receiver with for await instead');
    return stream.Readable.from(this, { objectMode: false });
  }

  /** Stops receiving; the iteration finishes after the chunks already queued. */
  close(): void {
    if (this.phase === 'closed') return;
    this.connection.close(1000);
    this.finish(undefined);
  }

  private connect(): void {
    this.phase = 'connecting';
    this.gotData = false;
    this.connection = new Connection(this.url, this.options, {
      open: () => {
        this.phase = 'open';
        this.everOpened = true;
        this.attempts = 0;
        this.backoff.reset();
        this.emit('open');
      },
      binary: (data) => this.onBinary(data),
      closed: (error) => this.onClosed(error),
    });
  }

  private onBinary(data: Uint8Array): void {
    if (this.phase === 'closed') return;
    this.gotData = true;
    this.queue.push(data);
    this.queuedBytes += data.byteLength;
    if (this.queuedBytes > this.maxQueued) {
      this.connection.close(1000);
      return this.finish(new StreamClientError('RECEIVER_TOO_SLOW', `${this.queuedBytes} bytes received and not consumed (limit ${this.maxQueued})`));
    }
    const socket = this.connection.socket;
    if (!this.paused && this.queuedBytes > this.highWaterMark && socket?.canPause) {
      this.paused = true;
      socket.pause();
    }
    this.signal();
  }

  private onClosed(error: StreamClientError | undefined): void {
    if (this.phase === 'closed') return;
    this.paused = false;
    if (error === undefined) {
      // 1000: the publisher ended (or, for a probe, its one chunk was delivered).
      const probeDone = this.isProbe && this.gotData;
      if (!probeDone) this.emit('end');
      if (this.options.wait && !probeDone) return this.retry(0);
      return this.finish(undefined);
    }
    const reconnect = this.reconnect;
    if (
      reconnect !== undefined &&
      error.retryable &&
      this.everOpened &&
      (this.options.wait || !this.gotData) &&
      this.attempts < (reconnect.maxAttempts ?? Infinity)
    ) {
      this.attempts++;
      const delayMs = this.backoff.next();
      this.emit('reconnecting', { attempt: this.attempts, delayMs, error });
      return this.retry(delayMs);
    }
    this.finish(error);
  }

  private retry(delayMs: number): void {
    this.phase = 'waiting';
    this.retryTimer = setTimeout(() => this.connect(), delayMs);
  }

  private finish(error: StreamClientError | undefined): void {
    this.phase = 'closed';
    clearTimeout(this.retryTimer);
    this.failure = error;
    this.settleClosed(error);
    this.signal();
    if (error !== undefined) this.emit('error', error);
    this.emit('close', error);
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/**
 * The first chunk of a channel's stream (a `probe` connection): waits for a publisher that
 * sends something. `signal` aborts the wait.
 */
export async function probe(url: string | URL, options: Omit<ReceiverOptions, 'wait'> & { readonly signal?: AbortSignal } = {}): Promise<Uint8Array> {
  const receiver = new StreamReceiver(resolveStreamUrl(url, ['probe'], 'probe'), { ...options, wait: true });
  const abort = (): void => receiver.close();
  options.signal?.addEventListener('abort', abort);
  try {
    for await (const chunk of receiver) return chunk;
    options.signal?.throwIfAborted();
    throw new StreamClientError('CLOSED', 'probe closed before a chunk arrived');
  } finally {
    options.signal?.removeEventListener('abort', abort);
    receiver.close();
  }
}
