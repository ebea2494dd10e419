import { Backoff } from '../coordinator/backoff.js';
import { keysMatch } from '../channels/index.js';
import type { Channel, ChannelRegistry, ClientSocket, Publisher } from '../channels/index.js';
import { Connection } from '../client/session.js';
import type { StreamClientError } from '../client/errors.js';
import type { Logger } from '../log/logger.js';
import { Closures, SessionErrors } from '../protocol/errors.js';
import type { Closure, SessionError } from '../protocol/errors.js';

/**
 * `connecting`: opening the upstream; `waiting`: open, the origin has sent nothing yet (no
 * publisher there, or its cache is empty); `live`: the upstream is the local channel's
 * publisher; `retrying`: waiting for the next attempt after a failure; `closed`: done.
 */
export type RelayState = 'connecting' | 'waiting' | 'live' | 'retrying' | 'closed';

/** What the admin API shows of one relay. Never the key. */
export interface RelayView {
  readonly channel: string;
  /** The origin base URL in use (or tried last). */
  readonly upstream: string;
  readonly state: RelayState;
  readonly viewers: number;
  /** Stream bytes and messages received from the origin, over all connections. */
  readonly bytesIn: number;
  readonly messagesIn: number;
  /** Connections opened after the first one. */
  readonly reconnects: number;
  /** True while no local viewer is left and the upstream waits EDGE_IDLE_SECONDS before closing. */
  readonly lingering: boolean;
}

export interface RelayOptions {
  readonly origins: readonly string[];
  readonly idleMs: number;
  readonly heartbeatMs: number;
  readonly backoff: { readonly minMs: number; readonly maxMs: number };
  readonly logger: Logger;
}

/** The relays' manager: when a relay's local session ends, and when it is gone. */
export interface RelayOwner {
  readonly registry: ChannelRegistry;
  /** `relay` feeds its channel locally now (the origin sends). */
  claim(channel: Channel, relay: OriginRelay): void;
  /** `relay` no longer feeds its channel locally (its session there is over). */
  unclaim(channel: Channel, relay: OriginRelay): void;
  /** `relay` is closed for good. */
  forget(relay: OriginRelay): void;
}

/**
 * One upstream `receive` from the origin for one channel, opened with the key of the viewer that
 * asked first and shared by every local viewer the origin accepts (EdgeRelays decides). Once
 * the origin sends data, the relay is the local channel's publisher, so the channel's cache,
 * fan-out, slow-receiver policy and probes work as for a local one.
 * The origin's final answers (publisher ended, wrong key, too slow) are passed on to the
 * viewers; anything else (unreachable, restarting, refused) is retried with backoff while
 * viewers remain or the idle delay runs.
 */
export class OriginRelay {
  private connection: Connection | undefined;
  private currentState: RelayState = 'connecting';
  private originIndex = 0;
  private viewerCount = 0;
  private everOpened = false;
  private publisher: Publisher | undefined;
  private channel: Channel | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  /** The last problem logged: a failure is logged once until the state changes. */
  private lastProblem = '';
  private bytesIn = 0;
  private messagesIn = 0;
  private reconnects = 0;

  constructor(
    private readonly owner: RelayOwner,
    readonly channelName: string,
    readonly key: string,
    private readonly options: RelayOptions,
  ) {
    this.backoff = new Backoff(options.backoff.minMs, options.backoff.maxMs);
    this.connect();
  }

  get state(): RelayState {
    return this.currentState;
  }

  get viewers(): number {
    return this.viewerCount;
  }

  view(): RelayView {
    return {
      channel: this.channelName,
      upstream: this.origin,
      state: this.currentState,
      viewers: this.viewerCount,
      bytesIn: this.bytesIn,
      messagesIn: this.messagesIn,
      reconnects: this.reconnects,
      lingering: this.lingerTimer !== undefined,
    };
  }

  /** A local viewer of the channel arrived (admitted or waiting for its key's check). */
  viewerJoined(): void {
    this.viewerCount++;
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
  }

  /** A local viewer left: with none left, the upstream lingers `idleMs`, then closes. */
  viewerLeft(): void {
    this.viewerCount--;
    if (this.viewerCount === 0 && this.currentState !== 'closed') {
      this.lingerTimer = setTimeout(() => this.close('no viewer left'), this.options.idleMs);
    }
  }

  /** The origin base URL in use (or tried last): where the edge asks about other keys too. */
  get upstream(): string {
    return this.origin;
  }

  /** Closes the upstream; local viewers are left to the caller (server shutdown) or closed by `endLocal`. */
  close(why: string): void {
    if (this.currentState === 'closed') return;
    this.log(`closed (${why})`);
    this.currentState = 'closed';
    clearTimeout(this.lingerTimer);
    clearTimeout(this.retryTimer);
    this.lingerTimer = undefined;
    this.connection?.close(1000);
    this.connection = undefined;
    this.endLocal(Closures.PUBLISHER_ENDED);
    this.owner.forget(this);
  }

  private get origin(): string {
    return this.options.origins[this.originIndex]!;
  }

