// The entry of a worker thread (WORKERS > 1): one StreamServer on the shared ports, its
// channels relayed to and from the other threads, its decisions taken by the main thread.
import { subscribe } from 'node:diagnostics_channel';
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { HLS_ANSWERS } from '../bridge/hls.js';
import type { HlsAnswer } from '../bridge/hls.js';
import { loadConfig } from '../config/index.js';
import type { SettingName } from '../config/index.js';
import { HmacKeyAuthorizer, KeysFileAuthorizer } from '../coordinator/key-authorizers.js';
import type { PublishAuthorizer, PublishDecision, PublishRequest } from '../coordinator/authorizer.js';
import { Logger, silentLogger } from '../log/logger.js';
import { Closures } from '../protocol/errors.js';
import type { Closure, SessionError } from '../protocol/errors.js';
import type { Receiver } from '../channels/index.js';
import type { RelayView, UpstreamSource } from '../edge/index.js';
import { SharedIpCounts } from '../server/ip-limiter.js';
import { publicRoutes } from '../routes.js';
import type { PublicStream } from '../routes.js';
import { StreamServer } from '../server/stream-server.js';
import type { PublishObserver } from '../server/stream-server.js';
import type { MainCommand, MainRequest, RelayMessage, WorkerEvent, WorkerRequest } from './messages.js';
import { PendingRequests, answer } from './rpc.js';
import { ThreadRelays } from './relays.js';
import { threadState } from './state.js';

/** What the main thread gives each worker. */
export interface WorkerData {
  /** This thread's number, 1 … WORKERS. */
  readonly thread: number;
  /** The settings' text (settingsTextOf), with the ports the main thread resolved. */
  readonly settings: Partial<Record<SettingName, string>>;
  readonly ipCounts: SharedArrayBuffer;
  /** Test-only (WS_STREAM_SERVER_TEST_HOOKS=1): a private port per worker, and a way to crash it. */
  readonly testHooks: boolean;
  /** This worker's relay port to the main thread (thread 0). */
  readonly mainPort: MessagePort;
  /** What the main thread's logger writes (its lines are written there). */
  readonly log: { readonly requests: boolean; readonly debug: boolean };
  /** STREAM_KEYS_FILE's text as the main thread loaded it. */
  readonly keysText?: string;
  /** The main thread's bridges or recordings want every stream, whole. */
  readonly pushToMain: boolean;
  /** This thread's share of CACHE_MEMORY_LIMIT_MB (see cacheShareBytes). */
  readonly cacheLimitBytes: number;
}

const data = workerData as WorkerData;
const port = parentPort!;
const post = (event: WorkerEvent): void => port.postMessage(event);
// Subscribers of the HLS answers (an access log, an APM agent) are in the main thread.
subscribe(HLS_ANSWERS, (answer) => post({ type: 'hls-answer', answer: answer as HlsAnswer }));
const config = loadConfig({ flags: data.settings });
// Lines go to the main thread's logger: an embedder's logger gets every thread's lines.
const logger = new Logger(data.log, (line, isError) => post({ type: 'log', line, isError }));
const requests = new PendingRequests();

/** Which keys view a channel, known here; the main thread asks when the keys file changes. */
const keyChecker: PublishAuthorizer | undefined =
  config.controlBaseUrl !== '' ? undefined
  : config.streamKeySecret !== '' ? new HmacKeyAuthorizer(config.streamKeySecret)
  : config.streamKeysFile !== '' ? new KeysFileAuthorizer(config.streamKeysFile, silentLogger, data.keysText)
  : undefined;

