import { Closures, SessionErrors } from '../protocol/errors.js';
import { totalBytes } from '../media/bytes.js';
import type { Closure, SessionError } from '../protocol/errors.js';
import type { ConnectionKind } from '../protocol/route.js';
import { ChunkQueue } from '../media/chunk-queue.js';
import type { Backlog, MediaTick } from '../media/chunk-cache.js';
import type { ClientSocket, SessionInfo } from './transport.js';

export type ReceiverKind = Exclude<ConnectionKind, 'publish'>;
export type ReceiverState = 'idle' | 'live' | 'closed';
/** RECEIVER_OVERFLOW: what happens to a receiver over its buffer limit on a recognised container. */
export type OverflowPolicy = 'skip' | 'close';

const NO_CHUNKS: readonly Uint8Array[] = [];

/**
 * At most this much goes into a receiver's socket buffer; the rest waits in its queue. The
 * socket buffer is a private copy per receiver, while queued chunks are shared by all the
 * channel's receivers, so a small socket share keeps memory proportional to the stream, not
 * to receivers × MAX_RECEIVER_BUFFER_MB, when many receivers fall behind at once.
 */
export const SOCKET_HIGH_WATER_BYTES = 256 * 1024;

/**
 * One receive / receive-clear-cache / probe connection of a channel.
 *
 * Fan-out never waits on a receiver: a chunk goes straight to the socket while the socket's
 * buffer stays within SOCKET_HIGH_WATER_BYTES (or `bufferLimit` if smaller), otherwise into a
 * queue of shared chunks flushed on drain. When more than
 * `bufferLimit` bytes of live data wait in that queue, the receiver is too slow. For an opaque
 * stream (or with RECEIVER_OVERFLOW=close) it is closed with "Receiver too slow". For a
 * recognised container (policy `skip`) its queue is cut at the first keyframe point still
 * queued and it resumes at the next keyframe point of the live stream: it sees a jump in time,
 * but every byte it gets decodes. So a receiver costs at most about twice the limit, whatever
 * the client does, and a late joiner's cache backlog (paced by drain) never counts against it.
 */
export class Receiver {
  private state: ReceiverState = 'idle';
  /** The cache a late joiner gets first, sent before anything live. */
  private readonly backlog = new ChunkQueue();
  /**
   * Live chunks not yet handed to the socket: stable copies, never views of a neutered buffer.
   * Only these count against the limit; the backlog is not the receiver's fault.
   */
  private readonly live = new ChunkQueue();
  /** Live data is dropped until the next keyframe point: a late joiner with nothing cached, or after a skip. */
  private awaiting: 'join' | 'skip' | undefined;
  /** Over the limit with no keyframe point queued: the queue is cut at the next one that comes. */
  private cutPending = false;
  /** The init this receiver has (see MediaTick): what it needs again when it resumes. */
  private generation = 0;
  private version = 0;
  private sentChunks = 0;
  bytesSent = 0;
  /** How many times this receiver skipped ahead to a keyframe. */
  skips = 0;
  readonly connectedAt = Date.now();

  /** BINARY messages handed to the socket so far. */
  get messagesSent(): number {
    return this.sentChunks;
  }

  constructor(
    readonly info: SessionInfo,
    readonly kind: ReceiverKind,
    private readonly socket: ClientSocket,
    private readonly bufferLimit: number,
    public overflow: OverflowPolicy = 'skip',
  ) {}

  get currentState(): ReceiverState {
    return this.state;
  }

  get bufferedBytes(): number {
    return this.state === 'closed' ? 0 : this.socket.bufferedAmount() + this.backlog.bytes + this.live.bytes;
  }

  /** True while live data is dropped until the next keyframe point. */
  get waitingForKeyframe(): boolean {
    return this.awaiting !== undefined;
  }

  /**
   * Goes live: sends `backlog` (the cache) first, then whatever `push` brings. A probe sends
   * the first chunk of a plain array (the channel gives probes their message with `sendProbe`).
   */
  start(backlog: Backlog | readonly Uint8Array[]): void {
    if (this.state !== 'idle') return;
    this.state = 'live';
    const given: Backlog = isChunkList(backlog) ? { chunks: backlog, points: [], awaitKeyframe: false, generation: 0, version: 0 } : backlog;
    if (this.kind === 'probe') {
      const first = given.chunks[0];
      if (first !== undefined) this.sendProbe(first);
      return;
    }
    let point = 0;
    for (let i = 0; i < given.chunks.length; i++) {
      this.backlog.push(given.chunks[i]!);
      if (given.points[point] === i) {
        this.backlog.markLast(0);
        point++;
      }
    }
    this.awaiting = given.awaitKeyframe ? 'join' : undefined;
    this.generation = given.generation;
    this.version = given.version;
    this.flush();
  }

