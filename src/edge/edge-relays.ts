import { createHash } from 'node:crypto';
import { Backoff } from '../coordinator/backoff.js';
import { keysMatch } from '../channels/index.js';
import type { Channel, ChannelRegistry, Receiver } from '../channels/index.js';
import type { Config } from '../config/index.js';
import { ConfigError } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { SessionErrors } from '../protocol/errors.js';
import { KeyCheck } from './key-check.js';
import type { KeyVerdict } from './key-check.js';
import { OriginRelay } from './origin-relay.js';
import type { RelayOptions, RelayOwner, RelayView } from './origin-relay.js';

/**
 * What the stream server consults on an edge: a viewer arrived for a channel (nothing is ever
 * published here), and when it leaves.
 */
export interface UpstreamSource {
  /**
   * A local viewer passed the edge's own checks. The edge adds it to its channel once the origin
   * accepts its key (at once when already known), or fails it with the origin's answer; call the
   * returned function when it leaves (more than once is fine).
   */
  viewerJoined(receiver: Receiver): () => void;
  /** Every relay, for the admin API and metrics. */
  relays(): RelayView[];
  /** Closes every upstream (server shutdown: the viewers are closed by the server). */
  close(): Promise<void>;
}

/** What an edge in the main thread of worker threads passes on (see src/cluster/). */
export interface EdgeHooks {
  /** A viewer joined its channel: the origin accepted its key. */
  admitted?(receiver: Receiver): void;
  /** The channel is fed from the origin (true) or no longer (false). */
  publishing?(channel: string, live: boolean): void;
}

/** Reconnect delays: full jitter between these bounds, doubling per failed round. */
const BACKOFF = { minMs: 250, maxMs: 5000 };
/** Key checks (upstream probes) open at once on this edge; more wait in line. */
export const MAX_KEY_CHECKS = 8;

/** One channel on the edge: its relay, its viewers, and what the origin said about their keys. */
interface EdgeChannel {
  readonly name: string;
  relay: OriginRelay;
  /** Every local viewer, admitted or waiting for its key's check. */
  readonly viewers: Set<Receiver>;
  /** Keys the origin accepted for this relay's session (SHA-256 digests: no key kept in clear for long). */
  readonly accepted: Set<string>;
  /** Viewers waiting for their key's check, by key. */
  readonly waiting: Map<string, Set<Receiver>>;
  /** The check of each waiting key: running, queued, or due again later (a timer). */
  readonly checks: Map<string, KeyCheckSlot>;
}

interface KeyCheckSlot {
  check?: KeyCheck;
  /** In the queue already: one entry per slot. */
  queued?: boolean;
  retry?: NodeJS.Timeout;
  readonly backoff: Backoff;
}

/**
 * The relays of an edge, one per channel. The origin alone decides about keys: the relay's
 * upstream carries the key of the viewer that came first, and a viewer with another key (a play
 * token, a play key, the publisher's key) is admitted once a short upstream `probe` with its key
 * got stream data from the origin; the origin's wrong-key answer to that probe is the viewer's.
 * An accepted key is remembered while the relay's session lasts, so a thousand viewers with one
 * token cost one probe; refusals are never remembered. At most MAX_KEY_CHECKS probes are open
 * at once. A probe that cannot get an answer (origin unreachable, stream ended first) is tried
 * again with backoff, its viewers waiting meanwhile like idle receivers.
 */
export class EdgeRelays implements UpstreamSource, RelayOwner {
  private readonly channels = new Map<string, EdgeChannel>();
  /** Checks waiting for a free slot, in arrival order. */
  private readonly queue: Array<{ state: EdgeChannel; key: string; slot: KeyCheckSlot }> = [];
  private running = 0;
  private closing = false;
  private readonly options: RelayOptions;

