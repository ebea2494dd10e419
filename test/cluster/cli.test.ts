// The real CLI with WORKERS > 1: graceful shutdown reaches every thread's clients; a second
// server cannot share the port; bad settings still stop startup with exit code 2.
import t from 'tap';
import type { Test } from 'tap';
import { TestClient } from '../helpers/client.js';
import { freePort } from '../helpers/ports.js';
import { cli, ensureBuilt } from '../client/helpers.js';
import type { Cli } from '../client/helpers.js';

t.before(ensureBuilt);

const base = { LOG_REQUESTS: 'NO', MAX_IP_CONCURRENT_CONNECTIONS: '0', DISABLE_TEST_CLIENT: 'YES', BIND_ADDRESS: '127.0.0.1', ADMIN_ADDRESS: 'off', WS_STREAM_SERVER_TEST_HOOKS: '1' };

/** Waits until the server's stdout matches `pattern`; rejects if it exits first. */
async function printed(server: Cli, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const match = pattern.exec(server.stdout().toString());
      if (match) resolve(match);
    };
    server.child.stdout!.on('data', check);
    check();
    void server.exit.then((code) => reject(new Error(`the server exited with ${code}: ${server.stderr()}`)));
  });
}

async function serving(t: Test, workers: number, env: Record<string, string> = {}): Promise<{ server: Cli; ports: number[]; port: number }> {
  const port = await freePort();
  const server = cli([], { env: { ...base, HTTP_PORT: String(port), WORKERS: String(workers), ...env } });
  t.teardown(() => {
    server.child.kill('SIGKILL');
  });
  await printed(server, /Websocket streaming server/);
  const ports = [...server.stdout().toString().matchAll(/\[TEST\] Worker (\d+) also listens on 127\.0\.0\.1:(\d+)/g)].sort((a, b) => Number(a[1]) - Number(b[1])).map((match) => Number(match[2]));
  return { server, ports, port };
}

t.test('SIGTERM: every client on every thread gets 1001, and the process exits 0', async (t) => {
  const { server, ports } = await serving(t, 3);
  t.equal(ports.length, 3, 'three workers');
  const publisher = await TestClient.connect(`ws://127.0.0.1:${ports[0]!}/term/k/publish`);
  const receivers = await Promise.all(ports.map((port) => TestClient.connect(`ws://127.0.0.1:${port}/term/k/receive`)));
  const idle = await TestClient.connect(`ws://127.0.0.1:${ports[2]!}/other/k/receive`);
  server.child.kill('SIGTERM');
  for (const client of [publisher, ...receivers, idle]) t.same(await client.closed, { code: 1001, reason: 'Server shutting down' });
  t.equal(await server.exit, 0, 'exit 0');
});

t.test('a second server on the same port is refused while the threads share it', async (t) => {
  const { port } = await serving(t, 2);
  const second = cli([], { env: { ...base, HTTP_PORT: String(port), WORKERS: '2' } });
  t.not(await second.exit, 0, 'the second server exits non-zero');
  t.match(second.stderr(), new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${port} \\(HTTP_PORT / BIND_ADDRESS\\): address in use`));
});

t.test('bad settings stop startup with exit code 2, naming the setting', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ WORKERS: 'many' }, /Invalid WORKERS \(--workers\): "many" is not a number/],
    [{ WORKERS: '0' }, /Invalid WORKERS .*out of range/],
    [{ WORKERS: '2', HTTP_PORT: '0' }, /HTTP_PORT is 0 \(plain HTTP off\) but TLS is not configured/],
    [{ WORKERS: '2', SSL_CERT: '/nonexistent/cert.pem', SSL_KEY: '/nonexistent/key.pem' }, /SSL_CERT \/nonexistent\/cert\.pem cannot be read/],
  ];
  for (const [env, message] of cases) {
    const child = cli([], { env: { ...base, HTTP_PORT: String(await freePort()), ...env } });
    t.equal(await child.exit, 2, `${JSON.stringify(env)}: exit 2`);
    t.match(child.stderr(), message);
  }
});
