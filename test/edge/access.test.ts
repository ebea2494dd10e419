// TLS on both sides of an edge, the edge's own viewer checks, and its startup errors.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { makeCertificate } from '../helpers/certificates.js';
import { TestClient, patternBytes } from '../helpers/client.js';
import { freePort } from '../helpers/ports.js';
import { scratchDir } from '../media/helpers.js';
import { receiverCount, relays, startServer, until } from './helpers.js';

t.test('wss:// upstream to a TLS origin (trusted through NODE_EXTRA_CA_CERTS), TLS viewers on the edge', async (t) => {
  const dir = scratchDir(t);
  const certificate = await makeCertificate(dir, 'origin');
  const tls = { SSL_CERT: certificate.certFile, SSL_KEY: certificate.keyFile };
  const origin = await startServer(t, { tls: true, env: tls });
  const edge = await startServer(t, { tls: true, env: { ...tls, ORIGIN_URL: origin.url(''), NODE_EXTRA_CA_CERTS: certificate.certFile } });
  const ca = readFileSync(certificate.certFile);
  const viewer = await TestClient.connect(edge.url('/secure/k/receive'), { ca });
  await until('the upstream', async () => receiverCount(origin, 'secure'), (count) => count === 1);
  const publisher = await TestClient.connect(origin.url('/secure/k/publish'), { ca });
  const chunk = patternBytes(50_000, 5);
  await publisher.send(chunk);
  await viewer.until((client) => client.binaryBytes >= chunk.length, 'the stream');
  t.ok(Buffer.concat(viewer.binaryMessages).equals(chunk), 'byte-exact over wss on both sides');
  t.match(await relays(edge), [{ upstream: origin.url(''), state: 'live' }]);
});

t.test('an untrusted origin certificate is a connection failure, retried and logged once', async (t) => {
  const dir = scratchDir(t);
  const certificate = await makeCertificate(dir, 'origin');
  const origin = await startServer(t, { tls: true, env: { SSL_CERT: certificate.certFile, SSL_KEY: certificate.keyFile } });
  const edge = await startServer(t, { env: { ORIGIN_URL: origin.url(''), LOG_DEBUG: 'YES' } });
  const viewer = await TestClient.connect(edge.url('/untrusted/k/receive'));
  await until('retries', async () => edge.output().split('next attempt in').length - 1, (count) => count >= 2);
  t.equal(edge.output().split('\n').filter((line) => line.includes('unreachable')).length, 1);
  t.match(edge.output(), /unreachable: .*self[- ]signed certificate/);
  t.equal(viewer.socket.readyState, viewer.socket.OPEN, 'the viewer waits');
  t.equal(await receiverCount(origin, 'untrusted'), 0);
});

t.test('PLAY_WHITELIST and the per-IP limit apply to the edge\'s own viewers before any upstream', async (t) => {
  const origin = await startServer(t);
  const listed = await startServer(t, { env: { ORIGIN_URL: origin.url(''), PLAY_WHITELIST: '10.1.2.3' } });
  const refused = await TestClient.rejection(listed.url('/wl/k/receive'));
  t.same([refused.status, refused.body], [403, 'Cannot play: Not whitelisted.']);
  t.same(await relays(listed), [], 'no upstream for a refused viewer');

  const limited = await startServer(t, { env: { ORIGIN_URL: origin.url(''), MAX_IP_CONCURRENT_CONNECTIONS: '1' } });
  const first = await TestClient.connect(limited.url('/lim/k/receive'));
  const second = await TestClient.rejection(limited.url('/lim/k/receive'));
  t.same([second.status, second.body], [429, 'Too many requests.']);
  t.match(await relays(limited), [{ viewers: 1 }]);
  await first.close();
});

t.test('bad edge settings stop startup with a message naming the setting', async (t) => {
  const bin = fileURLToPath(new URL('../../bin/ws-stream-server.js', import.meta.url));
  const cases: Array<[Record<string, string>, string[], RegExp]> = [
    [{ ORIGIN_URL: 'http://127.0.0.1:9' }, [], /Invalid ORIGIN_URL \(--origin-url\): "http:\/\/127\.0\.0\.1:9" must start with ws:\/\/ or wss:\/\//],
    [{ ORIGIN_URL: 'ws://127.0.0.1:9/?a=1' }, [], /Invalid ORIGIN_URL .*must not have a query or fragment/],
    [{ ORIGIN_URL: 'ws://127.0.0.1:9,' }, [], /Invalid ORIGIN_URL .*empty entry/],
    [{ ORIGIN_URL: 'ws://user:s3cret@127.0.0.1:9' }, [], /Invalid ORIGIN_URL .*contains credentials(?![\s\S]*s3cret)/],
    [{}, ['--origin-url', 'not a url'], /Invalid ORIGIN_URL \(--origin-url\): "not a url" is not a URL/],
    [{ ORIGIN_URL: 'ws://127.0.0.1:9', EDGE_IDLE_SECONDS: '-1' }, [], /Invalid EDGE_IDLE_SECONDS \(--edge-idle-seconds\)/],
    [{ ORIGIN_URL: 'ws://127.0.0.1:9', CONTROL_BASE_URL: 'ws://127.0.0.1:9/' }, [], /ORIGIN_URL and CONTROL_BASE_URL are both set/],
  ];
  for (const [env, args, message] of cases) {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { PATH: process.env.PATH ?? '', HTTP_PORT: String(await freePort()), BIND_ADDRESS: '127.0.0.1', ADMIN_ADDRESS: 'off', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (part: string) => (stderr += part));
    child.stdout.resume();
    const [code] = (await once(child, 'exit')) as [number | null];
    const label = JSON.stringify({ env, args });
    t.equal(code, 2, `${label} exits 2`);
    t.match(stderr, message, label);
  }
});
