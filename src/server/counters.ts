import type { Receiver } from '../channels/receiver.js';
import type { Publisher } from '../channels/channel.js';

export interface Traffic {
  bytesIn: number;
  messagesIn: number;
  bytesOut: number;
  messagesOut: number;
}

/**
 * Server-wide counters for the stats API and metrics. The hot path only bumps per-session
 * numbers; totals fold in ended sessions here when they close, and live ones when read.
 */
export class ServerCounters {
  readonly startedAt = Date.now();
  /** Refused upgrades by rejection code (e.g. ALREADY_PUBLISHING). */
  readonly refusedUpgrades = new Map<string, number>();
  publishesAccepted = 0;
  /** Receivers closed with "Receiver too slow". */
  receiversClosedSlow = 0;
  private readonly ended: Traffic & { skips: number } = { bytesIn: 0, messagesIn: 0, bytesOut: 0, messagesOut: 0, skips: 0 };

  refused(code: string): void {
    this.refusedUpgrades.set(code, (this.refusedUpgrades.get(code) ?? 0) + 1);
  }

  publisherEnded(publisher: Publisher): void {
    this.ended.bytesIn += publisher.bytesIn;
    this.ended.messagesIn += publisher.chunksIn;
  }

  receiverEnded(receiver: Receiver): void {
    this.ended.bytesOut += receiver.bytesSent;
    this.ended.messagesOut += receiver.messagesSent;
    this.ended.skips += receiver.skips;
  }

  /** Totals since start: ended sessions plus the live ones given. */
  traffic(publishers: Iterable<Publisher>, receivers: Iterable<Receiver>): Traffic & { skips: number } {
    const total = { ...this.ended };
    for (const publisher of publishers) {
      total.bytesIn += publisher.bytesIn;
      total.messagesIn += publisher.chunksIn;
    }
    for (const receiver of receivers) {
      total.bytesOut += receiver.bytesSent;
      total.messagesOut += receiver.messagesSent;
      total.skips += receiver.skips;
    }
    return total;
  }
}
