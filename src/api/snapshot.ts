import type { Channel } from '../channels/channel.js';
import { bridgeSummary, isInternalReceiver, recordingSummary } from '../bridge/index.js';
import type { Receiver } from '../channels/receiver.js';
import { describeConfig } from '../config/index.js';
import { ControlClient, describeAuthorizer } from '../coordinator/index.js';
import type { StreamServer } from '../server/stream-server.js';
import { VERSION } from '../version.js';
import type { RateTracker } from './rates.js';
import type { Publisher } from '../channels/channel.js';

/** JSON views of the server's state. Keys never appear in any of them. */

const iso = (time: number): string => new Date(time).toISOString();

export interface ChannelSummary {
  channel: string;
  publishing: boolean;
  streamId: string | null;
  publisherIp: string | null;
  startedAt: string | null;
  bytesIn: number;
  messagesIn: number;
  /** bit/s over the last few seconds. */
  bitrateIn: number;
  receivers: { total: number; live: number; idle: number; receive: number; receiveClearCache: number; probe: number };
  bytesOut: number;
  cacheBytes: number;
  media: unknown;
  bridge: unknown;
  recording: unknown;
}

export function channelSummary(channel: Channel, rates: RateTracker<Publisher>): ChannelSummary {
  const publisher = channel.publisher;
  const receivers = { total: 0, live: 0, idle: 0, receive: 0, receiveClearCache: 0, probe: 0 };
  let bytesOut = 0;
  for (const receiver of channel.receivers) {
    // The bridges' and recordings' own receivers are not viewers: they have their own fields.
    if (isInternalReceiver(receiver)) continue;
    receivers.total++;
    if (receiver.currentState === 'idle') receivers.idle++;
    else receivers.live++;
    if (receiver.kind === 'receive') receivers.receive++;
    else if (receiver.kind === 'receive-clear-cache') receivers.receiveClearCache++;
    else receivers.probe++;
    bytesOut += receiver.bytesSent;
  }
  return {
    channel: channel.name,
    publishing: publisher !== undefined,
    streamId: publisher?.streamId ?? null,
    publisherIp: publisher?.info.ip ?? null,
    startedAt: publisher === undefined ? null : iso(publisher.startedAt),
    bytesIn: publisher?.bytesIn ?? 0,
    messagesIn: publisher?.chunksIn ?? 0,
    bitrateIn: publisher === undefined ? 0 : Math.round(rates.rate(publisher, publisher.bytesIn) * 8),
    receivers,
    bytesOut,
    cacheBytes: channel.cache.size,
    media: mediaInfo(channel),
    bridge: bridgeSummary(channel),
    recording: recordingSummary(channel),
  };
}

function mediaInfo(channel: Channel): unknown {
  const info = (channel.cache as { info?: unknown }).info;
  return info ?? null;
}

export interface ReceiverView {
  id: number;
  ip: string;
  kind: string;
  state: string;
  connectedAt: string;
  bytesSent: number;
  messagesSent: number;
  bufferedBytes: number;
  skips: number;
}

function receiverView(receiver: Receiver): ReceiverView {
  return {
    id: receiver.info.id,
    ip: receiver.info.ip,
    kind: receiver.kind,
    state: receiver.currentState,
    connectedAt: iso(receiver.connectedAt),
    bytesSent: receiver.bytesSent,
    messagesSent: receiver.messagesSent,
    bufferedBytes: receiver.bufferedBytes,
    skips: receiver.skips,
  };
}

export function channelDetail(channel: Channel, rates: RateTracker<Publisher>): ChannelSummary & { receiverList: ReceiverView[] } {
  return { ...channelSummary(channel, rates), receiverList: [...channel.receivers].filter((receiver) => !isInternalReceiver(receiver)).map(receiverView) };
}

export interface FfmpegInfo {
  path: string;
  source: string;
  version: string | null;
}

export function serverSummary(server: StreamServer, ffmpeg: FfmpegInfo | null): Record<string, unknown> {
  const now = Date.now();
  const { authorizer } = server;
  return {
    version: VERSION,
    node: process.version,
    startedAt: iso(server.counters.startedAt),
    uptimeSeconds: Math.round((now - server.counters.startedAt) / 1000),
    config: describeConfig(server.config),
    listeners: { http: server.config.httpPort === 0 ? null : server.port, https: server.tlsPort ?? null },
    connections: { total: server.connectionCount, ...server.connectionsByKind() },
    channels: server.registry.size,
    traffic: server.traffic(),
    receiversClosedSlow: server.counters.receiversClosedSlow,
    memory: process.memoryUsage(),
    cacheMemory: cacheMemory(server),
    authorization: describeAuthorizer(authorizer),
    coordinator: authorizer instanceof ControlClient ? { url: authorizer.url, state: authorizer.state } : null,
    certificate: server.certificate === undefined ? null : { fingerprint: server.certificate.fingerprint, validTo: server.certificate.validTo },
    ffmpeg,
    // Edge mode: the origins and one entry per relayed channel (keys never shown).
    edge: server.upstream === undefined ? null : { origins: server.config.originUrl, idleSeconds: server.config.edgeIdleSeconds, relays: server.upstream.relays() },
  };
}

/** The caches against CACHE_MEMORY_LIMIT_MB, and what waits in receivers' queues beside them. */
export interface CacheMemory {
  /** Bytes held by all channels' caches (with 16 bytes per chunk). */
  cacheBytes: number;
  /** CACHE_MEMORY_LIMIT_MB in bytes, null without a server-wide limit. */
  limitBytes: number | null;
  /** Times the caches were trimmed to fit, and the bytes that freed. */
  trims: number;
  trimmedBytes: number;
  /** Bytes waiting for slow receivers (each bounded by MAX_RECEIVER_BUFFER_MB), socket buffers included. */
  queuedBytes: number;
}

export function cacheMemory(server: StreamServer): CacheMemory {
  const budget = server.registry.budget;
  return {
    cacheBytes: budget.total,
    limitBytes: budget.limitBytes > 0 ? budget.limitBytes : null,
    trims: budget.trims,
    trimmedBytes: budget.trimmedBytes,
    queuedBytes: queuedBytes(server),
  };
}

/** Bytes waiting for every receiver of every channel (queues and socket buffers). */
export function queuedBytes(server: StreamServer): number {
  let total = 0;
  for (const channel of server.registry) for (const receiver of channel.receivers) total += receiver.bufferedBytes;
  return total;
}

/** The public list: live channels only, never keys or IPs. */
export function publicStreams(server: StreamServer): Array<{ channel: string; startedAt: string; receivers: number }> {
  const streams = [];
  for (const channel of server.registry) {
    const publisher = channel.publisher;
    if (publisher === undefined) continue;
    const receivers = [...channel.receivers].filter((receiver) => !isInternalReceiver(receiver)).length;
    streams.push({ channel: channel.name, startedAt: iso(publisher.startedAt), receivers });
  }
  return streams;
}
