import { Closures, SessionErrors } from '../protocol/errors.js';
import type { Closure, SessionError } from '../protocol/errors.js';
import type { ConnectionKind } from '../protocol/route.js';
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
  /** Chunks not yet handed to the socket; stable copies, never views of a neutered buffer. */
  private queue: Uint8Array[] = [];
  private queueHead = 0;
  /** Queued bytes that came from the live stream (the cache backlog is not the receiver's fault). */
  private queuedLiveBytes = 0;
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
    return this.state === 'closed' ? 0 : this.socket.bufferedAmount() + this.queuedBytes();
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
    for (const chunk of backlog) this.queue.push(chunk);
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
    if (this.queueHead === this.queue.length && this.canSend(data.byteLength)) {
      this.send(data);
      return;
    }
    this.queue.push(stable());
    this.queuedLiveBytes += data.byteLength;
    if (this.queuedLiveBytes > this.bufferLimit) this.fail(SessionErrors.RECEIVER_TOO_SLOW);
  }

  /** The socket drained: send what was waiting. */
  flush(): void {
    while (this.state === 'live' && this.queueHead < this.queue.length) {
      const chunk = this.queue[this.queueHead]!;
      if (!this.canSend(chunk.byteLength)) return;
      this.queue[this.queueHead] = EMPTY;
      this.queueHead++;
      this.queuedLiveBytes = Math.max(0, this.queuedLiveBytes - chunk.byteLength);
      this.send(chunk);
    }
    this.queue = [];
    this.queueHead = 0;
    this.queuedLiveBytes = 0;
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
    this.queue = [];
    this.queueHead = 0;
    this.queuedLiveBytes = 0;
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

  private queuedBytes(): number {
    let total = 0;
    for (let i = this.queueHead; i < this.queue.length; i++) total += this.queue[i]!.byteLength;
    return total;
  }
}

const EMPTY = new Uint8Array(0);
