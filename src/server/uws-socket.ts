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
   * The library fired `drain`: runs `flush` just after, outside its writable callback. A send
   * of 16 KiB or more made inside that callback on an empty socket buffer is written directly
   * and, when the kernel takes only part of it, the rest is buffered without the failed write
   * being noted, so the library stops polling the socket for writability: no further `drain`
   * ever comes and the receiver stalls. The same send made outside the callback keeps the
   * socket polled.
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
