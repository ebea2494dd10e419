import t from 'tap';
import { Application } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { TestClient, patternBytes } from './helpers/client.js';
import { freePort } from './helpers/ports.js';
import { suiteWorkers } from './helpers/server.js';

const MiB = 1024 * 1024;

t.test('the admin API and metrics count the caches and what waits for a slow receiver', async (t) => {
  const httpPort = await freePort();
  const adminPort = await freePort();
  const config = loadConfig({
    flags: { httpPort: String(httpPort), bindAddress: '127.0.0.1', adminAddress: `127.0.0.1:${adminPort}`, maxIpConcurrentConnections: '0', logRequests: 'NO', cacheMemoryLimitMb: '100', workers: String(suiteWorkers) },
  });
  const app = await Application.start(config);
  t.teardown(() => app.close());
  const url = (path: string): string => `ws://127.0.0.1:${httpPort}${path}`;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON checked field by field
  const api = async (path: string): Promise<any> => (await fetch(`http://127.0.0.1:${adminPort}${path}`)).json();
  const metric = async (name: string): Promise<number> => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text())?.[1]);

  let memory = (await api('/api/v1/server')).cacheMemory;
  t.same(memory, { cacheBytes: 0, limitBytes: 100 * MiB, trims: 0, trimmedBytes: 0, queuedBytes: 0 });

  const publisher = await TestClient.connect(url('/q/k/publish'));
  const paused = await TestClient.connect(url('/q/k/receive'));
  const witness = await TestClient.connect(url('/q/k/receive'));
  paused.socket.pause();
  // 12 MiB: within the paused receiver's 16 MiB allowance (it is not closed), far more than loopback TCP absorbs.
  const chunks = Array.from({ length: 48 }, (_, i) => patternBytes(256 * 1024, i + 1));
  const total = 48 * 256 * 1024;
  for (const data of chunks) await publisher.send(data);
  await witness.until((client) => client.binaryBytes >= total, 'the witness got everything');

  memory = (await api('/api/v1/server')).cacheMemory;
  const { channels } = await api('/api/v1/channels');
  t.equal(memory.cacheBytes, channels[0].cacheBytes, 'the budget total is the sum of the channels');
  t.equal(memory.cacheBytes, total + 48 * 16, 'the opaque cache holds it all, 16 bytes per chunk counted');
  t.ok(memory.queuedBytes >= 1 * MiB && memory.queuedBytes <= total, `the paused receiver's backlog is counted (${memory.queuedBytes} bytes)`);
  t.equal(await metric('wss_receiver_queued_bytes'), memory.queuedBytes);
  t.equal(await metric('wss_cache_bytes'), memory.cacheBytes);
  t.equal(await metric('wss_cache_limit_bytes'), 100 * MiB);

  // The publisher leaves: every receiver of the channel is closed and its queue released.
  await publisher.close();
  await witness.closed;
  memory = (await api('/api/v1/server')).cacheMemory;
  t.equal(memory.queuedBytes, 0, 'nothing counted as queued once the receivers are closed');
  t.equal(memory.cacheBytes, 0, 'the ended channel released its cache');
  paused.socket.terminate();
});
