import type uWS from 'uWebSockets.js';
import type { ClientSocket } from '../channels/transport.js';

/**
 * Adapts a uWebSockets.js socket to the channels' ClientSocket. uWS throws on any use of a
 * closed socket, so every call is guarded by the closed flag set by the close handler.
 */
export class UwsClientSocket implements ClientSocket {
  private closed = false;

  constructor(private readonly ws: uWS.WebSocket<unknown>) {}

  sendBinary(data: Uint8Array): void {
    if (!this.closed) this.ws.send(data, true);
  }

  sendText(text: string): void {
    if (!this.closed) this.ws.send(text, false);
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    // end() queues the close frame after buffered data and calls the close handler at once.
    this.ws.end(code, reason);
  }

  /** The close handler ran: the socket must not be touched again. */
  markClosed(): void {
    this.closed = true;
  }
}
