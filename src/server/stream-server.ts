import { EventEmitter } from 'node:events';
import uWS from 'uWebSockets.js';
import type { Config } from '../config/index.js';
import { ConfigError, MEBIBYTE, cacheMemoryLimitBytes, canonicalAddress } from '../config/index.js';
import { ChannelRegistry, Receiver } from '../channels/index.js';
import type { Channel, Publisher, ReceiverKind } from '../channels/index.js';
import { createAuthorizer, createPlayAccess } from '../coordinator/index.js';
import type { PlayAccess } from '../coordinator/index.js';
import type { PublishAuthorizer, PublishDecision, StreamController } from '../coordinator/authorizer.js';
import type { UpstreamSource } from '../edge/index.js';
import { Logger, silentLogger } from '../log/logger.js';
import { Closures, Rejections, SessionErrors } from '../protocol/errors.js';
import type { Closure, SessionError, UpgradeRejection } from '../protocol/errors.js';
import { HEARTBEAT } from '../protocol/messages.js';
import { parseStreamRoute } from '../protocol/route.js';
import type { ConnectionKind, StreamRoute } from '../protocol/route.js';
import { ServerCounters } from './counters.js';
import { IpConnectionLimiter } from './ip-limiter.js';
import type { ConnectionSlot, IpCounts } from './ip-limiter.js';
import { sendRejection } from './http-response.js';
import { closeApp, describeAddress, listen } from './listen.js';
import { StaticRoutes } from './static-routes.js';
import { CorkAnchor } from './cork-anchor.js';
import { CertificateError, CertificateWatcher, loadPair } from './tls-certificates.js';
import type { CertificatePair, TlsFiles } from './tls-certificates.js';
import { UwsClientSocket } from './uws-socket.js';

export interface StreamServerOptions {
  readonly logger?: Logger;
  readonly authorizer?: PublishAuthorizer;
  /** Extra HTTP routes for every listener (plain and TLS), e.g. the public stream list. */
  readonly routes?: (app: uWS.TemplatedApp) => void;
  /** Told when publishing sessions start and end (bridges, recording). */
  readonly publishObservers?: readonly PublishObserver[];
  /** Edge mode (ORIGIN_URL): where viewers' channels come from. Publishing is then refused. */
  readonly upstream?: (registry: ChannelRegistry) => UpstreamSource;
  /** Worker threads: how this thread takes part in a server of several (see src/cluster/). */
  readonly thread?: ThreadRole;
}

/** What a worker thread's server shares with the others. */
export interface ThreadRole {
  /** Per-IP counts shared by every thread. */
  readonly ipCounts: IpCounts;
  /** The main thread took each port exclusively; the threads share them (SO_REUSEPORT). */
  readonly sharedPorts: true;
  /** How many worker threads there are, and this one's number (1 …). */
  readonly threads: number;
  readonly index: number;
  /** This thread's share of CACHE_MEMORY_LIMIT_MB, in bytes (0: no limit). */
  readonly cacheLimitBytes: number;
  /** A receiver joined a channel here: the channel may be published on another thread. Returns its leave. */
  viewerJoined(channel: Channel): () => void;
}

/**
 * Something that follows publishing sessions, such as a bridge or a recorder. It may attach
 * internal receivers to the channel in `publishStarted`; they are closed with the others when
 * the publisher ends, before `publishEnded` is called.
 */
export interface PublishObserver {
  publishStarted(channel: Channel, publisher: Publisher): void;
  publishEnded(channel: Channel, publisher: Publisher): void;
  /** Server shutdown: stop everything, wait for child processes. */
  close?(): Promise<void>;
}

/** Everything the server knows about one WebSocket connection. */
interface Session {
  readonly id: number;
  readonly ip: string;
  readonly route: StreamRoute;
  readonly slot: ConnectionSlot;
  readonly channel: Channel;
  /** Set for publish sessions: the stream id the authorizer gave. */
  readonly streamId?: string;
  socket?: UwsClientSocket;
  publisher?: Publisher;
  receiver?: Receiver;
  /** On an edge or with worker threads: tells the channel's source that this viewer left. */
  leaveUpstream?: () => void;
  /** Why this viewer's key may be refused once a publisher starts (for the log). */
  refusalNote?: string;
  lastActivity: number;
}

