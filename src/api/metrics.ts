import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { bridgeSummary } from '../bridge/index.js';
import type { ServerState } from '../cluster/index.js';
import { ControlClient } from '../coordinator/index.js';
import { Rejections } from '../protocol/errors.js';
import type { RelayView } from '../edge/index.js';
import type { ServerSource } from './source.js';

const statusOf = new Map<string, number>(Object.values(Rejections).map((rejection) => [rejection.code, rejection.status]));

/**
 * The Prometheus registry of one server (all its worker threads). Counters are read from the
 * server's own counters at scrape time, so the streaming path pays nothing for metrics. Per-channel
 * series only with METRICS_PER_CHANNEL=YES, to keep label cardinality bounded.
 */
export class ServerMetrics {
  private readonly registry = new Registry();
  /** The state of the scrape under way: gathered once per scrape, read by every metric. */
  private current: ServerState | undefined;
  private scraping: Promise<unknown> = Promise.resolve();

  constructor(private readonly source: ServerSource) {
    defineMetrics(this.registry, source, () => {
      if (this.current === undefined) throw new Error('metrics collected outside a scrape');
      return this.current;
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text. Scrapes run one at a time, each on one state of every thread. */
  text(): Promise<string> {
    const scrape = this.scraping.then(async () => {
      this.current = await this.source.state();
      try {
        return await this.registry.metrics();
      } finally {
        this.current = undefined;
      }
    });
    this.scraping = scrape.catch(() => undefined);
    return scrape;
  }
}

function defineMetrics(register: Registry, source: ServerSource, scraped: () => ServerState): void {
  collectDefaultMetrics({ register });
  const registers = [register];
  const { config } = source;

  new Gauge({
    name: 'wss_connections',
    help: 'Open WebSocket connections by kind.',
    labelNames: ['kind'],
    registers,
    collect() {
      for (const [kind, count] of Object.entries(scraped().connections)) this.set({ kind }, count);
    },
  });
  new Gauge({
    name: 'wss_channels',
    help: 'Channels in use (with a publisher or waiting receivers).',
    registers,
    collect() {
      this.set(scraped().channels.size);
    },
  });
  new Gauge({
    name: 'wss_workers',
    help: 'Threads serving connections (WORKERS).',
    registers,
    collect() {
      this.set(source.workers);
    },
  });
  new Counter({
    name: 'wss_worker_restarts_total',
    help: 'Worker threads that died and were replaced.',
    registers,
    collect() {
      this.reset();
      this.inc(source.workerRestarts);
    },
  });
  // CACHE_MEMORY_LIMIT_MB: the caches' total (kept by the budget), its limit, and receivers' queues.
  new Gauge({
    name: 'wss_cache_bytes',
    help: 'Bytes held by all channel caches.',
    registers,
    collect() {
      this.set(scraped().cache.bytes);
    },
  });
  new Gauge({
    name: 'wss_cache_limit_bytes',
    help: 'CACHE_MEMORY_LIMIT_MB in bytes (absent without a server-wide limit).',
    registers,
    collect() {
      const limit = scraped().cache.limitBytes;
      if (limit > 0) this.set(limit);
    },
  });
  new Counter({
    name: 'wss_cache_trimmed_bytes_total',
    help: 'Bytes dropped from the caches to keep them within CACHE_MEMORY_LIMIT_MB.',
    registers,
    collect() {
      this.reset();
      this.inc(scraped().cache.trimmedBytes);
    },
  });
  new Gauge({
    name: 'wss_receiver_queued_bytes',
    help: 'Bytes waiting for slow receivers (queues and socket buffers).',
    registers,
    collect() {
      this.set(scraped().queuedBytes);
    },
  });
  new Counter({
    name: 'wss_publishes_accepted_total',
    help: 'Publishing sessions accepted.',
    registers,
    collect() {
      this.reset();
      this.inc(scraped().publishesAccepted);
    },
  });
  new Counter({
    name: 'wss_upgrades_refused_total',
    help: 'WebSocket upgrades refused, by reason and HTTP status (publishes refused are reason PUBLISH_DENIED or ALREADY_PUBLISHING).',
    labelNames: ['reason', 'status'],
    registers,
    collect() {
      this.reset();
      for (const [reason, count] of scraped().refusedUpgrades) this.inc({ reason, status: String(statusOf.get(reason) ?? 0) }, count);
    },
  });
  const traffic = (name: string, help: string, pick: (totals: ServerState['traffic']) => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(pick(scraped().traffic));
      },
    });
  };
  traffic('wss_received_bytes_total', 'Stream bytes received from publishers.', (totals) => totals.bytesIn);
  traffic('wss_received_messages_total', 'Stream messages received from publishers.', (totals) => totals.messagesIn);
  traffic('wss_sent_bytes_total', 'Stream bytes sent to receivers.', (totals) => totals.bytesOut);
  traffic('wss_sent_messages_total', 'Stream messages sent to receivers.', (totals) => totals.messagesOut);
  new Counter({
    name: 'wss_slow_receivers_total',
    help: 'Receivers that fell too far behind: closed, or skipped ahead to a keyframe.',
    labelNames: ['action'],
    registers,
    collect() {
      this.reset();
      const state = scraped();
      this.inc({ action: 'closed' }, state.receiversClosedSlow);
      this.inc({ action: 'skipped' }, state.traffic.skips);
    },
  });