  constructor(
    readonly registry: ChannelRegistry,
    config: Config,
    private readonly logger: Logger,
    /** Worker threads: the edge runs in the main thread and tells the workers what happens. */
    private readonly hooks: EdgeHooks = {},
  ) {
    if (config.controlBaseUrl !== '') {
      throw new ConfigError('ORIGIN_URL', 'ORIGIN_URL and CONTROL_BASE_URL are both set: an edge takes no publishers, so it does not register with a coordinator (set the coordinator on the origins).');
    }
    this.options = {
      origins: config.originUrl,
      idleMs: config.edgeIdleSeconds * 1000,
      heartbeatMs: config.heartbeatIntervalSeconds * 1000,
      backoff: BACKOFF,
      logger,
    };
    logger.info(`[EDGE] Relaying channels from ${config.originUrl.join(', ')} (idle upstreams close after ${config.edgeIdleSeconds} s)`);
  }

  viewerJoined(receiver: Receiver): () => void {
    const name = receiver.info.channel;
    let state = this.channels.get(name);
    if (state === undefined) {
      state = {
        name,
        relay: new OriginRelay(this, name, receiver.info.key, this.options),
        viewers: new Set(),
        accepted: new Set(),
        waiting: new Map(),
        checks: new Map(),
      };
      this.channels.set(name, state);
    }
    const joined = state;
    joined.viewers.add(receiver);
    joined.relay.viewerJoined();
    let left = false;
    const leave = (): void => {
      if (left) return;
      left = true;
      this.viewerLeft(joined, receiver);
    };
    this.admit(joined, receiver);
    // A probe answered at once from the cache is closed already (its close may have run first).
    if (receiver.currentState === 'closed') leave();
    return leave;
  }

