import type { Test } from 'tap';
import { loadConfig } from '../../src/config/index.js';
import type { SettingName } from '../../src/config/index.js';
import { StreamServer } from '../../src/server/stream-server.js';
import { freePort } from './ports.js';
import type { StreamServerOptions } from '../../src/server/stream-server.js';

export interface TestServer {
  server: StreamServer;
  /** `ws://127.0.0.1:PORT` + path (or another host, e.g. `[::1]`). */
  url(path: string, host?: string): string;
  httpUrl(path: string): string;
}

/** A real server on an ephemeral loopback port, closed when the test ends. */
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
      ...settings,
    },
  });
  const server = new StreamServer(config, options);
  await server.listen();
  t.teardown(() => server.close());
  return {
    server,
    url: (path, host = '127.0.0.1') => `ws://${host}:${server.port}${path}`,
    httpUrl: (path) => `http://127.0.0.1:${server.port}${path}`,
  };
}
