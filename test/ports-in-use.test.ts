// Every listener asks for its port exclusively: a second server (or any other program) on the
// port makes startup fail, naming the setting, instead of the kernel splitting connections.
import { mkdtemp, rename, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import uWS from 'uWebSockets.js';
import { listen } from '../src/server/listen.js';
import { makeCertificate, presentedFingerprint } from './helpers/certificates.js';
import { freePort } from './helpers/ports.js';
import { suiteWorkers } from './helpers/server.js';
import { cli, ensureBuilt } from './client/helpers.js';
import type { Cli } from './client/helpers.js';

t.before(ensureBuilt);

const quiet = { LOG_REQUESTS: 'NO', DISABLE_TEST_CLIENT: 'YES' };

/** The real CLI serving with `env`, once every listener is up (its startup line is printed). */
async function serving(t: Test, env: Record<string, string>): Promise<Cli> {
  const server = cli([], { env: { ...quiet, ...env } });
  t.teardown(async () => {
    server.child.kill('SIGTERM');
    await server.exit;
  });
  await printed(server, 'Websocket streaming server');
  return server;
}

/** Resolves once the server's stdout has `text`; rejects if it exits first. */
async function printed(server: Cli, text: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (server.stdout().toString().includes(text)) resolve();
    };
    server.child.stdout!.on('data', check);
    check();
    void server.exit.then((code) => reject(new Error(`the server exited with ${code} before printing "${text}": ${server.stderr()}`)));
  });
}

/** Starts a second server with `env`; it must exit non-zero with `message` on stderr. */
async function refused(t: Test, env: Record<string, string>, message: RegExp, label: string): Promise<void> {
  const second = cli([], { env: { ...quiet, ...env } });
  t.teardown(() => {
    second.child.kill('SIGKILL');
  });
  let stdout = '';
  const started = new Promise<'started'>((resolve) => {
    second.child.stdout!.on('data', (data: Buffer) => {
      stdout += data.toString();
      if (stdout.includes('Websocket streaming server')) resolve('started');
    });
  });
  const code = await Promise.race([second.exit, started]);
  if (code === 'started') {
    t.fail(`${label}: the second server started, sharing the port`);
    return;
  }
  t.not(code, 0, `${label}: exits non-zero`);
  t.equal(typeof code, 'number', `${label}: exits by itself, not by a signal`);
  t.match(second.stderr(), message, `${label}: names the setting`);
}

/** What the admin listener at `address` answers: this server's own view of its HTTP port. */
async function adminHttpPort(address: string): Promise<number> {
  // A new connection each time (no keep-alive agent), so the kernel picks a listener for each.
  const text = await new Promise<string>((resolve, reject) => {
    http.get(`http://${address}/api/v1/server`, { agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (part: string) => (body += part));
      response.on('end', () => resolve(body));
    }).on('error', reject);
  });
  return Number((JSON.parse(text) as { config?: Record<string, string> }).config?.HTTP_PORT);
}

/**
 * Whether another program can listen on the server's port and take some of its connections.
 * With one thread, even a socket that asks to share the port (SO_REUSEPORT, as uSockets does by
 * default) is refused. With worker threads the server's own sockets share the port with
 * SO_REUSEPORT, which Linux also grants to a program of the same user that asks for it (a known
 * difference, docs/scaling.md): what holds there is that a program binding as programs do
 * (Node's net, Go, nginx without `reuseport`) is refused.
 */
async function shareable(host: string, port: number): Promise<boolean> {
  if (suiteWorkers === 1) {
    const socket = listen(uWS.App(), host, port, { exclusive: false });
    if (socket === false) return false;
    uWS.us_listen_socket_close(socket);
    return true;
  }
  const other = net.createServer();
  return new Promise((resolve) => {
    other.once('error', () => resolve(false));
    other.listen(port, host, () => other.close(() => resolve(true)));
  });
}

/** Holds 127.0.0.1:port with a plain Node server, as any other program would. */
async function holdPort(t: Test, host: string): Promise<number> {
  const holder = net.createServer();
  await new Promise<void>((resolve, reject) => {
    holder.once('error', reject);
    holder.listen(0, host, resolve);
  });
  t.teardown(() => new Promise((resolve) => holder.close(resolve)));
  return (holder.address() as net.AddressInfo).port;
}

