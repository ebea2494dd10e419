import type uWS from 'uWebSockets.js';
import type { ChannelRegistry } from './channels/index.js';
import { AdminServer } from './api/admin-server.js';
import { send } from './server/http-response.js';
import { publicStreams } from './api/snapshot.js';
import { BridgeManager } from './bridge/index.js';
import type { Config } from './config/index.js';
import { EdgeRelays } from './edge/index.js';
import type { Logger } from './log/logger.js';
import { silentLogger } from './log/logger.js';
import { StreamServer } from './server/stream-server.js';
import type { StreamServerOptions } from './server/stream-server.js';

/**
 * The whole program: the stream server, and the admin listener beside it. What `serve` runs;
 * tests and embedders can run it in-process.
 */
export class Application {
  private constructor(
    readonly stream: StreamServer,
    readonly admin: AdminServer | undefined,
    /** The RTMP/HLS bridges and recordings, when configured. */
    readonly bridges: BridgeManager | undefined,
  ) {}

  /** Throws ConfigError for inconsistent settings, Error when a port cannot be listened on. */
  static async start(config: Config, options: StreamServerOptions = {}): Promise<Application> {
    const logger: Logger = options.logger ?? silentLogger;
    let server: StreamServer | undefined = undefined;
    // ConfigError when an output needs ffmpeg and none runs; logs which ffmpeg is used.
    const bridges = await BridgeManager.create(config, logger);
    const publicList = (app: uWS.TemplatedApp): void => {
      app.get('/streams', (res) => {
        send(res, { status: 200, body: { streams: server === undefined ? [] : publicStreams(server) }, headers: { 'Cache-Control': 'no-store', 'Access-Control-Allow-Origin': '*' } });
      });
    };
    const routes = (app: uWS.TemplatedApp): void => {
      if (config.publicStreamList) publicList(app);
      bridges?.routes(app);
      options.routes?.(app);
    };
    const publishObservers = [...(options.publishObservers ?? []), ...(bridges === undefined ? [] : [bridges])];
    // Edge mode: channels not published here are pulled from the origin (src/edge/).
    const upstream = config.originUrl.length === 0 ? options.upstream : (registry: ChannelRegistry) => new EdgeRelays(registry, config, logger);
    server = new StreamServer(config, { ...options, logger, routes, publishObservers, upstream });
    const admin = config.adminAddress === null ? undefined : new AdminServer(server, config.adminAddress, config.adminToken, logger);
    try {
      await server.listen();
      admin?.listen();
    } catch (error) {
      admin?.close();
      await server.close();
      throw error;
    }
    return new Application(server, admin, bridges);
  }

  async close(): Promise<void> {
    this.admin?.close();
    await this.stream.close();
  }
}
