import t from 'tap';
import WebSocket from 'ws';
import { startTestServer } from './helpers/server.js';
import { TestClient, eventually } from './helpers/client.js';
import type { PublishAuthorizer } from '../src/coordinator/authorizer.js';

t.test('refused upgrades get the Go server\'s plain HTTP answers', async (t) => {
  const { url } = await startTestServer(t, { idMaxLength: '8' });
  const cases: Array<[string, number, string]> = [
    ['/bad.channel/key/receive', 404, 'Invalid channel.'],
    ['/channel/b@d/receive', 404, 'Invalid key.'],
    ['/123456789/key/receive', 404, 'Invalid channel.'],
    ['/channel/123456789/publish', 404, 'Invalid key.'],
    ['/channel/key/watch', 404, 'Invalid connection kind.'],
    ['/channel/key/', 404, 'Invalid connection kind.'],
    ['/only/two', 404, 'Not found.'],
    ['/a/b/c/d', 404, 'Not found.'],
  ];
  for (const [path, status, body] of cases) {
    const rejection = await TestClient.rejection(url(path));
    t.same({ status: rejection.status, body: rejection.body }, { status, body }, path);
  }
});

t.test('a query string is not part of the kind', async (t) => {
  const { url } = await startTestServer(t);
  const publisher = await TestClient.connect(url('/q/k/publish?token=1'));
  const receiver = await TestClient.connect(url('/q/k/receive?x=1&y=2'));
  await publisher.send(Buffer.from('chunk'));
  t.same((await receiver.binary(1)).map(String), ['chunk']);
  await publisher.close();
});

t.test('second publisher on a channel gets 403 Already publishing.', async (t) => {
  const { url } = await startTestServer(t);
  const first = await TestClient.connect(url('/busy/k/publish'));
  const rejection = await TestClient.rejection(url('/busy/k/publish'));
  t.same([rejection.status, rejection.body], [403, 'Already publishing.']);
  // After the first ends, the channel can be published again.
  await first.close();
  const again = await TestClient.connect(url('/busy/k/publish'));
  await again.close();
});

t.test('publish refused by the authorizer gets 403 Invalid Key.', async (t) => {
  const authorizer: PublishAuthorizer = {
    authorize: ({ key }) => (key === 'good' ? { accepted: true, streamId: 's1' } : { accepted: false }),
  };
  const { url } = await startTestServer(t, {}, { authorizer });
  const rejection = await TestClient.rejection(url('/auth/bad/publish'));
  t.same([rejection.status, rejection.body], [403, 'Invalid Key.']);
  const accepted = await TestClient.connect(url('/auth/good/publish'));
  await accepted.close();
});

t.test('asynchronous authorization: the channel stays reserved while pending and is freed after a denial', async (t) => {
  const decisions: Array<(accepted: boolean) => void> = [];
  let requested: () => void = () => {};
  const nextRequest = (): Promise<void> => new Promise((resolve) => (requested = resolve));
  const authorizer: PublishAuthorizer = {
    authorize: () =>
      new Promise((resolve) => {
        decisions.push((accepted) => resolve(accepted ? { accepted, streamId: 'x' } : { accepted: false }));
        requested();
      }),
  };
  const { url } = await startTestServer(t, {}, { authorizer });
  let asked = nextRequest();
  const first = TestClient.rejection(url('/slow/k/publish'));
  await asked;
  // The second request is answered at once: the first one holds the channel.
  const second = await TestClient.rejection(url('/slow/k/publish'));
  t.same([second.status, second.body], [403, 'Already publishing.']);
  t.equal(decisions.length, 1);
  decisions[0]!(false);
  const denied = await first;
  t.same([denied.status, denied.body], [403, 'Invalid Key.']);
  asked = nextRequest();
  const third = TestClient.connect(url('/slow/k/publish'));
  await asked;
  decisions[1]!(true);
  const publisher = await third;
  await publisher.close();
});

t.test('a publisher that disconnects during authorization frees the channel and its IP slot', async (t) => {
  const decisions: Array<() => void> = [];
  let requested: () => void = () => {};
  const authorizer: PublishAuthorizer = {
    authorize: () =>
      new Promise((resolve) => {
        decisions.push(() => resolve({ accepted: true, streamId: 'x' }));
        requested();
      }),
  };
  const server = await startTestServer(t, { maxIpConcurrentConnections: '1' }, { authorizer });
  const { url } = server;
  const asked = new Promise<void>((resolve) => (requested = resolve));
  const socket = new WebSocket(url('/gone/k/publish'));
  socket.on('error', () => {}); // terminate() during the handshake reports an error: expected
  const closed = new Promise((resolve) => socket.once('close', resolve));
  await asked;
  socket.terminate();
  await closed;
  await server.until((state) => !state.channels.has('gone'), 'the channel is dropped');
  decisions[0]!(); // a late answer for the vanished client is ignored
  const retry = TestClient.connect(url('/gone/k/publish'));
  await eventually(() => decisions.length === 2);
  decisions[1]!();
  const publisher = await retry;
  await publisher.close();
});

t.test('plain HTTP: test page at /, 426 on stream paths, 404 elsewhere', async (t) => {
  const { httpUrl } = await startTestServer(t);
  const home = await fetch(httpUrl('/'));
  t.equal(home.status, 200);
  t.match(home.headers.get('content-type'), /text\/html/);
  t.match(await home.text(), /ws-stream-server test client/);
  const stream = await fetch(httpUrl('/c/k/receive'));
  t.equal(stream.status, 426);
  const missing = await fetch(httpUrl('/nothing/here'));
  t.same([missing.status, await missing.text()], [404, 'Not found.']);
});

t.test('HEAD on the test page and its assets: the GET headers and length, no body, the server unharmed', async (t) => {
  const { httpUrl } = await startTestServer(t);
  for (const path of ['/', '/index.html', '/_/app.js']) {
    const get = await fetch(httpUrl(path));
    const body = new Uint8Array(await get.arrayBuffer());
    const head = await fetch(httpUrl(path), { method: 'HEAD' });
    t.equal(head.status, 200, `HEAD ${path}`);
    t.equal(head.headers.get('content-type'), get.headers.get('content-type'), `HEAD ${path}: same type as GET`);
    t.equal(head.headers.get('content-length'), String(body.byteLength), `HEAD ${path}: the GET body's length`);
    t.equal((await head.arrayBuffer()).byteLength, 0, `HEAD ${path}: no body`);
  }
  const missing = await fetch(httpUrl('/_/nothing.js'), { method: 'HEAD' });
  t.equal(missing.status, 404);
  // uWebSockets.js aborts the process on a HEAD answer without an abort handler: still serving?
  t.equal((await fetch(httpUrl('/'))).status, 200);
});

t.test('DISABLE_TEST_CLIENT=YES answers / with the version banner', async (t) => {
  const { httpUrl } = await startTestServer(t, { disableTestClient: 'YES' });
  const home = await fetch(httpUrl('/'));
  t.equal(home.status, 200);
  t.match(await home.text(), /^Websocket streaming server - Version \d+\.\d+\.\d+/);
});
