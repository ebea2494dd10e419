import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { StreamServer } from '../src/server/stream-server.js';
import { makeCertificate, presentedFingerprint } from './helpers/certificates.js';
import type { TestCertificate } from './helpers/certificates.js';
import { TestClient, patternBytes } from './helpers/client.js';
import { freePort } from './helpers/ports.js';
import { startTestServer } from './helpers/server.js';

const insecure = { rejectUnauthorized: false };

async function workdir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wss-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function tlsServer(t: Test, certFile: string, keyFile: string, settings: Record<string, string> = {}) {
  const server = await startTestServer(t, { sslCert: certFile, sslKey: keyFile, sslPort: String(await freePort()), ...settings });
  const port = server.tlsPort!;
  return { server, url: server.url, port, wss: (path: string) => `wss://127.0.0.1:${port}${path}` };
}

t.test('wss publish and receive, and the test page over https', async (t) => {
  const dir = await workdir(t);
  const cert = await makeCertificate(dir, 'one');
  const { wss, port, url } = await tlsServer(t, cert.certFile, cert.keyFile);
  t.equal(await presentedFingerprint(port), cert.fingerprint);
  const publisher = await TestClient.connect(wss('/secure/k/publish'), insecure);
  const receiver = await TestClient.connect(wss('/secure/k/receive'), insecure);
  const plainReceiver = await TestClient.connect(url('/secure/k/receive'));
  const chunk = patternBytes(300_000, 3);
  await publisher.send(chunk);
  t.ok((await receiver.binary(1))[0]!.equals(chunk), 'wss receiver');
  t.ok((await plainReceiver.binary(1))[0]!.equals(chunk), 'plain and TLS clients share channels');
  const page = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    https.get(`https://127.0.0.1:${port}/`, insecure, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (part: string) => (body += part));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
  });
  t.equal(page.status, 200);
  t.match(page.body, /ws-stream-server test client/);
  const refused = await TestClient.rejection(wss('/bad!/k/receive'), insecure);
  t.same([refused.status, refused.body], [404, 'Invalid channel.'], 'same answers as plain HTTP');
  await publisher.close();
});

t.test('TLS only: HTTP_PORT=0 turns plain HTTP off', async (t) => {
  const dir = await workdir(t);
  const cert = await makeCertificate(dir, 'only');
  const { server, wss } = await tlsServer(t, cert.certFile, cert.keyFile, { httpPort: '0' });
  t.equal(server.port, server.tlsPort, 'the only listener is the TLS one');
  const client = await TestClient.connect(wss('/c/k/receive'), insecure);
  await client.close();
});

/** Keeps a publisher sending numbered chunks to a receiver across a reload; checks none is lost. */
async function streamAcross(t: Test, wss: (path: string) => string, channel: string, during: () => Promise<void>): Promise<void> {
  const publisher = await TestClient.connect(wss(`/${channel}/k/publish`), insecure);
  const receiver = await TestClient.connect(wss(`/${channel}/k/receive`), insecure);
  let sent = 0;
  const send = async (): Promise<void> => {
    const chunk = Buffer.alloc(1000);
    chunk.writeUInt32BE(sent++);
    await publisher.send(chunk);
  };
  for (let i = 0; i < 20; i++) await send();
  await during();
  for (let i = 0; i < 20; i++) await send();
  const received = await receiver.binary(sent);
  t.same(received.map((chunk) => chunk.readUInt32BE(0)), Array.from({ length: sent }, (_, i) => i), `${channel}: all ${sent} chunks, in order, across the reload`);
  t.equal(publisher.socket.readyState, publisher.socket.OPEN, `${channel}: the publisher connected before the reload is still open`);
  await publisher.close();
}

t.test('certificate replaced by rename, by in-place write, and by a symlink switch', async (t) => {
  const dir = await workdir(t);
  const certs: TestCertificate[] = [];
  for (const name of ['v1', 'v2', 'v3', 'v4']) certs.push(await makeCertificate(dir, name));
  const [v1, v2, v3, v4] = certs as [TestCertificate, TestCertificate, TestCertificate, TestCertificate];

  // certbot layout: live/ holds symlinks into archive/.
  await mkdir(join(dir, 'live'));
  const live = { cert: join(dir, 'live', 'cert.pem'), key: join(dir, 'live', 'key.pem') };
  await copyFile(v1.certFile, live.cert);
  await copyFile(v1.keyFile, live.key);
  const { server, port, wss } = await tlsServer(t, live.cert, live.key);
  t.equal(await presentedFingerprint(port), v1.fingerprint);

  const reloaded = (): Promise<unknown> => once(server.events, 'certificateReloaded');

  await streamAcross(t, wss, 'rename', async () => {
    const next = reloaded();
    await copyFile(v2.keyFile, join(dir, 'live', 'key.tmp'));
    await copyFile(v2.certFile, join(dir, 'live', 'cert.tmp'));
    await rename(join(dir, 'live', 'key.tmp'), live.key);
    await rename(join(dir, 'live', 'cert.tmp'), live.cert);
    await next;
    t.equal(await presentedFingerprint(port), v2.fingerprint, 'rename: new handshakes get the new certificate');
  });

  await streamAcross(t, wss, 'inplace', async () => {
    const next = reloaded();
    await writeFile(live.key, await readFile(v3.keyFile));
    await writeFile(live.cert, await readFile(v3.certFile));
    await next;
    t.equal(await presentedFingerprint(port), v3.fingerprint, 'in-place write');
  });

  await streamAcross(t, wss, 'symlink', async () => {
    const next = reloaded();
    for (const [link, target] of [[live.key, v4.keyFile], [live.cert, v4.certFile]] as const) {
      await symlink(target, `${link}.new`);
      await rename(`${link}.new`, link);
    }
    await next;
    t.equal(await presentedFingerprint(port), v4.fingerprint, 'symlink switch');
  });
});

