import { once } from 'node:events';
import t from 'tap';
import type { Test } from 'tap';
import { Application } from '../src/app.js';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { ControlClient } from '../src/coordinator/index.js';
import { TestClient } from './helpers/client.js';
import { TestCoordinator } from './helpers/coordinator.js';
import { freePort } from './helpers/ports.js';
import { suiteWorkers } from './helpers/server.js';

async function start(t: Test, settings: Record<string, string> = {}) {
  const httpPort = await freePort();
  const adminPort = await freePort();
  const config = loadConfig({
    flags: { httpPort: String(httpPort), bindAddress: '127.0.0.1', adminAddress: `127.0.0.1:${adminPort}`, maxIpConcurrentConnections: '0', workers: String(suiteWorkers), ...settings },
  });
  const app = await Application.start(config);
  t.teardown(() => app.close());
  const admin = (path: string, init: RequestInit = {}): Promise<Response> => fetch(`http://127.0.0.1:${adminPort}${path}`, init);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies are checked field by field with t.match
  const json = async (path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> => {
    const response = await admin(path, init);
    return { status: response.status, body: await response.json() };
  };
  return { app, admin, json, url: (path: string) => `ws://127.0.0.1:${httpPort}${path}`, http: (path: string) => `http://127.0.0.1:${httpPort}${path}` };
}

t.test('channels: shape and values follow a live publisher and its receivers', async (t) => {
  const { json, url } = await start(t);
  t.same((await json('/api/v1/channels')).body, { channels: [] });
  const idle = await TestClient.connect(url('/show/key/receive'));
  let { body } = await json('/api/v1/channels');
  t.match(body.channels, [{ channel: 'show', publishing: false, streamId: null, receivers: { total: 1, idle: 1, live: 0 } }]);

  const publisher = await TestClient.connect(url('/show/key/publish'));
  const probe = await TestClient.connect(url('/show/key/probe'));
  const sent = [Buffer.alloc(1000, 1), Buffer.alloc(2500, 2), Buffer.alloc(10, 3)];
  for (const chunk of sent) await publisher.send(chunk);
  await idle.binary(3);
  await probe.closed;
  ({ body } = await json('/api/v1/channels'));
  const [show] = body.channels;
  t.equal(show.publishing, true);
  t.type(show.streamId, 'string');
  t.equal(show.publisherIp, '127.0.0.1');
  t.equal(show.bytesIn, 3510, 'bytes in equals bytes sent');
  t.equal(show.messagesIn, 3);
  t.same(show.receivers, { total: 1, live: 1, idle: 0, receive: 1, receiveClearCache: 0, probe: 0 }, 'the probe is gone');
  t.equal(show.bytesOut, 3510);
  t.equal(show.cacheBytes, 3510 + 3 * 16);
  t.ok(!JSON.stringify(body).includes('"key"') && !JSON.stringify(body).includes(':key'), 'no key anywhere');

  const second = await TestClient.connect(url('/show/key/receive-clear-cache'));
  await second.binary(3);
  const detail = await json('/api/v1/channels/show');
  t.equal(detail.status, 200);
  t.equal(detail.body.receivers.total, 2, 'receiver count follows connects');
  t.equal(detail.body.receiverList.length, 2);
  t.match(detail.body.receiverList[1], { ip: '127.0.0.1', kind: 'receive-clear-cache', state: 'live', bytesSent: 3510, bufferedBytes: 0 });
  t.type(detail.body.receiverList[0].connectedAt, 'string');
  t.notMatch(JSON.stringify(detail.body), /"key"|\/key\//);

  await second.close();
  t.equal((await json('/api/v1/channels/show')).body.receivers.total, 1, 'and disconnects');
  t.equal((await json('/api/v1/channels/nope')).status, 404);
  await publisher.close();
});

t.test('bitrate in is within 10% of a paced publisher\'s', async (t) => {
  const { json, url } = await start(t);
  const publisher = await TestClient.connect(url('/paced/k/publish'));
  const bitsPerSecond = 1_000_000;
  const chunk = Buffer.alloc(bitsPerSecond / 8 / 10); // every 100 ms
  const started = performance.now();
  let sentChunks = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      // Send as many chunks as the elapsed time calls for: timer jitter does not skew the rate.
      const due = Math.floor((performance.now() - started) / 100);
      while (sentChunks < due) {
        publisher.socket.send(chunk);
        sentChunks++;
      }
      if (performance.now() - started > 3500) {
        clearInterval(timer);
        resolve();
      }
    }, 20);
  });
  const { body } = await json('/api/v1/channels/paced');
  t.ok(Math.abs(body.bitrateIn - bitsPerSecond) / bitsPerSecond < 0.1, `bitrate ${body.bitrateIn} bit/s ≈ ${bitsPerSecond}`);
  await publisher.close();
});