  /**
   * Delivers a live chunk. `data` is valid during the call only; `stable()` returns a copy
   * that may be kept (made at most once per chunk for all receivers). `media` is what the
   * channel's cache learnt from the chunk (null for an opaque stream).
   */
  push(data: Uint8Array, stable: () => Uint8Array, media: MediaTick | null = null): void {
    if (this.state !== 'live') return;
    if (this.kind === 'probe') {
      this.sendProbe(data);
      return;
    }
    if (media === null) {
      if (this.awaiting === 'skip') {
        // The stream turned opaque while this receiver was skipping: it is simply too slow.
        this.fail(SessionErrors.RECEIVER_TOO_SLOW);
        return;
      }
      // A late joiner waiting for a keyframe that will never be recognised takes the stream as it comes.
      this.awaiting = undefined;
    } else if (this.awaiting !== undefined) {
      this.resume(data, stable, media);
      return;
    } else {
      this.generation = media.generation;
      this.version = media.version;
    }

    if (this.backlog.length === 0 && this.live.length === 0 && this.canSend(data.byteLength)) {
      this.send(data);
      return;
    }
    const point = media?.points[0];
    if (point !== undefined && point.lead.length > 0) this.live.markFromEnd(totalBytes(point.lead));
    this.live.push(stable());
    if (point !== undefined && point.lead.length === 0) this.live.markLast(point.offset);
    if (this.cutPending || this.live.bytes > this.bufferLimit) this.overflowed(media);
  }

  /** The socket drained: send what was waiting, backlog first. */
  flush(): void {
    for (const queue of [this.backlog, this.live]) {
      while (this.state === 'live') {
        const chunk = queue.peek();
        if (chunk === undefined) break;
        if (!this.canSend(chunk.byteLength)) return;
        queue.shift();
        this.send(chunk);
      }
    }
  }

  sendText(text: string): void {
    if (this.state !== 'closed') this.socket.sendText(text);
  }

  /** A probe's one message, then a normal close. */
  sendProbe(data: Uint8Array): void {
    if (this.state === 'closed' || this.sentChunks > 0) return;
    this.state = 'live';
    this.send(data);
    this.close(Closures.PROBE_DONE);
  }

  /** Ends the receiver with an ERROR text and a close code. */
  fail(error: SessionError): void {
    if (this.state === 'closed') return;
    this.socket.sendText(error.message);
    this.end(error);
  }

  /** Ends the receiver with a close frame only. */
  close(closure: Closure): void {
    this.end(closure);
  }

  /** The socket is gone (client closed or server closed it): forget everything. */
  detach(): void {
    this.state = 'closed';
    this.backlog.clear();
    this.live.clear();
  }

  /** Waiting for a keyframe point: drop the chunk, or start again at the point it has. */
  private resume(data: Uint8Array, stable: () => Uint8Array, media: MediaTick): void {
    const point = media.points[0];
    if (point === undefined) return;
    this.awaiting = undefined;
    // What the init became while this receiver was not listening.
    const init = media.generation !== this.generation ? media.fullInit : media.version !== this.version ? media.resyncInit : NO_CHUNKS;
    this.generation = media.generation;
    this.version = media.version;
    for (const part of init) this.live.push(part);
    let marked = false;
    for (const part of point.lead) {
      this.live.push(part);
      if (!marked) this.live.markLast(0);
      marked = true;
    }
    const rest = stable().subarray(point.offset);
    if (rest.byteLength > 0) {
      this.live.push(rest);
      if (!marked) this.live.markLast(0);
    }
    this.flush();
  }

  /** More than the limit behind: skip to a keyframe point if the stream has them, else close. */
  private overflowed(media: MediaTick | null): void {
    if (media === null || this.overflow === 'close') {
      this.fail(SessionErrors.RECEIVER_TOO_SLOW);
      return;
    }
    // Cut where the stream is clean (a keyframe point), so what was sent ends on a boundary.
    if (this.backlog.cutAtFirstMark()) this.live.clear();
    else if (!this.live.cutAtFirstMark()) {
      // No keyframe point queued: keep queueing up to the next one, within twice the limit.
      this.cutPending = true;
      if (this.live.bytes > 2 * this.bufferLimit) this.fail(SessionErrors.RECEIVER_TOO_SLOW);
      return;
    }
    this.cutPending = false;
    this.awaiting = 'skip';
    // Init parts may have changed in what was dropped: send the repeatable ones again on resume.
    this.version = -1;
    this.skips++;
  }

  private end(why: Closure | SessionError): void {
    if (this.state === 'closed') return;
    this.detach();
    this.socket.close(why.closeCode, why.closeReason);
  }

  /** An empty socket buffer takes any chunk, so one chunk larger than the limit still goes through. */
  private canSend(length: number): boolean {
    const buffered = this.socket.bufferedAmount();
    return buffered === 0 || buffered + length <= Math.min(this.bufferLimit, SOCKET_HIGH_WATER_BYTES);
  }

  private send(data: Uint8Array): void {
    this.socket.sendBinary(data);
    this.sentChunks++;
    this.bytesSent += data.byteLength;
  }
}

function isChunkList(backlog: Backlog | readonly Uint8Array[]): backlog is readonly Uint8Array[] {
  return Array.isArray(backlog);
}