  new Gauge({
    name: 'wss_bridge_restarts',
    help: 'ffmpeg restarts of the bridges (RTMP, HLS) of the current publishing sessions.',
    registers,
    collect() {
      let restarts = 0;
      for (const channel of source.bridgeChannels) for (const bridge of bridgeSummary(channel) ?? []) restarts += bridge.restarts;
      this.set(restarts);
    },
  });

  // Coordinator mode only: a standalone server has no control connection to report on.
  if (source.authorizer instanceof ControlClient) {
    const coordinator = source.authorizer;
    new Gauge({
      name: 'wss_coordinator_connected',
      help: '1 while the coordinator control connection is up.',
      registers,
      collect() {
        this.set(coordinator.state === 'connected' ? 1 : 0);
      },
    });
    const requests = new Histogram({
      name: 'wss_coordinator_request_duration_seconds',
      help: 'Time from PUBLISH-REQUEST to its answer, by outcome.',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20],
      registers,
    });
    coordinator.on('answered', (outcome, seconds) => requests.observe({ outcome }, seconds));
  }

  // Edge mode: the upstreams from the origin (per channel with METRICS_PER_CHANNEL).
  const upstream = source.upstream;
  if (upstream !== undefined) {
    new Gauge({
      name: 'wss_edge_relays',
      help: 'Upstream connections from the origin (one per relayed channel), by state.',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const state of ['connecting', 'waiting', 'live', 'retrying']) this.set({ state }, 0);
        for (const relay of upstream.relays()) this.inc({ state: relay.state });
      },
    });
    const relayTotal = (name: string, help: string, pick: (relay: RelayView) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: config.metricsPerChannel ? ['channel', 'upstream', 'state'] : [],
        registers,
        collect() {
          this.reset();
          if (!config.metricsPerChannel) {
            this.set(upstream.relays().reduce((sum, relay) => sum + pick(relay), 0));
            return;
          }
          for (const relay of upstream.relays()) this.inc({ channel: relay.channel, upstream: relay.upstream, state: relay.state }, pick(relay));
        },
      });
    };
    relayTotal('wss_edge_upstream_received_bytes', 'Stream bytes received from the origin by the current upstreams.', (relay) => relay.bytesIn);
    relayTotal('wss_edge_upstream_reconnects', 'Reconnections of the current upstreams to the origin.', (relay) => relay.reconnects);
  }

  if (config.metricsPerChannel) {
    new Gauge({
      name: 'wss_channel_receivers',
      help: 'Receivers per channel (METRICS_PER_CHANNEL).',
      labelNames: ['channel'],
      registers,
      collect() {
        this.reset();
        for (const channel of scraped().channels.values()) this.set({ channel: channel.name }, channel.receivers.length);
      },
    });
    new Gauge({
      name: 'wss_channel_received_bytes',
      help: 'Bytes received from the current publisher, per channel (METRICS_PER_CHANNEL).',
      labelNames: ['channel'],
      registers,
      collect() {
        this.reset();
        for (const channel of scraped().channels.values()) this.set({ channel: channel.name }, channel.publisher?.bytesIn ?? 0);
      },
    });
  }
}
