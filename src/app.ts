import type uWS from 'uWebSockets.js';
import { AdminServer } from './api/admin-server.js';
import { send } from './api/http.js';
import { publicStreams } from './api/snapshot.js';
import type { Config } from './config/index.js';
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
  ) {}

  /** Throws ConfigError for inconsistent settings, Error when a port cannot be listened on. */
  static async start(config: Config, options: StreamServerOptions = {}): Promise<Application> {
    const logger: Logger = options.logger ?? silentLogger;
    let server: StreamServer | undefined = undefined;
    const publicList = (app: uWS.TemplatedApp): void => {
      app.get('/streams', (res) => {
        send(res, { status: 200, body: { streams: server === undefined ? [] : publicStreams(server) }, headers: { 'Access-Control-Allow-Origin': '*' } });
      });
    };
    const routes = (app: uWS.TemplatedApp): void => {
      if (config.publicStreamList) publicList(app);
      options.routes?.(app);
    };
    server = new StreamServer(config, { ...options, logger, routes });
    const admin = config.adminAddress === null ? undefined : new AdminServer(server, config.adminAddress, config.adminToken, logger);
    try {
      await server.listen();
      admin?.listen();
    } catch (error) {
      admin?.close();
      await server.close();
      throw error;
    }
    return new Application(server, admin);
  }

  async close(): Promise<void> {
    this.admin?.close();
    await this.stream.close();
  }
}
