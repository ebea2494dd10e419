/**
 * The one thing channels know about a client: a message socket. The server adapts
 * uWebSockets.js sockets to it; tests can drive channels without any network.
 */
export interface ClientSocket {
  /** Sends a BINARY message. `data` may be a view that is only valid during the call. */
  sendBinary(data: Uint8Array): void;
  sendText(text: string): void;
  /** Bytes accepted by `send*` but not yet written to the kernel. */
  bufferedAmount(): number;
  /** Sends a close frame after anything still buffered. Idempotent. */
  close(code: number, reason: string): void;
}

/** Who a session is, for logs and the stats API. */
export interface SessionInfo {
  readonly id: number;
  readonly ip: string;
  readonly channel: string;
  readonly key: string;
  /** A receiver already allowed to view (play token, play key): its key need not be the publisher's. */
  readonly viewGranted?: boolean;
}
