import { INTERNAL_IP } from '../bridge/bridge.js';
import { copyBytes, totalBytes } from '../media/bytes.js';
import { Receiver } from '../channels/index.js';
import type { Channel, ChannelRegistry, ClientSocket, LateJoin, Publisher, ReceiverKind } from '../channels/index.js';
import type { Backlog } from '../media/chunk-cache.js';
import { Closures } from '../protocol/errors.js';
import type { Closure } from '../protocol/errors.js';
import type { RelayMessage, RelayedPublisher } from './messages.js';
import { RelayOutbox } from './relay-outbox.js';
import type { RelayPort } from './relay-outbox.js';

/** Told when a relayed stream starts and ends on this thread (the main thread's bridges). */
export interface RelayObserver {
  publishStarted(channel: Channel, publisher: Publisher): void;
  publishEnded(channel: Channel, publisher: Publisher): void;
}

interface Subscription {
  readonly owner: number;
  /** The publisher of the relayed stream, once `start` came. */
  publisher?: Publisher;
}

/** Stream bytes applied per turn of the event loop (see ThreadRelays.handle). */
const RELAY_BYTES_PER_TURN = 64 * 1024;

/** How long a stream that ended here is kept at most for viewers of other threads on their way (see `lingering`). */
const LINGER_MS = 10_000;

/** A stream that ended on this thread, kept until the main thread's news of its end came. */
interface EndedStream {
  readonly publisher: RelayedPublisher;
  readonly backlog: Backlog;
  readonly closure: Closure;
  /** The threads it was served to when it ended: they have it all. */
  readonly servedTo: Set<number>;
  readonly expiry: NodeJS.Timeout;
}

/** A relayed publisher has no socket here: kills go to its own thread. */
const NO_SOCKET: ClientSocket = { sendBinary: () => {}, sendText: () => {}, bufferedAmount: () => 0, close: () => {} };

/**
 * Channels across threads. A channel's publisher lives on one thread (its owner); another
 * thread with receivers of the channel subscribes to the owner, which serves it like one more
 * receiver of the channel (an internal one that never skips): the backlog a late joiner would
 * get, then every chunk, then the end. The subscriber publishes that stream into its own channel
 * of the same name, whose fan-out, key checks and slow-receiver policy then work as for a local
 * publisher. So a chunk crosses to a thread once, whatever its number of receivers there.
 *
 * The stream is cached on its owner only: the subscriber's channel parses it (for the keyframe
 * points) but keeps nothing, and a receiver joining it late there asks the owner for what it
 * starts with (`late-join`). The answer comes on the port the stream comes by, so it fits the
 * stream exactly where the subscriber has it: the late joiner gets the owner's backlog, with
 * nothing twice and nothing missing, and memory holds one cache per channel, not one per thread.
 */
export class ThreadRelays {
  /** Who publishes what (the main thread's directory, as last told): channel → owner thread. */
  private readonly owners = new Map<string, number>();
  private readonly peers = new Map<number, RelayOutbox>();
  /** Channels this thread relays from their owner. */
  private readonly subscriptions = new Map<string, Subscription>();
  /** The internal receivers serving other threads: thread → channel → receiver. */
  private readonly served = new Map<number, Map<string, Receiver>>();
  /** Channels this thread told the main thread it has viewers of (see `interest`). */
  private readonly viewedHere = new Set<string>();
  /** For a publisher about to start here: the threads whose viewers wait for its first byte. */
  private readonly waitingThreads = new Map<string, readonly number[]>();
  /**
   * Streams that ended here, by channel: the main thread may have told a thread's first viewer
   * joining during the stream to ask for it (`serveViewers`), and that word may come after the
   * end. Such a viewer gets what a late joiner would have got just before the end, then the
   * end, as on one thread. Kept until the main thread's news of the end come (its word about
   * the stream came before, on the same port), or LINGER_MS if none come.
   */
  private readonly lingering = new Map<string, EndedStream>();
  /** Late joiners here waiting for the owner's answer (`late-join`), by request number. */
  private readonly lateJoiners = new Map<number, { readonly owner: number; readonly receiver: Receiver; readonly publisher: Publisher }>();
  private nextRequest = 1;