interface SocketData {
  session: Session;
}

type Ws = uWS.WebSocket<SocketData>;

/** A thread's channels, with the cache settings and `memoryLimitBytes` of CACHE_MEMORY_LIMIT_MB (0: none). */
export function createChannelRegistry(config: Config, memoryLimitBytes: number): ChannelRegistry {
  return ChannelRegistry.withMediaCache({
    capacityBytes: Math.floor(config.gopCacheSizeMb * MEBIBYTE),
    gops: config.gopCacheGops,
    overflow: config.receiverOverflow,
    memoryLimitBytes,
  });
}

/**
 * The listeners' settings, checked: the TLS files (if TLS is on), and something to listen on.
 * Throws ConfigError naming the setting.
 */
export function checkListenerSettings(config: Config): TlsFiles | undefined {
  const files = tlsFilesOf(config);
  if (config.httpPort === 0 && files === undefined) {
    throw new ConfigError('HTTP_PORT', 'HTTP_PORT is 0 (plain HTTP off) but TLS is not configured (SSL_CERT, SSL_KEY): nothing to listen on.');
  }
  return files;
}

function tlsFilesOf(config: Config): TlsFiles | undefined {
  const { sslCert, sslKey, sslKeyPassphrase } = config;
  if (sslCert === '' && sslKey === '') return undefined;
  if (sslCert === '') throw new ConfigError('SSL_CERT', 'SSL_KEY is set but SSL_CERT is not: TLS needs both.');
  if (sslKey === '') throw new ConfigError('SSL_KEY', 'SSL_CERT is set but SSL_KEY is not: TLS needs both.');
  const files = { certFile: sslCert, keyFile: sslKey, passphrase: sslKeyPassphrase };
  loadPairOrConfigError(files);
  return files;
}

function loadPairOrConfigError(files: TlsFiles): CertificatePair {
  try {
    return loadPair(files);
  } catch (error) {
    if (error instanceof CertificateError) throw new ConfigError(error.setting, error.message);
    throw error;
  }
}

/** The library's limits are 32-bit integers. */
const INT32_MAX = 2 ** 31 - 1;

/**
 * The uWebSockets.js side of the server: HTTP answers, upgrades, socket events, heartbeat and
 * idle timeout. Channel logic lives in channels/; this file only adapts sockets to it.
 */
/** One listening socket and the app serving it. */
interface Listener {
  readonly scheme: 'http' | 'https';
  app: uWS.TemplatedApp;
  socket: uWS.us_listen_socket;
  readonly port: number;
}

/** Events of a StreamServer, for operators' tooling and tests. */
export interface StreamServerEvents {
  /** A new TLS certificate is in service for new connections. */
  certificateReloaded: [CertificatePair];
  /** Changed certificate files were not usable; the previous certificate stays in service. */
  certificateRejected: [Error];
}

export class StreamServer extends EventEmitter<StreamServerEvents> implements StreamController {
  readonly registry: ChannelRegistry;
  private readonly logger: Logger;
  readonly authorizer: PublishAuthorizer;
  /** Who may view: play tokens, play keys, the publisher's key. */
  private readonly playAccess: PlayAccess;
  private readonly limiter: IpConnectionLimiter;
  private readonly statics: StaticRoutes;
  private readonly extraRoutes: ((app: uWS.TemplatedApp) => void) | undefined;
  private readonly observers: readonly PublishObserver[];
  private readonly thread: ThreadRole | undefined;
  /** Set on an edge: the relays from the origin. */
  readonly upstream: UpstreamSource | undefined;
  private readonly sessions = new Set<Session>();
  readonly counters = new ServerCounters();
  private readonly maxMessageBytes: number;
  private readonly receiverBufferBytes: number;
  private readonly tlsFiles: TlsFiles | undefined;
  private certificates: CertificateWatcher | undefined;
  /** The pair of the last certificate reload (before any: the watcher's first pair). */
  private servedPair: CertificatePair | undefined;
  private readonly endpoints: Listener[] = [];
  /** Apps replaced by a certificate reload: their open connections keep running on them. */
  private readonly retiredApps: uWS.TemplatedApp[] = [];
  private timers: NodeJS.Timeout[] = [];
  private nextSessionId: number;
  /** Session ids step over the other threads' (thread n of N: n, n + N, …): unique in logs and stats. */
  private readonly sessionIdStep: number;
  private closing = false;
  /** Publishes waiting for an asynchronous authorization: their answer must still go out. */
  private authorizing = 0;
  /** Set by close(): apps to close once no authorization is pending. */
  private appsToClose: uWS.TemplatedApp[] | undefined;
  /** Where upgrades decided later are corked (see CorkAnchor). */
  private readonly corkAnchor = new CorkAnchor();

