/** Messages between the orchestrator (run.ts) and receiver worker processes (worker.ts). */
import type { HistogramData } from './histogram.js';

export type Transport = 'ws' | 'tcp';

export interface ConnectCommand {
  type: 'connect';
  transport: Transport;
  host: string;
  port: number;
  /**
   * WebSocket path, e.g. /chan/key/receive (ignored for tcp). With `channels`, `{channel}` in
   * it is replaced by the receiver's channel index: global receiver index modulo `channels`.
   */
  path: string;
  /** Number of channels the receivers are spread over (default 1). */
  channels?: number;
  /** wss: connect with TLS. */
  tls?: boolean;
  count: number;
  /** Global index of this worker's first receiver (spreads source addresses). */
  indexBase: number;
  sourceAddrs: string[];
  /** Local receiver indices that never read (socket paused after the handshake). */
  paused: number[];
  messageBytes: number;
  runId: number;
  verify: boolean;
  concurrency: number;
  timeoutMs: number;
}

export interface MeasureCommand {
  type: 'measure';
  /** hrtime ns (decimal string): messages sent from then on count for latency and throughput. */
  fromNs: string;
}

export interface FinishCommand {
  type: 'finish';
  /** Messages the publisher sent (seq 0..published-1). */
  published: number;
  /** With several channels: messages each channel's publisher sent, by channel index. */
  publishedPerChannel?: number[];
  drainTimeoutMs: number;
}

export interface TeardownCommand {
  type: 'teardown';
  /** How long to wait for the server to close receivers after the publisher left. */
  waitCloseMs: number;
}

export type WorkerCommand = ConnectCommand | MeasureCommand | FinishCommand | TeardownCommand | { type: 'exit' };

export interface ConnectedReply {
  type: 'connected';
  ok: number;
  failed: number;
  firstError: string | null;
  connectMs: number;
}

export interface PausedReceiverReport {
  index: number;
  okMessages: number;
  closeCode: number | null;
  errorText: string | null;
}

export interface StatsReply {
  type: 'stats';
  /** Reading receivers that were open when measuring began. */
  receivers: number;
  histogram: HistogramData;
  okMessages: number;
  measuredMessages: number;
  measuredBytes: number;
  /** Sum over reading receivers of messages published but not received in order. */
  missing: number;
  /** Sum over reading receivers of the messages published on their channel. */
  expected: number;
  outOfOrder: number;
  bad: { short: number; foreign: number; length: number; corrupt: number };
  /** Reading receivers closed before the drain finished, by close code ('none' = no close frame). */
  closedEarly: Record<string, number>;
  errorTexts: Record<string, number>;
  protocolErrors: number;
  cpuUs: number;
  drained: boolean;
}

export interface TeardownReply {
  type: 'closed';
  /** Receivers that got a close frame from the server within waitCloseMs. */
  closedByServer: number;
  closeCodes: Record<string, number>;
  stillOpen: number;
  paused: PausedReceiverReport[];
}

/**
 * Sent every few milliseconds: the fewest in-order messages any open, reading receiver of this
 * worker has got (null when it has none). The saturating publisher stays within a window of it.
 */
export interface ProgressReply {
  type: 'progress';
  minOk: number | null;
}

export type WorkerReply = ConnectedReply | StatsReply | TeardownReply | ProgressReply | { type: 'fatal'; error: string };