  constructor(
    private readonly registry: ChannelRegistry,
    private readonly options: {
      /** This thread's number (0: main). */
      readonly self: number;
      /**
       * Every stream is pushed to this thread by its owner from its first byte, viewers or not
       * (the main thread, for the bridges and recordings, which must get the whole stream).
       */
      readonly pushed?: boolean;
      /** The thread every local stream is pushed to from its start (see `pushed`). */
      readonly pushTo?: number;
      readonly observer?: RelayObserver;
      /**
       * This thread has viewers of a channel (true), or no longer (false): the thread that gets
       * its next publisher sends the stream here from its first byte (see `viewersWaiting`).
       */
      readonly interest?: (channel: string, viewed: boolean) => void;
    },
  ) {}

  addPeer(thread: number, port: RelayPort): void {
    this.peers.set(thread, new RelayOutbox(port));
    // A thread that came back (a restarted worker) may own channels we were waiting for.
    for (const [channel, owner] of this.owners) if (owner === thread) this.follow(channel);
  }

  /** A thread is gone (a worker died): its streams end here, its subscriptions are dropped. */
  removePeer(thread: number): void {
    this.peers.delete(thread);
    for (const [name, subscription] of [...this.subscriptions]) {
      if (subscription.owner === thread) this.endRelayed(name, Closures.PUBLISHER_ENDED);
    }
    for (const receiver of this.served.get(thread)?.values() ?? []) this.dropServed(thread, receiver);
    this.served.delete(thread);
    for (const [request, { owner }] of this.lateJoiners) if (owner === thread) this.lateJoiners.delete(request);
    for (const [channel, owner] of [...this.owners]) if (owner === thread) this.owners.delete(channel);
  }

  /** The directory changed: `channel` is published on `owner` (null: nowhere). */
  setOwner(channel: string, owner: number | null): void {
    // News of a stream here (its start) may come after it ended: only news of its end count.
    if (owner !== this.options.self) this.forgetEnded(channel);
    if (owner === null) this.owners.delete(channel);
    else this.owners.set(channel, owner);
    this.follow(channel);
  }

  /** The thread a channel's publisher is on, as far as this thread knows. */
  ownerOf(channel: string): number | undefined {
    return this.owners.get(channel);
  }

  /**
   * A receiver joined `channel` here: relay it from its owner if it is published elsewhere.
   * The returned function is called when the receiver leaves.
   */
  viewerJoined(channel: Channel): () => void {
    this.follow(channel.name);
    // Told whatever this thread believes of the channel's owner, which may be stale (a stream
    // that ended, its announcement still on the way): the next publisher's thread is to send the
    // stream here from its first byte, as one thread gives it to a waiting viewer (a
    // subscription made after the announcement would start from the cache).
    if (this.options.interest !== undefined && !this.viewedHere.has(channel.name)) {
      this.viewedHere.add(channel.name);
      this.options.interest(channel.name, true);
    }
    return () => this.viewerLeft(channel);
  }

  /** A publisher is about to start here: `threads` have viewers waiting for it. */
  viewersWaiting(channel: string, threads: readonly number[]): void {
    this.waitingThreads.set(channel, threads);
  }

  /**
   * The streams this thread serves to others end now, with `closure` for their viewers there
   * (a failing worker: its publishers are gone, the other threads are not shutting down).
   */
  endServed(closure: Closure): void {
    for (const channels of this.served.values()) for (const receiver of [...channels.values()]) receiver.close(closure);
    this.flush();
  }

  /** Everything relayed here ends (shutdown): nothing more is asked of the other threads. */
  close(): void {
    for (const name of [...this.subscriptions.keys()]) this.unsubscribe(name);
    for (const [thread, channels] of this.served) for (const receiver of [...channels.values()]) this.dropServed(thread, receiver);
    this.flush();
  }

  /** Posts what waits for the other threads now (their ports are about to close). */
  private flush(): void {
    for (const outbox of this.peers.values()) outbox.flush();
  }

  /**
   * Relay messages from thread `from` (one post). Messages are applied in order, at most
   * RELAY_BYTES_PER_TURN of stream per turn of the event loop: a thread that reads its publisher
   * faster than this one's receivers take the stream (a publisher at full speed) must not be
   * handed to the receivers in one burst, between two chances for their sockets to drain.
   */
  handle(from: number, batch: readonly RelayMessage[]): void {
    if (batch.length === 0) return;
    const idle = this.inbox.length === 0;
    for (const message of batch) this.inbox.push({ from, message });
    if (idle) setImmediate(() => this.applyInbox());
  }

  private readonly inbox: Array<{ from: number; message: RelayMessage }> = [];
  private inboxHead = 0;

