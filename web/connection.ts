// The page's own small WebSocket client for the ws-stream-server protocol (PROTOCOL.md): stream
// URLs, the `h` heartbeat, `ERROR:` messages and what each close code means.

export type StreamKind = 'publish' | 'receive' | 'receive-clear-cache' | 'probe';

export const HEARTBEAT_MS = 20_000;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

export function isValidId(value: string): boolean {
  return ID_PATTERN.test(value);
}

export function streamUrl(channel: string, key: string, kind: StreamKind, base: Location | URL = location): string {
  const scheme = base.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${base.host}/${channel}/${key}/${kind}`;
}

export interface Closed {
  readonly code: number;
  readonly reason: string;
  /** The WebSocket handshake had completed. */
  readonly opened: boolean;
  /** The `ERROR: …` text the server sent before closing, if any. */
  readonly serverError: string | undefined;
  /** A sentence for the user. */
  readonly explanation: string;
  /** The close was an error (not a normal end). */
  readonly failed: boolean;
}

export interface SocketHandlers {
  open?(): void;
  binary?(data: ArrayBuffer): void;
  serverError?(text: string): void;
  close?(closed: Closed): void;
}

/** One WebSocket to the server: binary in ArrayBuffers, heartbeat every 20 s, one `close` report. */
export class StreamSocket {
  private readonly socket: WebSocket;
  private readonly heartbeat: ReturnType<typeof setInterval>;
  private opened = false;
  private serverError: string | undefined;
  private closedByUs = false;
  private done = false;

  constructor(
    readonly url: string,
    private readonly handlers: SocketHandlers,
  ) {
    this.socket = new WebSocket(url);
    this.socket.binaryType = 'arraybuffer';
    this.heartbeat = setInterval(() => {
      if (this.socket.readyState === WebSocket.OPEN) this.socket.send('h');
    }, HEARTBEAT_MS);
    this.socket.onopen = () => {
      this.opened = true;
      this.handlers.open?.();
    };
    this.socket.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
      if (typeof event.data !== 'string') {
        this.handlers.binary?.(event.data);
      } else if (event.data.startsWith('ERROR:')) {
        this.serverError = event.data;
        this.handlers.serverError?.(event.data);
      }
      // `h` and any other text: nothing to do (the server's heartbeat keeps the link alive).
    };
    // A failed connection fires `error` then `close` (1006); the close tells everything.
    this.socket.onerror = () => undefined;
    this.socket.onclose = (event) => this.finish(event.code, event.reason);
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  send(data: Blob | ArrayBuffer | ArrayBufferView | string): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(data as Blob);
  }

  /** Closes without reporting it as an error. */
  close(): void {
    this.closedByUs = true;
    if (this.socket.readyState === WebSocket.CONNECTING || this.socket.readyState === WebSocket.OPEN) this.socket.close(1000);
    this.finish(1000, 'Closed by you');
  }

  private finish(code: number, reason: string): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.heartbeat);
    const failed = !this.closedByUs && (this.serverError !== undefined || code !== 1000);
    this.handlers.close?.({
      code,
      reason,
      opened: this.opened,
      serverError: this.serverError,
      explanation: this.closedByUs ? 'Stopped.' : explainClose(code, reason, this.opened, this.serverError),
      failed,
    });
  }
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
    case 1000:
      return reason === 'Publisher ended' ? 'The publisher ended the stream.' : `${said}Connection closed (${detail}).`;
    case 1001:
      return `The server is shutting down (${detail}).`;
    case 1006:
      return `${said}The connection was lost without a close frame (${detail}): network trouble or a proxy.`;
    case 1008:
      return `${said}Refused (${detail}): ${reason === 'Stream killed' ? 'an operator or the coordinator ended the stream.' : 'the key does not match the publisher’s.'}`;
    case 1009:
      return `${said}A message was too big for the server (${detail}): use a shorter timeslice or a lower bitrate.`;
    case 1013:
      return `${said}This connection could not keep up with the stream (${detail}); reconnecting may work.`;
    case 4000:
      return `${said}Closed as idle (${detail}).`;
    default:
      return `${said}Connection closed (${detail}).`;
  }
}
