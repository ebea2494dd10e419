import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { openConnections, startTestServer, workersEnv } from './helpers/server.js';
import { TestClient } from './helpers/client.js';
import { freePort } from './helpers/ports.js';

const bin = fileURLToPath(new URL('../bin/ws-stream-server.js', import.meta.url));

t.test('the server sends h every heartbeat interval', async (t) => {
  const { url } = await startTestServer(t, { heartbeatIntervalSeconds: '0.05' });
  const receiver = await TestClient.connect(url('/beat/k/receive'));
  await receiver.until((client) => client.textMessages.length >= 3, 'three heartbeats');
  t.same(receiver.textMessages.slice(0, 3), ['h', 'h', 'h']);
  await receiver.close();
});

t.test('a silent client is closed after the idle timeout; one that sends h stays', async (t) => {
  const { url } = await startTestServer(t, { idleTimeoutSeconds: '0.3', heartbeatIntervalSeconds: '60' });
  const silent = await TestClient.connect(url('/idle/k/receive'));
  const chatty = await TestClient.connect(url('/idle/k/receive'));
  const beat = setInterval(() => void chatty.send('h'), 50);
  t.teardown(() => clearInterval(beat));
  t.same(await silent.closed, { code: 4000, reason: 'Idle timeout' });
  t.equal(chatty.socket.readyState, chatty.socket.OPEN, 'the client that sends heartbeats is still open');
  clearInterval(beat);
  t.same(await chatty.closed, { code: 4000, reason: 'Idle timeout' }, 'and is closed once it stops');
});

t.test('close() ends every client with 1001', async (t) => {
  const server = await startTestServer(t);
  const { url } = server;
  const publisher = await TestClient.connect(url('/bye/k/publish'));
  const receiver = await TestClient.connect(url('/bye/k/receive'));
  const idle = await TestClient.connect(url('/other/k/receive'));
  await server.close();
  for (const client of [publisher, receiver, idle]) t.same(await client.closed, { code: 1001, reason: 'Server shutting down' });
  t.equal(openConnections(await server.state()), 0);
});

t.test('a publish still being authorized when the server closes gets 503 and leaves nothing behind', async (t) => {
  let decide: (accepted: boolean) => void = () => {};
  let asked: () => void = () => {};
  const requested = new Promise<void>((resolve) => (asked = resolve));
  const authorizer = {
    authorize: () =>
      new Promise<{ accepted: true; streamId: string } | { accepted: false }>((resolve) => {
        decide = (accepted) => resolve(accepted ? { accepted, streamId: 's' } : { accepted });
        asked();
      }),
  };
  const server = await startTestServer(t, {}, { authorizer });
  const { url } = server;
  const attempt = TestClient.rejection(url('/late/k/publish'));
  await requested;
  await server.close();
  decide(true);
  const refused = await attempt;
  t.same([refused.status, refused.body], [503, 'Server shutting down.']);
  const state = await server.state();
  t.equal(openConnections(state), 0);
  t.equal(state.channels.size, 0);
});

t.test('WebSocket pings count as activity for the idle timeout', async (t) => {
  const { url } = await startTestServer(t, { idleTimeoutSeconds: '0.3', heartbeatIntervalSeconds: '60' });
  const pinger = await TestClient.connect(url('/ping/k/receive'));
  const silent = await TestClient.connect(url('/ping/k/receive'));
  const ping = setInterval(() => pinger.socket.ping(), 50);
  t.teardown(() => clearInterval(ping));
  t.equal((await silent.closed).code, 4000);
  t.equal(pinger.socket.readyState, pinger.socket.OPEN, 'the pinging client is still open');
  clearInterval(ping);
  t.equal((await pinger.closed).code, 4000);
});

interface Child {
  exitCode: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
}

function run(args: string[], env: Record<string, string> = {}): Child & { process: ReturnType<typeof spawn> } {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { PATH: process.env.PATH ?? '', ...workersEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (part: string) => (stdout += part));
  child.stderr.setEncoding('utf8').on('data', (part: string) => (stderr += part));
  const exitCode = once(child, 'exit').then(([code]) => code as number | null);
  return { process: child, exitCode, stdout: () => stdout, stderr: () => stderr };
}

