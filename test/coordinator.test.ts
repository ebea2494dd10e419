import { once } from 'node:events';
import net from 'node:net';
import { jwtVerify } from 'jose';
import t from 'tap';
import type { Test } from 'tap';
import { ControlClient } from '../src/coordinator/index.js';
import { TestClient, eventually } from './helpers/client.js';
import { TestCoordinator } from './helpers/coordinator.js';
import { startTestServer } from './helpers/server.js';
import type { TestServer } from './helpers/server.js';

const SECRET = 'control-secret';

/** The coordinator connection: the authorizer runs on this thread, with or without worker threads. */
function control(server: TestServer): ControlClient {
  const client = server.authorizer;
  if (!(client instanceof ControlClient)) throw new Error('not in coordinator mode');
  return client;
}

async function connected(server: TestServer): Promise<void> {
  if (control(server).state !== 'connected') await once(control(server), 'connected');
}

async function setup(t: Test, settings: Record<string, string> = {}) {
  const coordinator = await TestCoordinator.start();
  t.teardown(() => coordinator.stop());
  const server = await startTestServer(t, {
    controlBaseUrl: coordinator.baseUrl + 'some/base/path',
    controlSecret: SECRET,
    controlReconnectMinSeconds: '0.02',
    controlReconnectMaxSeconds: '0.2',
    ...settings,
  });
  await connected(server);
  return { coordinator, url: server.url, server };
}

t.test('handshake: control path, signed token, external address headers', async (t) => {
  const { coordinator } = await setup(t, { externalIp: '203.0.113.9', externalPort: '8443', externalSsl: 'YES' });
  const { url, headers } = await coordinator.connection();
  t.equal(url, '/ws/control/wss');
  const token = headers['x-control-auth-token'];
  t.type(token, 'string');
  const { payload, protectedHeader } = await jwtVerify(String(token), new TextEncoder().encode(SECRET));
  t.equal(protectedHeader.alg, 'HS256');
  t.equal(payload.sub, 'wss-control');
  await t.rejects(jwtVerify(String(token), new TextEncoder().encode('other-secret')), 'signed with the secret only');
  t.equal(headers['x-external-ip'], '203.0.113.9');
  t.equal(headers['x-custom-port'], '8443');
  t.equal(headers['x-ssl-use'], 'true');
});

t.test('no secret: no token header', async (t) => {
  const { coordinator } = await setup(t, { controlSecret: '' });
  const { headers } = await coordinator.connection();
  t.equal(headers['x-control-auth-token'], undefined);
  t.equal(headers['x-ssl-use'], undefined);
});

t.test('accept: the publisher streams with the coordinator\'s stream id, and PUBLISH-END follows its end', async (t) => {
  const { coordinator, url, server } = await setup(t);
  coordinator.policy = () => ({ accept: 'abc-123' });
  const publisher = await TestClient.connect(url('/news/secret/publish'));
  const request = await coordinator.message('PUBLISH-REQUEST');
  t.same(request.args, { 'request-id': request.args['request-id'], 'stream-channel': 'news', 'stream-key': 'secret', 'user-ip': '127.0.0.1' });
  t.equal((await server.channel('news'))?.publisher?.streamId, 'abc-123');
  const receiver = await TestClient.connect(url('/news/secret/receive'));
  await publisher.send(Buffer.from('data'));
  t.same((await receiver.binary(1)).map(String), ['data']);
  await publisher.close();
  const end = await coordinator.message('PUBLISH-END');
  t.same(end.args, { 'stream-channel': 'news', 'stream-id': 'abc-123' });
});

t.test('deny and timeout both answer 403 Invalid Key.', async (t) => {
  const { coordinator, url, server } = await setup(t, { controlRequestTimeoutSeconds: '0.2' });
  coordinator.policy = () => 'deny';
  const denied = await TestClient.rejection(url('/ch/bad/publish'));
  t.same([denied.status, denied.body], [403, 'Invalid Key.']);
  coordinator.policy = () => 'ignore';
  const timedOut = await TestClient.rejection(url('/ch/slow/publish'));
  t.same([timedOut.status, timedOut.body], [403, 'Invalid Key.']);
  t.equal((await server.state()).channels.size, 0, 'no channel state left behind');
});

t.test('STREAM-KILL by stream id, by *, and a non-matching id that kills nothing', async (t) => {
  const { coordinator, url } = await setup(t);
  coordinator.policy = (request) => ({ accept: `id-${request.args['stream-channel']}` });
  const a = await TestClient.connect(url('/a/k/publish'));
  const b = await TestClient.connect(url('/b/k/publish'));
  const viewer = await TestClient.connect(url('/a/k/receive'));

  coordinator.send('STREAM-KILL\nStream-Channel: a\nStream-ID: id-other');
  coordinator.send('STREAM-KILL\nStream-Channel: a\nStream-ID: id-a');
  t.same(await a.closed, { code: 1008, reason: 'Stream killed' });
  t.same(await viewer.closed, { code: 1000, reason: 'Publisher ended' });
  t.equal(b.socket.readyState, b.socket.OPEN, 'the non-matching kill (sent first) closed nothing');

  coordinator.send('stream-kill\nstream-channel: b\nstream-id: *');
  t.same(await b.closed, { code: 1008, reason: 'Stream killed' });
  const ends = await coordinator.message('PUBLISH-END', 1);
  t.ok(ends, 'killed publishers are reported with PUBLISH-END');
});

