import type { ChannelRegistry } from '../channels/index.js';
import { bridgeSummary, recordingSummary } from '../bridge/index.js';
import type { ServerChannel, ServerState } from '../cluster/index.js';
import { describeConfig } from '../config/index.js';
import { ControlClient, describeAuthorizer } from '../coordinator/index.js';
import { VERSION } from '../version.js';
import { publisherKey } from './rates.js';
import type { RateTracker } from './rates.js';
import type { ServerSource } from './source.js';

/**
 * JSON views of the server's state (summed across worker threads). Keys never appear in any of
 * them. The bridges' and recordings' own receivers are not viewers: the state leaves them out,
 * and they have their own fields.
 */

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
  /** WORKERS > 1 only: the thread the publisher is connected to. */
  publisherThread?: number | null;
}

/** What the views need besides the state: bitrates, the bridges' channels, the thread count. */
export interface ViewContext {
  readonly rates: RateTracker;
  readonly bridgeChannels: ChannelRegistry;
  readonly workers: number;
}

export function channelSummary(channel: ServerChannel, context: ViewContext): ChannelSummary {
  const publisher = channel.publisher;
  const receivers = { total: 0, live: 0, idle: 0, receive: 0, receiveClearCache: 0, probe: 0 };
  let bytesOut = 0;
  for (const receiver of channel.receivers) {
    receivers.total++;
    if (receiver.state === 'idle') receivers.idle++;
    else receivers.live++;
    if (receiver.kind === 'receive') receivers.receive++;
    else if (receiver.kind === 'receive-clear-cache') receivers.receiveClearCache++;
    else receivers.probe++;
    bytesOut += receiver.bytesSent;
  }
  const bridged = context.bridgeChannels.get(channel.name);
  return {
    channel: channel.name,
    publishing: publisher !== null,
    streamId: publisher?.streamId ?? null,
    publisherIp: publisher?.ip ?? null,
    startedAt: publisher === null ? null : iso(publisher.startedAt),
    bytesIn: publisher?.bytesIn ?? 0,
    messagesIn: publisher?.chunksIn ?? 0,
    bitrateIn: publisher === null ? 0 : Math.round(context.rates.rate(publisherKey(channel.name, publisher.streamId), publisher.bytesIn) * 8),
    receivers,
    bytesOut,
    cacheBytes: channel.cacheBytes,
    media: channel.media ?? null,
    bridge: bridged === undefined ? null : bridgeSummary(bridged),
    recording: bridged === undefined ? null : recordingSummary(bridged),
    ...(context.workers > 1 ? { publisherThread: publisher?.thread ?? null } : {}),
  };
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
  /** WORKERS > 1 only: the receiver's thread (ids are per thread). */
  thread?: number;
}

function receiverView(receiver: ServerChannel['receivers'][number], workers: number): ReceiverView {
  return {
    id: receiver.id,
    ip: receiver.ip,
    kind: receiver.kind,
    state: receiver.state,
    connectedAt: iso(receiver.connectedAt),
    bytesSent: receiver.bytesSent,
    messagesSent: receiver.messagesSent,
    bufferedBytes: receiver.bufferedBytes,
    skips: receiver.skips,
    ...(workers > 1 ? { thread: receiver.thread } : {}),
  };
}

export function channelDetail(channel: ServerChannel, context: ViewContext): ChannelSummary & { receiverList: ReceiverView[] } {
  return { ...channelSummary(channel, context), receiverList: channel.receivers.map((receiver) => receiverView(receiver, context.workers)) };
}

export interface FfmpegInfo {
  path: string;
  source: string;
  version: string | null;
}

export function serverSummary(source: ServerSource, state: ServerState, ffmpeg: FfmpegInfo | null): Record<string, unknown> {
  const now = Date.now();
  const { authorizer, certificate, config } = source;
  const connections = Object.values(state.connections).reduce((sum, count) => sum + count, 0);
  return {
    version: VERSION,
    node: process.version,
    startedAt: iso(source.startedAt),
    uptimeSeconds: Math.round((now - source.startedAt) / 1000),
    config: describeConfig(config),
    listeners: { http: config.httpPort === 0 ? null : source.httpPort, https: source.tlsPort ?? null },
    workers: source.workers,
    workerRestarts: source.workerRestarts,
    connections: { total: connections, ...state.connections },
    channels: state.channels.size,
    traffic: state.traffic,
    receiversClosedSlow: state.receiversClosedSlow,
    memory: process.memoryUsage(),
    cacheMemory: cacheMemory(state),
    authorization: describeAuthorizer(authorizer),
    coordinator: authorizer instanceof ControlClient ? { url: authorizer.url, state: authorizer.state } : null,
    certificate: certificate === undefined ? null : { fingerprint: certificate.fingerprint, validTo: certificate.validTo },
    ffmpeg,
    // Edge mode: the origins and one entry per relayed channel (keys never shown).
    edge: source.upstream === undefined ? null : { origins: config.originUrl, idleSeconds: config.edgeIdleSeconds, relays: source.upstream.relays() },
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

export function cacheMemory(state: ServerState): CacheMemory {
  return {
    cacheBytes: state.cache.bytes,
    // With worker threads, the sum of each thread's share of the limit.
    limitBytes: state.cache.limitBytes > 0 ? state.cache.limitBytes : null,
    trims: state.cache.trims,
    trimmedBytes: state.cache.trimmedBytes,
    queuedBytes: state.queuedBytes,
  };
}
