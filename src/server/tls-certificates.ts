import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { watch } from 'chokidar';
import type { FSWatcher } from 'chokidar';

export interface TlsFiles {
  /** SSL_CERT: the certificate, followed by its chain (fullchain.pem). */
  readonly certFile: string;
  /** SSL_KEY: the private key. */
  readonly keyFile: string;
  /** SSL_KEY_PASSPHRASE, empty for an unencrypted key. */
  readonly passphrase: string;
}

/** A certificate and key that were read and checked together. */
export interface CertificatePair {
  /** SHA-256 fingerprint of the leaf certificate, `AA:BB:…` (as node's X509Certificate gives it). */
  readonly fingerprint: string;
  readonly validTo: string;
  /** Digest of both files' contents: tells a real change from a touch. */
  readonly contentHash: string;
}

/** A bad pair; `setting` names the file at fault (SSL_CERT or SSL_KEY). */
export class CertificateError extends Error {
  constructor(
    readonly setting: 'SSL_CERT' | 'SSL_KEY',
    message: string,
  ) {
    super(message);
    this.name = 'CertificateError';
  }
}

/** Reads and checks a pair: both parse, the key opens with the passphrase, and they match. */
export function checkPair(files: TlsFiles, certPem: Buffer, keyPem: Buffer): CertificatePair {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch (error) {
    throw new CertificateError('SSL_CERT', `SSL_CERT ${files.certFile} is not a PEM certificate (${(error as Error).message})`);
  }
  let key;
  try {
    key = createPrivateKey(files.passphrase === '' ? keyPem : { key: keyPem, passphrase: files.passphrase });
  } catch (error) {
    throw new CertificateError('SSL_KEY', `SSL_KEY ${files.keyFile} is not a usable PEM private key (${(error as Error).message})`);
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new CertificateError('SSL_KEY', `SSL_KEY ${files.keyFile} does not belong to the certificate in SSL_CERT ${files.certFile}`);
  }
  const contentHash = createHash('sha256').update(certPem).update('\0').update(keyPem).digest('hex');
  return { fingerprint: certificate.fingerprint256, validTo: certificate.validTo, contentHash };
}

function readOrThrow(setting: 'SSL_CERT' | 'SSL_KEY', path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new CertificateError(setting, `${setting} ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

/** Synchronous load for startup, where a bad pair must stop the server. */
export function loadPair(files: TlsFiles): CertificatePair {
  return checkPair(files, readOrThrow('SSL_CERT', files.certFile), readOrThrow('SSL_KEY', files.keyFile));
}

async function readPair(files: TlsFiles): Promise<CertificatePair> {
  const read = (setting: 'SSL_CERT' | 'SSL_KEY', path: string): Promise<Buffer> =>
    readFile(path).catch((error: NodeJS.ErrnoException) => {
      throw new CertificateError(setting, `${setting} ${path} cannot be read (${error.code ?? error.message})`);
    });
  const [cert, key] = await Promise.all([read('SSL_CERT', files.certFile), read('SSL_KEY', files.keyFile)]);
  return checkPair(files, cert, key);
}

/** How long to wait after a file event before reading: the key and certificate change separately. */
const SETTLE_MS = 150;

/**
 * Watches the certificate and key (chokidar events plus a periodic re-check) and emits
 * `change` with a new valid pair, or `invalid` with the error while the old pair stays in force.
 */
export class CertificateWatcher extends EventEmitter<{ change: [CertificatePair]; invalid: [CertificateError] }> {
  private watcher: FSWatcher | undefined;
  private interval: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private checking = false;
  private recheck = false;
  /** Hash of the last pair that failed, so a periodic check logs a broken pair once, not every minute. */
  private lastFailedHash = '';

  constructor(
    private readonly files: TlsFiles,
    private current: CertificatePair,
    private readonly checkIntervalMs: number,
  ) {
    super();
  }

  get pair(): CertificatePair {
    return this.current;
  }

  async start(): Promise<void> {
    this.watcher = watch([this.files.certFile, this.files.keyFile], { ignoreInitial: true });
    for (const event of ['add', 'change', 'unlink'] as const) this.watcher.on(event, () => this.schedule());
    this.interval = setInterval(() => void this.check(), this.checkIntervalMs);
    this.interval.unref();
    await new Promise<void>((resolve) => this.watcher!.once('ready', resolve));
  }

  async close(): Promise<void> {
    clearInterval(this.interval);
    clearTimeout(this.settleTimer);
    await this.watcher?.close();
  }

  /** Re-reads both files now; resolves once the outcome has been emitted. */
  async check(): Promise<void> {
    if (this.checking) {
      this.recheck = true;
      return;
    }
    this.checking = true;
    try {
      const pair = await readPair(this.files);
      if (pair.contentHash !== this.current.contentHash) {
        this.current = pair;
        this.lastFailedHash = '';
        this.emit('change', pair);
      }
    } catch (error) {
      const failure = error instanceof CertificateError ? error : new CertificateError('SSL_CERT', String(error));
      const hash = await this.filesHash();
      if (hash !== this.lastFailedHash) {
        this.lastFailedHash = hash;
        this.emit('invalid', failure);
      }
    } finally {
      this.checking = false;
      if (this.recheck) {
        this.recheck = false;
        void this.check();
      }
    }
  }

  private schedule(): void {
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => void this.check(), SETTLE_MS);
  }

  private async filesHash(): Promise<string> {
    const hash = createHash('sha256');
    for (const path of [this.files.certFile, this.files.keyFile]) {
      hash.update(await readFile(path).catch(() => Buffer.from('unreadable')));
      hash.update('\0');
    }
    return hash.digest('hex');
  }
}
