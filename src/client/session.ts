// What publishers and receivers share: the stream URL, one WebSocket connection with its
// heartbeat and `ERROR:` texts, and the reconnect backoff.
import { Backoff } from '../coordinator/backoff.js';
import { HEARTBEAT, isErrorMessage } from '../protocol/messages.js';
import { isValidId } from '../protocol/route.js';
import type { ConnectionKind } from '../protocol/route.js';
import { StreamClientError, errorFromClose, errorFromHttp, errorFromText } from './errors.js';
import { openTransport } from './transport.js';
import type { Transport, TransportClose, TransportOptions } from './transport.js';

export interface ReconnectOptions {
  /** First delay; each attempt doubles the ceiling, with full jitter. Default 500 ms. */
  readonly minDelayMs?: number;
  /** Largest delay. Default 10 s. */
  readonly maxDelayMs?: number;
  /** Attempts in a row before giving up. Default: no limit. */
  readonly maxAttempts?: number;
}

/** Reported by the `reconnecting` event. */
export interface ReconnectInfo {
  readonly attempt: number;
  readonly delayMs: number;
  /** Why the connection ended. */
  readonly error: StreamClientError;
}

export interface ConnectionOptions extends TransportOptions {
  /** How often to send the `h` heartbeat. Default 20 s (the server closes clients silent for 60 s). */
  readonly heartbeatMs?: number;
}

/** `ws://host:port/<channel>/<key>/<kind>`, with the channel and key checked. */
export function streamUrl(server: string | URL, channel: string, key: string, kind: ConnectionKind): string {
  const url = new URL(server);
  url.pathname = `/${channel}/${key}`;
  return resolveStreamUrl(url, [kind], kind);
}

/**
 * Checks a stream URL and completes it: `http(s):` becomes `ws(s):`, and a path of only
 * `/<channel>/<key>` gets `/<kind>` appended. Throws INVALID_URL.
 */
export function resolveStreamUrl(input: string | URL, kinds: readonly ConnectionKind[], defaultKind: ConnectionKind): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new StreamClientError('INVALID_URL', `not a URL: ${String(input)}`);
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new StreamClientError('INVALID_URL', `${url.href}: not a ws:// or wss:// URL`);
  const parts = url.pathname.replace(/\/$/, '').split('/').slice(1);
  if (parts.length === 2) parts.push(defaultKind);
  const [channel = '', key = '', kind = ''] = parts;
  if (parts.length !== 3) throw new StreamClientError('INVALID_URL', `${url.href}: the path must be /<channel>/<key>[/<kind>]`);
  for (const [what, id] of [['channel', channel], ['key', key]] as const) {
    if (!isValidId(id, Number.MAX_SAFE_INTEGER)) throw new StreamClientError('INVALID_URL', `${url.href}: the ${what} may only have letters, digits, - and _`);
  }
  if (!(kinds as readonly string[]).includes(kind)) throw new StreamClientError('INVALID_URL', `${url.href}: expected a ${kinds.join(' or ')} URL`);
  url.pathname = `/${channel}/${key}/${kind}`;
  return url.href;
}

export interface ConnectionHandlers {
  open(): void;
  binary(data: Uint8Array): void;
  /** Once, last: error undefined for a normal close (1000, or one the client asked for). */
  closed(error: StreamClientError | undefined, info: TransportClose): void;
}

/** One WebSocket connection speaking the protocol: heartbeat out, `ERROR:` texts in. */
export class Connection {
  private transport: Transport | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private errorText: StreamClientError | undefined;
  private closeRequest: { code: number; reason: string } | undefined;
  private userClosed = false;

  constructor(url: string, options: ConnectionOptions, private readonly handlers: ConnectionHandlers) {
    openTransport(
      url,
      { open: () => this.onOpen(options.heartbeatMs ?? 20_000), message: (data) => this.onMessage(data), close: (info) => this.onClose(info) },
      options,
    ).then(
      (transport) => {
        this.transport = transport;
        if (this.closeRequest !== undefined) transport.close(this.closeRequest.code, this.closeRequest.reason);
      },
      (cause: unknown) => {
        const message = cause instanceof Error ? cause.message : String(cause);
        handlers.closed(new StreamClientError('CONNECTION_FAILED', `cannot open a WebSocket: ${message}`, { cause }), { code: 1006, reason: '', opened: false });
      },
    );
  }

  /** Undefined until the WebSocket implementation is loaded. */
  get socket(): Transport | undefined {
    return this.transport;
  }

  /** Closes; the `closed` handler reports no error for it. */
  close(code = 1000, reason = ''): void {
    this.userClosed = true;
    this.closeRequest = { code, reason };
    this.transport?.close(code, reason);
  }

  private onOpen(heartbeatMs: number): void {
    const beat = setInterval(() => this.transport?.send(HEARTBEAT), heartbeatMs);
    (beat as { unref?: () => void }).unref?.();
    this.heartbeat = beat;
    this.handlers.open();
  }

  private onMessage(data: Uint8Array | string): void {
    if (typeof data !== 'string') this.handlers.binary(data);
    else if (isErrorMessage(data)) this.errorText ??= errorFromText(data);
  }

  private onClose(info: TransportClose): void {
    clearInterval(this.heartbeat);
    let error: StreamClientError | undefined;
    if (info.rejection !== undefined) error = errorFromHttp(info.rejection.status, info.rejection.body);
    else if (this.errorText !== undefined) error = this.errorText;
    else if (!this.userClosed) error = errorFromClose(info.code, info.reason, info.opened);
    // The socket's own error says more than 1006 (a refused connection, a reset, a broken frame).
    if ((error?.code === 'CONNECTION_FAILED' || error?.code === 'CONNECTION_LOST') && info.error !== undefined && info.rejection === undefined) {
      const message = error.code === 'CONNECTION_LOST' ? `connection lost: ${info.error.message}` : info.error.message;
      error = new StreamClientError(error.code, message, { cause: info.error, closeCode: info.code });
    }
    this.handlers.closed(error, info);
  }
}

export function newBackoff(options: ReconnectOptions): Backoff {
  return new Backoff(options.minDelayMs ?? 500, options.maxDelayMs ?? 10_000);
}

/** A promise settled once through `settle` (later calls are ignored), with rejections marked handled. */
export function settleable(expose: (settle: (error?: StreamClientError) => void) => void): Promise<void> {
  const promise = new Promise<void>((resolve, reject) => expose((error) => (error === undefined ? resolve() : reject(error))));
  promise.catch(() => {});
  return promise;
}
