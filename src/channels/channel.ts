import { timingSafeEqual } from 'node:crypto';
import { Closures, SessionErrors } from '../protocol/errors.js';
import type { Closure } from '../protocol/errors.js';
import type { StreamCache } from '../media/chunk-cache.js';
import { Receiver } from './receiver.js';
import type { ClientSocket, SessionInfo } from './transport.js';

/** The publishing side of a channel. */
export interface Publisher {
  readonly info: SessionInfo;
  readonly streamId: string;
  readonly socket: ClientSocket;
  readonly startedAt: number;
  bytesIn: number;
  chunksIn: number;
}

/**
 * One channel: at most one publisher, any number of receivers, and the cache for late joiners.
 * Data flows one way: `publish()` → cache → every live receiver.
 */
export class Channel {
  private currentPublisher: Publisher | undefined;
  /** A publish upgrade passed the checks and awaits authorization: the channel is taken. */
  private reserved = false;
  readonly receivers = new Set<Receiver>();

  constructor(
    readonly name: string,
    readonly cache: StreamCache,
  ) {}

  get publisher(): Publisher | undefined {
    return this.currentPublisher;
  }

  get isPublishing(): boolean {
    return this.currentPublisher !== undefined || this.reserved;
  }

  /** True when nothing uses the channel any more and the registry may drop it. */
  get isUnused(): boolean {
    return !this.isPublishing && this.receivers.size === 0;
  }

  /** Takes the channel for a publisher whose authorization is pending. False if taken. */
  reserve(): boolean {
    if (this.isPublishing) return false;
    this.reserved = true;
    return true;
  }

  /** Gives back a reservation (authorization refused or the client went away). */
  unreserve(): void {
    this.reserved = false;
  }

  /** Starts a publishing session; idle receivers with the right key go live, others are refused. */
  startPublishing(publisher: Publisher): void {
    this.reserved = false;
    this.currentPublisher = publisher;
    for (const receiver of this.receivers) {
      if (receiver.currentState !== 'idle') continue;
      if (keysMatch(receiver.info.key, publisher.info.key)) this.startReceiver(receiver);
      else receiver.fail(SessionErrors.INVALID_STREAMING_KEY);
    }
  }

  /**
   * Adds a receiver. While published, its key must match the publisher's: false means it was
   * refused (it has been sent the error and closed).
   */
  addReceiver(receiver: Receiver): boolean {
    const publisher = this.currentPublisher;
    if (publisher !== undefined && !keysMatch(receiver.info.key, publisher.info.key)) {
      receiver.fail(SessionErrors.INVALID_STREAMING_KEY);
      return false;
    }
    this.receivers.add(receiver);
    if (publisher !== undefined) this.startReceiver(receiver);
    return true;
  }

  removeReceiver(receiver: Receiver): void {
    receiver.detach();
    this.receivers.delete(receiver);
  }

  /** A chunk from the publisher. `data` is only valid during this call. */
  publish(data: Uint8Array): void {
    const publisher = this.currentPublisher;
    if (publisher === undefined) return;
    publisher.bytesIn += data.byteLength;
    publisher.chunksIn++;
    let copy: Uint8Array | undefined;
    const stable = (): Uint8Array => (copy ??= Uint8Array.prototype.slice.call(data));
    if (this.cache.enabled) this.cache.push(stable());
    for (const receiver of this.receivers) receiver.push(data, stable);
  }

  /** The publisher is gone: close every receiver and forget the stream. */
  endPublishing(closure: Closure = Closures.PUBLISHER_ENDED): void {
    if (this.currentPublisher === undefined) return;
    this.currentPublisher = undefined;
    this.cache.reset();
    for (const receiver of [...this.receivers]) receiver.close(closure);
  }

  private startReceiver(receiver: Receiver): void {
    if (receiver.kind === 'receive-clear-cache') {
      const backlog = this.cache.snapshot();
      this.cache.clearAndDisable();
      receiver.start(backlog);
    } else if (receiver.kind === 'probe') {
      const first = this.cache.first();
      receiver.start(first === undefined ? [] : [first]);
    } else {
      receiver.start(this.cache.snapshot());
    }
  }
}

/** Constant-time key comparison (length is not secret). */
export function keysMatch(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
