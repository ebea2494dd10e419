import { createHmac } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { watch } from 'chokidar';
import type { FSWatcher } from 'chokidar';
import { keysMatch } from '../channels/channel.js';
import type { Logger } from '../log/logger.js';
import { acceptWithNewStreamId } from './authorizer.js';
import type { PublishAuthorizer, PublishDecision, PublishRequest } from './authorizer.js';

/**
 * The key of a channel under STREAM_KEY_SECRET: lower-case hex of HMAC-SHA256, keyed with the
 * secret's UTF-8 bytes, over the channel name's UTF-8 bytes.
 */
export function channelKey(secret: string, channel: string): string {
  return createHmac('sha256', secret).update(channel, 'utf8').digest('hex');
}

/** Base for authorizers that know each channel's key in advance. */
abstract class KnownKeyAuthorizer implements PublishAuthorizer {
  protected abstract expectedKey(channel: string): string | undefined;

  authorize(request: PublishRequest): PublishDecision {
    return this.isReceiverKeyValid(request.channel, request.key) ? acceptWithNewStreamId() : { accepted: false };
  }

  isReceiverKeyValid(channel: string, key: string): boolean {
    const expected = this.expectedKey(channel);
    return expected !== undefined && keysMatch(key, expected);
  }
}

/** STREAM_KEY_SECRET: every channel's key is derived with `channelKey()`. */
export class HmacKeyAuthorizer extends KnownKeyAuthorizer {
  constructor(private readonly secret: string) {
    super();
  }

  protected expectedKey(channel: string): string {
    return channelKey(this.secret, channel);
  }
}

/** One channel of a keys file: the key that publishes (and views), and view-only keys. */
export interface ChannelKeys {
  readonly publish: string;
  readonly play: readonly string[];
}

function channelKeysOf(channel: string, entry: unknown): ChannelKeys {
  // Today's form: one string that publishes and views.
  if (typeof entry === 'string') {
    if (entry === '') throw new Error(`channel "${channel}": the key is an empty string`);
    return { publish: entry, play: [] };
  }
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new Error(`channel "${channel}": expected a key string or { "publish": "key", "play": ["key", …] }`);
  }
  const { publish, play = [], ...rest } = entry as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw new Error(`channel "${channel}": unknown field "${unknown}" (expected "publish" and "play")`);
  if (typeof publish !== 'string' || publish === '') throw new Error(`channel "${channel}": "publish" is not a non-empty string`);
  if (!Array.isArray(play) || !play.every((key): key is string => typeof key === 'string' && key !== '')) {
    throw new Error(`channel "${channel}": "play" is not an array of non-empty strings`);
  }
  return { publish, play };
}

/**
 * Parses a keys file: a JSON object of channel → key string (publishes and views) or
 * `{ "publish": "key", "play": ["view-only key", …] }`. Throws an Error naming the channel and field.
 */
export function parseKeysFile(text: string): Map<string, ChannelKeys> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new Error(`not valid JSON (${(error as Error).message})`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error('expected a JSON object of "channel": "key"');
  const keys = new Map<string, ChannelKeys>();
  for (const [channel, entry] of Object.entries(data)) keys.set(channel, channelKeysOf(channel, entry));
  return keys;
}

/**
 * STREAM_KEYS_FILE: keys from a JSON file, re-read when it changes. A broken new version is
 * logged and the previous keys stay in force.
 */
export class KeysFileAuthorizer extends KnownKeyAuthorizer {
  private keys: Map<string, ChannelKeys>;
  private watcher: FSWatcher | undefined;

  /** The text the keys came from (worker threads get it from the main thread, never reading the file themselves). */
  private text: string;

  /** Reads the file synchronously (unless its `text` is given) so that a bad file is a startup error. */
  constructor(
    readonly path: string,
    private readonly logger: Logger,
    text?: string,
  ) {
    super();
    this.text = text ?? readFileSync(path, 'utf8');
    this.keys = parseKeysFile(this.text);
  }

  /** The file's text as last loaded successfully. */
  get keysText(): string {
    return this.text;
  }

  /** Takes keys loaded elsewhere (a worker thread gets the main thread's). Throws on a bad text. */
  useText(text: string): void {
    this.keys = parseKeysFile(text);
    this.text = text;
  }

  get channelCount(): number {
    return this.keys.size;
  }

  protected expectedKey(channel: string): string | undefined {
    return this.keys.get(channel)?.publish;
  }

  isPlayKey(channel: string, key: string): boolean {
    // Every play key is compared, so the time taken says nothing about which one matched.
    let found = false;
    for (const playKey of this.keys.get(channel)?.play ?? []) found = keysMatch(key, playKey) || found;
    return found;
  }

  async start(): Promise<void> {
    if (this.watcher !== undefined) return;
    this.watcher = watch(this.path, { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: 50, pollInterval: 20 } });
    this.watcher.on('add', () => void this.reload());
    this.watcher.on('change', () => void this.reload());
    await new Promise<void>((resolve) => this.watcher!.once('ready', resolve));
  }

  /** Re-reads the file; public so an operator action (or a test) can force it. */
  async reload(): Promise<boolean> {
    try {
      const text = await readFile(this.path, 'utf8');
      this.keys = parseKeysFile(text);
      this.text = text;
      this.logger.info(`Reloaded STREAM_KEYS_FILE ${this.path}: ${this.keys.size} channel(s)`);
      return true;
    } catch (error) {
      this.logger.error(`STREAM_KEYS_FILE ${this.path} not reloaded, keeping the previous keys: ${(error as Error).message}`);
      return false;
    } finally {
      this.events.emit('reload');
    }
  }

  /** `reload` after every reload attempt, successful or not. */
  readonly events = new EventEmitter<{ reload: [] }>();

  async close(): Promise<void> {
    await this.watcher?.close();
  }
}
