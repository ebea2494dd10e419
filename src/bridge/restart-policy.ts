const MINUTE_MS = 60_000;

export interface BackoffOptions {
  /** First delay (1 s); doubled for each failure in a row. */
  readonly baseMs: number;
  /** Longest delay (30 s). */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1_000, maxMs: 30_000 };

/**
 * When to restart a stream's ffmpeg: after 1 s, 2 s, 4 s … at most 30 s, with at most
 * BRIDGE_MAX_RESTARTS restarts within any minute; past that, give up. A run that lasted a
 * minute or more was healthy: the next restart waits the shortest delay again.
 */
export class RestartPolicy {
  private granted: number[] = [];
  private failuresInARow = 0;

  constructor(
    readonly maxPerMinute: number,
    private readonly backoff: BackoffOptions = DEFAULT_BACKOFF,
    private readonly now: () => number = Date.now,
  ) {}

  /** Restarts granted within the last minute. */
  get recentRestarts(): number {
    const now = this.now();
    return this.granted.filter((time) => now - time < MINUTE_MS).length;
  }

  /** ffmpeg stopped after running `ranMs`: the delay before starting it again, or undefined to give up. */
  next(ranMs: number): number | undefined {
    const now = this.now();
    this.granted = this.granted.filter((time) => now - time < MINUTE_MS);
    if (this.granted.length >= this.maxPerMinute) return undefined;
    if (ranMs >= MINUTE_MS) this.failuresInARow = 0;
    const delay = Math.min(this.backoff.baseMs * 2 ** this.failuresInARow, this.backoff.maxMs);
    this.failuresInARow++;
    this.granted.push(now);
    return delay;
  }
}
