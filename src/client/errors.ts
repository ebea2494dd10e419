// Every way a connection can fail, as one error class with a code from one table. The server's
// own answers (src/protocol/errors.ts) are matched here, not copied: HTTP refusals by body and
// status, `ERROR:` texts by message, close frames by code and reason.
import { CloseCode, Closures, Rejections, SessionErrors } from '../protocol/errors.js';
import type { UpgradeRejection } from '../protocol/errors.js';

/**
 * What kind of failure it is. `refused`: the server said no (key, channel, whitelist, per-IP
 * limit); `limit`: a size or speed limit ended the stream; `connection`: the network or the
 * server went away (retryable); `usage`: the caller's mistake.
 */
export type ErrorCategory = 'refused' | 'limit' | 'connection' | 'usage';

/** The single table of client error codes. */
export const ClientErrorCodes = {
  // HTTP refusals of the upgrade (Rejections in src/protocol/errors.ts).
  INVALID_CHANNEL: 'refused',
  INVALID_KEY: 'refused',
  INVALID_KIND: 'refused',
  NOT_FOUND: 'refused',
  ALREADY_PUBLISHING: 'refused',
  PUBLISH_DENIED: 'refused',
  NOT_WHITELISTED: 'refused',
  TOO_MANY_REQUESTS: 'refused',
  BAD_HANDSHAKE: 'refused',
  UPGRADE_REQUIRED: 'refused',
  METHOD_NOT_ALLOWED: 'refused',
  SHUTTING_DOWN: 'connection',
  PUBLISH_ON_EDGE: 'refused',
  // `ERROR:` texts and close frames of an open connection (SessionErrors, Closures).
  INVALID_STREAMING_KEY: 'refused',
  STREAM_KILLED: 'refused',
  RECEIVER_TOO_SLOW: 'limit',
  MESSAGE_TOO_BIG: 'limit',
  IDLE_TIMEOUT: 'connection',
  // Client side.
  /** The connection could not be opened (in browsers this includes every HTTP refusal). */
  CONNECTION_FAILED: 'connection',
  /** An open connection ended without a close frame the protocol defines. */
  CONNECTION_LOST: 'connection',
  /** A publisher's write would go past its hard buffer limit (`maxBuffered`). */
  BUFFER_FULL: 'limit',
  INVALID_URL: 'usage',
  /** Used after close() or end(). */
  CLOSED: 'usage',
} as const satisfies Record<keyof typeof Rejections | keyof typeof SessionErrors, ErrorCategory> & Record<string, ErrorCategory>;

export type ClientErrorCode = keyof typeof ClientErrorCodes;

export interface ClientErrorDetails {
  /** HTTP status of a refused upgrade (Node only: browsers do not expose it). */
  readonly status?: number;
  readonly closeCode?: number;
  readonly closeReason?: string;
  readonly cause?: unknown;
}

export class StreamClientError extends Error {
  readonly category: ErrorCategory;
  readonly status?: number;
  readonly closeCode?: number;
  readonly closeReason?: string;

  constructor(
    readonly code: ClientErrorCode,
    message: string,
    details: ClientErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'StreamClientError';
    this.category = ClientErrorCodes[code];
    if (details.status !== undefined) this.status = details.status;
    if (details.closeCode !== undefined) this.closeCode = details.closeCode;
    if (details.closeReason !== undefined) this.closeReason = details.closeReason;
  }

  /** Connection failures may go away by trying again; refusals and limits will not. */
  get retryable(): boolean {
    return this.category === 'connection';
  }
}

const rejections: readonly UpgradeRejection[] = Object.values(Rejections);

/** A refused upgrade: matched by body (the Go server's exact texts), then by status alone. */
export function errorFromHttp(status: number, body: string): StreamClientError {
  const text = body.trim();
  const match =
    rejections.find((rejection) => rejection.status === status && rejection.body === text) ??
    (status === 429 ? Rejections.TOO_MANY_REQUESTS : status === 503 ? Rejections.SHUTTING_DOWN : undefined);
  const message = `${text === '' ? 'no reason given' : text} (HTTP ${status})`;
  return match === undefined
    ? new StreamClientError('CONNECTION_FAILED', `unexpected answer: ${message}`, { status })
    : new StreamClientError(match.code as ClientErrorCode, message, { status });
}

/** The error an `ERROR:` text announces, or undefined for an unknown text. */
export function errorFromText(text: string): StreamClientError | undefined {
  const match = Object.values(SessionErrors).find((error) => error.message === text);
  return match && new StreamClientError(match.code as ClientErrorCode, text.slice('ERROR: '.length), { closeCode: match.closeCode, closeReason: match.closeReason });
}

/**
 * How a connection ended, as an error; undefined for a normal end (1000). `opened` tells a
 * failed handshake (CONNECTION_FAILED) from a dropped connection (CONNECTION_LOST).
 */
export function errorFromClose(code: number, reason: string, opened: boolean): StreamClientError | undefined {
  const details = { closeCode: code, closeReason: reason };
  const said = reason === '' ? `close code ${code}` : `${reason} (close code ${code})`;
  switch (code) {
    case CloseCode.NORMAL:
      return undefined;
    case CloseCode.GOING_AWAY:
      return new StreamClientError('SHUTTING_DOWN', said, details);
    case CloseCode.POLICY_VIOLATION:
      return reason === Closures.KILLED.closeReason
        ? new StreamClientError('STREAM_KILLED', said, details)
        : new StreamClientError('INVALID_STREAMING_KEY', said, details);
    case CloseCode.MESSAGE_TOO_BIG:
      return new StreamClientError('MESSAGE_TOO_BIG', said, details);
    case CloseCode.TRY_AGAIN_LATER:
      return new StreamClientError('RECEIVER_TOO_SLOW', said, details);
    case CloseCode.IDLE_TIMEOUT:
      return new StreamClientError('IDLE_TIMEOUT', said, details);
    default:
      return opened
        ? new StreamClientError('CONNECTION_LOST', `connection lost: ${said}`, details)
        : // Browsers report every failed handshake, HTTP refusals included, as 1006 and nothing else.
          new StreamClientError('CONNECTION_FAILED', `${said} (in a browser this may also be a refusal)`, details);
  }
}
