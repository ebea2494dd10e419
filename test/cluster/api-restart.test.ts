// A worker thread that dies, as the admin API and /metrics show it (WORKERS > 1).
import { once } from 'node:events';
import t from 'tap';
import { TestClient, patternBytes } from '../helpers/client.js';
import { startWithAdmin } from './admin-helpers.js';

t.test('a worker that dies is counted, and its counted bytes stay in the totals', async (t) => {
  const { app, onThread, json, metrics } = await startWithAdmin(t);
  const cluster = app.cluster!;
  const receiver = await TestClient.connect(onThread(3, '/c/k/receive'));
  const publisher = await TestClient.connect(onThread(2, '/c/k/publish'));
  const data = patternBytes(5000, 7);
  await publisher.send(data);
  await receiver.until((client) => client.binaryBytes >= data.length, 'the chunk');
  t.equal((await metrics()).get('wss_received_bytes_total'), data.length);

  const failed = once(cluster, 'workerFailed');
  await cluster.crashWorker(2);
  t.same(await failed, [2, undefined]);
  await cluster.workerReady(2);
  await publisher.closed;
  await receiver.closed;

  const { body } = await json('/api/v1/server');
  t.equal(body.workerRestarts, 1);
  t.equal(body.traffic.bytesIn, data.length, 'the dead thread\'s bytes in, as last read');
  t.equal(body.traffic.bytesOut, data.length);
  t.equal(body.connections.total, 0);
  const scraped = await metrics();
  t.equal(scraped.get('wss_worker_restarts_total'), 1);
  t.equal(scraped.get('wss_received_bytes_total'), data.length, 'the counter does not go back');
  t.same(await json('/readyz'), { status: 200, body: { ready: true } });
});

