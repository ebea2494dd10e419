/**
 * What the budget may take from a cache, in the order it tries:
 * - `opaque`: an opaque FIFO's oldest bytes beyond OPAQUE_FLOOR_BYTES (and its last message);
 * - `older-gops`: a recognised container's groups older than the last one whose keyframe is
 *   complete (the pinned init and that group stay: a late joiner still starts on a keyframe);
 * - `opaque-floor`: an opaque FIFO's oldest bytes down to its last message.
 */
export type TrimTier = 'opaque' | 'older-gops' | 'opaque-floor';
export const TRIM_TIERS: readonly TrimTier[] = ['opaque', 'older-gops', 'opaque-floor'];

/** An opaque stream keeps this much when other caches still hold more than the minimum. */
export const OPAQUE_FLOOR_BYTES = 256 * 1024;
/** Over the limit, the budget trims down to this fraction of it, so trims are rare (amortised). */
export const LOW_WATER_FRACTION = 0.875;

/** A cache the budget can trim. */
export interface BudgetMember {
  /** Bytes `release(tier, …)` could free. */
  surplus(tier: TrimTier): number;
  /** Frees about `bytes` of the oldest bytes the tier allows (whole chunks or groups), then reports its size. */
  release(tier: TrimTier, bytes: number): void;
}

/** One cache's share of the budget: the cache reports its size after every change (O(1)). */
export class BudgetAccount {
  /** The size last reported. */
  bytes = 0;
  /** In the budget's member set: exactly while `bytes > 0`. */
  listed = false;

  constructor(
    private readonly budget: CacheBudget,
    readonly member: BudgetMember,
  ) {}

  update(size: number): void {
    const delta = size - this.bytes;
    if (delta !== 0) {
      this.bytes = size;
      this.budget.change(this, delta);
    }
  }
}

/**
 * CACHE_MEMORY_LIMIT_MB: the bytes held by all channels' caches together. Every cache reports
 * its size changes (constant time per chunk); only when the total passes the limit does the
 * budget look at the caches, and it then trims down to a low-water mark below the limit, taking
 * first from the caches that hold the most beyond what a late joiner needs (see TrimTier).
 * Caches that end or stop caching report 0 and leave the budget.
 */
export class CacheBudget {
  private readonly members = new Set<BudgetAccount>();
  private totalBytes = 0;
  private trimming = false;
  /**
   * The total that starts a trim: the limit, or above it while the caches' minimums alone exceed
   * it (so a budget that cannot be met does not scan every cache on every chunk).
   */
  private trimAt: number;
  /** Trims run so far, bytes they freed (for the benchmarks and the logs). */
  trims = 0;
  trimmedBytes = 0;

  /** `limitBytes` 0: no limit (the total is still counted). */
  constructor(readonly limitBytes: number) {
    this.trimAt = limitBytes > 0 ? limitBytes : Infinity;
  }

  /** Bytes held by all caches, as last reported. */
  get total(): number {
    return this.totalBytes;
  }

  /** Caches holding bytes. */
  get count(): number {
    return this.members.size;
  }

  open(member: BudgetMember): BudgetAccount {
    return new BudgetAccount(this, member);
  }

  /** Called by BudgetAccount.update. */
  change(account: BudgetAccount, delta: number): void {
    this.totalBytes += delta;
    if (account.bytes > 0) {
      if (!account.listed) {
        account.listed = true;
        this.members.add(account);
      }
    } else if (account.listed) {
      account.listed = false;
      this.members.delete(account);
    }
    if (delta < 0) {
      if (this.totalBytes <= this.limitBytes) this.trimAt = this.limitBytes > 0 ? this.limitBytes : Infinity;
    } else if (this.totalBytes > this.trimAt && !this.trimming) {
      this.trim();
    }
  }

  /** Trims to the low-water mark, tier by tier, evening out the largest surpluses first. */
  trim(): void {
    if (this.limitBytes <= 0) return;
    this.trimming = true;
    const before = this.totalBytes;
    const lowWater = Math.floor(this.limitBytes * LOW_WATER_FRACTION);
    try {
      for (const tier of TRIM_TIERS) {
        if (this.totalBytes <= lowWater) break;
        this.trimTier(tier, this.totalBytes - lowWater);
      }
    } finally {
      this.trimming = false;
    }
    this.trims++;
    this.trimmedBytes += Math.max(0, before - this.totalBytes);
    this.trimAt = Math.max(this.limitBytes, this.totalBytes + (this.limitBytes - lowWater));
  }

  /**
   * Frees about `need` bytes from the tier: every candidate is cut down to one common surplus
   * level (water-filling), so the caches holding the most lose the most and small ones keep theirs.
   */
  private trimTier(tier: TrimTier, need: number): void {
    const candidates: Array<{ account: BudgetAccount; surplus: number }> = [];
    let available = 0;
    for (const account of this.members) {
      const surplus = account.member.surplus(tier);
      if (surplus > 0) {
        candidates.push({ account, surplus });
        available += surplus;
      }
    }
    if (candidates.length === 0) return;
    const level = available <= need ? 0 : waterLevel(candidates.map((candidate) => candidate.surplus), need);
    for (const { account, surplus } of candidates) {
      if (surplus > level) account.member.release(tier, surplus - level);
    }
  }
}

/**
 * The level L such that cutting every surplus above L down to L frees at least `need`
 * (the surpluses sum to more than `need`).
 */
export function waterLevel(surpluses: number[], need: number): number {
  const sorted = [...surpluses].sort((a, b) => b - a);
  let above = 0;
  for (let k = 0; k < sorted.length; k++) {
    above += sorted[k]!;
    const next = sorted[k + 1] ?? 0;
    // Cutting the k+1 largest down to `next` frees above - (k+1)·next.
    if (above - (k + 1) * next >= need) return Math.max(next, Math.floor((above - need) / (k + 1)));
  }
  return 0;
}