/** Publishing decisions are the main thread's: one coordinator, and one publisher per channel across threads. */
const authorizer: PublishAuthorizer = {
  authorize: (request: PublishRequest, abandoned?: AbortSignal) =>
    requests.request<PublishDecision>((id) => {
      post({ type: 'request', id, request: { kind: 'authorize', ...request } satisfies MainRequest });
      abandoned?.addEventListener('abort', () => post({ type: 'abandoned', id }), { once: true });
    }),
  isReceiverKeyValid: keyChecker?.isReceiverKeyValid?.bind(keyChecker),
  isPlayKey: keyChecker?.isPlayKey?.bind(keyChecker),
  published: (channel, streamId) => post({ type: 'unpublished', channel, streamId }),
};

const announcer: PublishObserver = {
  publishStarted: (channel, publisher) => {
    post({ type: 'published', channel: channel.name, streamId: publisher.streamId });
    relays!.publishStarted(channel);
  },
  publishEnded: () => {},
};

/**
 * Edge mode: the main thread holds the upstreams (one per channel and key for the server) and
 * decides with the origin about each viewer's key; an admitted viewer joins its channel here,
 * which this thread then relays from the main thread like from any publisher's thread.
 */
class EdgeViewers implements UpstreamSource {
  private nextViewer = 1;
  /** Every viewer until it leaves: the origin's answer may come after it joined (a key refused later). */
  private readonly viewers = new Map<number, { receiver: Receiver; join: () => void }>();

  viewerJoined(receiver: Receiver): () => void {
    const viewer = this.nextViewer++;
    const name = receiver.info.channel;
    let leaveRelay: (() => void) | undefined;
    this.viewers.set(viewer, {
      receiver,
      join: () => {
        const channel = server.registry.getOrCreate(name);
        if (channel.addReceiver(receiver)) leaveRelay = relays!.viewerJoined(channel);
      },
    });
    post({ type: 'edge-join', viewer, channel: name, key: receiver.info.key });
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.viewers.delete(viewer);
      post({ type: 'edge-leave', viewer });
      const channel = server.registry.get(name);
      channel?.removeReceiver(receiver);
      leaveRelay?.();
      if (channel !== undefined) server.registry.releaseIfUnused(channel);
    };
  }

  admitted(viewer: number): void {
    const entry = this.viewers.get(viewer);
    if (entry !== undefined && entry.receiver.currentState !== 'closed') entry.join();
  }

  /** The origin's final answer for the viewer (its code and reason, and ERROR text if any). */
  closed(viewer: number, text: string | undefined, code: number, reason: string): void {
    const entry = this.viewers.get(viewer);
    if (entry === undefined) return;
    const closure = { closeCode: code, closeReason: reason } as Closure;
    if (text === undefined) entry.receiver.close(closure);
    else entry.receiver.fail({ ...closure, code: 'ORIGIN', message: text } as SessionError);
  }

  relays(): RelayView[] {
    return [];
  }

  async close(): Promise<void> {}
}

const edgeViewers = config.originUrl.length > 0 ? new EdgeViewers() : undefined;

// The relays need the server's registry, and the server calls the relays: tied up below.
let relays: ThreadRelays | undefined = undefined;
const server = new StreamServer(config, {
  logger,
  authorizer,
  publishObservers: [announcer],
  ...(edgeViewers === undefined ? {} : { upstream: () => edgeViewers }),
  // The public list spans every thread: the main thread gathers it.
  routes: publicRoutes(config, () => requests.request<PublicStream[]>((id) => post({ type: 'request', id, request: { kind: 'streams' } }))),
  thread: {
    ipCounts: new SharedIpCounts(data.ipCounts),
    sharedPorts: true,
    threads: config.workers,
    index: data.thread,
    cacheLimitBytes: data.cacheLimitBytes,
    viewerJoined: (channel) => relays!.viewerJoined(channel),
  },
});
relays = new ThreadRelays(server.registry, {
  self: data.thread,
  interest: (channel, waiting) => post({ type: 'interest', channel, waiting }),
  ...(data.pushToMain ? { pushTo: 0 } : {}),
});