t.test('kill closes the publisher, only with the matching stream id', async (t) => {
  const { json, url } = await start(t);
  const publisher = await TestClient.connect(url('/k/key/publish'));
  const { body } = await json('/api/v1/channels/k');
  const wrong = await json('/api/v1/channels/k/kill', { method: 'POST', body: JSON.stringify({ streamId: 'other' }) });
  t.same(wrong, {
    status: 409,
    body: { killed: false, channel: 'k', streamId: body.streamId, error: `stream id mismatch: 'k' is live with stream id '${body.streamId}', not 'other'` },
  });
  const wrongQuery = await json('/api/v1/channels/k/kill?streamId=wrong', { method: 'POST' });
  t.equal(wrongQuery.status, 409);
  t.equal(wrongQuery.body.error, `stream id mismatch: 'k' is live with stream id '${body.streamId}', not 'wrong'`);
  t.equal(publisher.socket.readyState, publisher.socket.OPEN);
  const right = await json(`/api/v1/channels/k/kill?streamId=${body.streamId}`, { method: 'POST' });
  t.same(right, { status: 200, body: { killed: true, channel: 'k', streamId: body.streamId } });
  t.same(await publisher.closed, { code: 1008, reason: 'Stream killed' });
  t.equal((await json('/api/v1/channels/k/kill', { method: 'POST' })).status, 404, 'nothing left to kill');
  const again = await TestClient.connect(url('/k/key/publish'));
  t.same((await json('/api/v1/channels/k/kill', { method: 'POST' })).body.killed, true, 'without a stream id: any publisher');
  await again.closed;
  t.equal((await json('/api/v1/channels/x/kill', { method: 'POST', body: 'not json' })).status, 400);
});

t.test('server, health and readiness', async (t) => {
  const { json } = await start(t, { streamKeySecret: 'shh' });
  const { status, body } = await json('/api/v1/server');
  t.equal(status, 200);
  t.match(body, { version: /^\d+\.\d+\.\d+/, connections: { total: 0 }, channels: 0, coordinator: null, memory: { rss: Number } });
  t.equal(body.config.STREAM_KEY_SECRET, '(set)', 'secrets are redacted');
  t.notMatch(JSON.stringify(body), /shh/);
  t.match(body.ffmpeg, { path: String, source: String });
  t.same(await json('/healthz'), { status: 200, body: { status: 'ok' } });
  t.same(await json('/readyz'), { status: 200, body: { ready: true } });
});

t.test('readiness waits for the coordinator', async (t) => {
  const { json } = await start(t, { controlBaseUrl: `ws://127.0.0.1:${await freePort()}/`, controlReconnectMinSeconds: '5' });
  const ready = await json('/readyz');
  t.equal(ready.status, 503);
  t.match(ready.body.reasons, [/coordinator/]);
});

t.test('token: 401 without it, 200 with it, compared in full', async (t) => {
  const { admin } = await start(t, { adminToken: 't0ken' });
  t.equal((await admin('/healthz')).status, 401);
  t.equal((await admin('/healthz', { headers: { Authorization: 'Bearer t0ke' } })).status, 401);
  t.equal((await admin('/metrics', { headers: { Authorization: 'Bearer wrong' } })).status, 401);
  const ok = await admin('/api/v1/channels', { headers: { Authorization: 'Bearer t0ken' } });
  t.equal(ok.status, 200);
  t.equal((await admin('/api/v1/channels')).headers.get('www-authenticate'), 'Bearer');
});

t.test('a public admin address needs a token, or an explicit opt-out', async (t) => {
  const error = t.throws(() => loadConfig({ flags: { adminAddress: '0.0.0.0:8090' } })) as unknown;
  t.ok(error instanceof ConfigError);
  t.match((error as Error).message, /ADMIN_ADDRESS 0\.0\.0\.0:8090 .*ADMIN_TOKEN/);
  t.ok(loadConfig({ flags: { adminAddress: '0.0.0.0:8090', adminToken: 'x' } }));
  t.ok(loadConfig({ flags: { adminAddress: '[::]:8090', adminAllowNoToken: 'YES' } }));
  t.same(loadConfig({ flags: { adminAddress: '[::1]:9' } }).adminAddress, { host: '::1', port: 9, loopback: true });
  t.equal(loadConfig({ flags: { adminAddress: 'off' } }).adminAddress, null);
  t.throws(() => loadConfig({ flags: { adminAddress: 'localhost' } }), /ADMIN_ADDRESS/);
});

