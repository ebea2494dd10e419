import type uWS from 'uWebSockets.js';
import type { ChannelRegistry } from './channels/index.js';
import { AdminServer } from './api/admin-server.js';
import { clusterSource, streamServerSource } from './api/source.js';
import { BridgeManager } from './bridge/index.js';
import { WorkerCluster, mergeStates, threadState } from './cluster/index.js';
import type { WorkerClusterOptions } from './cluster/index.js';
import type { Config } from './config/index.js';
import type { PublishAuthorizer } from './coordinator/authorizer.js';
import { EdgeRelays } from './edge/index.js';
import { publicRoutes, publicStreamsOf } from './routes.js';
import type { Logger } from './log/logger.js';
import { silentLogger } from './log/logger.js';
import { StreamServer } from './server/stream-server.js';
import type { StreamServerOptions } from './server/stream-server.js';

/**
 * The whole program: the stream server (on this thread, or on WORKERS worker threads run by a
 * WorkerCluster), and the admin listener beside it. What `serve` runs; tests and embedders can
 * run it in-process.
 */
export class Application {
  private constructor(
    /** The stream server, when it runs on this thread (WORKERS=1). */
    readonly stream: StreamServer | undefined,
    /** The worker threads, when WORKERS > 1. */
    readonly cluster: WorkerCluster | undefined,
    readonly admin: AdminServer | undefined,
    /** The RTMP/HLS bridges and recordings, when configured. */
    readonly bridges: BridgeManager | undefined,
  ) {}

  /** The plain HTTP port (or the TLS one when plain HTTP is off). */
  get port(): number {
    return this.stream?.port ?? (this.cluster!.httpPort || this.cluster!.tlsPort!);
  }

  get tlsPort(): number | undefined {
    return this.stream?.tlsPort ?? this.cluster?.tlsPort;
  }

  /** Who decides on publishers (the coordinator connection, keys…). */
  get authorizer(): PublishAuthorizer {
    return (this.stream ?? this.cluster!).authorizer;
  }

  /** The channels the bridges and recordings attach to (relayed ones with worker threads). */
  get registry(): ChannelRegistry {
    return (this.stream ?? this.cluster!).registry;
  }

  /** Throws ConfigError for inconsistent settings, Error when a port cannot be listened on. */
  static async start(config: Config, options: StreamServerOptions = {}): Promise<Application> {
    const logger: Logger = options.logger ?? silentLogger;
    // ConfigError when an output needs ffmpeg and none runs; logs which ffmpeg is used.
    const bridges = await BridgeManager.create(config, logger);
    const publishObservers = [...(options.publishObservers ?? []), ...(bridges === undefined ? [] : [bridges])];
    if (config.workers > 1) return Application.startCluster(config, { logger, publishObservers, authorizer: options.authorizer }, bridges);

    let server: StreamServer | undefined = undefined;
    const shared = publicRoutes(config, () => (server === undefined ? [] : publicStreamsOf(mergeStates([threadState(server, 0)]))));
    const routes = (app: uWS.TemplatedApp): void => {
      shared(app);
      options.routes?.(app);
    };
    // Edge mode: channels not published here are pulled from the origin (src/edge/).
    const upstream = config.originUrl.length === 0 ? options.upstream : (registry: ChannelRegistry) => new EdgeRelays(registry, config, logger);
    server = new StreamServer(config, { ...options, logger, routes, publishObservers, upstream });
    const admin = config.adminAddress === null ? undefined : new AdminServer(streamServerSource(server), config.adminAddress, config.adminToken, logger);
    try {
      await server.listen();
      admin?.listen();
    } catch (error) {
      admin?.close();
      await server.close();
      throw error;
    }
    return new Application(server, undefined, admin, bridges);
  }

  private static async startCluster(config: Config, options: WorkerClusterOptions & { logger: Logger }, bridges: BridgeManager | undefined): Promise<Application> {
    const cluster = new WorkerCluster(config, options);
    const { logger } = options;
    let admin: AdminServer | undefined;
    try {
      await cluster.start();
      // Made once the workers are up: it counts them from there.
      admin = config.adminAddress === null ? undefined : new AdminServer(clusterSource(cluster), config.adminAddress, config.adminToken, logger);
      admin?.listen();
    } catch (error) {
      admin?.close();
      await cluster.close();
      throw error;
    }
    logger.info(`${config.workers} worker threads serve the connections`);
    return new Application(undefined, cluster, admin, bridges);
  }

  async close(): Promise<void> {
    this.admin?.close();
    await this.stream?.close();
    await this.cluster?.close();
  }
}
