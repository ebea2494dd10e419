import type { Test } from 'tap';
import { WorkerCluster, mergeStates, threadState } from '../../src/cluster/index.js';
import type { ServerChannel, ServerState } from '../../src/cluster/index.js';
import type { ChannelRegistry } from '../../src/channels/index.js';
import { loadConfig } from '../../src/config/index.js';
import type { SettingName } from '../../src/config/index.js';
import type { PublishAuthorizer } from '../../src/coordinator/authorizer.js';
import { StreamServer } from '../../src/server/stream-server.js';
import type { StreamServerOptions } from '../../src/server/stream-server.js';
import { failureLog } from './failure-log.js';
import { freePort } from './ports.js';

/**
 * A server under test, the same shape whether it runs on this thread (WORKERS unset or 1) or
 * on worker threads (WORKERS > 1, e.g. the `npm test` pass that runs the suite with WORKERS=4).
 * Tests look inside through `state()` (the figures every thread reports, merged), never
 * through one thread's objects, so they read the same figures in both modes.
 */
export interface TestServer {
  /** 1: one StreamServer on this thread; more: that many worker threads. */
  readonly workers: number;
  /** The plain HTTP port (or the TLS one when plain HTTP is off). */
  readonly port: number;
  readonly tlsPort: number | undefined;
  /**
   * The channels publish observers (bridges, recordings) attach to, on this thread: the
   * server's own, or with worker threads the main thread's relayed ones.
   */
  readonly registry: ChannelRegistry;
  /** Who decides on publishers: runs on this thread in both modes. */
  readonly authorizer: PublishAuthorizer;
  /** Where `certificateReloaded` and `certificateRejected` are emitted (the StreamServer or the WorkerCluster). */
  readonly events: StreamServer | WorkerCluster;
  /** `ws://127.0.0.1:PORT` + path (or another host, e.g. `[::1]`). */
  url(path: string, host?: string): string;
  httpUrl(path: string): string;
  /** Every thread's figures, merged (channels by name). */
  state(): Promise<ServerState>;
  /** One channel across threads, if any thread knows it. */
  channel(name: string): Promise<ServerChannel | undefined>;
  /** Polls `state()` until `condition` holds (server-side state with no event of its own). */
  until(condition: (state: ServerState) => boolean, what: string): Promise<ServerState>;
  /** Closes the channel's publisher if its stream id matches (`*` matches any). */
  killPublisher(channel: string, streamId: string): boolean;
  close(): Promise<void>;
}

/** Worker threads the suite runs with: WORKERS from the environment (unset: one thread). */
export const suiteWorkers = Number(process.env.WORKERS ?? '1') || 1;

/**
 * For a server started as a child process with its own environment: the suite's WORKERS (the
 * server's own default, `auto`, would depend on the machine).
 */
export const workersEnv: Record<string, string> = { WORKERS: String(suiteWorkers) };

/**
 * For `t.test(name, { skip: singleThreadOnly('why') }, …)`: skips a test that needs this
 * thread's objects when the suite runs with worker threads. Keep these rare, with the reason.
 */
export function singleThreadOnly(reason: string): string | false {
  return suiteWorkers > 1 ? `single thread only (WORKERS=${suiteWorkers}): ${reason}` : false;
}

/** Open WebSocket connections of every kind. */
export function openConnections(state: ServerState): number {
  return Object.values(state.connections).reduce((sum, count) => sum + count, 0);
}

/**
 * A real server on an ephemeral loopback port, closed when the test ends. With WORKERS > 1
 * (environment, or `settings.workers`) it runs on that many worker threads; the authorizer,
 * publish observers and logger then run on this (the main) thread. Extra routes and an
 * upstream are functions of this thread: they cannot be given to worker threads.
 */
export async function startTestServer(
  t: Test,
  settings: Partial<Record<SettingName, string>> = {},
  options: StreamServerOptions = {},
): Promise<TestServer> {
  const config = loadConfig({
    flags: {
      httpPort: String(await freePort()),
      bindAddress: '127.0.0.1',
      logRequests: 'NO',
      maxIpConcurrentConnections: '0',
      workers: String(suiteWorkers),
      ...settings,
    },
  });
  return config.workers > 1 ? startCluster(t, config, options) : startSingle(t, config, options);
}

async function startSingle(t: Test, config: ReturnType<typeof loadConfig>, options: StreamServerOptions): Promise<TestServer> {
  const server = new StreamServer(config, { logger: failureLog(t), ...options });
  await server.listen();
  t.teardown(() => server.close());
  const state = (): ServerState => mergeStates([threadState(server, 0)]);
  return shape({
    workers: 1,
    port: server.port,
    tlsPort: server.tlsPort,
    registry: server.registry,
    authorizer: server.authorizer,
    events: server,
    state: () => Promise.resolve(state()),
    killPublisher: (channel, streamId) => server.killPublisher(channel, streamId),
    close: () => server.close(),
  });
}

async function startCluster(t: Test, config: ReturnType<typeof loadConfig>, options: StreamServerOptions): Promise<TestServer> {
  const { routes, upstream, thread, ...crossing } = options;
  if (routes !== undefined || upstream !== undefined || thread !== undefined) {
    throw new Error('startTestServer: routes, upstream and thread are functions of one thread; mark the test singleThreadOnly()');
  }
  const cluster = new WorkerCluster(config, { logger: failureLog(t), ...crossing });
  try {
    await cluster.start();
  } catch (error) {
    await cluster.close();
    throw error;
  }
  t.teardown(() => cluster.close());
  return shape({
    workers: config.workers,
    port: cluster.httpPort || cluster.tlsPort!,
    tlsPort: cluster.tlsPort,
    registry: cluster.registry,
    authorizer: cluster.authorizer,
    events: cluster,
    state: async () => mergeStates(await cluster.state()),
    killPublisher: (channel, streamId) => cluster.killPublisher(channel, streamId),
    close: () => cluster.close(),
  });
}

function shape(parts: Omit<TestServer, 'url' | 'httpUrl' | 'channel' | 'until'>): TestServer {
  return {
    ...parts,
    url: (path, host = '127.0.0.1') => `ws://${host}:${parts.port}${path}`,
    httpUrl: (path) => `http://127.0.0.1:${parts.port}${path}`,
    channel: async (name) => (await parts.state()).channels.get(name),
    until: async (condition, what) => {
      // Bounded in time; each round is a round trip to every thread with workers.
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
        const state = await parts.state();
        if (condition(state)) return state;
        await new Promise((resolve) => setImmediate(resolve));
      }
      throw new Error(`server state never reached: ${what}`);
    },
  };
}
