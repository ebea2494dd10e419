import type { IpList } from '../config/ip-list.js';

/** A held connection slot; releasing twice is harmless, so every exit path can release. */
export interface ConnectionSlot {
  release(): void;
}

const EXEMPT_SLOT: ConnectionSlot = { release: () => {} };

/** Counts concurrent connections per IP. `limit` 0 means no limit; exempt IPs are not counted. */
export class IpConnectionLimiter {
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly limit: number,
    private readonly exempt: IpList,
  ) {}

  /** A slot for one more connection from `ip`, or undefined when `ip` is at its limit. */
  acquire(ip: string): ConnectionSlot | undefined {
    if (this.limit === 0 || this.exempt.includes(ip)) return EXEMPT_SLOT;
    const count = this.counts.get(ip) ?? 0;
    if (count >= this.limit) return undefined;
    this.counts.set(ip, count + 1);
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        const remaining = (this.counts.get(ip) ?? 1) - 1;
        if (remaining <= 0) this.counts.delete(ip);
        else this.counts.set(ip, remaining);
      },
    };
  }

  /** Connections currently counted for `ip`. */
  count(ip: string): number {
    return this.counts.get(ip) ?? 0;
  }
}
