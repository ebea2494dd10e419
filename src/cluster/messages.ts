import type { MessagePort } from 'node:worker_threads';
import type { HlsAnswer } from '../bridge/hls.js';
import type { LateJoin, ReceiverKind } from '../channels/index.js';

/**
 * What threads say to each other in worker mode (WORKERS > 1). Plain objects, passed by
 * structured clone over MessagePorts: the main thread (the control plane) and each worker have
 * one port to each other thread, and messages on one port arrive in order.
 */

/** Relay messages: a thread with receivers of a channel ↔ the thread its publisher is on. */
export type RelayMessage =
  /** Send me the channel's stream (a late joiner's view of it, then everything live). */
  | { readonly type: 'subscribe'; readonly channel: string }
  | { readonly type: 'unsubscribe'; readonly channel: string }
  /**
   * The stream follows: who publishes it (for key checks and stats). `unasked`: sent from the
   * first byte because the main thread said this thread has viewers of the channel.
   */
  | { readonly type: 'start'; readonly channel: string; readonly publisher: RelayedPublisher; readonly unasked?: true }
  /** The channel is not published here (any more): wait for the next `available`. */
  | { readonly type: 'absent'; readonly channel: string }
  | { readonly type: 'chunk'; readonly channel: string; readonly data: Uint8Array }
  /** The publisher ended: close the channel's receivers with this code and reason. */
  | { readonly type: 'end'; readonly channel: string; readonly code: number; readonly reason: string }
  /** A receive-clear-cache receiver waiting for the stream emptied and disabled the cache (to the publisher's thread). */
  | { readonly type: 'clear'; readonly channel: string }
  /**
   * A receiver of `kind` joined the relayed stream late (to the publisher's thread, which holds
   * the cache): answered with `late-join-answer` on the port the stream comes by, so that the
   * answer falls between the chunks the asking thread has and the ones that follow.
   */
  | { readonly type: 'late-join'; readonly channel: string; readonly request: number; readonly kind: ReceiverKind }
  /** What receiver `request` starts with (null: the stream is not served to the asking thread any more). */
  | { readonly type: 'late-join-answer'; readonly channel: string; readonly request: number; readonly join: LateJoin | null };

export interface RelayedPublisher {
  readonly id: number;
  readonly ip: string;
  readonly key: string;
  readonly streamId: string;
  readonly startedAt: number;
}

/** Worker → main. */
export type WorkerEvent =
  /** Listening; `testPort` with test hooks (this worker's own loopback port). */
  | { readonly type: 'ready'; readonly testPort?: number }
  /** A publisher went live on this worker (after `authorize` accepted it). */
  | { readonly type: 'published'; readonly channel: string; readonly streamId: string }
  /** It ended; or an accepted publish never went live (`streamId` of the reservation). */
  | { readonly type: 'unpublished'; readonly channel: string; readonly streamId: string }
  | { readonly type: 'reply'; readonly id: number; readonly result?: unknown; readonly error?: string }
  | { readonly type: 'request'; readonly id: number; readonly request: MainRequest }
  /** Request `id`'s answer is no longer awaited (a publisher that left while authorized). */
  | { readonly type: 'abandoned'; readonly id: number }
  /** Edge: a viewer wants `channel` from the origin with its key (see `edge-admitted`, `edge-closed`). */
  | { readonly type: 'edge-join'; readonly viewer: number; readonly channel: string; readonly key: string }
  | { readonly type: 'edge-leave'; readonly viewer: number }
  /**
   * This thread has viewers of `channel` (or no longer), whoever publishes it now: the thread
   * that gets its next publisher sends the stream here from its first byte.
   */
  | { readonly type: 'interest'; readonly channel: string; readonly waiting: boolean }
  /** A log line of the worker, for the main thread's logger (one place for every thread's lines). */
  | { readonly type: 'log'; readonly line: string; readonly isError: boolean }
  /** An HLS answer of this thread, for the main thread's diagnostics channel (where subscribers are). */
  | { readonly type: 'hls-answer'; readonly answer: HlsAnswer };

/** Worker → main, answered with a `reply`. */
export type MainRequest =
  | { readonly kind: 'authorize'; readonly channel: string; readonly key: string; readonly ip: string }
  | { readonly kind: 'streams' };

/** Main → worker. */
export type MainCommand =
  /** A channel went live on thread `owner` (0: the main thread, an edge's upstream), or ended (null). */
  | { readonly type: 'directory'; readonly channel: string; readonly owner: number | null }
  /** The publisher about to start here: these threads have viewers waiting for its stream from its first byte. */
  | { readonly type: 'waiting-viewers'; readonly channel: string; readonly threads: readonly number[] }
  /** Thread `thread` has its first viewers of `channel`, which joined during stream `streamId`, published here: serve it. */
  | { readonly type: 'serve-viewers'; readonly channel: string; readonly thread: number; readonly streamId: string }
  /** Edge: the origin accepted viewer `viewer`'s key: it joins its channel. */
  | { readonly type: 'edge-admitted'; readonly viewer: number }
  /** Edge: viewer `viewer` gets the origin's final answer (an ERROR text first, if any). */
  | { readonly type: 'edge-closed'; readonly viewer: number; readonly text?: string; readonly code: number; readonly reason: string }
  | { readonly type: 'peer'; readonly thread: number; readonly port: MessagePort }
  | { readonly type: 'peer-gone'; readonly thread: number }
  | { readonly type: 'request'; readonly id: number; readonly request: WorkerRequest }
  | { readonly type: 'reply'; readonly id: number; readonly result?: unknown; readonly error?: string }
  | { readonly type: 'shutdown' };

/** Main → worker, answered with a `reply`. */
export type WorkerRequest =
  | { readonly kind: 'kill'; readonly channel: string; readonly streamId: string }
  | { readonly kind: 'state' }
  /** STREAM_KEYS_FILE was reloaded: its text, to use from now on. */
  | { readonly kind: 'keys'; readonly text: string }
  /** The certificate files changed and hold a valid pair: take it (answers whether it did). */
  | { readonly kind: 'certificate' }
  /** Test-only (WORKER_TEST_HOOKS): an uncaught exception in the worker. */
  | { readonly kind: 'crash' }
  /**
   * Test-only: keep the messages from `from` until released (messages that come late): the main
   * thread's news (`directory` and `serve-viewers` commands), or relay messages from a thread.
   */
  | { readonly kind: 'hold'; readonly from: 'main' | number; readonly hold: boolean };
