import { EventEmitter } from 'node:events';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import uWS from 'uWebSockets.js';
import { INTERNAL_IP } from '../bridge/bridge.js';
import { hlsAnswers } from '../bridge/hls.js';
import { Receiver } from '../channels/index.js';
import type { Channel, ChannelRegistry, ClientSocket, Publisher } from '../channels/index.js';
import { cacheMemoryLimitBytes, settingsTextOf } from '../config/index.js';
import type { Config } from '../config/index.js';
import { checkPlayAccessSettings, createAuthorizer } from '../coordinator/index.js';
import type { PublishAuthorizer, PublishDecision, StreamController } from '../coordinator/authorizer.js';
import { KeysFileAuthorizer } from '../coordinator/key-authorizers.js';
import { EdgeRelays } from '../edge/index.js';
import { Closures } from '../protocol/errors.js';
import { silentLogger } from '../log/logger.js';
import type { Logger } from '../log/logger.js';
import { SharedIpCounts } from '../server/ip-limiter.js';
import { describeAddress, listen } from '../server/listen.js';
import { CertificateWatcher, loadPair } from '../server/tls-certificates.js';
import { checkListenerSettings, createChannelRegistry } from '../server/stream-server.js';
import type { PublishObserver } from '../server/stream-server.js';
import type { CertificatePair, TlsFiles } from '../server/tls-certificates.js';
import type { MainCommand, MainRequest, RelayMessage, WorkerEvent, WorkerRequest } from './messages.js';
import { PendingRequests, answer } from './rpc.js';
import { ThreadRelays } from './relays.js';
import { mergeStates, registryState } from './state.js';
import type { ThreadState } from './state.js';
import { publicStreamsOf } from '../routes.js';
import type { WorkerData } from './worker.js';

/**
 * One thread's share of CACHE_MEMORY_LIMIT_MB (`limit` bytes, 0: none) split evenly between
 * `shares` threads, so that their caches together stay within it.
 */
function cacheShareBytes(limit: number, shares: number): number {
  return limit === 0 ? 0 : Math.max(1, Math.floor(limit / shares));
}

/**
 * The worker's entry: next to this file in dist/. Under the test runner (TypeScript from src/)
 * the built one starts far faster than compiling src/ again in every thread: it is used when it
 * is newer than every source file (`npm test` builds first).
 */
function workerEntry(): URL {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new URL('./worker.js', here);
  const built = new URL('../../dist/src/cluster/worker.js', here);
  return builtIsFresh(fileURLToPath(built), fileURLToPath(new URL('..', here))) ? built : new URL('./worker.ts', here);
}

