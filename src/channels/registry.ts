import type { StreamCache } from '../media/chunk-cache.js';
import { CacheBudget } from '../media/cache-budget.js';
import { MediaCache } from '../media/media-cache.js';
import type { MediaCacheOptions } from '../media/media-cache.js';
import { Channel } from './channel.js';
import type { ChannelOptions } from './channel.js';

/** All channels in use, created on first use and dropped when unused. */
export class ChannelRegistry {
  private readonly channels = new Map<string, Channel>();

  constructor(
    private readonly createCache: () => StreamCache,
    private readonly channelOptions: ChannelOptions = {},
    /** The bytes held by all channels' caches, and their limit (CACHE_MEMORY_LIMIT_MB). */
    readonly budget: CacheBudget = new CacheBudget(0),
  ) {}

  /**
   * Keyframe-aware caches for recognised containers, the byte FIFO for anything else, all
   * within `memoryLimitBytes` together (0 or absent: no server-wide limit).
   */
  static withMediaCache(options: Omit<MediaCacheOptions, 'budget'> & ChannelOptions & { memoryLimitBytes?: number }): ChannelRegistry {
    const budget = new CacheBudget(options.memoryLimitBytes ?? 0);
    return new ChannelRegistry(() => new MediaCache({ ...options, budget }), { overflow: options.overflow }, budget);
  }

  /** Every stream treated as opaque: the plain byte FIFO, slow receivers closed. */
  static withByteCache(capacityBytes: number): ChannelRegistry {
    const budget = new CacheBudget(0);
    return new ChannelRegistry(() => new MediaCache({ capacityBytes, detect: false, budget }), {}, budget);
  }

  get(name: string): Channel | undefined {
    return this.channels.get(name);
  }

  getOrCreate(name: string): Channel {
    let channel = this.channels.get(name);
    if (channel === undefined) {
      channel = new Channel(name, this.createCache(), this.channelOptions);
      this.channels.set(name, channel);
    }
    return channel;
  }

  /** Drops the channel if nothing uses it any more. */
  releaseIfUnused(channel: Channel): void {
    if (channel.isUnused && this.channels.get(channel.name) === channel) this.channels.delete(channel.name);
  }

  get size(): number {
    return this.channels.size;
  }

  [Symbol.iterator](): IterableIterator<Channel> {
    return this.channels.values();
  }
}
