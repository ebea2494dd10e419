import { Backoff } from '../coordinator/backoff.js';

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
  /** Without jitter: a bridge restart is one process, not a crowd reconnecting at once. */
  private readonly delays: Backoff;

  constructor(
    readonly maxPerMinute: number,
    backoff: BackoffOptions = DEFAULT_BACKOFF,
    private readonly now: () => number = Date.now,
  ) {
    this.delays = new Backoff(backoff.baseMs, backoff.maxMs, () => 1);
  }

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
    if (ranMs >= MINUTE_MS) this.delays.reset();
    this.granted.push(now);
    return this.delays.next();
  }
}