/** Prometheus text exposition: every line is a comment or `name{labels} value`. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) {
      if (line !== '' && !/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line)) throw new Error(`bad comment line: ${line}`);
      continue;
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?) (-?[0-9.eE+-]+|[Nn]a[Nn]|[+-]?Inf)(?: \d+)?$/.exec(line);
    if (match === null) throw new Error(`bad sample line: ${line}`);
    samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

t.test('/metrics parses as Prometheus text and its counters move', async (t) => {
  const { admin, url } = await start(t, { metricsPerChannel: 'YES' });
  const scrape = async (): Promise<Map<string, number>> => {
    const response = await admin('/metrics');
    t.match(response.headers.get('content-type'), /text\/plain/);
    return parsePrometheus(await response.text());
  };
  const before = await scrape();
  t.equal(before.get('wss_received_bytes_total'), 0);
  t.ok(before.has('nodejs_eventloop_lag_seconds'), 'event-loop lag');
  t.ok(before.has('process_resident_memory_bytes'), 'process metrics');

  const publisher = await TestClient.connect(url('/m/k/publish'));
  const receiver = await TestClient.connect(url('/m/k/receive'));
  await publisher.send(Buffer.alloc(4096));
  await receiver.binary(1);
  await TestClient.rejection(url('/m/k/publish')).catch(() => undefined);
  await TestClient.rejection(url('/bad!/k/receive')).catch(() => undefined);
  const after = await scrape();
  t.equal(after.get('wss_received_bytes_total'), 4096);
  t.equal(after.get('wss_sent_bytes_total'), 4096);
  t.equal(after.get('wss_received_messages_total'), 1);
  t.equal(after.get('wss_publishes_accepted_total'), 1);
  t.equal(after.get('wss_connections{kind="publish"}'), 1);
  t.equal(after.get('wss_connections{kind="receive"}'), 1);
  t.equal(after.get('wss_upgrades_refused_total{reason="ALREADY_PUBLISHING",status="403"}'), 1);
  t.equal(after.get('wss_upgrades_refused_total{reason="INVALID_CHANNEL",status="404"}'), 1);
  t.equal(after.get('wss_cache_bytes'), 4096 + 16);
  t.equal(after.get('wss_bridge_restarts'), 0, 'no bridge configured');
  t.equal(after.get('wss_channel_receivers{channel="m"}'), 1, 'per-channel series when enabled');
  await publisher.close();
  await receiver.closed;
  const ended = await scrape();
  t.equal(ended.get('wss_received_bytes_total'), 4096, 'totals survive the session');
  t.equal(ended.get('wss_sent_bytes_total'), 4096);
});

t.test('the coordinator metrics exist in coordinator mode only', async (t) => {
  const standalone = await start(t);
  t.notMatch(await (await standalone.admin('/metrics')).text(), /wss_coordinator_/, 'standalone: no coordinator series');

  const coordinator = await TestCoordinator.start();
  t.teardown(() => coordinator.stop());
  const { app, admin } = await start(t, { controlBaseUrl: coordinator.baseUrl, controlReconnectMinSeconds: '5' });
  const control = app.authorizer;
  if (!(control instanceof ControlClient)) throw new Error('not in coordinator mode');
  if (control.state !== 'connected') await once(control, 'connected');
  const up = parsePrometheus(await (await admin('/metrics')).text());
  t.equal(up.get('wss_coordinator_connected'), 1, 'connected');
  await coordinator.stop();
  if (control.state === 'connected') await once(control, 'disconnected');
  const down = parsePrometheus(await (await admin('/metrics')).text());
  t.equal(down.get('wss_coordinator_connected'), 0, 'disconnected');
});

t.test('no per-channel series by default', async (t) => {
  const { admin, url } = await start(t);
  const publisher = await TestClient.connect(url('/secret-channel/k/publish'));
  const text = await (await admin('/metrics')).text();
  t.notMatch(text, /secret-channel/);
  await publisher.close();
});

t.test('/streams: opt-in, live channels only, no key or IP', async (t) => {
  const off = await start(t);
  t.equal((await fetch(off.http('/streams'))).status, 404, 'off by default');

  const { url, http } = await start(t, { publicStreamList: 'YES' });
  const publisher = await TestClient.connect(url('/public/hidden-key/publish'));
  const waiting = await TestClient.connect(url('/waiting/k2/receive'));
  const viewer = await TestClient.connect(url('/public/hidden-key/receive'));
  const response = await fetch(http('/streams'));
  t.equal(response.status, 200);
  t.equal(response.headers.get('access-control-allow-origin'), '*');
  const text = await response.text();
  t.match(JSON.parse(text), { streams: [{ channel: 'public', receivers: 1, startedAt: String }] });
  t.equal(JSON.parse(text).streams.length, 1, 'only live channels');
  t.notMatch(text, /hidden-key|127\.0\.0\.1/);
  await Promise.all([publisher.close(), waiting.close(), viewer.closed]);
});

t.test('unknown paths, HEAD, OPTIONS and other methods', async (t) => {
  const { admin } = await start(t);
  t.equal((await admin('/nope')).status, 404);
  t.equal((await admin('/api/v1/channels/a/b/c')).status, 404);
  const head = await admin('/api/v1/channels', { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(await head.text(), '');
  t.ok(Number(head.headers.get('content-length')) > 0, 'HEAD reports the length of the GET body');
  const options = await admin('/api/v1/channels/x/kill', { method: 'OPTIONS' });
  t.equal(options.status, 204);
  t.equal(options.headers.get('allow'), 'POST, OPTIONS');
  const wrong = await admin('/api/v1/channels', { method: 'DELETE' });
  t.equal(wrong.status, 405);
  t.equal(wrong.headers.get('allow'), 'GET, HEAD, OPTIONS');
  t.equal((await admin('/api/v1/channels/x/kill')).status, 405, 'GET on a POST route');
  const big = await admin('/api/v1/channels/x/kill', { method: 'POST', body: 'x'.repeat(20_000) });
  t.equal(big.status, 413);
});
