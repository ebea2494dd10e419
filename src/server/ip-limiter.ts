import ipaddr from 'ipaddr.js';
import type { IpList } from '../config/ip-list.js';

/** A held connection slot; releasing twice is harmless, so every exit path can release. */
export interface ConnectionSlot {
  release(): void;
}

const EXEMPT_SLOT: ConnectionSlot = { release: () => {} };

/** Where the per-IP counts live: a Map of this thread, or shared memory for every worker thread. */
export interface IpCounts {
  /** Counts one more connection from `ip` unless it already has `limit`; false then. */
  increment(ip: string, limit: number): boolean;
  decrement(ip: string): void;
  count(ip: string): number;
}

/** Counts concurrent connections per IP. `limit` 0 means no limit; exempt IPs are not counted. */
export class IpConnectionLimiter {
  constructor(
    private readonly limit: number,
    private readonly exempt: IpList,
    /** SharedIpCounts for a limit across worker threads. */
    private readonly counts: IpCounts = new LocalIpCounts(),
  ) {}

  /** A slot for one more connection from `ip`, or undefined when `ip` is at its limit. */
  acquire(ip: string): ConnectionSlot | undefined {
    if (this.limit === 0 || this.exempt.includes(ip)) return EXEMPT_SLOT;
    if (!this.counts.increment(ip, this.limit)) return undefined;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.counts.decrement(ip);
      },
    };
  }

  /** Connections currently counted for `ip`. */
  count(ip: string): number {
    return this.counts.count(ip);
  }
}

export class LocalIpCounts implements IpCounts {
  private readonly counts = new Map<string, number>();

  increment(ip: string, limit: number): boolean {
    const count = this.counts.get(ip) ?? 0;
    if (count >= limit) return false;
    this.counts.set(ip, count + 1);
    return true;
  }

  decrement(ip: string): void {
    const remaining = (this.counts.get(ip) ?? 1) - 1;
    if (remaining <= 0) this.counts.delete(ip);
    else this.counts.set(ip, remaining);
  }

  count(ip: string): number {
    return this.counts.get(ip) ?? 0;
  }
}

/** Int32 words per slot: the address (16 bytes, IPv4 as IPv4-mapped IPv6) and its count. */
const SLOT_WORDS = 5;
const COUNT = 4;
const LOCK = 0;

/**
 * Per-IP counts in a SharedArrayBuffer, so that every worker thread counts an address's
 * connections together (MAX_IP_CONCURRENT_CONNECTIONS is per server, not per thread). An
 * open-addressing table (linear probing, backward-shift deletion) behind one spin lock: each
 * operation holds it for a few probes. Addresses beyond `capacity` at once are not counted.
 */
export class SharedIpCounts implements IpCounts {
  private readonly words: Int32Array;
  private readonly capacity: number;

  /** `buffer`: from `SharedIpCounts.allocate()` in the main thread, passed to every worker. */
  constructor(readonly buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer);
    this.capacity = (this.words.length - 1) / SLOT_WORDS;
  }

  /** Room for `capacity` (a power of two) addresses connected at once: 20 bytes each. */
  static allocate(capacity = 1 << 16): SharedArrayBuffer {
    return new SharedArrayBuffer((1 + capacity * SLOT_WORDS) * 4);
  }

  increment(ip: string, limit: number): boolean {
    const key = addressWords(ip);
    return this.locked(() => {
      const slot = this.find(key);
      if (slot < 0) return true; // table full: not counted
      const count = this.words[slot + COUNT]!;
      if (count >= limit) return false;
      if (count === 0) this.words.set(key, slot);
      this.words[slot + COUNT] = count + 1;
      return true;
    });
  }

  decrement(ip: string): void {
    const key = addressWords(ip);
    this.locked(() => {
      const slot = this.find(key);
      if (slot < 0 || this.words[slot + COUNT] === 0) return;
      if (--this.words[slot + COUNT]! === 0) this.remove(slot);
    });
  }

  count(ip: string): number {
    const key = addressWords(ip);
    return this.locked(() => {
      const slot = this.find(key);
      return slot < 0 ? 0 : this.words[slot + COUNT]!;
    });
  }

  /** The slot (word index) holding `key`, or the empty one where it would go; -1 if full. */
  private find(key: Int32Array): number {
    let index = hash(key) & (this.capacity - 1);
    for (let probes = 0; probes < this.capacity; probes++) {
      const slot = 1 + index * SLOT_WORDS;
      if (this.words[slot + COUNT] === 0 || sameKey(this.words, slot, key)) return slot;
      index = (index + 1) & (this.capacity - 1);
    }
    return -1;
  }

  /** Empties `slot` and moves later entries of its probe run back, so lookups still find them. */
  private remove(slot: number): void {
    let hole = (slot - 1) / SLOT_WORDS;
    let index = hole;
    for (;;) {
      index = (index + 1) & (this.capacity - 1);
      const next = 1 + index * SLOT_WORDS;
      if (this.words[next + COUNT] === 0) break;
      const home = hash(this.words.subarray(next, next + COUNT)) & (this.capacity - 1);
      // Move the entry into the hole unless its home lies cyclically in (hole, index].
      const stays = hole <= index ? hole < home && home <= index : hole < home || home <= index;
      if (stays) continue;
      this.words.copyWithin(1 + hole * SLOT_WORDS, next, next + SLOT_WORDS);
      hole = index;
    }
    this.words.fill(0, 1 + hole * SLOT_WORDS, 1 + (hole + 1) * SLOT_WORDS);
  }

  private locked<T>(body: () => T): T {
    while (Atomics.compareExchange(this.words, LOCK, 0, 1) !== 0) {
      // Another thread holds it for a few probes: wait a moment rather than burn the core.
      Atomics.wait(this.words, LOCK, 1, 1);
    }
    try {
      return body();
    } finally {
      Atomics.store(this.words, LOCK, 0);
      Atomics.notify(this.words, LOCK, 1);
    }
  }
}

function addressWords(ip: string): Int32Array {
  const bytes = new Uint8Array(16);
  try {
    const address = ipaddr.parse(ip);
    bytes.set(address.kind() === 'ipv4' ? (address as ipaddr.IPv4).toIPv4MappedAddress().toByteArray() : address.toByteArray());
  } catch {
    // Not an address (never from a socket): count it under its text's bytes.
    bytes.set(new TextEncoder().encode(ip).subarray(0, 16));
  }
  return new Int32Array(bytes.buffer);
}

function sameKey(words: Int32Array, slot: number, key: Int32Array): boolean {
  return words[slot] === key[0] && words[slot + 1] === key[1] && words[slot + 2] === key[2] && words[slot + 3] === key[3];
}

/** FNV-1a over the four words. */
function hash(key: Int32Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 4; i++) {
    h ^= key[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
