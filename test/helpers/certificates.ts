import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificate {
  certFile: string;
  keyFile: string;
  fingerprint: string;
}

/** A self-signed certificate for 127.0.0.1/localhost, made by the real openssl. */
export async function makeCertificate(dir: string, name: string, passphrase = ''): Promise<TestCertificate> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    ...(passphrase === '' ? ['-nodes'] : ['-passout', `pass:${passphrase}`]),
    '-keyout', keyFile, '-out', certFile, '-days', '2',
    '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  const fingerprint = new X509Certificate(await readFile(certFile)).fingerprint256;
  return { certFile, keyFile, fingerprint };
}

/** The SHA-256 fingerprint of the certificate a TLS server on 127.0.0.1:port presents now. */
export async function presentedFingerprint(port: number): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return socket.getPeerCertificate().fingerprint256;
  } finally {
    socket.destroy();
  }
}