  /** Throws ConfigError for settings that only make sense together (TLS files, keys file). */
  constructor(
    readonly config: Config,
    options: StreamServerOptions = {},
  ) {
    super();
    this.logger = options.logger ?? silentLogger;
    this.tlsFiles = checkListenerSettings(config);
    this.authorizer = options.authorizer ?? createAuthorizer(config, this.logger);
    this.playAccess = createPlayAccess(config, this.authorizer);
    this.thread = options.thread;
    this.nextSessionId = options.thread?.index ?? 1;
    this.sessionIdStep = options.thread?.threads ?? 1;
    this.limiter = new IpConnectionLimiter(config.maxIpConcurrentConnections, config.concurrentLimitWhitelist, options.thread?.ipCounts);
    this.registry = createChannelRegistry(config, options.thread?.cacheLimitBytes ?? cacheMemoryLimitBytes(config.cacheMemoryLimitMb));
    this.maxMessageBytes = Math.floor(config.maxMessageSizeMb * MEBIBYTE);
    this.receiverBufferBytes = Math.floor(config.maxReceiverBufferMb * MEBIBYTE);
    this.statics = new StaticRoutes(config);
    this.extraRoutes = options.routes;
    this.observers = options.publishObservers ?? [];
    this.upstream = options.upstream?.(this.registry);
  }

  /** The plain HTTP port listened on, or the TLS one when plain HTTP is off. */
  get port(): number {
    return this.endpoints[0]?.port ?? 0;
  }

  /** The TLS port listened on, if TLS is on. */
  get tlsPort(): number | undefined {
    return this.endpoints.find((listener) => listener.scheme === 'https')?.port;
  }

