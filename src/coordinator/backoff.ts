/** Exponential backoff with full jitter: attempt n waits a random time in [min, min(max, min·2ⁿ)]. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const ceiling = Math.min(this.maxMs, this.minMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return this.minMs + (ceiling - this.minMs) * this.random();
  }

  reset(): void {
    this.attempt = 0;
  }
}
