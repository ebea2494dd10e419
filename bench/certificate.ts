/**
 * A self-signed certificate for 127.0.0.1/localhost, made by the real openssl: the wss
 * scenario's server certificate (and the tests' one, test/helpers/certificates.ts).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

/** Writes `<name>.crt` and `<name>.key` (P-256, 2 days) into dir; a passphrase encrypts the key. */
export async function makeSelfSignedCertificate(dir: string, name: string, passphrase = ''): Promise<CertificateFiles> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    ...(passphrase === '' ? ['-nodes'] : ['-passout', `pass:${passphrase}`]),
    '-keyout', keyFile, '-out', certFile, '-days', '2',
    '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return { certFile, keyFile };
}
