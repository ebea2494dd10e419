import { timingSafeEqual } from 'node:crypto';
import { Closures, SessionErrors } from '../protocol/errors.js';
import type { Closure } from '../protocol/errors.js';
import { copyBytes } from '../media/bytes.js';
import type { Backlog, MediaTick, ProbeAnswer, StreamCache } from '../media/chunk-cache.js';
import type { MediaInfo } from '../media/types.js';
import { Receiver } from './receiver.js';
import type { OverflowPolicy, ReceiverKind } from './receiver.js';
import type { ClientSocket, SessionInfo } from './transport.js';

/** The publishing side of a channel. */
export interface Publisher {
  readonly info: SessionInfo;
  readonly streamId: string;
  readonly socket: ClientSocket;
  readonly startedAt: number;
  bytesIn: number;
  chunksIn: number;
  /**
   * The stream comes from the channel's publisher on another thread (worker threads): not a
   * connection of this thread, never killed or counted here.
   */
  readonly relayed?: boolean;
  /**
   * Where the stream is cached, when not here (a relayed stream: its publisher's thread). A
   * receiver joining the stream late (after its first chunk came here) waits, idle, for
   * `startLate` with what it gets there.
   */
  readonly lateJoins?: LateJoinSource;
}

/**
 * What a receiver joining a stream late starts with: a probe's answer, or a backlog. `cached`:
 * the backlog is the cache (false: caching is off, after a receive-clear-cache or with
 * GOP_CACHE_SIZE_MB=0, and the backlog holds at most the init).
 */
export type LateJoin = { readonly probe: ProbeAnswer } | { readonly backlog: Backlog; readonly cached: boolean };

/** A live chunk as the receivers got it (see Channel.joining). */
interface MissedChunk {
  readonly data: Uint8Array;
  readonly media: MediaTick | null;
}

/** The cache of a stream published on another thread (see Publisher.lateJoins). */
export interface LateJoinSource {
  /** `receiver` joined late: get it what `lateJoin(receiver.kind)` gives where the stream is cached. */
  request(receiver: Receiver): void;
}

export interface ChannelOptions {
  /** RECEIVER_OVERFLOW for the channel's receivers (default `skip`). */
  readonly overflow?: OverflowPolicy;
}

const NO_BACKLOG: Backlog = { chunks: [], points: [], awaitKeyframe: false, generation: 0, version: 0 };

/**
 * One channel: at most one publisher, any number of receivers, and the cache for late joiners.
 * Data flows one way: `publish()` → cache (which parses recognised containers, once per chunk)
 * → every live receiver.
 */
export class Channel {
  private currentPublisher: Publisher | undefined;
  /** A publish upgrade passed the checks and awaits authorization: the channel is taken. */
  private reserved = false;
  readonly receivers = new Set<Receiver>();
  /**
   * Told when a receive-clear-cache receiver empties and disables the cache here (a relayed
   * stream's thread tells its publisher's thread).
   */
  readonly cacheClearedListeners = new Set<() => void>();
  /**
   * Told once, as the current stream ends, with what a late joiner would have got just before
   * (its publisher's thread keeps that a moment for viewers of other threads on their way).
   */
  readonly endListeners = new Set<(ended: { readonly publisher: Publisher; readonly backlog: Backlog; readonly closure: Closure }) => void>();
  /**
   * Late joiners of a relayed stream waiting for what they start with (see Publisher.lateJoins),
   * with the live chunks that came meanwhile: if the answer is no cache, they get those, as a
   * receiver that joined before them does on one thread.
   */
  private readonly joining = new Map<Receiver, MissedChunk[]>();

  constructor(
    readonly name: string,
    readonly cache: StreamCache,
    private readonly options: ChannelOptions = {},
  ) {}

