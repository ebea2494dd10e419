import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { bridgeSummary, isInternalReceiver } from '../bridge/index.js';
import { ControlClient } from '../coordinator/index.js';
import type { StreamServer } from '../server/stream-server.js';
import { Rejections } from '../protocol/errors.js';
import { queuedBytes } from './snapshot.js';
import type { RelayView } from '../edge/index.js';

const statusOf = new Map<string, number>(Object.values(Rejections).map((rejection) => [rejection.code, rejection.status]));

/**
 * The Prometheus registry of one server. Counters are read from the server's own counters at
 * scrape time, so the streaming path pays nothing for metrics. Per-channel series only with
 * METRICS_PER_CHANNEL=YES, to keep label cardinality bounded.
 */
export function createMetrics(server: StreamServer): Registry {
  const register = new Registry();
  collectDefaultMetrics({ register });
  const registers = [register];

  new Gauge({
    name: 'wss_connections',
    help: 'Open WebSocket connections by kind.',
    labelNames: ['kind'],
    registers,
    collect() {
      for (const [kind, count] of Object.entries(server.connectionsByKind())) this.set({ kind }, count);
    },
  });
  new Gauge({
    name: 'wss_channels',
    help: 'Channels in use (with a publisher or waiting receivers).',
    registers,
    collect() {
      this.set(server.registry.size);
    },
  });
  // CACHE_MEMORY_LIMIT_MB: the caches' total (kept by the budget), its limit, and receivers' queues.
  new Gauge({
    name: 'wss_cache_bytes',
    help: 'Bytes held by all channel caches.',
    registers,
    collect() {
      this.set(server.registry.budget.total);
    },
  });
  new Gauge({
    name: 'wss_cache_limit_bytes',
    help: 'CACHE_MEMORY_LIMIT_MB in bytes (absent without a server-wide limit).',
    registers,
    collect() {
      if (server.registry.budget.limitBytes > 0) this.set(server.registry.budget.limitBytes);
    },
  });
  new Counter({
    name: 'wss_cache_trimmed_bytes_total',
    help: 'Bytes dropped from the caches to keep them within CACHE_MEMORY_LIMIT_MB.',
    registers,
    collect() {
      this.reset();
      this.inc(server.registry.budget.trimmedBytes);
    },
  });
  new Gauge({
    name: 'wss_receiver_queued_bytes',
    help: 'Bytes waiting for slow receivers (queues and socket buffers).',
    registers,
    collect() {
      this.set(queuedBytes(server));
    },
  });
  new Counter({
    name: 'wss_publishes_accepted_total',
    help: 'Publishing sessions accepted.',
    registers,
    collect() {
      this.reset();
      this.inc(server.counters.publishesAccepted);
    },
  });
  new Counter({
    name: 'wss_upgrades_refused_total',
    help: 'WebSocket upgrades refused, by reason and HTTP status (publishes refused are reason PUBLISH_DENIED or ALREADY_PUBLISHING).',
    labelNames: ['reason', 'status'],
    registers,
    collect() {
      this.reset();
      for (const [reason, count] of server.counters.refusedUpgrades) this.inc({ reason, status: String(statusOf.get(reason) ?? 0) }, count);
    },
  });
  // Five counters read the same totals: compute them once per scrape (collect() calls of one
  // scrape run in the same turn of the event loop).
  let totals: ReturnType<StreamServer['traffic']> | undefined;
  const scrapeTotals = (): ReturnType<StreamServer['traffic']> => {
    if (totals === undefined) {
      totals = server.traffic();
      setImmediate(() => (totals = undefined));
    }
    return totals;
  };
  const traffic = (name: string, help: string, pick: (totals: ReturnType<StreamServer['traffic']>) => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(pick(scrapeTotals()));
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
      this.inc({ action: 'closed' }, server.counters.receiversClosedSlow);
      this.inc({ action: 'skipped' }, scrapeTotals().skips);
    },
  });

  new Gauge({
    name: 'wss_bridge_restarts',
    help: 'ffmpeg restarts of the bridges (RTMP, HLS) of the current publishing sessions.',
    registers,
    collect() {
      let restarts = 0;
      for (const channel of server.registry) for (const bridge of bridgeSummary(channel) ?? []) restarts += bridge.restarts;
      this.set(restarts);
    },
  });

  // Coordinator mode only: a standalone server has no control connection to report on.
  if (server.authorizer instanceof ControlClient) {
    const coordinator = server.authorizer;
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
  const upstream = server.upstream;
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
        labelNames: server.config.metricsPerChannel ? ['channel', 'upstream', 'state'] : [],
        registers,
        collect() {
          this.reset();
          if (!server.config.metricsPerChannel) {
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

  if (server.config.metricsPerChannel) {
    new Gauge({
      name: 'wss_channel_receivers',
      help: 'Receivers per channel (METRICS_PER_CHANNEL).',
      labelNames: ['channel'],
      registers,
      collect() {
        this.reset();
        for (const channel of server.registry) {
          const viewers = [...channel.receivers].filter((receiver) => !isInternalReceiver(receiver)).length;
          this.set({ channel: channel.name }, viewers);
        }
      },
    });
    new Gauge({
      name: 'wss_channel_received_bytes',
      help: 'Bytes received from the current publisher, per channel (METRICS_PER_CHANNEL).',
      labelNames: ['channel'],
      registers,
      collect() {
        this.reset();
        for (const channel of server.registry) this.set({ channel: channel.name }, channel.publisher?.bytesIn ?? 0);
      },
    });
  }
  return register;
}