  /** The certificate in service, if TLS is on. */
  get certificate(): CertificatePair | undefined {
    return this.servedPair ?? this.certificates?.pair;
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  /** Open WebSocket connections by kind. */
  connectionsByKind(): Record<ConnectionKind, number> {
    const counts: Record<ConnectionKind, number> = { publish: 0, receive: 0, 'receive-clear-cache': 0, probe: 0 };
    for (const session of this.sessions) counts[session.route.kind]++;
    return counts;
  }

  /** Bytes and messages in and out since start. */
  traffic(): ReturnType<ServerCounters['traffic']> {
    const publishers = [...this.sessions].flatMap((session) => (session.publisher === undefined ? [] : [session.publisher]));
    const receivers = [...this.sessions].flatMap((session) => (session.receiver === undefined ? [] : [session.receiver]));
    return this.counters.traffic(publishers, receivers);
  }

  /** True while every configured listener is up. */
  get listening(): boolean {
    return !this.closing && this.endpoints.length > 0;
  }

  /** Closes the channel's publisher if its stream id matches (`*` matches any). */
  killPublisher(channelName: string, streamId: string): boolean {
    const publisher = this.registry.get(channelName)?.publisher;
    // A relayed stream is killed on the thread of its publisher.
    if (publisher === undefined || publisher.relayed === true || (streamId !== '*' && streamId !== publisher.streamId)) return false;
    publisher.socket.close(Closures.KILLED.closeCode, Closures.KILLED.closeReason);
    return true;
  }

  killAllPublishers(): number {
    let killed = 0;
    for (const channel of [...this.registry]) if (this.killPublisher(channel.name, '*')) killed++;
    return killed;
  }

  /** Starts the authorizer (e.g. the coordinator connection), then the listeners. */
  async listen(): Promise<void> {
    await this.authorizer.start?.(this);
    await this.corkAnchor.open();
    if (this.config.httpPort !== 0) this.startListener('http', this.createApp(), this.config.httpPort);
    if (this.tlsFiles !== undefined) {
      const pair = loadPairOrConfigError(this.tlsFiles);
      this.startListener('https', this.createApp(this.tlsFiles), this.config.sslPort);
      this.logger.info(`[HTTPS] Certificate ${pair.fingerprint} (valid to ${pair.validTo})`);
      this.certificates = new CertificateWatcher(this.tlsFiles, pair, this.config.sslCheckReloadSeconds * 1000);
      // With worker threads the main thread watches the files and tells every thread (useCertificate).
      if (this.thread === undefined) {
        this.certificates.on('change', (next) => this.reloadCertificate(next));
        this.certificates.on('invalid', (error) => this.rejectCertificate(error));
        await this.certificates.start();
      }
    }
    this.startTimers();
  }

  /** Stops accepting, closes every client with 1001 and waits until all sockets are gone. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    const apps = [...this.endpoints.map((listener) => listener.app), ...this.retiredApps.splice(0)];
    for (const listener of this.endpoints.splice(0)) uWS.us_listen_socket_close(listener.socket);
    await this.certificates?.close();
    for (const session of [...this.sessions]) this.endSession(session, Closures.SHUTDOWN);
    await this.upstream?.close();
    await Promise.all(this.observers.map((observer) => observer.close?.()));
    await this.authorizer.close?.();
    this.appsToClose = apps;
    this.closeAppsWhenIdle();
    // uWS has no "closed" event for the app: with no listen socket and no connections the
    // event loop holds nothing, which is what a graceful exit needs.
    await new Promise((resolve) => setImmediate(resolve));
  }

  /**
   * Idle HTTP keep-alive connections would hold the event loop (and the process) until uWS's
   * 10 s HTTP idle timeout: once closing, and once every pending authorization has had its
   * answer, the apps are closed, which ends them. The sessions' close frames went out before.
   */
  private closeAppsWhenIdle(): void {
    if (this.appsToClose === undefined || this.authorizing > 0) return;
    for (const app of this.appsToClose.splice(0)) closeApp(app);
    this.corkAnchor.close();
  }

  private startListener(scheme: 'http' | 'https', app: uWS.TemplatedApp, port: number): void {
    const socket = listen(app, this.config.bindAddress, port, { exclusive: this.thread === undefined });
    if (socket === false) {
      const setting = scheme === 'http' ? 'HTTP_PORT' : 'SSL_PORT';
      throw new Error(`Cannot listen on ${describeAddress(this.config.bindAddress, port)} (${setting} / BIND_ADDRESS): address in use or not available`);
    }
    const listener = { scheme, app, socket, port: uWS.us_socket_local_port(socket) };
    this.endpoints.push(listener);
    this.logger.info(`[${scheme.toUpperCase()}] Listening on ${this.config.bindAddress || '*'}:${listener.port}`);
  }

  /**
   * Worker threads: the main thread found a new, valid certificate pair in the files. Returns
   * whether this thread now presents it.
   */
  useCertificate(): boolean {
    if (this.tlsFiles === undefined) return false;
    let pair: CertificatePair;
    try {
      pair = loadPair(this.tlsFiles);
    } catch (error) {
      this.rejectCertificate(error as Error);
      return false;
    }
    this.reloadCertificate(pair);
    return this.servedPair === pair;
  }

  /**
   * Test-only (worker threads): this thread's app also listens on a loopback port of its own,
   * so that a test can choose the thread its client lands on. Returns the port.
   */
  listenTestPort(): number {
    const first = this.endpoints[0];
    if (first === undefined) throw new Error('listenTestPort: not listening');
    const socket = listen(first.app, '127.0.0.1', 0, { exclusive: true });
    if (socket === false) throw new Error('listenTestPort: no free loopback port');
    const listener = { scheme: first.scheme, app: first.app, socket, port: uWS.us_socket_local_port(socket) };
    this.endpoints.push(listener);
    return listener.port;
  }

  /**
   * A new certificate: a new TLS app takes over the listening port; connections open on the old
   * app keep running there untouched. If the new app cannot listen, the old one resumes.
   */
  private reloadCertificate(pair: CertificatePair): void {
    const listener = this.endpoints.find((candidate) => candidate.scheme === 'https');
    if (listener === undefined || this.tlsFiles === undefined) return;
    let app: uWS.TemplatedApp;
    try {
      app = this.createApp(this.tlsFiles);
    } catch (error) {
      // The files changed again between the check and the load: the next change retries.
      return this.rejectCertificate(error as Error);
    }
    // The port is exclusive, so the old socket must let go first; connections it accepted stay.
    // Worker threads share the port: the new socket binds first, so no connection finds it closed.
    const exclusive = this.thread === undefined;
    const shared = exclusive ? false : listen(app, this.config.bindAddress, listener.port, { exclusive });
    uWS.us_listen_socket_close(listener.socket);
    const socket = shared === false ? listen(app, this.config.bindAddress, listener.port, { exclusive }) : shared;
    if (socket === false) {
      // Someone took the port in between: try to get it back for the old app.
      const previous = listen(listener.app, this.config.bindAddress, listener.port, { exclusive });
      if (previous === false) {
        this.endpoints.splice(this.endpoints.indexOf(listener), 1);
        this.logger.error(`[HTTPS] Port ${listener.port} (SSL_PORT) was taken by another program during the certificate reload: no longer accepting TLS connections`);
      } else {
        listener.socket = previous;
      }
      return this.rejectCertificate(new Error(`cannot listen again on port ${listener.port} (SSL_PORT)`));
    }
    this.retiredApps.push(listener.app);
    listener.app = app;
    listener.socket = socket;
    this.servedPair = pair;
    // With worker threads the main thread says it once for all.
    if (this.thread === undefined) this.logger.info(`[HTTPS] Certificate reloaded: ${pair.fingerprint} (valid to ${pair.validTo})`);
    this.emit('certificateReloaded', pair);
  }

  private rejectCertificate(error: Error): void {
    this.logger.error(`[HTTPS] Certificate not reloaded, the previous one stays in service: ${error.message}`);
    this.emit('certificateRejected', error);
  }

  /** An app (plain, or TLS with `tls`) serving every route; all apps share this server's state. */
  private createApp(tls?: TlsFiles): uWS.TemplatedApp {
    const app =
      tls === undefined
        ? uWS.App()
        : uWS.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile, ...(tls.passphrase === '' ? {} : { passphrase: tls.passphrase }) });
    app.ws<SocketData>('/*', {
      // Our own size check runs first and answers with 1009; the library limit sits well
      // above it because the library closes without a close frame.
      maxPayloadLength: Math.min(this.maxMessageBytes * 2 + MEBIBYTE, INT32_MAX),
      // Our receiver policy keeps buffers under the limit: the library must never drop.
      maxBackpressure: Math.min(this.receiverBufferBytes + this.maxMessageBytes + MEBIBYTE, INT32_MAX),
      closeOnBackpressureLimit: 0,
      // Idle detection is ours (heartbeat-aware, with a close frame).
      idleTimeout: 0,
      sendPingsAutomatically: false,
      compression: uWS.DISABLED,
      upgrade: (res, req, context) => this.onUpgrade(res, req, context),
      open: (ws) => this.onOpen(ws),
      message: (ws, message, isBinary) => this.onMessage(ws, message, isBinary),
      drain: (ws) => {
        const { session } = ws.getUserData();
        session.socket?.drained(() => session.receiver?.flush());
      },
      // WebSocket pings keep a connection alive as much as `h` does.
      ping: (ws) => this.touch(ws),
      pong: (ws) => this.touch(ws),
      close: (ws, code, message) => this.onClose(ws, code, message),
    });
    this.extraRoutes?.(app);
    this.statics.register(app, (path) => {
      const parsed = parseStreamRoute(path, this.config.idMaxLength);
      return parsed.ok || parsed.rejection !== null;
    });
    return app;
  }

  private onUpgrade(res: uWS.HttpResponse, req: uWS.HttpRequest, context: uWS.us_socket_context_t): void {
    // Everything needed from `req` is read now: it is invalid after any await.
    const path = req.getUrl();
    const handshake = {
      key: req.getHeader('sec-websocket-key'),
      protocol: req.getHeader('sec-websocket-protocol'),
      extensions: req.getHeader('sec-websocket-extensions'),
    };
    const ip = canonicalAddress(Buffer.from(res.getRemoteAddressAsText()).toString());
    const connection = req.getHeader('connection');

    if (this.closing) return this.refuse(res, Rejections.SHUTTING_DOWN);
    // RFC 6455. The library lets a handshake with `Connection: close` through, then ends the
    // connection it upgraded (outside its own cork, as CorkAnchor upgrades): refused here.
    if (!/(^|,)\s*upgrade\s*(,|$)/i.test(connection)) return this.refuse(res, Rejections.BAD_HANDSHAKE);
    const parsed = parseStreamRoute(path, this.config.idMaxLength);
    if (!parsed.ok && parsed.rejection === null) return this.refuse(res, Rejections.NOT_FOUND);

    // The Go server counts the connection before validating the path; so do we.
    const slot = this.limiter.acquire(ip);
    if (slot === undefined) {
      this.logger.request(0, ip, 'Connection rejected: Too many requests');
      return this.refuse(res, Rejections.TOO_MANY_REQUESTS);
    }
    if (!parsed.ok) {
      slot.release();
      return this.refuse(res, parsed.rejection);
    }
    const { route } = parsed;
    const id = this.nextSessionId;
    this.nextSessionId += this.sessionIdStep;

    if (route.kind !== 'publish') {
      if (!this.config.playWhitelist.isEmpty && !this.config.playWhitelist.includes(ip)) {
        slot.release();
        this.logger.request(id, ip, 'Error: Cannot play: Not whitelisted');
        return this.refuse(res, Rejections.NOT_WHITELISTED);
      }
      const channel = this.registry.getOrCreate(route.channel);
      return this.upgrade(res, context, handshake, { id, ip, route, slot, channel, lastActivity: Date.now() });
    }

    if (this.upstream !== undefined) {
      slot.release();
      this.logger.request(id, ip, `Error: Cannot publish on an edge server ('${route.channel}')`);
      return this.refuse(res, Rejections.PUBLISH_ON_EDGE);
    }
    const channel = this.registry.getOrCreate(route.channel);
    if (!channel.reserve()) {
      slot.release();
      this.logger.request(id, ip, `Error: Already publishing on '${route.channel}'`);
      return this.refuse(res, Rejections.ALREADY_PUBLISHING);
    }
    this.logger.request(id, ip, `PUBLISH REQUEST: '${route.channel}'`);
    const giveBack = (): void => {
      channel.unreserve();
      slot.release();
      this.registry.releaseIfUnused(channel);
    };
    // Whatever the authorizer would say (open mode accepts any key): a play token only views.
    if (this.playAccess.isPlayToken(route.channel, route.key)) {
      giveBack();
      this.logger.request(id, ip, 'Error: Invalid streaming key provided (a play token cannot publish)');
      return this.refuse(res, Rejections.PUBLISH_DENIED);
    }
    // An accepted publish that will not start (the client left, the server closes) has ended.
    const unused = (decision: PublishDecision): void => {
      if (decision.accepted) this.authorizer.published?.(route.channel, decision.streamId);
    };
    const decide = (decision: PublishDecision): void => {
      if (this.closing) {
        giveBack();
        unused(decision);
        return this.refuse(res, Rejections.SHUTTING_DOWN);
      }
      if (!decision.accepted) {
        giveBack();
        if (decision.alreadyPublishing === true) {
          this.logger.request(id, ip, `Error: Already publishing on '${route.channel}' (another thread)`);
          return this.refuse(res, Rejections.ALREADY_PUBLISHING);
        }
        this.logger.request(id, ip, 'Error: Invalid streaming key provided');
        return this.refuse(res, Rejections.PUBLISH_DENIED);
      }
      this.upgrade(res, context, handshake, {
        id, ip, route, slot, channel, streamId: decision.streamId, lastActivity: Date.now(),
      });
    };

    let decision: PublishDecision | Promise<PublishDecision>;
    const abandon = new AbortController();
    try {
      decision = this.authorizer.authorize({ channel: route.channel, key: route.key, ip }, abandon.signal);
    } catch (error) {
      decision = Promise.reject(error);
    }
    if (!(decision instanceof Promise)) return decide(decision);

    // Asynchronous authorization: the client may vanish meanwhile.
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      giveBack();
      abandon.abort();
    });
    this.authorizing++;
    const settled = (): void => {
      this.authorizing--;
      this.closeAppsWhenIdle();
    };
    // Not res.cork(): see CorkAnchor.
    const corked = (task: () => void): void => this.corkAnchor.cork(res, task);
    decision.then(
      (result) => {
        if (!aborted) corked(() => decide(result));
        else unused(result);
        settled();
      },
      (error: unknown) => {
        this.logger.error(`Publish authorization failed: ${String(error)}`);
        if (!aborted) corked(() => decide({ accepted: false }));
        settled();
      },
    );
  }

  private refuse(res: uWS.HttpResponse, rejection: UpgradeRejection): void {
    this.counters.refused(rejection.code);
    sendRejection(res, rejection);
  }

  private upgrade(
    res: uWS.HttpResponse,
    context: uWS.us_socket_context_t,
    handshake: { key: string; protocol: string; extensions: string },
    session: Session,
  ): void {
    res.upgrade<SocketData>({ session }, handshake.key, handshake.protocol, handshake.extensions, context);
  }

  private onOpen(ws: Ws): void {
    const session = ws.getUserData().session;
    const socket = new UwsClientSocket(ws);
    session.socket = socket;
    this.sessions.add(session);
    const { route, channel } = session;
    const info = { id: session.id, ip: session.ip, channel: route.channel, key: route.key };

    if (route.kind === 'publish') {
      this.logger.request(session.id, session.ip, `PUBLISH START: '${route.channel}'`);
      session.publisher = {
        info, socket, streamId: session.streamId ?? '', startedAt: Date.now(), bytesIn: 0, chunksIn: 0,
      };
      this.counters.publishesAccepted++;
      channel.startPublishing(session.publisher);
      for (const observer of this.observers) observer.publishStarted(channel, session.publisher);
      return;
    }
    // Checked once, now: a receiver is never cut off later because its token expired.
    const access = this.playAccess.decide(route.channel, route.key, session.ip);
    // On an edge the local channel checks no key: the edge admits only viewers the origin accepts.
    const viewGranted = access.verdict === 'granted' || this.upstream !== undefined;
    const receiver = new Receiver({ ...info, viewGranted }, route.kind as ReceiverKind, socket, this.receiverBufferBytes);
    session.receiver = receiver;
    if (access.verdict === 'refused') {
      this.logger.request(session.id, session.ip, `Error: Invalid streaming key provided (${access.reason})`);
      receiver.fail(SessionErrors.INVALID_STREAMING_KEY);
      return;
    }
    if (this.upstream !== undefined) {
      this.logger.request(session.id, session.ip, `${route.kind.toUpperCase()} VIA ORIGIN: '${route.channel}'`);
      session.leaveUpstream = this.upstream.viewerJoined(receiver);
      return;
    }
    if (!channel.addReceiver(receiver)) {
      const note = access.verdict === 'key' && access.note !== undefined ? ` (${access.note})` : '';
      this.logger.request(session.id, session.ip, `Error: Invalid streaming key provided${note}`);
      return;
    }
    session.leaveUpstream = this.thread?.viewerJoined(channel);
    // Refused later, when a publisher with another key starts: the log says why then.
    if (access.verdict === 'key' && access.note !== undefined) session.refusalNote = access.note;
    const state = receiver.currentState === 'idle' ? 'IDLE' : 'START';
    const via = access.verdict === 'granted' ? ` with a ${access.via}` : '';
    this.logger.request(session.id, session.ip, `${route.kind.toUpperCase()} ${state}: '${route.channel}'${via}`);
  }

  private touch(ws: Ws): void {
    ws.getUserData().session.lastActivity = Date.now();
  }

  private onMessage(ws: Ws, message: ArrayBuffer, isBinary: boolean): void {
    const session = ws.getUserData().session;
    session.lastActivity = Date.now();
    if (message.byteLength > this.maxMessageBytes) {
      this.logger.request(session.id, session.ip, `Error: message of ${message.byteLength} bytes exceeds MAX_MESSAGE_SIZE_MB`);
      this.endSession(session, SessionErrors.MESSAGE_TOO_BIG);
      return;
    }
    if (!isBinary) {
      if (this.logger.debugEnabled) this.logger.debug(`#${session.id} <<< ${Buffer.from(message).toString('utf8', 0, 64)}`);
      return;
    }
    if (session.publisher !== undefined) session.channel.publish(new Uint8Array(message));
  }

  private onClose(ws: Ws, code: number, message: ArrayBuffer): void {
    const session = ws.getUserData().session;
    // The peer's close reason, or the library's own when it dropped the connection (1006: a bad
    // frame, a message over its limit, the TCP connection lost).
    const reason = message.byteLength === 0 ? '' : ` "${Buffer.from(message).toString('utf8', 0, 123)}"`;
    session.socket?.markClosed();
    this.sessions.delete(session);
    session.slot.release();
    const { channel } = session;
    if (session.publisher !== undefined) {
      this.counters.publisherEnded(session.publisher);
      channel.endPublishing(this.closing ? Closures.SHUTDOWN : Closures.PUBLISHER_ENDED);
      for (const observer of this.observers) observer.publishEnded(channel, session.publisher);
      this.authorizer.published?.(channel.name, session.publisher.streamId);
      this.logger.request(session.id, session.ip, `PUBLISH END: '${channel.name}' (code ${code}${reason}, ${session.publisher.bytesIn} bytes)`);
    } else if (session.receiver !== undefined) {
      this.counters.receiverEnded(session.receiver);
      if (code === SessionErrors.RECEIVER_TOO_SLOW.closeCode) this.counters.receiversClosedSlow++;
      channel.removeReceiver(session.receiver);
      session.leaveUpstream?.();
      if (code === SessionErrors.INVALID_STREAMING_KEY.closeCode && session.refusalNote !== undefined) {
        this.logger.request(session.id, session.ip, `Error: Invalid streaming key provided (${session.refusalNote})`);
      }
      this.logger.request(session.id, session.ip, `Connection closed (code ${code}${reason})`);
    }
    this.registry.releaseIfUnused(channel);
  }

  /** Ends a session from the server side, with an ERROR text first when it is an error. */
  private endSession(session: Session, why: Closure | SessionError): void {
    const socket = session.socket;
    if (socket === undefined) return;
    if ('message' in why) socket.sendText(why.message);
    socket.close(why.closeCode, why.closeReason);
  }

  private startTimers(): void {
    const heartbeatMs = this.config.heartbeatIntervalSeconds * 1000;
    const idleMs = this.config.idleTimeoutSeconds * 1000;
    const heartbeat = setInterval(() => {
      for (const session of this.sessions) session.socket?.sendText(HEARTBEAT);
    }, heartbeatMs);
    const idleCheck = setInterval(
      () => {
        const deadline = Date.now() - idleMs;
        for (const session of [...this.sessions]) {
          if (session.lastActivity < deadline) {
            this.logger.request(session.id, session.ip, 'Closing idle connection');
            this.endSession(session, Closures.IDLE_TIMEOUT);
          }
        }
      },
      Math.min(Math.max(idleMs / 4, 20), 5000),
    );
    this.timers = [heartbeat, idleCheck];
  }
}