  /** What was detected about the current stream: container, codecs, resolution. */
  get media(): MediaInfo {
    return this.cache.info;
  }

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
      if (mayView(receiver, publisher)) this.startReceiver(receiver);
      else receiver.fail(SessionErrors.INVALID_STREAMING_KEY);
    }
  }

  /**
   * Adds a receiver. While published, its key must match the publisher's: false means it was
   * refused (it has been sent the error and closed).
   */
  addReceiver(receiver: Receiver): boolean {
    const publisher = this.currentPublisher;
    if (publisher !== undefined && !mayView(receiver, publisher)) {
      receiver.fail(SessionErrors.INVALID_STREAMING_KEY);
      return false;
    }
    if (this.options.overflow !== undefined) receiver.overflow = this.options.overflow;
    this.receivers.add(receiver);
    if (publisher !== undefined) this.startReceiver(receiver);
    return true;
  }

  removeReceiver(receiver: Receiver): void {
    receiver.detach();
    this.receivers.delete(receiver);
    this.joining.delete(receiver);
  }

  /**
   * A chunk from the publisher. `data` is only valid during this call, unless `kept`: then it
   * is a copy nobody else writes to, which the cache and queues may keep as it is.
   */
  publish(data: Uint8Array, kept = false): void {
    const publisher = this.currentPublisher;
    if (publisher === undefined) return;
    publisher.bytesIn += data.byteLength;
    publisher.chunksIn++;
    let copy: Uint8Array | undefined = kept ? data : undefined;
    const stable = (): Uint8Array => (copy ??= copyBytes(data));
    const media = this.cache.wantsChunks ? this.cache.push(stable()) : null;
    // Per chunk on every channel: no iterator unless a late joiner waits (relayed streams only).
    if (this.joining.size > 0) for (const missed of this.joining.values()) missed.push({ data: stable(), media });
    for (const receiver of this.receivers) {
      if (receiver.kind === 'probe') this.serveProbe(receiver, data);
      else receiver.push(data, stable, media);
    }
  }

  /** The publisher is gone: close every receiver that started and forget the stream. */
  endPublishing(closure: Closure = Closures.PUBLISHER_ENDED): void {
    const publisher = this.currentPublisher;
    if (publisher === undefined) return;
    this.currentPublisher = undefined;
    for (const listener of this.endListeners) listener({ publisher, backlog: this.cache.snapshot(), closure });
    this.endListeners.clear();
    this.joining.clear();
    this.cache.reset();
    // A receiver still waiting for its start (a late joiner of a stream relayed from another
    // thread, whose question reached the publisher's thread after the end) joined after the
    // end: it waits for the next stream, as on one thread.
    for (const receiver of [...this.receivers]) if (receiver.currentState !== 'idle') receiver.close(closure);
  }

  /**
   * Keeps nothing for late joiners for the rest of the stream, parsing it still (the keyframe
   * points of a relayed stream, whose cache is on its publisher's thread).
   */
  clearCache(): void {
    this.cache.clearAndDisable();
  }

  /**
   * What a receiver of `kind` joining now starts with: a probe's answer, or the cache's backlog
   * (a receive-clear-cache then empties and disables the cache).
   */
  lateJoin(kind: ReceiverKind): LateJoin {
    if (kind === 'probe') return { probe: this.cache.probe() };
    const backlog = this.cache.snapshot();
    const cached = this.cache.enabled;
    if (kind === 'receive-clear-cache') {
      this.cache.clearAndDisable();
      for (const listener of this.cacheClearedListeners) listener();
    }
    return { backlog, cached };
  }

  /**
   * `receiver`, waiting for it, gets what it joins with on the publisher's thread (`join` there,
   * in step with the stream here: see Publisher.lateJoins); null if that thread has no stream.
   */
  startLate(receiver: Receiver, join: LateJoin | null): void {
    const missed = this.joining.get(receiver) ?? [];
    this.joining.delete(receiver);
    if (!this.receivers.has(receiver) || receiver.currentState !== 'idle' || this.currentPublisher === undefined) return;
    // The init it has is the one here, which the publisher's thread numbers differently.
    const here = this.cache.snapshot();
    // A probe's "next chunk" is the first that came after it joined.
    if (join !== null && 'probe' in join) return this.startWith(receiver, join, missed[0]?.data);
    receiver.start(join === null ? here : { ...join.backlog, generation: here.generation, version: here.version });
    // A cache has what came meanwhile; with none, the receiver takes the stream from when it joined.
    if (join === null || !join.cached) for (const { data, media } of missed) receiver.push(data, () => data, media);
  }

  private startReceiver(receiver: Receiver): void {
    const publisher = this.currentPublisher;
    // Before the first chunk came, the stream is all ahead: not a late join, wherever it is cached.
    if (publisher?.lateJoins !== undefined && publisher.chunksIn > 0) {
      this.joining.set(receiver, []);
      publisher.lateJoins.request(receiver);
    } else this.startWith(receiver, this.lateJoin(receiver.kind));
  }

  private startWith(receiver: Receiver, join: LateJoin, live?: Uint8Array): void {
    if ('backlog' in join) {
      receiver.start(join.backlog);
      return;
    }
    receiver.start(NO_BACKLOG);
    this.answerProbe(receiver, join.probe, live);
  }

  private serveProbe(receiver: Receiver, live: Uint8Array): void {
    this.answerProbe(receiver, this.cache.probe(), live);
  }

  /**
   * A probe gets one message once the cache can answer: the init and the stream from a complete
   * keyframe (recognised containers), or the first chunk (opaque streams).
   */
  private answerProbe(receiver: Receiver, answer: ProbeAnswer, live?: Uint8Array): void {
    if (receiver.currentState !== 'live') return;
    if (answer === 'wait') return;
    if (answer === 'next-chunk') {
      if (live !== undefined) receiver.sendProbe(live);
      return;
    }
    receiver.sendProbe(answer.parts.length === 1 ? answer.parts[0]! : Buffer.concat(answer.parts));
  }
}

/** A receiver views with the publisher's key, or with a right granted when it connected. */
function mayView(receiver: Receiver, publisher: Publisher): boolean {
  return receiver.info.viewGranted === true || keysMatch(receiver.info.key, publisher.info.key);
}

/** Constant-time key comparison (length is not secret). */
export function keysMatch(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