function connectPeer(thread: number, peer: MessagePort): void {
  if (data.testHooks) peer.on('message', (batch: RelayMessage[]) => deliver(thread, () => relays!.handle(thread, batch)));
  else peer.on('message', (batch: RelayMessage[]) => relays!.handle(thread, batch));
  relays!.addPeer(thread, peer);
}
connectPeer(0, data.mainPort);
const peers = new Map<number, MessagePort>([[0, data.mainPort]]);

let closing: Promise<void> | undefined;
/** Closes every connection (1001) and lets go of the ports; the main thread sees the thread exit. */
function shutDown(): Promise<void> {
  closing ??= (async () => {
    // Clients first, with 1001 (the relayed streams did not end: their viewers may come back).
    await server.close();
    relays!.close();
    for (const peerPort of peers.values()) peerPort.close();
    port.close();
  })();
  return closing;
}

function handleRequest(request: WorkerRequest): unknown {
  switch (request.kind) {
    case 'kill':
      return server.killPublisher(request.channel, request.streamId);
    case 'state':
      return threadState(server, data.thread);
    case 'certificate':
      return server.useCertificate();
    case 'keys':
      return (keyChecker as KeysFileAuthorizer).useText(request.text);
    case 'crash':
      if (!data.testHooks) throw new Error('crash: test hooks are off');
      setImmediate(() => {
        throw new Error(`test-only crash of worker ${data.thread}`);
      });
      return true;
    case 'hold': {
      if (!data.testHooks) throw new Error('hold: test hooks are off');
      const kept = held.get(request.from) ?? [];
      if (request.hold) held.set(request.from, kept);
      else {
        held.delete(request.from);
        for (const take of kept) take();
      }
      return true;
    }
  }
}

/** Test hooks: messages kept back, by sender (see WorkerCluster.holdMessages). */
const held = new Map<'main' | number, Array<() => void>>();

/** Takes a message from `from` now, or once released if held. */
function deliver(from: 'main' | number, take: () => void): void {
  const kept = held.get(from);
  if (kept !== undefined) kept.push(take);
  else take();
}

type News = Extract<MainCommand, { type: 'directory' | 'serve-viewers' }>;

function takeNews(command: News): void {
  if (command.type === 'directory') relays!.setOwner(command.channel, command.owner);
  else relays!.serveViewers(command.thread, command.channel, command.streamId);
}

port.on('message', (command: MainCommand) => {
  switch (command.type) {
    case 'directory':
    case 'serve-viewers':
      return deliver('main', () => takeNews(command));
    case 'waiting-viewers':
      return relays!.viewersWaiting(command.channel, command.threads);
    case 'peer':
      peers.set(command.thread, command.port);
      return connectPeer(command.thread, command.port);
    case 'peer-gone':
      peers.get(command.thread)?.close();
      peers.delete(command.thread);
      return relays!.removePeer(command.thread);
    case 'request':
      return answer(command.id, () => handleRequest(command.request), post);
    case 'reply':
      return requests.settle(command);
    case 'shutdown':
      return void shutDown();
    case 'edge-admitted':
      return edgeViewers?.admitted(command.viewer);
    case 'edge-closed':
      return edgeViewers?.closed(command.viewer, command.text, command.code, command.reason);
  }
});

// A bug in this thread: its clients are closed (they may reconnect, to a healthy thread), the
// main thread ends its publishers' channels and starts a new worker.
process.on('uncaughtException', (error) => {
  logger.error(`Worker ${data.thread} failed: ${error.stack ?? String(error)}`);
  requests.rejectAll('worker failed');
  // For viewers on other threads, its publishers simply ended: the server is not shutting down.
  relays!.endServed(Closures.PUBLISHER_ENDED);
  void shutDown().finally(() => process.exit(1));
});

try {
  await server.listen();
  if (data.testHooks) {
    const testPort = server.listenTestPort();
    post({ type: 'ready', testPort });
  } else {
    post({ type: 'ready' });
  }
} catch (error) {
  logger.error(`Worker ${data.thread} could not start: ${(error as Error).message}`);
  await server.close();
  throw error;
}
