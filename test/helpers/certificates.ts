import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { makeSelfSignedCertificate } from '../../bench/certificate.js';

export interface TestCertificate {
  certFile: string;
  keyFile: string;
  fingerprint: string;
}

/** A self-signed certificate for 127.0.0.1/localhost, made by the real openssl. */
export async function makeCertificate(dir: string, name: string, passphrase = ''): Promise<TestCertificate> {
  const { certFile, keyFile } = await makeSelfSignedCertificate(dir, name, passphrase);
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
