import type { Test } from 'tap';
import { Application } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import type { SettingName } from '../../src/config/index.js';
import { failureLog } from '../helpers/failure-log.js';
import { freePort } from '../helpers/ports.js';

export interface ThreadedServer {
  app: Application;
  /** `ws://127.0.0.1:<port of worker thread>` + path: a client that lands on that thread. */
  onThread(thread: number, path: string): string;
  /** The shared port, where the kernel picks the thread. */
  url(path: string): string;
}

/** A server with `workers` threads and test hooks (a loopback port per worker), closed when the test ends. */
export async function startThreaded(t: Test, workers: number, settings: Partial<Record<SettingName, string>> = {}): Promise<ThreadedServer> {
  process.env.WS_STREAM_SERVER_TEST_HOOKS = '1';
  const config = loadConfig({
    flags: { httpPort: String(await freePort()), bindAddress: '127.0.0.1', adminAddress: 'off', logRequests: 'NO', maxIpConcurrentConnections: '0', workers: String(workers), ...settings },
  });
  const app = await Application.start(config, { logger: failureLog(t) });
  t.teardown(() => app.close());
  const ports = app.cluster!.testPorts();
  return {
    app,
    onThread: (thread, path) => `ws://127.0.0.1:${ports.get(thread)!}${path}`,
    url: (path) => `ws://127.0.0.1:${app.port}${path}`,
  };
}
