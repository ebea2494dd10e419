import { Closures, SessionErrors } from '../protocol/errors.js';
import type { Closure, SessionError } from '../protocol/errors.js';
import type { ConnectionKind } from '../protocol/route.js';
import { ChunkQueue } from '../media/chunk-queue.js';
import type { ClientSocket, SessionInfo } from './transport.js';

export type ReceiverKind = Exclude<ConnectionKind, 'publish'>;
export type ReceiverState = 'idle' | 'live' | 'closed';

/**
 * One receive / receive-clear-cache / probe connection of a channel.
 *
 * Fan-out never waits on a receiver: a chunk goes straight to the socket while the socket's
 * buffer stays within `bufferLimit`, otherwise into a queue flushed on drain. When more than
 * `bufferLimit` bytes of live data wait in that queue, the receiver is closed with "Receiver
 * too slow". So a receiver costs at most about twice the limit, whatever the client does, and
 * a late joiner's cache backlog (paced by drain) never counts against it.
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
  private sentChunks = 0;
  bytesSent = 0;
  readonly connectedAt = Date.now();

  constructor(
    readonly info: SessionInfo,
    readonly kind: ReceiverKind,
    private readonly socket: ClientSocket,
    private readonly bufferLimit: number,
  ) {}

  get currentState(): ReceiverState {
    return this.state;
  }

  get bufferedBytes(): number {
    return this.state === 'closed' ? 0 : this.socket.bufferedAmount() + this.backlog.bytes + this.live.bytes;
  }

  /** Goes live: sends `backlog` (the cache) first, then whatever `push` brings. */
  start(backlog: readonly Uint8Array[]): void {
    if (this.state !== 'idle') return;
    this.state = 'live';
    if (this.kind === 'probe') {
      const first = backlog[0];
      if (first !== undefined) this.deliverProbe(first);
      return;
    }
    for (const chunk of backlog) this.backlog.push(chunk);
    this.flush();
  }

  /**
   * Delivers a live chunk. `data` is valid during the call only; `stable()` returns a copy
   * that may be kept (made at most once per chunk for all receivers).
   */
  push(data: Uint8Array, stable: () => Uint8Array): void {
    if (this.state !== 'live') return;
    if (this.kind === 'probe') {
      this.deliverProbe(data);
      return;
    }
    if (this.backlog.length === 0 && this.live.length === 0 && this.canSend(data.byteLength)) {
      this.send(data);
      return;
    }
    this.live.push(stable());
    if (this.live.bytes > this.bufferLimit) this.fail(SessionErrors.RECEIVER_TOO_SLOW);
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

  private end(why: Closure | SessionError): void {
    if (this.state === 'closed') return;
    this.detach();
    this.socket.close(why.closeCode, why.closeReason);
  }

  private deliverProbe(data: Uint8Array): void {
    if (this.sentChunks > 0) return;
    this.send(data);
    this.close(Closures.PROBE_DONE);
  }

  /** An empty socket buffer takes any chunk, so one chunk larger than the limit still goes through. */
  private canSend(length: number): boolean {
    const buffered = this.socket.bufferedAmount();
    return buffered === 0 || buffered + length <= this.bufferLimit;
  }

  private send(data: Uint8Array): void {
    this.socket.sendBinary(data);
    this.sentChunks++;
    this.bytesSent += data.byteLength;
  }
}
