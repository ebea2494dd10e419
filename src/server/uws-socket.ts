import type uWS from 'uWebSockets.js';
import type { ClientSocket } from '../channels/transport.js';

/**
 * Adapts a uWebSockets.js socket to the channels' ClientSocket. uWS throws on any use of a
 * closed socket, so every call is guarded by the closed flag set by the close handler.
 */
export class UwsClientSocket implements ClientSocket {
  private closed = false;
  private drainPending = false;

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

  /**
   * The library fired `drain`: runs `flush` just after, outside its writable callback. A large
   * send made inside that callback on an empty socket buffer is written directly and, when the
   * kernel takes only part of it, the rest is buffered without the failed write being noted.
   * Unless another send follows in the same callback (the receiver's socket share often lets
   * no further chunk in), the library then stops polling the socket for writability: no
   * `drain` ever comes again and the receiver stalls. Outside the callback the same partial
   * write keeps the socket polled.
   */
  drained(flush: () => void): void {
    if (this.drainPending) return;
    this.drainPending = true;
    setImmediate(() => {
      this.drainPending = false;
      if (!this.closed) flush();
    });
  }

  /** The close handler ran: the socket must not be touched again. */
  markClosed(): void {
    this.closed = true;
  }
}
