import type { StreamCache } from '../media/chunk-cache.js';
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
  ) {}

  /** Keyframe-aware caches for recognised containers, the byte FIFO for anything else. */
  static withMediaCache(options: MediaCacheOptions & ChannelOptions): ChannelRegistry {
    return new ChannelRegistry(() => new MediaCache(options), { overflow: options.overflow });
  }

  /** Every stream treated as opaque: the plain byte FIFO, slow receivers closed. */
  static withByteCache(capacityBytes: number): ChannelRegistry {
    return new ChannelRegistry(() => new MediaCache({ capacityBytes, detect: false }));
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