t.test('a broken new pair keeps the old certificate; a later valid pair is picked up', async (t) => {
  const dir = await workdir(t);
  const good = await makeCertificate(dir, 'good');
  const other = await makeCertificate(dir, 'other');
  const next = await makeCertificate(dir, 'next');
  const cert = join(dir, 'server.crt');
  const key = join(dir, 'server.key');
  await copyFile(good.certFile, cert);
  await copyFile(good.keyFile, key);
  const { server, port, wss } = await tlsServer(t, cert, key);
  const viewer = await TestClient.connect(wss('/c/k/receive'), insecure);

  let rejected = once(server.events, 'certificateRejected');
  await writeFile(key, await readFile(other.keyFile)); // the key of another certificate
  const [mismatch] = (await rejected) as [Error];
  t.match(mismatch.message, /SSL_KEY .*server\.key does not belong to the certificate/);
  t.equal(await presentedFingerprint(port), good.fingerprint, 'the old certificate is still served');

  rejected = once(server.events, 'certificateRejected');
  const pem = await readFile(next.certFile, 'utf8');
  await writeFile(cert, pem.slice(0, pem.length / 2)); // truncated, half-written
  const [truncated] = (await rejected) as [Error];
  t.match(truncated.message, /SSL_CERT .*server\.crt is not a PEM certificate/);
  t.equal(await presentedFingerprint(port), good.fingerprint);

  const reloaded = once(server.events, 'certificateReloaded');
  await writeFile(key, await readFile(next.keyFile));
  await writeFile(cert, pem);
  await reloaded;
  t.equal(await presentedFingerprint(port), next.fingerprint, 'the valid pair is picked up');
  t.equal(viewer.socket.readyState, viewer.socket.OPEN, 'the connection open all along was not touched');
  await viewer.close();
});

t.test('a passphrase-protected key', async (t) => {
  const dir = await workdir(t);
  const cert = await makeCertificate(dir, 'locked', 'open sesame');
  const { port } = await tlsServer(t, cert.certFile, cert.keyFile, { sslKeyPassphrase: 'open sesame' });
  t.equal(await presentedFingerprint(port), cert.fingerprint);
  const wrong = loadConfig({ flags: { sslCert: cert.certFile, sslKey: cert.keyFile, sslKeyPassphrase: 'nope', httpPort: '1' } });
  t.throws(() => new StreamServer(wrong), /SSL_KEY .*not a usable PEM private key/);
});

t.test('startup errors name the setting', async (t) => {
  const dir = await workdir(t);
  const cert = await makeCertificate(dir, 'a');
  const other = await makeCertificate(dir, 'b');
  const attempt = (flags: Record<string, string>): ConfigError => {
    try {
      new StreamServer(loadConfig({ flags: { httpPort: '1', ...flags } }));
    } catch (error) {
      if (error instanceof ConfigError) return error;
      throw error;
    }
    throw new Error('expected a ConfigError');
  };
  t.match(attempt({ sslCert: cert.certFile }), { setting: 'SSL_KEY', message: /SSL_CERT is set but SSL_KEY is not/ });
  t.match(attempt({ sslKey: cert.keyFile }), { setting: 'SSL_CERT' });
  t.match(attempt({ sslCert: join(dir, 'missing.crt'), sslKey: cert.keyFile }), { setting: 'SSL_CERT', message: /missing\.crt cannot be read \(ENOENT\)/ });
  t.match(attempt({ sslCert: cert.certFile, sslKey: dir }), { setting: 'SSL_KEY', message: /cannot be read \(EISDIR\)/ });
  t.match(attempt({ sslCert: cert.certFile, sslKey: other.keyFile }), { setting: 'SSL_KEY', message: /does not belong/ });
  t.match(attempt({ sslCert: cert.keyFile, sslKey: cert.keyFile }), { setting: 'SSL_CERT', message: /not a PEM certificate/ });
});
