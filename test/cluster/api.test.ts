// The admin API and /metrics with worker threads (WORKERS > 1): the same endpoints and fields as
// with one thread, every thread's figures summed; kill reaches the publisher's thread.
import t from 'tap';
import { Application } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { TestClient, patternBytes } from '../helpers/client.js';
import { freePort } from '../helpers/ports.js';
import { adminClient, startWithAdmin } from './admin-helpers.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies are checked field by field */

t.test('connections and traffic add up across threads exactly', async (t) => {
  const { onThread, json, metrics } = await startWithAdmin(t, { metricsPerChannel: 'YES' });
  const before = await json('/api/v1/server');
  t.match(before.body, { workers: 3, workerRestarts: 0, connections: { total: 0 }, channels: 0, traffic: { bytesIn: 0, bytesOut: 0 } });

  // Viewers on threads 2 and 3 only: the stream crosses threads to reach every one of them.
  const receivers = await Promise.all([2, 3, 3].map((thread) => TestClient.connect(onThread(thread, '/show/k/receive'))));
  const publisher = await TestClient.connect(onThread(1, '/show/k/publish'));
  const chunks = Array.from({ length: 25 }, (_, i) => patternBytes(700 + i * 53, i + 1));
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  for (const chunk of chunks) await publisher.send(chunk);
  for (const receiver of receivers) await receiver.until((client) => client.binaryBytes >= total, 'everything');
  const received = receivers.reduce((sum, receiver) => sum + receiver.binaryBytes, 0);
  t.equal(received, 3 * total);

  const { body: server } = await json('/api/v1/server');
  t.same(server.connections, { total: 4, publish: 1, receive: 3, 'receive-clear-cache': 0, probe: 0 }, 'every thread\'s connections');
  t.equal(server.channels, 1, 'one channel, though three threads hold it');
  t.equal(server.traffic.bytesIn, total, 'bytes in: what was published, once');
  t.equal(server.traffic.messagesIn, chunks.length);
  t.equal(server.traffic.bytesOut, received, 'bytes out: what the receivers got, on every thread');
  t.equal(server.traffic.messagesOut, 3 * chunks.length);

  const { body: channels } = await json('/api/v1/channels');
  t.equal(channels.channels.length, 1);
  const { status, body: show } = await json('/api/v1/channels/show');
  t.equal(status, 200);
  t.match(show, { channel: 'show', publishing: true, publisherIp: '127.0.0.1', publisherThread: 1, bytesIn: total, messagesIn: chunks.length, bytesOut: received });
  t.same(show.receivers, { total: 3, live: 3, idle: 0, receive: 3, receiveClearCache: 0, probe: 0 }, 'the publisher once, every thread\'s receivers');
  t.same(show.receiverList.map((receiver: any) => receiver.thread).sort(), [2, 3, 3]);
  t.same(show.receiverList.map((receiver: any) => receiver.bytesSent), [total, total, total]);
  t.type(show.streamId, 'string');

  const scraped = await metrics();
  t.equal(scraped.get('wss_received_bytes_total'), total);
  t.equal(scraped.get('wss_received_messages_total'), chunks.length);
  t.equal(scraped.get('wss_sent_bytes_total'), received);
  t.equal(scraped.get('wss_connections{kind="publish"}'), 1);
  t.equal(scraped.get('wss_connections{kind="receive"}'), 3);
  t.equal(scraped.get('wss_channels'), 1);
  t.equal(scraped.get('wss_channel_receivers{channel="show"}'), 3);
  t.equal(scraped.get('wss_channel_received_bytes{channel="show"}'), total);
  t.equal(scraped.get('wss_publishes_accepted_total'), 1);
  t.equal(scraped.get('wss_workers'), 3);
  t.equal(scraped.get('wss_worker_restarts_total'), 0);
  t.same(await json('/readyz'), { status: 200, body: { ready: true } });

  await publisher.close();
  for (const receiver of receivers) await receiver.closed;
  const ended = await metrics();
  t.equal(ended.get('wss_received_bytes_total'), total, 'totals survive the sessions');
  t.equal(ended.get('wss_sent_bytes_total'), received);
  t.equal(ended.get('wss_connections{kind="receive"}'), 0);
});

t.test('kill goes to the publisher\'s thread; the other threads\' receivers get the end', async (t) => {
  const { onThread, json, until } = await startWithAdmin(t);
  const receivers = await Promise.all([2, 3].map((thread) => TestClient.connect(onThread(thread, '/k/key/receive'))));
  const publisher = await TestClient.connect(onThread(1, '/k/key/publish'));
  await publisher.send(Buffer.from('live'));
  for (const receiver of receivers) await receiver.binary(1);
  const { body } = await json('/api/v1/channels/k');
  t.equal(body.publisherThread, 1);
  // The bitrate is sampled from the publisher's thread (once a second): it shows while data flows.
  let bitrate = 0;
  for (let attempt = 0; attempt < 5000 && bitrate === 0; attempt++) {
    await publisher.send(Buffer.alloc(1000));
    bitrate = (await json('/api/v1/channels/k')).body.bitrateIn;
  }
  t.ok(bitrate > 0, `bitrate in across threads: ${bitrate} bit/s`);

  const wrong = await json('/api/v1/channels/k/kill', { method: 'POST', body: JSON.stringify({ streamId: 'other' }) });
  t.same(wrong, {
    status: 409,
    body: { killed: false, channel: 'k', streamId: body.streamId, error: `stream id mismatch: 'k' is live with stream id '${body.streamId}', not 'other'` },
  });
  t.equal((await json('/api/v1/channels/none/kill', { method: 'POST' })).status, 404, 'nothing published there');
  t.equal(publisher.socket.readyState, publisher.socket.OPEN, 'a refused kill closes nothing');

  const right = await json(`/api/v1/channels/k/kill?streamId=${body.streamId}`, { method: 'POST' });
  t.same(right, { status: 200, body: { killed: true, channel: 'k', streamId: body.streamId } });
  t.same(await publisher.closed, { code: 1008, reason: 'Stream killed' }, 'closed on thread 1');
  for (const receiver of receivers) t.same(await receiver.closed, { code: 1000, reason: 'Publisher ended' }, 'closed on the receivers\' threads');
  await until('/api/v1/channels', (channels) => channels.channels.every((channel: any) => !channel.publishing), 'without the publisher');
});

t.test('with WORKERS=1 the same fields: one worker, no restarts', async (t) => {
  const adminPort = await freePort();
  const config = loadConfig({ flags: { httpPort: String(await freePort()), bindAddress: '127.0.0.1', adminAddress: `127.0.0.1:${adminPort}`, logRequests: 'NO', workers: '1' } });
  const app = await Application.start(config);
  t.teardown(() => app.close());
  const { json, metrics } = adminClient(adminPort);
  t.match((await json('/api/v1/server')).body, { workers: 1, workerRestarts: 0 });
  const scraped = await metrics();
  t.equal(scraped.get('wss_workers'), 1);
  t.equal(scraped.get('wss_worker_restarts_total'), 0);
});
