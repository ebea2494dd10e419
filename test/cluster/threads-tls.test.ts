// TLS with worker threads: the main thread watches the certificate files; a new valid pair is
// taken by every thread, a broken one by none.
import { once } from 'node:events';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { makeCertificate, presentedFingerprint } from '../helpers/certificates.js';
import { freePort } from '../helpers/ports.js';
import { startThreaded } from './helpers.js';

/** Fingerprints presented on `count` new connections to the shared TLS port: the kernel spreads them over the threads. */
async function presented(port: number, count = 24): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) seen.add(await presentedFingerprint(port));
  return seen;
}

t.test('a certificate reload reaches every thread; a broken pair keeps the old one everywhere', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wss-threads-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = await makeCertificate(dir, 'first');
  const sslPort = await freePort();
  const { app } = await startThreaded(t, 3, { sslCert: first.certFile, sslKey: first.keyFile, sslPort: String(sslPort), sslCheckReloadSeconds: '0.2' });
  const cluster = app.cluster!;
  t.same(await presented(sslPort), new Set([first.fingerprint]), 'every thread presents the first certificate');

  const next = await makeCertificate(dir, 'next');
  const reloaded = once(cluster, 'certificateReloaded');
  await rename(next.keyFile, first.keyFile);
  await rename(next.certFile, first.certFile);
  await reloaded;
  t.same(await presented(sslPort), new Set([next.fingerprint]), 'after the reload, every connection (any thread) gets the new one');

  const rejected = once(cluster, 'certificateRejected');
  await writeFile(first.certFile, '-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n');
  await rejected;
  t.same(await presented(sslPort), new Set([next.fingerprint]), 'a broken pair changes nothing on any thread');
});