  private applyInbox(): void {
    let bytes = 0;
    while (this.inboxHead < this.inbox.length && bytes < RELAY_BYTES_PER_TURN) {
      const { from, message } = this.inbox[this.inboxHead++]!;
      if (message.type === 'chunk') bytes += message.data.byteLength;
      else if (message.type === 'late-join-answer' && message.join !== null && 'backlog' in message.join) bytes += totalBytes(message.join.backlog.chunks);
      this.apply(from, message);
    }
    if (this.inboxHead < this.inbox.length) {
      setImmediate(() => this.applyInbox());
      return;
    }
    this.inbox.length = 0;
    this.inboxHead = 0;
  }

  private apply(from: number, message: RelayMessage): void {
    switch (message.type) {
      case 'subscribe':
        return this.serve(from, message.channel);
      case 'unsubscribe': {
        const receiver = this.served.get(from)?.get(message.channel);
        if (receiver !== undefined) this.dropServed(from, receiver);
        return;
      }
      case 'start':
        return this.startRelayed(from, message.channel, message.publisher, message.unasked === true);
      case 'absent':
        if (this.subscriptions.get(message.channel)?.owner === from) this.subscriptions.delete(message.channel);
        return;
      case 'chunk': {
        const subscription = this.subscriptions.get(message.channel);
        if (subscription?.publisher === undefined || subscription.owner !== from) return;
        const channel = this.registry.get(message.channel);
        if (channel?.publisher === subscription.publisher) channel.publish(message.data, true);
        return;
      }
      case 'end':
        if (this.subscriptions.get(message.channel)?.owner === from) {
          // The code and reason of a closure the owner's channel used (see Closures).
          this.endRelayed(message.channel, { closeCode: message.code, closeReason: message.reason } as Closure);
        }
        return;
      case 'clear': {
        const channel = this.registry.get(message.channel);
        if (channel?.publisher !== undefined && channel.publisher.relayed !== true) channel.clearCache();
        return;
      }
      case 'late-join':
        return this.answerLateJoin(from, message.channel, message.request, message.kind);
      case 'late-join-answer': {
        const waiting = this.lateJoiners.get(message.request);
        if (waiting === undefined || waiting.owner !== from) return;
        this.lateJoiners.delete(message.request);
        const channel = this.registry.get(message.channel);
        if (channel?.publisher === waiting.publisher) channel.startLate(waiting.receiver, message.join);
        return;
      }
    }
  }

  /** Subscribes to `name`'s owner if this thread should relay it and does not yet. */
  private follow(name: string): void {
    const owner = this.owners.get(name);
    const current = this.subscriptions.get(name);
    if (current !== undefined && current.owner === owner) return;
    if (owner === undefined || owner === this.options.self || !this.peers.has(owner)) return;
    if (this.options.pushed === true) return;
    const channel = this.registry.get(name);
    const wanted = channel !== undefined && hasViewers(channel);
    if (!wanted || (channel?.publisher !== undefined && channel.publisher.relayed !== true)) return;
    if (current !== undefined) this.unsubscribe(name);
    this.subscriptions.set(name, { owner });
    this.peers.get(owner)?.post({ type: 'subscribe', channel: name });
  }

  private viewerLeft(channel: Channel): void {
    if (this.options.pushed === true || hasViewers(channel)) return;
    if (this.viewedHere.delete(channel.name)) this.options.interest?.(channel.name, false);
    if (this.subscriptions.has(channel.name)) this.unsubscribe(channel.name);
  }

  private unsubscribe(name: string): void {
    const subscription = this.subscriptions.get(name);
    if (subscription === undefined) return;
    this.subscriptions.delete(name);
    this.peers.get(subscription.owner)?.post({ type: 'unsubscribe', channel: name });
    const channel = this.registry.get(name);
    if (channel !== undefined && subscription.publisher !== undefined && channel.publisher === subscription.publisher) {
      channel.endPublishing();
      this.options.observer?.publishEnded(channel, subscription.publisher);
      this.registry.releaseIfUnused(channel);
    }
  }