t.test('HTTP_PORT on a specific address: IPv4 and IPv6', async (t) => {
  const cases = [['127.0.0.1', '127.0.0.1'], ['::1', '[::1]']] as const;
  await Promise.all(cases.map(async ([host, shown]) => {
    const port = await freePort();
    const env = { HTTP_PORT: String(port), BIND_ADDRESS: host, ADMIN_ADDRESS: 'off' };
    const first = await serving(t, env);
    await refused(t, env, new RegExp(`Cannot listen on ${shown.replace(/[[\].]/g, '\\$&')}:${port} \\(HTTP_PORT / BIND_ADDRESS\\): address in use`), `BIND_ADDRESS=${host}`);
    t.equal(first.child.exitCode, null, `BIND_ADDRESS=${host}: the first server still runs`);
    t.notOk(await shareable(host, port), `BIND_ADDRESS=${host}: the port cannot be shared`);
  }));
});

t.test('SSL_PORT: the TLS listener', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wss-ports-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cert = await makeCertificate(dir, 'ports');
  const sslPort = await freePort();
  const tls = { SSL_CERT: cert.certFile, SSL_KEY: cert.keyFile, SSL_PORT: String(sslPort), BIND_ADDRESS: '127.0.0.1', ADMIN_ADDRESS: 'off' };
  const first = await serving(t, { ...tls, HTTP_PORT: '0' });
  // A different HTTP port, so only the TLS listener collides.
  const message = new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${sslPort} \\(SSL_PORT / BIND_ADDRESS\\)`);
  await refused(t, { ...tls, HTTP_PORT: String(await freePort()) }, message, 'SSL_PORT');
  t.notOk(await shareable('127.0.0.1', sslPort), 'the TLS port cannot be shared');
  // A new certificate: the new TLS app takes the port over, exclusively too.
  const next = await makeCertificate(dir, 'next');
  await rename(next.keyFile, cert.keyFile);
  await rename(next.certFile, cert.certFile);
  await printed(first, `Certificate reloaded: ${next.fingerprint}`);
  t.equal(await presentedFingerprint(sslPort), next.fingerprint, 'the first server presents the new certificate');
  await refused(t, { ...tls, HTTP_PORT: String(await freePort()) }, message, 'SSL_PORT after a certificate reload');
  t.notOk(await shareable('127.0.0.1', sslPort), 'after the reload, the TLS port still cannot be shared');
});

t.test('ADMIN_ADDRESS: the admin listener, IPv4 and IPv6', async (t) => {
  await Promise.all(['127.0.0.1', '[::1]'].map(async (host) => {
    const address = `${host}:${await freePort()}`;
    const firstHttpPort = await freePort();
    await serving(t, { HTTP_PORT: String(firstHttpPort), BIND_ADDRESS: '127.0.0.1', ADMIN_ADDRESS: address });
    const message = new RegExp(`Cannot listen on ${address.replace(/[[\].]/g, '\\$&')} \\(ADMIN_ADDRESS\\)`);
    await refused(t, { HTTP_PORT: String(await freePort()), BIND_ADDRESS: '127.0.0.1', ADMIN_ADDRESS: address }, message, `ADMIN_ADDRESS=${address}`);
    // Every request to the admin port reaches the first server, none the failed second one.
    const answers = await Promise.all(Array.from({ length: 6 }, () => adminHttpPort(address)));
    t.same(answers, answers.map(() => firstHttpPort), `${address}: the first server answers every request`);
  }));
});

t.test('a port held by another program: every address form, every listener', async (t) => {
  const port = await holdPort(t, '127.0.0.1');
  const cases: Array<[Record<string, string>, RegExp, string]> = [
    [{ HTTP_PORT: String(port), BIND_ADDRESS: '127.0.0.1', ADMIN_ADDRESS: 'off' }, /\(HTTP_PORT \/ BIND_ADDRESS\)/, 'HTTP_PORT on 127.0.0.1'],
    // Every interface, IPv4 and IPv6: the IPv4 holder is in the way.
    [{ HTTP_PORT: String(port), BIND_ADDRESS: '', ADMIN_ADDRESS: 'off' }, new RegExp(`Cannot listen on \\*:${port} \\(HTTP_PORT / BIND_ADDRESS\\)`), 'HTTP_PORT on every interface'],
    [{ HTTP_PORT: String(await freePort()), BIND_ADDRESS: '127.0.0.1', ADMIN_ADDRESS: `127.0.0.1:${port}` }, /\(ADMIN_ADDRESS\)/, 'ADMIN_ADDRESS'],
  ];
  const port6 = await holdPort(t, '::1');
  cases.push([{ HTTP_PORT: String(port6), BIND_ADDRESS: '::1', ADMIN_ADDRESS: 'off' }, /\(HTTP_PORT \/ BIND_ADDRESS\)/, 'HTTP_PORT on ::1']);
  await Promise.all(cases.map(([env, message, label]) => refused(t, env, message, label)));
});