t.test('SIGTERM (even sent twice, as process-group tools do): clients get 1001 and the process exits 0', async (t) => {
  const child = run(['--http-port', String(await freePort()), '--bind-address', '127.0.0.1', '--admin-address', 'off']);
  t.teardown(() => child.process.kill('SIGKILL'));
  const port = await new Promise<number>((resolve, reject) => {
    child.process.stdout!.on('data', () => {
      const match = /Listening on 127\.0\.0\.1:(\d+)/.exec(child.stdout());
      if (match) resolve(Number(match[1]));
    });
    void child.exitCode.then((code) => reject(new Error(`server exited early with ${code}: ${child.stderr()}`)));
  });
  t.ok(port > 0, 'the server announced its port');
  const receiver = await TestClient.connect(`ws://127.0.0.1:${port}/term/k/receive`);
  child.process.kill('SIGTERM');
  child.process.kill('SIGTERM');
  t.same(await receiver.closed, { code: 1001, reason: 'Server shutting down' });
  t.equal(await child.exitCode, 0);
});

t.test('bad configuration values stop startup with a message naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, string[], RegExp]> = [
    [{ HTTP_PORT: 'eighty' }, [], /Invalid HTTP_PORT \(--http-port\): "eighty" is not a number/],
    [{ HTTP_PORT: '70000' }, [], /Invalid HTTP_PORT .*out of range/],
    [{ PLAY_WHITELIST: '10.0.0.0/33' }, [], /Invalid PLAY_WHITELIST .*"10\.0\.0\.0\/33"/],
    [{ LOG_REQUESTS: 'maybe' }, [], /Invalid LOG_REQUESTS .*not YES or NO/],
    [{}, ['--gop-cache-size-mb', '-1'], /Invalid GOP_CACHE_SIZE_MB \(--gop-cache-size-mb\)/],
    [{ CONTROL_BASE_URL: 'http://127.0.0.1:9/' }, [], /Invalid CONTROL_BASE_URL .*must start with ws:\/\/ or wss:\/\//],
    [{ SSL_CERT: '/nonexistent/cert.pem' }, [], /SSL_CERT is set but SSL_KEY is not/],
    [{ SSL_CERT: '/nonexistent/cert.pem', SSL_KEY: '/nonexistent/key.pem' }, [], /SSL_CERT \/nonexistent\/cert\.pem cannot be read \(ENOENT\)/],
    [{ HTTP_PORT: '0' }, [], /HTTP_PORT is 0 \(plain HTTP off\) but TLS is not configured/],
  ];
  for (const [env, args, message] of cases) {
    // A valid port, so a case that wrongly starts listens on loopback and the test times out visibly.
    const child = run(args, { HTTP_PORT: String(await freePort()), BIND_ADDRESS: '127.0.0.1', ADMIN_ADDRESS: 'off', ...env });
    const label = JSON.stringify({ env, args });
    t.equal(await child.exitCode, 2, `${label} exits 2`);
    t.match(child.stderr(), message, label);
  }
});

t.test('close() also ends idle keep-alive HTTP connections: nothing holds the process afterwards', async (t) => {
  const server = await startTestServer(t);
  const socket = net.connect(server.port, '127.0.0.1');
  await once(socket, 'connect');
  let received = '';
  socket.setEncoding('utf8').on('data', (text: string) => (received += text));
  const request = `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
  socket.write(request);
  await new Promise<void>((resolve) => socket.on('data', () => received.startsWith('HTTP/1.1 200') && resolve()));
  received = '';
  // With worker threads close() resolves once the threads have exited: the socket may be closed by then.
  const closed = once(socket, 'close');
  socket.on('error', () => undefined);
  await server.close();
  // Still open, this connection would be answered (and would hold the event loop for uWS's
  // 10 s HTTP idle timeout); closed, it ends now and answers nothing.
  if (!socket.destroyed) socket.write(request);
  await closed;
  t.equal(received, '', 'no answer on the kept-alive connection after close()');
});