function builtIsFresh(built: string, sources: string): boolean {
  let builtAt: number;
  try {
    builtAt = statSync(built).mtimeMs;
  } catch {
    return false;
  }
  const files = readdirSync(sources, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.ts'));
  return files.every((name) => statSync(join(sources, name)).mtimeMs <= builtAt);
}

/** Who publishes a channel: the worker thread, and the stream id the authorizer gave. */
interface Publication {
  readonly owner: number;
  readonly streamId: string;
  /** Accepted, not live yet (the upgrade is under way). */
  live: boolean;
  /** A kill came before the worker said it is live: it is sent then. */
  killPending?: boolean;
}

interface WorkerHandle {
  readonly thread: number;
  readonly worker: Worker;
  /** The main thread's end of the relay port to this worker. */
  readonly relay: MessagePort;
  readonly requests: PendingRequests;
  /** Its requests being answered here, aborted when it no longer waits for the answer. */
  readonly answering: Map<number, AbortController>;
  ready: boolean;
  testPort?: number;
}

export interface WorkerClusterOptions {
  readonly logger?: Logger;
  /** Decides on publishers for every thread (default: from the config, as a single-thread server). */
  readonly authorizer?: PublishAuthorizer;
  /** Told of every stream, relayed to this thread (bridges, recordings). */
  readonly publishObservers?: readonly PublishObserver[];
  /** A loopback port per worker and a way to crash one (default: WS_STREAM_SERVER_TEST_HOOKS=1). */
  readonly testHooks?: boolean;
}

export interface WorkerClusterEvents {
  /** A worker died and was replaced (or not, when shutting down). */
  workerFailed: [thread: number, error: Error | undefined];
  workerReady: [thread: number];
  certificateReloaded: [];
  /** STREAM_KEYS_FILE was reloaded and every worker has the keys (or the old ones, if the file was bad). */
  keysReloaded: [];
  certificateRejected: [Error];
}

/**
 * The main thread in worker mode (WORKERS > 1): the control plane. It takes the ports (the
 * workers share them), starts the workers, decides who publishes (one coordinator connection,
 * one publisher per channel across threads), keeps the directory of which thread publishes
 * what, relays channels to the bridges, watches certificates and the keys file, replaces a
 * worker that dies, and shuts everything down. The streaming itself is the workers'.
 */
export class WorkerCluster extends EventEmitter<WorkerClusterEvents> implements StreamController {
  readonly authorizer: PublishAuthorizer;
  /** The main thread's own channels: relayed ones, for the bridges' internal receivers. */
  readonly registry: ChannelRegistry;
  private readonly relays: ThreadRelays;
  private readonly workers = new Map<number, WorkerHandle>();
  private readonly directory = new Map<string, Publication>();
  /** Channel → threads with viewers of it, who wait for its next stream (see the 'interest' event). */
  private readonly waitingViewers = new Map<string, Set<number>>();
  private readonly ipCounts = SharedIpCounts.allocate();
  private readonly settings: ReturnType<typeof settingsTextOf>;
  /** Each caching thread's share of CACHE_MEMORY_LIMIT_MB. */
  private readonly cacheShareBytes: number;
  private certificates: CertificateWatcher | undefined;
  /** Edge mode: the upstreams from the origin, all in this thread (one per channel and key for the server). */
  readonly upstream: EdgeRelays | undefined;
  /** Edge mode: a stand-in here for each viewer of a worker (`thread:viewer`), as EdgeRelays counts and admits viewers. */
  private readonly edgeViewers = new Map<string, { readonly thread: number; readonly viewer: number; readonly receiver: Receiver; leave?: () => void }>();
  private closing = false;
  /** Settles when close() starts: pending authorizations stop waiting then. */
  private readonly closed = resolvable<'closing'>();
  /** Workers that died and were replaced since start. */
  workerRestarts = 0;
  httpPort = 0;
  tlsPort: number | undefined;

  private readonly logger: Logger;
  private readonly observers: readonly PublishObserver[];
  private readonly testHooks: boolean;
  private readonly tlsFiles: TlsFiles | undefined;

  constructor(
    readonly config: Config,
    options: WorkerClusterOptions = {},
  ) {
    super();
    this.logger = options.logger ?? silentLogger;
    this.observers = options.publishObservers ?? [];
    this.testHooks = options.testHooks ?? process.env.WS_STREAM_SERVER_TEST_HOOKS === '1';
    // Bad TLS files or nothing to listen on: a ConfigError here, not a failing worker.
    this.tlsFiles = checkListenerSettings(config);
    // The workers' settings errors too, before any worker starts (a worker would only fail).
    checkPlayAccessSettings(config);
    this.settings = settingsTextOf(config);
    this.authorizer = options.authorizer ?? createAuthorizer(config, this.logger);
    // Streams are cached on their publisher's thread only (see ThreadRelays): the main thread
    // caches the channels of an edge's upstreams, which it publishes, and then takes a share of
    // the limit like a worker; else (bridges read streams relayed to it) it holds no cache.
    const mainCaches = config.originUrl.length > 0;
    this.cacheShareBytes = cacheShareBytes(cacheMemoryLimitBytes(config.cacheMemoryLimitMb), config.workers + (mainCaches ? 1 : 0));
    this.registry = createChannelRegistry(config, mainCaches ? this.cacheShareBytes : 0);
    const observer = {
      publishStarted: (channel: Channel, publisher: Publisher) => {
        for (const each of this.observers) each.publishStarted(channel, publisher);
      },
      publishEnded: (channel: Channel, publisher: Publisher) => {
        for (const each of this.observers) each.publishEnded(channel, publisher);
      },
    };
    this.upstream =
      config.originUrl.length === 0
        ? undefined
        : new EdgeRelays(this.registry, config, this.logger, {
            admitted: (receiver) => {
              const viewer = this.edgeViewers.get(standInKey(receiver));
              if (viewer !== undefined) this.commandThread(viewer.thread, { type: 'edge-admitted', viewer: viewer.viewer });
            },
            // The origin's stream is this thread's channel: the workers subscribe to it here.
            publishing: (channel, live) => this.announce(channel, live ? 0 : null),
          });
    // The bridges want every stream, whole; without them the main thread relays nothing.
    this.relays = new ThreadRelays(this.registry, { self: 0, pushed: true, observer });
  }

  /** The certificate pair in service (TLS), as the main thread last loaded it. */
  get certificate(): CertificatePair | undefined {
    return this.certificates?.pair;
  }

  /** True while a worker thread is up to accept connections. */
  get listening(): boolean {
    return !this.closing && [...this.workers.values()].some((handle) => handle.ready);
  }

  get workerCount(): number {
    return this.config.workers;
  }

  /** Test hooks: each worker's own loopback port, by thread number. */
  testPorts(): Map<number, number> {
    return new Map([...this.workers.values()].flatMap((handle) => (handle.testPort === undefined ? [] : [[handle.thread, handle.testPort] as const])));
  }

  /** Takes the ports, starts the authorizer and the workers. Throws like StreamServer.listen(). */
  async start(): Promise<void> {
    this.claimPorts();
    await this.authorizer.start?.(this);
    const keys = this.authorizer instanceof KeysFileAuthorizer ? this.authorizer : undefined;
    keys?.events.on('reload', () => {
      const request = { kind: 'keys', text: keys.keysText } as const;
      void Promise.allSettled([...this.workers.values()].map((handle) => this.request(handle, request))).then(() => this.emit('keysReloaded'));
    });
    const started = [];
    for (let thread = 1; thread <= this.config.workers; thread++) started.push(this.startWorker(thread));
    await Promise.all(started);
    await this.watchCertificates();
  }

  /**
   * Binds each port exclusively, then lets go: a port already in use (by anyone) is a startup
   * error, and port 0 becomes a real one. The workers then bind it together (SO_REUSEPORT).
   */
  private claimPorts(): void {
    const claim = (port: number, setting: string): number => {
      const app = uWS.App();
      const socket = listen(app, this.config.bindAddress, port, { exclusive: true });
      if (socket === false) {
        throw new Error(`Cannot listen on ${describeAddress(this.config.bindAddress, port)} (${setting} / BIND_ADDRESS): address in use or not available`);
      }
      const bound = uWS.us_socket_local_port(socket);
      uWS.us_listen_socket_close(socket);
      return bound;
    };
    if (this.config.httpPort !== 0) this.httpPort = claim(this.config.httpPort, 'HTTP_PORT');
    if (this.tlsFiles !== undefined) this.tlsPort = claim(this.config.sslPort, 'SSL_PORT');
  }

  private startWorker(thread: number): Promise<void> {
    const { port1: mainEnd, port2: workerEnd } = new MessageChannel();
    const settings = { ...this.settings, httpPort: String(this.httpPort), ...(this.tlsPort === undefined ? {} : { sslPort: String(this.tlsPort) }) };
    const keysText = this.authorizer instanceof KeysFileAuthorizer ? this.authorizer.keysText : undefined;
    const data: WorkerData = { thread, settings, ipCounts: this.ipCounts, testHooks: this.testHooks, mainPort: workerEnd, pushToMain: this.observers.length > 0, cacheLimitBytes: this.cacheShareBytes, keysText, log: { requests: this.logger.requestsEnabled, debug: this.logger.debugEnabled } };
    const entry = workerEntry();
    // The built entry needs no loader: a test runner's TypeScript hooks would only slow each start.
    const worker = new Worker(entry, { workerData: data, transferList: [workerEnd], name: `ws-stream-worker-${thread}`, ...(entry.pathname.endsWith('.js') ? { execArgv: [] } : {}) });
    const handle: WorkerHandle = { thread, worker, relay: mainEnd, requests: new PendingRequests(), answering: new Map(), ready: false };
    this.workers.set(thread, handle);
    mainEnd.on('message', (batch: RelayMessage[]) => this.relays.handle(thread, batch));
    this.relays.addPeer(thread, mainEnd);
    // Relay ports between this worker and every other one.
    for (const other of this.workers.values()) {
      if (other === handle) continue;
      const { port1, port2 } = new MessageChannel();
      this.command(other, { type: 'peer', thread, port: port1 }, [port1]);
      this.command(handle, { type: 'peer', thread: other.thread, port: port2 }, [port2]);
    }
    for (const [channel, publication] of this.directory) {
      if (publication.live) this.command(handle, { type: 'directory', channel, owner: publication.owner });
    }
    return new Promise<void>((resolve, reject) => {
      worker.on('message', (event: WorkerEvent) => {
        if (event.type === 'ready') {
          handle.ready = true;
          handle.testPort = event.testPort;
          if (event.testPort !== undefined) this.logger.info(`[TEST] Worker ${thread} also listens on 127.0.0.1:${event.testPort}`);
          resolve();
          this.emit('workerReady', thread);
        } else this.onWorkerEvent(handle, event);
      });
      worker.once('error', (error) => {
        if (!handle.ready) reject(error);
        else this.logger.error(`Worker ${thread}: ${error.message}`);
      });
      worker.once('exit', (code) => {
        if (!handle.ready) reject(new Error(`worker ${thread} exited with code ${code} before it was ready`));
        this.onWorkerExit(handle, code);
      });
    });
  }

  private onWorkerEvent(handle: WorkerHandle, event: WorkerEvent): void {
    switch (event.type) {
      case 'request': {
        const abandon = new AbortController();
        handle.answering.set(event.id, abandon);
        return answer(event.id, () => this.handleRequest(handle, event.request, abandon.signal), (reply) => {
          handle.answering.delete(event.id);
          this.command(handle, reply);
        });
      }
      case 'abandoned':
        return handle.answering.get(event.id)?.abort();
      case 'reply':
        return handle.requests.settle(event);
      case 'published': {
        const publication = this.directory.get(event.channel);
        if (publication === undefined || publication.streamId !== event.streamId) return;
        publication.live = true;
        this.announce(event.channel, handle.thread);
        if (publication.killPending === true) this.sendKill(handle, event.channel, publication.streamId);
        return;
      }
      case 'unpublished':
        return this.unpublish(event.channel, event.streamId);
      case 'edge-join':
        return this.edgeJoin(handle.thread, event.viewer, event.channel, event.key);
      case 'edge-leave':
        return this.edgeLeave(`${handle.thread}:${event.viewer}`);
      case 'log':
        return this.logger.line(event.line, event.isError);
      case 'hls-answer':
        if (hlsAnswers.hasSubscribers) hlsAnswers.publish(event.answer);
        return;
      case 'interest':
        return this.interest(handle.thread, event.channel, event.waiting);
      case 'ready':
        return;
    }
  }

  private handleRequest(handle: WorkerHandle, request: MainRequest, abandoned: AbortSignal): unknown {
    switch (request.kind) {
      case 'authorize':
        return this.authorize(handle.thread, request, abandoned);
      case 'streams':
        return this.state().then((states) => publicStreamsOf(mergeStates(states)));
    }
  }

  /** One publisher per channel across every thread, then whatever the authorizer says. */
  private async authorize(thread: number, request: { channel: string; key: string; ip: string }, abandoned: AbortSignal): Promise<PublishDecision> {
    if (this.closing) return { accepted: false };
    if (this.directory.has(request.channel)) return { accepted: false, alreadyPublishing: true };
    // Held while the authorizer decides, so that a second publisher elsewhere is refused meanwhile;
    // let go as soon as its client leaves, as one thread frees the channel then.
    const hold: Publication = { owner: thread, streamId: '', live: false };
    this.directory.set(request.channel, hold);
    const release = (): void => {
      if (this.directory.get(request.channel) === hold) this.directory.delete(request.channel);
    };
    abandoned.addEventListener('abort', release, { once: true });
    let decision: PublishDecision | 'closing';
    try {
      // A shutdown does not wait for the authorizer: the worker must answer its client and stop.
      decision = await Promise.race([Promise.resolve(this.authorizer.authorize({ channel: request.channel, key: request.key, ip: request.ip }, abandoned)), this.closed.promise]);
    } catch (error) {
      this.logger.error(`Publish authorization failed: ${String(error)}`);
      decision = { accepted: false };
    }
    release();
    if (decision === 'closing') return { accepted: false };
    if (decision.accepted) {
      const handle = this.workers.get(thread);
      // An accepted publish that will not start has ended (for the coordinator too).
      if (handle?.ready !== true || this.closing || abandoned.aborted) {
        this.authorizer.published?.(request.channel, decision.streamId);
        return { accepted: false };
      }
      this.directory.set(request.channel, { owner: thread, streamId: decision.streamId, live: false });
      // Told before the answer (the same port, in order): the stream goes to them from its first
      // byte. Always sent, so that no list of an earlier publish that never started stays there.
      const waiting = [...(this.waitingViewers.get(request.channel) ?? [])].filter((other) => other !== thread);
      this.command(handle, { type: 'waiting-viewers', channel: request.channel, threads: waiting });
    }
    return decision;
  }

  /**
   * Thread `thread` has viewers of `channel`, or no longer. Its first viewers joined during the
   * channel's stream if one is published: its thread serves them (their own thread may hear of
   * the stream only after its end, if it is short or that thread busy).
   */
  private interest(thread: number, channel: string, waiting: boolean): void {
    const threads = this.waitingViewers.get(channel) ?? new Set<number>();
    if (waiting) threads.add(thread);
    else threads.delete(thread);
    const publication = this.directory.get(channel);
    if (waiting && publication !== undefined && publication.streamId !== '' && publication.owner !== thread) {
      this.commandThread(publication.owner, { type: 'serve-viewers', channel, thread, streamId: publication.streamId });
    }
    if (threads.size > 0) this.waitingViewers.set(channel, threads);
    else this.waitingViewers.delete(channel);
  }

  private unpublish(channel: string, streamId: string): void {
    const publication = this.directory.get(channel);
    if (publication === undefined || publication.streamId !== streamId) return;
    this.directory.delete(channel);
    if (publication.live) this.announce(channel, null);
    this.authorizer.published?.(channel, streamId);
  }

  /** Tells every thread (the workers and this one's relays) who publishes `channel` now (null: nobody). */
  private announce(channel: string, owner: number | null): void {
    this.broadcast({ type: 'directory', channel, owner });
    this.relays.setOwner(channel, owner);
  }

  private onWorkerExit(handle: WorkerHandle, code: number): void {
    if (this.workers.get(handle.thread) !== handle) return;
    this.workers.delete(handle.thread);
    handle.requests.rejectAll(`worker ${handle.thread} exited`);
    handle.relay.close();
    this.relays.removePeer(handle.thread);
    for (const channel of [...this.waitingViewers.keys()]) this.interest(handle.thread, channel, false);
    this.broadcast({ type: 'peer-gone', thread: handle.thread });
    for (const [id, entry] of [...this.edgeViewers]) if (entry.thread === handle.thread) this.edgeLeave(id);
    // Its publishers' channels end, for the coordinator too.
    for (const [channel, publication] of [...this.directory]) {
      if (publication.owner === handle.thread && publication.streamId !== '') this.unpublish(channel, publication.streamId);
    }
    if (this.closing) return;
    this.workerRestarts++;
    this.logger.error(`Worker ${handle.thread} stopped (exit code ${code}); starting a new one`);
    this.emit('workerFailed', handle.thread, undefined);
    this.startWorker(handle.thread).catch((error: unknown) => {
      this.logger.error(`Worker ${handle.thread} could not be restarted: ${String(error)}`);
    });
  }

  /**
   * Edge mode: a worker's viewer, through a stand-in receiver here (internal: no data goes to
   * it). The worker adds its viewer to its own channel once admitted, and gets the stream by
   * subscribing to this thread like to any publisher's thread.
   */
  private edgeJoin(thread: number, viewer: number, channel: string, key: string): void {
    if (this.upstream === undefined) return;
    const id = `${thread}:${viewer}`;
    let text: string | undefined;
    const socket: ClientSocket = {
      sendBinary: () => {},
      sendText: (message) => (text = message),
      bufferedAmount: () => 0,
      close: (code, reason) => {
        if (!this.edgeViewers.has(id)) return;
        this.edgeLeave(id);
        this.commandThread(thread, { type: 'edge-closed', viewer, ...(text === undefined ? {} : { text }), code, reason });
      },
    };
    const receiver = new Receiver({ id: viewer, ip: INTERNAL_IP, channel, key, viewGranted: true }, 'receive', socket, Number.MAX_SAFE_INTEGER);
    receiverThreads.set(receiver, thread);
    const entry: { thread: number; viewer: number; receiver: Receiver; leave?: () => void } = { thread, viewer, receiver };
    this.edgeViewers.set(id, entry);
    entry.leave = this.upstream.viewerJoined(receiver);
  }

  private edgeLeave(id: string): void {
    const entry = this.edgeViewers.get(id);
    if (entry === undefined) return;
    this.edgeViewers.delete(id);
    entry.leave?.();
  }

  private commandThread(thread: number, command: MainCommand): void {
    const handle = this.workers.get(thread);
    if (handle !== undefined) this.command(handle, command);
  }

  private command(handle: WorkerHandle, command: MainCommand, transfer: MessagePort[] = []): void {
    handle.worker.postMessage(command, transfer);
  }

  private broadcast(command: MainCommand): void {
    for (const handle of this.workers.values()) this.command(handle, command);
  }

  private request<T>(handle: WorkerHandle, request: WorkerRequest): Promise<T> {
    return handle.requests.request<T>((id) => this.command(handle, { type: 'request', id, request }));
  }

  /** Every worker's figures (a worker that dies meanwhile is left out). */
  async state(): Promise<ThreadState[]> {
    const states = await Promise.allSettled([...this.workers.values()].map((handle) => this.request<ThreadState>(handle, { kind: 'state' })));
    // This thread's channels too: an edge's upstreams publish here.
    return [...states.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : [])), registryState(this.registry, 0)];
  }

  /** Test hooks: an uncaught exception in worker `thread`. */
  async crashWorker(thread: number): Promise<void> {
    await this.request(this.worker(thread), { kind: 'crash' });
  }

  /**
   * Test hooks: worker `thread` keeps the messages from `from` until released, then takes them
   * in order, as a thread whose messages from there come late: this thread's news (`'main'`:
   * who publishes what, whom to serve), or the relay messages of thread `from`.
   */
  async holdMessages(thread: number, from: 'main' | number, hold: boolean): Promise<void> {
    await this.request(this.worker(thread), { kind: 'hold', from, hold });
  }

  private worker(thread: number): WorkerHandle {
    const handle = this.workers.get(thread);
    if (handle === undefined) throw new Error(`no worker ${thread}`);
    return handle;
  }

  /** The worker `thread` is up again (after a crash). */
  async workerReady(thread: number): Promise<void> {
    for (;;) {
      const handle = this.workers.get(thread);
      if (handle?.ready === true) return;
      await new Promise((resolve) => this.once('workerReady', resolve));
    }
  }

  killPublisher(channel: string, streamId: string): boolean {
    const local = this.registry.get(channel)?.publisher;
    if (local !== undefined && local.relayed !== true) {
      // An edge's upstream, in this thread: the session ends as if its publisher had.
      if (streamId !== '*' && streamId !== local.streamId) return false;
      local.socket.close(Closures.KILLED.closeCode, Closures.KILLED.closeReason);
      return true;
    }
    const publication = this.directory.get(channel);
    // An accepted publisher counts from the coordinator's answer on, as on one thread: its
    // worker may not have said yet that it is live (the client may already be sending).
    if (publication === undefined || publication.streamId === '' || (streamId !== '*' && streamId !== publication.streamId)) return false;
    const handle = this.workers.get(publication.owner);
    if (handle === undefined) return false;
    if (!publication.live) publication.killPending = true;
    else this.sendKill(handle, channel, publication.streamId);
    return true;
  }

  private sendKill(handle: WorkerHandle, channel: string, streamId: string): void {
    void this.request(handle, { kind: 'kill', channel, streamId }).catch(() => {});
  }

  killAllPublishers(): number {
    let killed = 0;
    for (const channel of [...this.directory.keys()]) if (this.killPublisher(channel, '*')) killed++;
    return killed;
  }

  /** The channels published now, with their thread and stream id. */
  publications(): Array<{ channel: string; thread: number; streamId: string }> {
    const here = [...this.registry].flatMap((channel) =>
      channel.publisher === undefined || channel.publisher.relayed === true ? [] : [{ channel: channel.name, thread: 0, streamId: channel.publisher.streamId }],
    );
    const workers = [...this.directory].filter(([, publication]) => publication.live).map(([channel, publication]) => ({ channel, thread: publication.owner, streamId: publication.streamId }));
    return [...here, ...workers];
  }

  /** The certificate files are the main thread's to watch; a valid new pair goes to every worker. */
  private async watchCertificates(): Promise<void> {
    const files = this.tlsFiles;
    if (files === undefined) return;
    this.certificates = new CertificateWatcher(files, loadPair(files), this.config.sslCheckReloadSeconds * 1000);
    this.certificates.on('change', (pair) => {
      void Promise.all([...this.workers.values()].map((handle) => this.request<boolean>(handle, { kind: 'certificate' }).catch(() => false))).then((switched) => {
        const count = switched.filter(Boolean).length;
        if (count === switched.length) this.logger.info(`[HTTPS] Certificate reloaded: ${pair.fingerprint} (valid to ${pair.validTo}), on every thread`);
        else this.logger.error(`[HTTPS] Certificate ${pair.fingerprint} in service on ${count} of ${switched.length} threads (see the errors above)`);
        this.emit('certificateReloaded');
      });
    });
    this.certificates.on('invalid', (error) => {
      this.logger.error(`[HTTPS] Certificate not reloaded, the previous one stays in service: ${error.message}`);
      this.emit('certificateRejected', error);
    });
    await this.certificates.start();
  }

  /** Every worker closes its clients (1001) and stops; then the bridges and the authorizer. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.certificates?.close();
    const exits = [...this.workers.values()].map((handle) => new Promise<void>((resolve) => {
      handle.worker.once('exit', () => resolve());
      this.command(handle, { type: 'shutdown' });
    }));
    // After the shutdown commands: a worker learns it is closing before its pending publishes
    // are refused, and answers them 503.
    this.closed.resolve('closing');
    await Promise.all(exits);
    this.relays.close();
    await this.upstream?.close();
    await Promise.all(this.observers.map((observer) => observer.close?.()));
    await this.authorizer.close?.();
  }
}

/** A stand-in's key in `edgeViewers`: its worker thread (the receiver's id is the worker's viewer number). */
function standInKey(receiver: Receiver): string {
  return `${receiverThreads.get(receiver) ?? 0}:${receiver.info.id}`;
}
const receiverThreads = new WeakMap<Receiver, number>();

function resolvable<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}
