// The page's connections go through the SDK (src/client): its Connection speaks the protocol
// (heartbeat, `ERROR:` texts, close codes as StreamClientError). What is here is only the
// page's side: its URLs and the sentences it shows for each way a connection ends.

import type { StreamClientError } from '../src/client/errors.js';
import { Connection, streamUrl } from '../src/client/session.js';
import { CloseCode, Closures, SessionErrors } from '../src/protocol/errors.js';
import { isValidId } from '../src/protocol/route.js';
import type { ConnectionKind } from '../src/protocol/route.js';

/** Channel and key length the page accepts (the server's default ID_MAX_LENGTH). */
const ID_MAX_LENGTH = 128;

export function isValidStreamId(value: string): boolean {
  return isValidId(value, ID_MAX_LENGTH);
}

/** The stream URL on the server that served this page (`ws:` or `wss:`). */
export function pageStreamUrl(channel: string, key: string, kind: ConnectionKind): string {
  return streamUrl(location.origin, channel, key, kind);
}

export interface Closed {
  readonly code: number;
  /** The WebSocket handshake had completed. */
  readonly opened: boolean;
  /** The `ERROR: …` text the server sent before closing, if any. */
  readonly serverError: string | undefined;
  /** A sentence for the user. */
  readonly explanation: string;
  /** The close was an error (not a normal end, nor one the page asked for). */
  readonly failed: boolean;
}

export interface LinkHandlers {
  open?(): void;
  binary?(data: Uint8Array): void;
  /** Once, last. */
  close?(closed: Closed): void;
}

/** One connection of the page; close() reports at once, as `Stopped.`. */
export class StreamLink {
  private readonly connection: Connection;
  private opened = false;
  private done = false;

  constructor(url: string, private readonly handlers: LinkHandlers) {
    this.connection = new Connection(url, {}, {
      open: () => {
        this.opened = true;
        handlers.open?.();
      },
      binary: (data) => handlers.binary?.(data),
      closed: (error, info) => this.finish(describeClose(error, info.code, info.reason, info.opened)),
    });
  }

  get isOpen(): boolean {
    return this.opened && !this.done;
  }

  get bufferedAmount(): number {
    return this.connection.socket?.bufferedAmount ?? 0;
  }

  send(data: Uint8Array): void {
    if (this.isOpen) this.connection.socket?.send(data);
  }

  close(): void {
    this.connection.close(CloseCode.NORMAL);
    this.finish({ code: CloseCode.NORMAL, opened: this.opened, serverError: undefined, explanation: 'Stopped.', failed: false });
  }

  private finish(closed: Closed): void {
    if (this.done) return;
    this.done = true;
    this.handlers.close?.(closed);
  }
}

/** The `ERROR:` text behind an error, when the error was made from one (not from a close code alone). */
function serverText(error: StreamClientError | undefined): string | undefined {
  if (error === undefined) return undefined;
  const known = Object.values(SessionErrors).find((sessionError) => sessionError.code === error.code);
  return known !== undefined && known.message === `ERROR: ${error.message}` ? known.message : undefined;
}

function describeClose(error: StreamClientError | undefined, code: number, reason: string, opened: boolean): Closed {
  const serverError = serverText(error);
  return { code, opened, serverError, explanation: explainClose(code, reason, opened, serverError), failed: error !== undefined };
}

/** What a close means, in the words of PROTOCOL.md. */
export function explainClose(code: number, reason: string, opened: boolean, serverError?: string): string {
  const said = serverError === undefined ? '' : `The server said “${serverError}”. `;
  if (!opened) {
    return (
      'The server refused the connection. Browsers do not show why; the usual reasons are: the channel is ' +
      'already being published (403), the key is not allowed to publish (403), this address is not whitelisted ' +
      'to play (403), too many connections from this address (429), or the server is unreachable or shutting down.'
    );
  }
  const detail = reason === '' ? `code ${code}` : `code ${code}, “${reason}”`;
  switch (code) {
    case CloseCode.NORMAL:
      return reason === Closures.PUBLISHER_ENDED.closeReason ? 'The publisher ended the stream.' : `${said}Connection closed (${detail}).`;
    case CloseCode.GOING_AWAY:
      return `The server is shutting down (${detail}).`;
    case 1006:
      return `${said}The connection was lost without a close frame (${detail}): network trouble or a proxy.`;
    case CloseCode.POLICY_VIOLATION:
      return `${said}Refused (${detail}): ${reason === Closures.KILLED.closeReason ? 'an operator or the coordinator ended the stream.' : 'the key does not match the publisher’s.'}`;
    case CloseCode.MESSAGE_TOO_BIG:
      return `${said}A message was too big for the server (${detail}): use a shorter timeslice or a lower bitrate.`;
    case CloseCode.TRY_AGAIN_LATER:
      return `${said}This connection could not keep up with the stream (${detail}); reconnecting may work.`;
    case CloseCode.IDLE_TIMEOUT:
      return `${said}Closed as idle (${detail}).`;
    default:
      return `${said}Connection closed (${detail}).`;
  }
}
