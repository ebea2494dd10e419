import { isInternalReceiver } from '../bridge/bridge.js';
import type { ConnectionKind } from '../protocol/route.js';
import type { Traffic } from '../server/counters.js';
import type { ChannelRegistry } from '../channels/index.js';
import type { StreamServer } from '../server/stream-server.js';

/** One thread's figures, as plain data the main thread sums (stats API, metrics). */
export interface ThreadState {
  /** 0 for a server on one thread, else the worker's number. */
  readonly thread: number;
  readonly connections: Record<ConnectionKind, number>;
  readonly traffic: Traffic & { skips: number };
  readonly publishesAccepted: number;
  readonly receiversClosedSlow: number;
  readonly refusedUpgrades: ReadonlyArray<readonly [string, number]>;
  readonly cache: { readonly bytes: number; readonly limitBytes: number; readonly trims: number; readonly trimmedBytes: number };
  readonly queuedBytes: number;
  readonly channels: readonly ThreadChannel[];
}

/** A channel on one thread: its publisher if it is here (not relayed), its viewers here. */
export interface ThreadChannel {
  readonly name: string;
  readonly publisher: { readonly ip: string; readonly streamId: string; readonly startedAt: number; readonly bytesIn: number; readonly chunksIn: number } | null;
  readonly receivers: ReadonlyArray<{
    readonly id: number;
    readonly ip: string;
    readonly kind: string;
    readonly state: string;
    readonly connectedAt: number;
    readonly bytesSent: number;
    readonly messagesSent: number;
    readonly bufferedBytes: number;
    readonly skips: number;
  }>;
  readonly cacheBytes: number;
  readonly cacheEnabled: boolean;
  readonly media: unknown;
}

export function threadState(server: StreamServer, thread: number): ThreadState {
  return {
    ...registryState(server.registry, thread),
    connections: server.connectionsByKind(),
    traffic: server.traffic(),
    publishesAccepted: server.counters.publishesAccepted,
    receiversClosedSlow: server.counters.receiversClosedSlow,
    refusedUpgrades: [...server.counters.refusedUpgrades],
  };
}

/**
 * The channels and caches of a thread without connections of its own: the main thread in
 * worker mode (an edge's upstreams feed its channels; bridges read relayed ones).
 */
export function registryState(registry: ChannelRegistry, thread: number): ThreadState {
  const channels: ThreadChannel[] = [];
  let queuedBytes = 0;
  for (const channel of registry) {
    const publisher = channel.publisher;
    const receivers = [];
    for (const receiver of channel.receivers) {
      queuedBytes += receiver.bufferedBytes;
      if (isInternalReceiver(receiver)) continue;
      receivers.push({
        id: receiver.info.id,
        ip: receiver.info.ip,
        kind: receiver.kind,
        state: receiver.currentState,
        connectedAt: receiver.connectedAt,
        bytesSent: receiver.bytesSent,
        messagesSent: receiver.messagesSent,
        bufferedBytes: receiver.bufferedBytes,
        skips: receiver.skips,
      });
    }
    channels.push({
      name: channel.name,
      publisher:
        publisher === undefined || publisher.relayed === true
          ? null
          : { ip: publisher.info.ip, streamId: publisher.streamId, startedAt: publisher.startedAt, bytesIn: publisher.bytesIn, chunksIn: publisher.chunksIn },
      receivers,
      cacheBytes: channel.cache.size,
      cacheEnabled: channel.cache.enabled,
      media: channel.media,
    });
  }
  const budget = registry.budget;
  return {
    thread,
    connections: { publish: 0, receive: 0, 'receive-clear-cache': 0, probe: 0 },
    traffic: { bytesIn: 0, messagesIn: 0, bytesOut: 0, messagesOut: 0, skips: 0 },
    publishesAccepted: 0,
    receiversClosedSlow: 0,
    refusedUpgrades: [],
    cache: { bytes: budget.total, limitBytes: budget.limitBytes, trims: budget.trims, trimmedBytes: budget.trimmedBytes },
    queuedBytes,
    channels,
  };
}

/** A channel across threads: its publisher (from its own thread) and every thread's viewers. */
export interface ServerChannel {
  readonly name: string;
  readonly publisher: ThreadChannel['publisher'] & { readonly thread: number } | null;
  readonly receivers: ReadonlyArray<ThreadChannel['receivers'][number] & { readonly thread: number }>;
  /** The cache of the publisher's thread (or of any thread while nobody publishes). */
  readonly cacheBytes: number;
  readonly cacheEnabled: boolean;
  readonly media: unknown;
}

/** The server's figures: every thread's summed, channels merged by name. */
export interface ServerState extends Omit<ThreadState, 'thread' | 'channels' | 'refusedUpgrades'> {
  readonly threads: number;
  readonly refusedUpgrades: ReadonlyMap<string, number>;
  readonly channels: ReadonlyMap<string, ServerChannel>;
}

export function mergeStates(states: readonly ThreadState[]): ServerState {
  const connections: Record<ConnectionKind, number> = { publish: 0, receive: 0, 'receive-clear-cache': 0, probe: 0 };
  const traffic = { bytesIn: 0, messagesIn: 0, bytesOut: 0, messagesOut: 0, skips: 0 };
  const cache = { bytes: 0, limitBytes: 0, trims: 0, trimmedBytes: 0 };
  const refusedUpgrades = new Map<string, number>();
  const channels = new Map<string, { name: string; publisher: ServerChannel['publisher']; receivers: Array<ServerChannel['receivers'][number]>; any?: ThreadChannel; owner?: ThreadChannel }>();
  let publishesAccepted = 0;
  let receiversClosedSlow = 0;
  let queuedBytes = 0;
  for (const state of states) {
    for (const kind of Object.keys(connections) as ConnectionKind[]) connections[kind] += state.connections[kind];
    for (const name of Object.keys(traffic) as Array<keyof typeof traffic>) traffic[name] += state.traffic[name];
    cache.bytes += state.cache.bytes;
    cache.limitBytes += state.cache.limitBytes;
    cache.trims += state.cache.trims;
    cache.trimmedBytes += state.cache.trimmedBytes;
    for (const [code, count] of state.refusedUpgrades) refusedUpgrades.set(code, (refusedUpgrades.get(code) ?? 0) + count);
    publishesAccepted += state.publishesAccepted;
    receiversClosedSlow += state.receiversClosedSlow;
    queuedBytes += state.queuedBytes;
    for (const channel of state.channels) {
      let merged = channels.get(channel.name);
      if (merged === undefined) channels.set(channel.name, (merged = { name: channel.name, publisher: null, receivers: [] }));
      merged.any ??= channel;
      if (channel.publisher !== null) {
        merged.publisher = { ...channel.publisher, thread: state.thread };
        merged.owner = channel;
      }
      for (const receiver of channel.receivers) merged.receivers.push({ ...receiver, thread: state.thread });
    }
  }
  const merged = new Map<string, ServerChannel>();
  for (const [name, { publisher, receivers, any, owner }] of channels) {
    const source = owner ?? any!;
    // In the order they connected, as one thread lists them (a stable sort: same-millisecond ties keep thread order).
    receivers.sort((a, b) => a.connectedAt - b.connectedAt);
    merged.set(name, { name, publisher, receivers, cacheBytes: source.cacheBytes, cacheEnabled: source.cacheEnabled, media: source.media });
  }
  return { threads: states.length, connections, traffic, publishesAccepted, receiversClosedSlow, refusedUpgrades, cache, queuedBytes, channels: merged };
}