t.test('coordinator down at startup: publish refused, then accepted once it is up, with backoff between attempts', async (t) => {
  // A port that refuses WebSocket handshakes, recording each attempt.
  const attempts: number[] = [];
  const blackhole = net.createServer((socket) => {
    attempts.push(performance.now());
    socket.destroy();
  });
  blackhole.listen(0, '127.0.0.1');
  await once(blackhole, 'listening');
  const port = (blackhole.address() as net.AddressInfo).port;
  const server = await startTestServer(t, {
    controlBaseUrl: `ws://127.0.0.1:${port}/`,
    controlReconnectMinSeconds: '0.05',
    controlReconnectMaxSeconds: '0.4',
  });
  const { url } = server;
  const refused = await TestClient.rejection(url('/ch/k/publish'));
  t.same([refused.status, refused.body], [403, 'Invalid Key.'], 'fails closed');
  const viewer = await TestClient.connect(url('/ch/k/receive'));
  t.pass('receivers are unaffected');

  await eventually(() => attempts.length >= 6, 1e7);
  const gaps = attempts.slice(1).map((time, i) => time - attempts[i]!);
  t.ok(gaps.every((gap) => gap >= 45), `every retry waited at least the minimum (${gaps.map(Math.round).join(', ')} ms)`);
  t.ok(gaps.every((gap) => gap <= 400 + 150), 'and at most the maximum (plus scheduling slack)');

  await new Promise((resolve) => blackhole.close(resolve));
  const coordinator = await TestCoordinator.start(port);
  t.teardown(() => coordinator.stop());
  await connected(server);
  const publisher = await TestClient.connect(url('/ch/k/publish'));
  await publisher.send(Buffer.from('x'));
  t.same((await viewer.binary(1)).map(String), ['x']);
  await publisher.close();
});

t.test('coordinator restart mid-stream: publishers are killed and the connection is re-established', async (t) => {
  const { coordinator, url, server } = await setup(t);
  const publisher = await TestClient.connect(url('/live/k/publish'));
  const port = coordinator.port;
  await coordinator.stop();
  const restarted = await TestCoordinator.start(port);
  t.teardown(() => restarted.stop());
  t.same(await publisher.closed, { code: 1008, reason: 'Stream killed' });
  await restarted.connection();
  await connected(server);
  const again = await TestClient.connect(url('/live/k/publish'));
  t.pass('publishing works again after the reconnection');
  await again.close();
});

t.test('pending requests are denied when the control connection drops', async (t) => {
  const { coordinator, url } = await setup(t, { controlRequestTimeoutSeconds: '30' });
  coordinator.policy = () => 'ignore';
  const attempt = TestClient.rejection(url('/ch/k/publish'));
  await coordinator.message('PUBLISH-REQUEST');
  coordinator.current.terminate();
  const refused = await attempt;
  t.same([refused.status, refused.body], [403, 'Invalid Key.']);
});

t.test('a client that leaves while its publish request is pending leaves no state behind', async (t) => {
  const { coordinator, url, server } = await setup(t, { maxIpConcurrentConnections: '1' });
  coordinator.policy = () => 'ignore';
  const { default: WebSocket } = await import('ws');
  const socket = new WebSocket(url('/gone/k/publish'));
  socket.on('error', () => {});
  const closed = new Promise((resolve) => socket.once('close', resolve));
  const request = await coordinator.message('PUBLISH-REQUEST');
  socket.terminate();
  await closed;
  await server.until((state) => !state.channels.has('gone'), 'the channel is dropped');
  // The late answer is ignored; a new publisher (same IP, limit 1) gets the channel.
  coordinator.send(`PUBLISH-ACCEPT\nRequest-ID: ${request.args['request-id']}\nStream-Channel: gone\nStream-ID: late`);
  coordinator.policy = () => ({ accept: 'fresh' });
  const publisher = await TestClient.connect(url('/gone/k/publish'));
  t.equal((await server.channel('gone'))?.publisher?.streamId, 'fresh');
  await publisher.close();
});

t.test('garbage control messages are ignored; streams and the connection survive', async (t) => {
  const { coordinator, url, server } = await setup(t);
  const publisher = await TestClient.connect(url('/keep/k/publish'));
  for (const junk of ['', '\n\n\n', 'NOT-A-TYPE\nfoo', 'PUBLISH-ACCEPT\nRequest-ID: 999\nStream-ID: x', 'PUBLISH-ACCEPT', 'STREAM-KILL', 'STREAM-KILL\nStream-Channel: keep', ':::\n:', 'x'.repeat(100_000)]) {
    coordinator.send(junk);
  }
  coordinator.send(Buffer.from([0, 1, 2, 255]));
  coordinator.send('HEARTBEAT');
  // Messages on one socket arrive in order: the publish below is answered after all the junk.
  coordinator.policy = () => ({ accept: 'after-junk' });
  const second = await TestClient.connect(url('/other/k/publish'));
  t.equal((await server.channel('other'))?.publisher?.streamId, 'after-junk', 'publish requests still work');
  t.equal(publisher.socket.readyState, publisher.socket.OPEN, 'the existing publisher was not killed');
  t.equal(control(server).state, 'connected');
  await second.close();
  await publisher.close();
});

t.test('heartbeats are sent, and a silent coordinator is dropped and reconnected', async (t) => {
  const { coordinator } = await setup(t, { controlHeartbeatSeconds: '0.05', controlTimeoutSeconds: '0.3' });
  await coordinator.message('HEARTBEAT');
  t.pass('HEARTBEAT received');
  // The test coordinator never sends anything: the server must give up on it and reconnect.
  await coordinator.connection(2);
  t.pass('reconnected after the silence');
});
