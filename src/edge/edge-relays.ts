import type { Channel, ChannelRegistry } from '../channels/index.js';
import type { Config } from '../config/index.js';
import { ConfigError } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { OriginRelay } from './origin-relay.js';
import type { RelayOptions, RelayOwner, RelayView } from './origin-relay.js';

/**
 * What the stream server consults on an edge: a viewer arrived for a channel (nothing is ever
 * published here), and when it leaves.
 */
export interface UpstreamSource {
  /** A local viewer of `channel` presenting `key` was accepted; call the returned function when it leaves. */
  viewerJoined(channel: string, key: string): () => void;
  /** Every relay, for the admin API and metrics. */
  relays(): RelayView[];
  /** Closes every upstream (server shutdown: the viewers are closed by the server). */
  close(): Promise<void>;
}

/** Reconnect delays: full jitter between these bounds, doubling per failed round. */
const BACKOFF = { minMs: 250, maxMs: 5000 };

/**
 * The relays of an edge, one per channel and key. Viewers presenting different keys for one
 * channel never share an upstream: each key has its own, and the origin answers each. Only one
 * relay feeds a local channel at a time (the one whose key the origin's publisher has); while
 * it does, the local channel refuses other keys as the origin would.
 */
export class EdgeRelays implements UpstreamSource, RelayOwner {
  private readonly byKey = new Map<string, OriginRelay>();
  /** The relay feeding each local channel. */
  private readonly feeding = new Map<string, OriginRelay>();
  private readonly options: RelayOptions;

  constructor(
    readonly registry: ChannelRegistry,
    config: Config,
    logger: Logger,
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

  viewerJoined(channel: string, key: string): () => void {
    const id = relayId(channel, key);
    let relay = this.byKey.get(id);
    if (relay === undefined) {
      relay = new OriginRelay(this, channel, key, this.options);
      this.byKey.set(id, relay);
    }
    return relay.join();
  }

  relays(): RelayView[] {
    return [...this.byKey.values()].map((relay) => relay.view());
  }

  async close(): Promise<void> {
    for (const relay of [...this.byKey.values()]) relay.close('server shutting down');
  }

  claim(channel: Channel, relay: OriginRelay): void {
    const previous = this.feeding.get(channel.name);
    // The origin's publisher now has this relay's key: the other relay's session there is over.
    if (previous !== undefined && previous !== relay) previous.endLocalSession();
    this.feeding.set(channel.name, relay);
  }

  unclaim(channel: Channel, relay: OriginRelay): void {
    if (this.feeding.get(channel.name) === relay) this.feeding.delete(channel.name);
  }

  forget(relay: OriginRelay): void {
    const id = relayId(relay.channelName, relay.key);
    if (this.byKey.get(id) === relay) this.byKey.delete(id);
  }
}

/** Channel and key never contain a newline (protocol ID rules). */
function relayId(channel: string, key: string): string {
  return `${channel}\n${key}`;
}