  private startRelayed(from: number, name: string, relayed: RelayedPublisher, unasked: boolean): void {
    const current = this.subscriptions.get(name);
    if (this.options.pushed === true) {
      if (current !== undefined) this.endRelayed(name, Closures.PUBLISHER_ENDED);
      this.subscriptions.set(name, { owner: from });
    } else if (unasked && current?.publisher === undefined && current?.owner !== from && hasViewers(this.registry.get(name))) {
      // Sent from the first byte to viewers waiting here (viewersWaiting): the channel's newest
      // stream, authorized after every earlier one ended. It replaces a subscription still
      // waiting for its start, asked of an owner this thread believed in and which has no stream
      // by now (its announcement still on the way).
      if (current !== undefined) this.peers.get(current.owner)?.post({ type: 'unsubscribe', channel: name });
      this.subscriptions.set(name, { owner: from });
    }
    const subscription = this.subscriptions.get(name);
    if (subscription?.owner !== from) {
      // Not wanted here (its viewers left, or this thread still follows the channel's previous
      // owner): the sender stops serving it, and serves it again if asked after the announcement.
      this.peers.get(from)?.post({ type: 'unsubscribe', channel: name });
      return;
    }
    const channel = this.registry.getOrCreate(name);
    if (channel.publisher !== undefined) return;
    const publisher: Publisher = {
      info: { id: relayed.id, ip: relayed.ip, channel: name, key: relayed.key },
      streamId: relayed.streamId,
      socket: NO_SOCKET,
      startedAt: relayed.startedAt,
      bytesIn: 0,
      chunksIn: 0,
      relayed: true,
      lateJoins: { request: (receiver) => this.askLateJoin(from, name, publisher, receiver) },
    };
    subscription.publisher = publisher;
    // A receive-clear-cache receiver that waited here for the stream clears the owner's cache.
    channel.cacheClearedListeners.add(() => {
      if (channel.publisher === publisher) this.peers.get(from)?.post({ type: 'clear', channel: name });
    });
    // The owner caches the stream: here it is only parsed.
    channel.clearCache();
    channel.startPublishing(publisher);
    this.options.observer?.publishStarted(channel, publisher);
  }

  private endRelayed(name: string, closure: Closure): void {
    const subscription = this.subscriptions.get(name);
    this.subscriptions.delete(name);
    const channel = this.registry.get(name);
    if (subscription?.publisher === undefined || channel === undefined || channel.publisher !== subscription.publisher) return;
    channel.cacheClearedListeners.clear();
    channel.endPublishing(closure);
    this.options.observer?.publishEnded(channel, subscription.publisher);
    this.registry.releaseIfUnused(channel);
    // Viewers that stay (none after an end, but the main thread follows everything) wait for the next owner.
    this.follow(name);
  }

  /**
   * The main thread says thread `to` has its first viewers of `name`, which joined during
   * stream `streamId`, published here: they get it as one thread would give it to them, even
   * if their thread has not heard of the stream yet, or hears of it only after its end.
   */
  serveViewers(to: number, name: string, streamId: string): void {
    const publisher = this.registry.get(name)?.publisher;
    if (publisher !== undefined && publisher.relayed !== true && publisher.streamId === streamId) return this.serve(to, name, true);
    const ended = this.lingering.get(name);
    const port = this.peers.get(to);
    if (ended !== undefined && ended.publisher.streamId === streamId && !ended.servedTo.has(to) && port !== undefined) {
      ended.servedTo.add(to);
      port.post({ type: 'start', channel: name, publisher: ended.publisher, unasked: true });
      for (const data of ended.backlog.chunks) port.postChunk(name, data);
      port.post({ type: 'end', channel: name, code: ended.closure.closeCode, reason: ended.closure.closeReason });
      return;
    }
    // Authorized here but not started yet: served from its first byte with the others waiting.
    const waiting = this.waitingThreads.get(name);
    if (waiting !== undefined && !waiting.includes(to)) this.waitingThreads.set(name, [...waiting, to]);
  }

  private forgetEnded(name: string): void {
    const ended = this.lingering.get(name);
    if (ended === undefined) return;
    clearTimeout(ended.expiry);
    this.lingering.delete(name);
  }

  /** A stream started here: push it to the thread that follows every stream, from its first byte. */
  publishStarted(channel: Channel): void {
    this.forgetEnded(channel.name);
    channel.endListeners.add(({ publisher, backlog, closure }) => {
      const servedTo = new Set([...this.served].filter(([, channels]) => channels.has(channel.name)).map(([thread]) => thread));
      const expiry = setTimeout(() => this.forgetEnded(channel.name), LINGER_MS).unref();
      this.lingering.set(channel.name, { publisher: relayedPublisher(publisher), backlog, closure, servedTo, expiry });
    });
    if (this.options.pushTo !== undefined) this.serve(this.options.pushTo, channel.name, true);
    for (const thread of this.waitingThreads.get(channel.name) ?? []) this.serve(thread, channel.name, true);
    this.waitingThreads.delete(channel.name);
  }

