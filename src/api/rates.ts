/**
 * Bitrates over a sliding window, computed when asked. A timer samples each counter about once
 * a second (off the hot path); `rate()` compares the current total with the oldest sample in
 * the window.
 */
export class RateWindow {
  private readonly samples: Array<{ time: number; total: number }> = [];

  constructor(private readonly windowMs: number) {}

  sample(time: number, total: number): void {
    this.samples.push({ time, total });
    while (this.samples.length > 2 && this.samples[1]!.time <= time - this.windowMs) this.samples.shift();
  }

  /** Units per second between the oldest sample in the window and (`time`, `total`); 0 without history. */
  rate(time: number, total: number): number {
    const oldest = this.samples[0];
    if (oldest === undefined || time - oldest.time < 200) return 0;
    return ((total - oldest.total) * 1000) / (time - oldest.time);
  }
}

/**
 * One RateWindow per key (plain data: a channel and its stream id, whatever thread the publisher
 * is on). `retain()` forgets the keys no longer sampled.
 */
export class RateTracker {
  private readonly windows = new Map<string, RateWindow>();

  constructor(private readonly windowMs = 5000) {}

  sample(key: string, total: number, time = Date.now()): void {
    let window = this.windows.get(key);
    if (window === undefined) {
      window = new RateWindow(this.windowMs);
      this.windows.set(key, window);
    }
    window.sample(time, total);
  }

  rate(key: string, total: number, time = Date.now()): number {
    return this.windows.get(key)?.rate(time, total) ?? 0;
  }

  /** Keeps only the windows of `keys` (the publishers still live). */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.windows.keys()) if (!keys.has(key)) this.windows.delete(key);
  }
}

/** The rate key of a publishing session. */
export const publisherKey = (channel: string, streamId: string): string => `${channel}\n${streamId}`;