  relays(): RelayView[] {
    return [...this.channels.values()].map((state) => state.relay.view());
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const state of [...this.channels.values()]) {
      this.dropChecks(state);
      state.relay.close('server shutting down');
    }
  }

  claim(channel: Channel): void {
    this.hooks.publishing?.(channel.name, true);
  }

  /** The relay's session is over: what the origin accepted for it may not hold for the next. */
  unclaim(channel: Channel, relay: OriginRelay): void {
    this.hooks.publishing?.(channel.name, false);
    const state = this.channels.get(channel.name);
    if (state?.relay === relay) state.accepted.clear();
  }

  /**
   * The relay is closed. Viewers still there (admitted with other keys, or waiting for a check)
   * get a new relay, opened with one of their keys; with none left, the channel is forgotten.
   */
  forget(relay: OriginRelay): void {
    const state = this.channels.get(relay.channelName);
    if (state?.relay !== relay) return;
    state.accepted.clear();
    // Closed viewers (their leave may come later) are not the new relay's.
    for (const receiver of state.viewers) if (receiver.currentState === 'closed') state.viewers.delete(receiver);
    const remaining = [...state.viewers];
    if (this.closing || remaining.length === 0) {
      this.dropChecks(state);
      this.channels.delete(state.name);
      return;
    }
    const admitted = remaining.find((receiver) => !this.isWaiting(state, receiver));
    const key = admitted?.info.key ?? remaining[0]!.info.key;
    state.relay = new OriginRelay(this, state.name, key, this.options);
    for (let i = 0; i < remaining.length; i++) state.relay.viewerJoined();
    // Viewers with the new relay's key have their answer from its upstream now.
    if (state.waiting.has(key)) this.settleKey(state, key, 'accepted');
  }

  /** Adds the viewer to the channel when its key is known to be good, else waits for a check. */
  private admit(state: EdgeChannel, receiver: Receiver): void {
    const key = receiver.info.key;
    if (keysMatch(key, state.relay.key) || state.accepted.has(digest(key))) {
      this.join(state.name, receiver);
      return;
    }
    let waiting = state.waiting.get(key);
    if (waiting === undefined) {
      waiting = new Set();
      state.waiting.set(key, waiting);
    }
    waiting.add(receiver);
    if (!state.checks.has(key)) {
      const slot: KeyCheckSlot = { backoff: new Backoff(BACKOFF.minMs, BACKOFF.maxMs) };
      state.checks.set(key, slot);
      this.enqueue(state, key, slot);
    }
  }

  private viewerLeft(state: EdgeChannel, receiver: Receiver): void {
    const counted = state.viewers.delete(receiver);
    const key = receiver.info.key;
    const waiting = state.waiting.get(key);
    if (waiting?.delete(receiver) === true && waiting.size === 0) {
      // Nobody waits for that answer any more.
      state.waiting.delete(key);
      this.dropCheck(state, key);
    }
    const channel = this.registry.get(state.name);
    if (channel !== undefined) {
      channel.removeReceiver(receiver);
      this.registry.releaseIfUnused(channel);
    }
    if (counted && this.channels.get(state.name) === state) state.relay.viewerLeft();
  }

  private enqueue(state: EdgeChannel, key: string, slot: KeyCheckSlot): void {
    if (slot.queued === true) return;
    slot.queued = true;
    this.queue.push({ state, key, slot });
    this.runQueue();
  }

  private runQueue(): void {
    while (this.running < MAX_KEY_CHECKS && this.queue.length > 0) {
      const { state, key, slot } = this.queue.shift()!;
      slot.queued = false;
      // Dropped meanwhile (its viewers left, or the channel is gone).
      if (state.checks.get(key) !== slot || this.channels.get(state.name) !== state) continue;
      this.running++;
      if (this.logger.debugEnabled) this.logger.debug(`[EDGE] '${state.name}' checking a viewer's key with the origin (${this.running} of ${MAX_KEY_CHECKS} checks open)`);
      const url = `${state.relay.upstream}/${state.name}/${key}/probe`;
      slot.check = new KeyCheck(url, this.options.heartbeatMs, (verdict, detail) => {
        this.running--;
        slot.check = undefined;
        this.checked(state, key, slot, verdict, detail);
        this.runQueue();
      });
    }
  }

  private checked(state: EdgeChannel, key: string, slot: KeyCheckSlot, verdict: KeyVerdict, detail: string): void {
    if (state.checks.get(key) !== slot) return;
    if (verdict !== 'unknown') {
      if (this.logger.debugEnabled) this.logger.debug(`[EDGE] '${state.name}' the origin ${verdict} a viewer's key`);
      this.settleKey(state, key, verdict);
      return;
    }
    // No answer: the viewers wait like idle receivers while the check is tried again.
    const delayMs = slot.backoff.next();
    if (this.logger.debugEnabled) this.logger.debug(`[EDGE] '${state.name}' key check without an answer (${detail}); again in ${Math.round(delayMs)} ms`);
    slot.retry = setTimeout(() => {
      slot.retry = undefined;
      this.enqueue(state, key, slot);
    }, delayMs);
  }

  /** The origin's verdict on `key`: its waiting viewers join the channel, or get the wrong-key answer. */
  private settleKey(state: EdgeChannel, key: string, verdict: 'accepted' | 'refused'): void {
    this.dropCheck(state, key);
    const waiting = state.waiting.get(key);
    state.waiting.delete(key);
    if (verdict === 'accepted') state.accepted.add(digest(key));
    if (waiting === undefined) return;
    for (const receiver of waiting) {
      if (receiver.currentState === 'closed') continue;
      if (verdict === 'accepted') this.join(state.name, receiver);
      else receiver.fail(SessionErrors.INVALID_STREAMING_KEY);
    }
  }

  private join(name: string, receiver: Receiver): void {
    if (this.registry.getOrCreate(name).addReceiver(receiver)) this.hooks.admitted?.(receiver);
  }

  private isWaiting(state: EdgeChannel, receiver: Receiver): boolean {
    return state.waiting.get(receiver.info.key)?.has(receiver) === true;
  }

  private dropCheck(state: EdgeChannel, key: string): void {
    const slot = state.checks.get(key);
    if (slot === undefined) return;
    state.checks.delete(key);
    clearTimeout(slot.retry);
    if (slot.check !== undefined) {
      slot.check.cancel();
      slot.check = undefined;
      this.running--;
      this.runQueue();
    }
  }

  private dropChecks(state: EdgeChannel): void {
    for (const key of [...state.checks.keys()]) this.dropCheck(state, key);
  }
}

/** What `accepted` holds instead of a key. */
function digest(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('base64');
}