  private connect(): void {
    this.currentState = 'connecting';
    const url = `${this.origin}/${this.channelName}/${this.key}/receive`;
    const connection: Connection = new Connection(
      url,
      { heartbeatMs: this.options.heartbeatMs },
      {
        open: () => {
          if (connection === this.connection) this.onOpen();
        },
        binary: (data) => {
          if (connection === this.connection) this.onData(data);
        },
        closed: (error) => {
          if (connection === this.connection) this.onClosed(error);
        },
      },
    );
    this.connection = connection;
  }

  private onOpen(): void {
    if (this.everOpened) this.reconnects++;
    this.everOpened = true;
    this.currentState = 'waiting';
    this.backoff.reset();
    this.lastProblem = '';
    this.log('connected');
  }

  private onData(data: Uint8Array): void {
    this.bytesIn += data.byteLength;
    this.messagesIn++;
    if (this.publisher === undefined) this.goLive();
    this.channel?.publish(data);
  }

  /** The origin is sending: this relay becomes the local channel's publisher. */
  private goLive(): void {
    const channel = this.owner.registry.getOrCreate(this.channelName);
    const socket: ClientSocket = {
      sendBinary: () => {},
      sendText: () => {},
      bufferedAmount: () => 0,
      // An operator's kill: the local session ends as if the publisher had.
      close: () => this.close('killed by an operator'),
    };
    this.publisher = {
      info: { id: 0, ip: new URL(this.origin).host, channel: this.channelName, key: this.key },
      streamId: '',
      socket,
      startedAt: Date.now(),
      bytesIn: 0,
      chunksIn: 0,
    };
    this.channel = channel;
    this.currentState = 'live';
    channel.startPublishing(this.publisher);
    this.owner.claim(channel, this);
  }

  private onClosed(error: StreamClientError | undefined): void {
    this.connection = undefined;
    const final = finalAnswer(error);
    if (final !== undefined) {
      // The origin's answer to a viewer of this key: the edge's viewers get the same.
      this.endLocal(final, true);
      this.close(error === undefined ? 'publisher ended' : error.message);
      return;
    }
    const opened = this.currentState !== 'connecting';
    this.endLocal(Closures.PUBLISHER_ENDED);
    this.problem(opened ? 'lost' : 'unreachable', error?.message ?? 'closed');
    if (!opened && this.originIndex + 1 < this.options.origins.length) {
      // The next origin of the list, at once.
      this.originIndex++;
      this.connect();
      return;
    }
    this.originIndex = 0;
    this.currentState = 'retrying';
    const delayMs = this.backoff.next();
    if (this.options.logger.debugEnabled) this.options.logger.debug(`[EDGE] '${this.channelName}' next attempt in ${Math.round(delayMs)} ms`);
    this.retryTimer = setTimeout(() => this.connect(), delayMs);
  }

  /**
   * Ends the local publishing session, if any: every viewer it fed gets `why`. With `idleToo`,
   * the idle viewers presenting this relay's key get it as well (the origin answered that key;
   * viewers admitted with other keys keep waiting, see EdgeRelays.forget).
   */
  private endLocal(why: Closure | SessionError, idleToo = false): void {
    const live = this.channel;
    const channel = live ?? (idleToo ? this.owner.registry.get(this.channelName) : undefined);
    if (channel === undefined) return;
    if ('message' in why || live === undefined) {
      for (const receiver of [...channel.receivers]) {
        if (live === undefined && !keysMatch(receiver.info.key, this.key)) continue;
        if ('message' in why) receiver.fail(why);
        else receiver.close(why);
      }
    }
    if (live !== undefined) {
      this.channel = undefined;
      this.publisher = undefined;
      channel.endPublishing(Closures.PUBLISHER_ENDED);
      this.owner.unclaim(channel, this);
    }
    this.owner.registry.releaseIfUnused(channel);
    if (this.currentState === 'live') this.currentState = 'waiting';
  }

  /** Logs a failure once per kind until the next successful connection: never a line per retry. */
  private problem(kind: 'lost' | 'unreachable', detail: string): void {
    if (kind === this.lastProblem) return;
    this.lastProblem = kind;
    this.log(`${kind}: ${detail}`, true);
  }

  private log(text: string, error = false): void {
    const line = `[EDGE] '${this.channelName}' upstream ${this.origin} ${text}`;
    if (error) this.options.logger.error(`${line}; retrying with backoff`);
    else this.options.logger.info(line);
  }
}

/**
 * The origin's answers that are final for this channel and the upstream's key: a normal close
 * (the publisher ended), a wrong key, a receiver too slow. Anything else is a connection problem, retried.
 */
function finalAnswer(error: StreamClientError | undefined): Closure | SessionError | undefined {
  if (error === undefined) return Closures.PUBLISHER_ENDED;
  if (error.code === 'INVALID_STREAMING_KEY') return SessionErrors.INVALID_STREAMING_KEY;
  if (error.code === 'RECEIVER_TOO_SLOW') return SessionErrors.RECEIVER_TOO_SLOW;
  return undefined;
}
