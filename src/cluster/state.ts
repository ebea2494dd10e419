import { isInternalReceiver } from '../bridge/bridge.js';
import type { ConnectionKind } from '../protocol/route.js';
import type { Traffic } from '../server/counters.js';
import type { StreamServer } from '../server/stream-server.js';

/** One thread's figures, as plain data the main thread sums (stats API, metrics). */
export interface ThreadState {
  readonly connections: Record<ConnectionKind, number>;
  readonly traffic: Traffic & { skips: number };
  readonly publishesAccepted: number;
  readonly receiversClosedSlow: number;
  readonly refusedUpgrades: ReadonlyArray<readonly [string, number]>;
  readonly cacheBytes: number;
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
  readonly media: unknown;
}

export function workerState(server: StreamServer): ThreadState {
  const channels: ThreadChannel[] = [];
  let queuedBytes = 0;
  for (const channel of server.registry) {
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
      media: channel.media,
    });
  }
  return {
    connections: server.connectionsByKind(),
    traffic: server.traffic(),
    publishesAccepted: server.counters.publishesAccepted,
    receiversClosedSlow: server.counters.receiversClosedSlow,
    refusedUpgrades: [...server.counters.refusedUpgrades],
    cacheBytes: server.registry.budget.total,
    queuedBytes,
    channels,
  };
}