  /**
   * Thread `to` wants `name`'s stream (asked for it, or `unasked`: it has viewers waiting for
   * the stream from its first byte): serve it with an internal receiver, or say it is not here.
   */
  private serve(to: number, name: string, unasked = false): void {
    const port = this.peers.get(to);
    if (port === undefined) return;
    const channel = this.registry.get(name);
    const publisher = channel?.publisher;
    // Already served (sent from the first byte, then asked for after the announcement): it has it.
    if (this.served.get(to)?.has(name) === true) return;
    if (channel === undefined || publisher === undefined || publisher.relayed === true) {
      port.post({ type: 'absent', channel: name });
      return;
    }
    const { key } = publisher.info;
    port.post({ type: 'start', channel: name, publisher: relayedPublisher(publisher), ...(unasked ? { unasked } : {}) });
    let served = true;
    const stop = (): void => {
      served = false;
      this.served.get(to)?.delete(name);
    };
    const socket: ClientSocket = {
      sendBinary: (data) => port.postChunk(name, data),
      sendText: () => {},
      // Another thread never pushes back: it takes every chunk as it comes.
      bufferedAmount: () => 0,
      close: (code, reason) => {
        if (!served) return;
        stop();
        port.post({ type: 'end', channel: name, code, reason });
        // Nobody else removes an internal receiver: the channel must not stay on its account.
        channel.removeReceiver(receiver);
        this.registry.releaseIfUnused(channel);
      },
    };
    const receiver = new Receiver({ id: 0, ip: INTERNAL_IP, channel: name, key, viewGranted: true }, 'receive', socket, Number.MAX_SAFE_INTEGER);
    receiver.overflow = 'close';
    let channels = this.served.get(to);
    if (channels === undefined) this.served.set(to, (channels = new Map()));
    channels.set(name, receiver);
    stopServing.set(receiver, stop);
    channel.addReceiver(receiver);
  }

  private dropServed(thread: number, receiver: Receiver): void {
    const name = receiver.info.channel;
    stopServing.get(receiver)?.();
    const channel = this.registry.get(name);
    if (channel === undefined) return;
    channel.removeReceiver(receiver);
    this.registry.releaseIfUnused(channel);
  }

  /** `receiver` joined `name`'s relayed stream late: ask its owner what it starts with. */
  private askLateJoin(owner: number, name: string, publisher: Publisher, receiver: Receiver): void {
    const request = this.nextRequest++;
    this.lateJoiners.set(request, { owner, receiver, publisher });
    this.peers.get(owner)?.post({ type: 'late-join', channel: name, request, kind: receiver.kind });
  }

  /** Thread `to` has a late joiner of `kind` on `name`'s stream, which this thread serves it. */
  private answerLateJoin(to: number, name: string, request: number, kind: ReceiverKind): void {
    const channel = this.registry.get(name);
    const served = this.served.get(to)?.has(name) === true && channel?.publisher !== undefined;
    this.peers.get(to)?.post({ type: 'late-join-answer', channel: name, request, join: served ? ownBuffers(channel.lateJoin(kind)) : null });
  }
}

/** Who publishes a stream, as told to the threads it is relayed to. */
function relayedPublisher(publisher: Publisher): RelayedPublisher {
  const { id, ip, key } = publisher.info;
  return { id, ip, key, streamId: publisher.streamId, startedAt: publisher.startedAt };
}

/** How an internal receiver serving another thread stops (unsubscribed, or that thread is gone). */
const stopServing = new WeakMap<Receiver, () => void>();

/**
 * `join` with each part in a buffer of its own: a view of a larger buffer (a part of a chunk)
 * would take the whole buffer with it to the other thread.
 */
function ownBuffers(join: LateJoin): LateJoin {
  const own = (parts: readonly Uint8Array[]): Uint8Array[] => parts.map((part) => (part.byteLength === part.buffer.byteLength ? part : copyBytes(part)));
  if ('backlog' in join) return { ...join, backlog: { ...join.backlog, chunks: own(join.backlog.chunks) } };
  return typeof join.probe === 'string' ? join : { probe: { parts: own(join.probe.parts) } };
}

/** Receivers of clients (not the internal ones of bridges and relays). */
function hasViewers(channel: Channel | undefined): boolean {
  if (channel === undefined) return false;
  for (const receiver of channel.receivers) if (receiver.info.ip !== INTERNAL_IP) return true;
  return false;
}
