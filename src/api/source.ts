import type { ChannelRegistry } from '../channels/index.js';
import { mergeStates, threadState } from '../cluster/index.js';
import type { ServerState, ThreadState, WorkerCluster } from '../cluster/index.js';
import type { Config } from '../config/index.js';
import type { PublishAuthorizer } from '../coordinator/authorizer.js';
import type { UpstreamSource } from '../edge/index.js';
import type { StreamServer } from '../server/stream-server.js';
import type { CertificatePair } from '../server/tls-certificates.js';

/** A channel's live publisher, as the kill endpoint needs it. */
export interface LivePublisher {
  readonly streamId: string;
  /** The worker thread it is connected to (0 with WORKERS=1). */
  readonly thread: number;
}

/**
 * What the admin listener reads: one stream server on this thread (WORKERS=1) or the worker
 * threads of a WorkerCluster, seen the same way, so each route and metric is written once.
 * Figures come as plain data (`state()`), summed across threads.
 */
export interface ServerSource {
  readonly config: Config;
  /** Threads serving connections (1: the stream server runs on the main thread). */
  readonly workers: number;
  /** Worker threads that died and were replaced since start. */
  readonly workerRestarts: number;
  readonly startedAt: number;
  /** True while connections are accepted. */
  readonly listening: boolean;
  readonly authorizer: PublishAuthorizer;
  readonly httpPort: number;
  readonly tlsPort: number | undefined;
  readonly certificate: CertificatePair | undefined;
  /** Edge mode: the relays from the origin. */
  readonly upstream: UpstreamSource | undefined;
  /** The channels the bridges and recordings attach to (bridgeSummary / recordingSummary). */
  readonly bridgeChannels: ChannelRegistry;
  state(): Promise<ServerState>;
  /** The bytes received so far from each live publisher (bitrates are sampled from these). */
  publisherBytes(): Promise<Array<{ channel: string; streamId: string; bytesIn: number }>>;
  publisher(channel: string): LivePublisher | undefined;
  /** Closes the publisher of `channel` if its stream id is `streamId`; false when there is none. */
  kill(channel: string, streamId: string): boolean;
}

/** WORKERS=1: everything is read from the stream server, synchronously. */
export function streamServerSource(server: StreamServer): ServerSource {
  return {
    config: server.config,
    workers: 1,
    workerRestarts: 0,
    startedAt: server.counters.startedAt,
    get listening() {
      return server.listening;
    },
    authorizer: server.authorizer,
    get httpPort() {
      return server.port;
    },
    get tlsPort() {
      return server.tlsPort;
    },
    get certificate() {
      return server.certificate;
    },
    upstream: server.upstream,
    bridgeChannels: server.registry,
    state: () => Promise.resolve(mergeStates([threadState(server, 0)])),
    publisherBytes: () =>
      Promise.resolve(
        [...server.registry].flatMap(({ name, publisher }) => (publisher === undefined ? [] : [{ channel: name, streamId: publisher.streamId, bytesIn: publisher.bytesIn }])),
      ),
    publisher: (channel) => {
      const publisher = server.registry.get(channel)?.publisher;
      return publisher === undefined ? undefined : { streamId: publisher.streamId, thread: 0 };
    },
    kill: (channel, streamId) => server.killPublisher(channel, streamId),
  };
}

/** WORKERS > 1: figures are asked of every worker; kills go to the publisher's thread. */
export function clusterSource(cluster: WorkerCluster): ServerSource {
  const startedAt = Date.now();
  // Threads up now: a dead one's last figures are retired until its replacement is up.
  const up = new Set(Array.from({ length: cluster.workerCount }, (_, index) => index + 1));
  // The totals of dead workers, as last read, stay in the sums: counters do not go back.
  const last = new Map<number, ThreadState>();
  let retired = emptyThreadState();
  cluster.on('workerFailed', (thread) => {
    up.delete(thread);
    const final = last.get(thread);
    last.delete(thread);
    if (final !== undefined) retired = retire(retired, final);
  });
  cluster.on('workerReady', (thread) => up.add(thread));
  const state = async (): Promise<ServerState> => {
    const states = await cluster.state();
    for (const each of states) if (up.has(each.thread)) last.set(each.thread, each);
    return mergeStates([...states, retired]);
  };
  return {
    config: cluster.config,
    workers: cluster.workerCount,
    get workerRestarts() {
      return cluster.workerRestarts;
    },
    startedAt,
    get listening() {
      return cluster.listening;
    },
    authorizer: cluster.authorizer,
    get httpPort() {
      return cluster.httpPort;
    },
    get tlsPort() {
      return cluster.tlsPort;
    },
    get certificate() {
      return cluster.certificate;
    },
    upstream: cluster.upstream,
    bridgeChannels: cluster.registry,
    state,
    publisherBytes: async () => {
      // Nothing to ask the threads while nothing is published.
      if (cluster.publications().length === 0) return [];
      return [...(await state()).channels.values()].flatMap(({ name, publisher }) =>
        publisher === null ? [] : [{ channel: name, streamId: publisher.streamId, bytesIn: publisher.bytesIn }],
      );
    },
    publisher: (channel) => {
      const publication = cluster.publications().find((each) => each.channel === channel);
      return publication === undefined ? undefined : { streamId: publication.streamId, thread: publication.thread };
    },
    kill: (channel, streamId) => cluster.killPublisher(channel, streamId),
  };
}

/** A thread with nothing: the base of the retired totals. */
function emptyThreadState(): ThreadState {
  return {
    thread: -1,
    connections: { publish: 0, receive: 0, 'receive-clear-cache': 0, probe: 0 },
    traffic: { bytesIn: 0, messagesIn: 0, bytesOut: 0, messagesOut: 0, skips: 0 },
    publishesAccepted: 0,
    receiversClosedSlow: 0,
    refusedUpgrades: [],
    cache: { bytes: 0, limitBytes: 0, trims: 0, trimmedBytes: 0 },
    queuedBytes: 0,
    channels: [],
  };
}

/** `retired` plus the counters (never the gauges: its connections and caches are gone) of a dead thread. */
function retire(retired: ThreadState, dead: ThreadState): ThreadState {
  const sum = mergeStates([retired, dead]);
  return {
    ...emptyThreadState(),
    traffic: sum.traffic,
    publishesAccepted: sum.publishesAccepted,
    receiversClosedSlow: sum.receiversClosedSlow,
    refusedUpgrades: [...sum.refusedUpgrades],
    cache: { bytes: 0, limitBytes: 0, trims: sum.cache.trims, trimmedBytes: sum.cache.trimmedBytes },
  };
}
