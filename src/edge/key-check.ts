import { Connection } from '../client/session.js';

/**
 * What the origin said about a key: `accepted` (it sent stream data to a probe with it),
 * `refused` (the wrong-key answer), or `unknown` (unreachable, refused the connection, or the
 * stream ended before it answered): ask again later.
 */
export type KeyVerdict = 'accepted' | 'refused' | 'unknown';

/**
 * Asks the origin whether a key may view a channel, with a short-lived upstream `probe`: the
 * origin answers it as it answers any viewer of that key (data, or `ERROR: Invalid streaming
 * key` and 1008). The edge needs no secret: the origin stays the only one deciding about keys.
 */
export class KeyCheck {
  private connection: Connection | undefined;
  private settled = false;

  constructor(url: string, heartbeatMs: number, private readonly done: (verdict: KeyVerdict, detail: string) => void) {
    const connection: Connection = new Connection(
      url,
      { heartbeatMs },
      {
        open: () => {},
        // The first message is the answer: close at once, the stream is not wanted here.
        binary: () => this.settle('accepted', 'data'),
        closed: (error) => {
          if (error?.code === 'INVALID_STREAMING_KEY') this.settle('refused', error.message);
          else this.settle('unknown', error?.message ?? 'closed before any data');
        },
      },
    );
    this.connection = connection;
  }

  /** Drops the check (nobody waits for its answer any more); `done` is not called. */
  cancel(): void {
    this.settled = true;
    this.closeConnection();
  }

  private settle(verdict: KeyVerdict, detail: string): void {
    if (this.settled) return;
    this.settled = true;
    this.closeConnection();
    this.done(verdict, detail);
  }

  private closeConnection(): void {
    const connection = this.connection;
    this.connection = undefined;
    connection?.close(1000);
  }
}
