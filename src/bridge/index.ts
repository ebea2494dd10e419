import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Channel, Publisher } from '../channels/channel.js';
import { ConfigError, MEBIBYTE } from '../config/index.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import type { PublishObserver } from '../server/stream-server.js';
import { expandTemplate, redactUrl } from './args.js';
import type { EncodeSettings } from './args.js';
import { Bridge } from './bridge.js';
import type { BridgeOptions, BridgeOutput, BridgeStatus } from './bridge.js';
import { ffmpegVersion, findFfmpeg } from './ffmpeg.js';
import type { FfmpegBinary } from './ffmpeg.js';
import { HlsOutput, hlsRoot } from './hls.js';
import { Recording } from './recorder.js';
import type { RecordingStatus } from './recorder.js';

export { Bridge, INTERNAL_IP, isInternalReceiver } from './bridge.js';
export type { BridgeOptions, BridgeOutput, BridgeState, BridgeStatus } from './bridge.js';
export { Recording } from './recorder.js';
export type { RecordingState, RecordingStatus } from './recorder.js';
export { findFfmpeg, ffmpegVersion, requireFfmpeg } from './ffmpeg.js';
export type { FfmpegBinary } from './ffmpeg.js';

/** What runs for one publishing session. */
interface SessionOutputs {
  readonly publisher: Publisher;
  readonly bridges: readonly Bridge[];
  readonly hls: HlsOutput | undefined;
  readonly recording: Recording | undefined;
}

/** Every channel's outputs, for the stats API (channels are per server, so this is too). */
const outputsByChannel = new WeakMap<Channel, SessionOutputs>();

/** The channel's bridges (RTMP, HLS) as the stats API shows them, or null when it has none. */
export function bridgeSummary(channel: Channel): BridgeStatus[] | null {
  const outputs = outputsByChannel.get(channel);
  return outputs === undefined || outputs.bridges.length === 0 ? null : outputs.bridges.map((bridge) => bridge.status());
}

/** The channel's recording as the stats API shows it, or null when it is not recorded. */
export function recordingSummary(channel: Channel): RecordingStatus | null {
  return outputsByChannel.get(channel)?.recording?.status() ?? null;
}

/** Test hooks: how long things wait (production uses the defaults). */
export interface BridgeTimings {
  readonly backoff?: BridgeOptions['backoff'];
  readonly stopTimeouts?: BridgeOptions['stopTimeouts'];
  readonly mediaWaitMs?: number;
}

/**
 * The bridge, HLS and recording outputs of every publishing session, as the configuration asks.
 * A PublishObserver of the stream server: everything starts when a publisher starts and ends
 * with it; the server's close() stops what is left and waits for every child process.
 */
export class BridgeManager implements PublishObserver {
  private readonly sessions = new Map<Channel, SessionOutputs>();
  /** Work that outlives a session: ffmpeg finishing, HLS cleanup, recordings being completed. */
  private readonly pending = new Set<Promise<void>>();
  /** Per channel, the tail of its HLS folder work (cleanup, then the next session's start). */
  private readonly folderWork = new Map<string, Promise<void>>();
  private readonly encode: EncodeSettings;
  private readonly hlsDir: string;
  private closing = false;

  private constructor(
    private readonly config: Config,
    readonly ffmpeg: (FfmpegBinary & { version: string }) | undefined,
    private readonly logger: Logger,
    private readonly timings: BridgeTimings,
  ) {
    this.encode = {
      videoBitrate: config.bridgeVideoBitrate,
      maxHeight: config.bridgeMaxHeight,
      fps: config.bridgeFps,
      extraArgs: config.bridgeExtraArgs,
    };
    this.hlsDir = hlsRoot(config.hlsDir);
  }

  /**
   * The manager for the configured outputs, or undefined when none is (no BRIDGE_RTMP_URL,
   * BRIDGE_HLS or RECORD_DIR). Throws ConfigError when an output needs ffmpeg and there is
   * none that runs, or HLS_DIR cannot be created. Logs which ffmpeg and its version.
   */
  static async create(config: Config, logger: Logger, timings: BridgeTimings = {}): Promise<BridgeManager | undefined> {
    const rtmp = config.bridgeRtmpUrl !== '';
    const hls = config.bridgeHls;
    const record = config.recordDir !== '';
    if (!rtmp && !hls && !record) return undefined;
    const users = [rtmp ? 'BRIDGE_RTMP_URL' : '', hls ? 'BRIDGE_HLS' : '', record && config.recordRemux ? 'RECORD_REMUX' : ''].filter((name) => name !== '');
    let ffmpeg: (FfmpegBinary & { version: string }) | undefined;
    if (users.length > 0) {
      const found = findFfmpeg({ ...process.env, FFMPEG_PATH: config.ffmpegPath });
      const needs = `${users.join(' and ')} need${users.length === 1 ? 's' : ''} ffmpeg`;
      if (found === undefined) {
        throw new ConfigError(
          'FFMPEG_PATH',
          config.ffmpegPath === ''
            ? `${needs}, and none was found: install ffmpeg, set FFMPEG_PATH, or install @ffmpeg-installer/ffmpeg.`
            : `${needs}, but FFMPEG_PATH=${config.ffmpegPath} is not an executable file.`,
        );
      }
      const version = await ffmpegVersion(found.path);
      if (version === null) throw new ConfigError('FFMPEG_PATH', `${needs}, but ${found.path} (${found.source}) does not run: \`ffmpeg -version\` failed.`);
      ffmpeg = { ...found, version };
      logger.info(`[BRIDGE] ffmpeg ${version}: ${found.path} (${found.source === 'system' ? 'from the PATH' : found.source})`);
    }
    const manager = new BridgeManager(config, ffmpeg, logger, timings);
    if (rtmp) logger.info(`[BRIDGE] Pushing every published channel to ${redactUrl(config.bridgeRtmpUrl)}`);
    if (hls) {
      try {
        await mkdir(manager.hlsDir, { recursive: true });
      } catch (error) {
        throw new ConfigError('HLS_DIR', `BRIDGE_HLS is on but HLS_DIR ${manager.hlsDir} cannot be created: ${(error as Error).message}`);
      }
      logger.info(`[BRIDGE] HLS written to ${manager.hlsDir}, served at /hls/<channel>/index.m3u8`);
    }
    if (record) {
      const dir = resolve(config.recordDir);
      // Not fatal: the disk may come back; each recording reports its own failure.
      await mkdir(dir, { recursive: true }).catch((error: Error) => logger.warn(`[RECORD] RECORD_DIR ${dir} cannot be created: ${error.message}`));
      logger.info(`[RECORD] Recording every publishing session to ${dir}`);
    }
    return manager;
  }

  /** The HLS folder of a channel. */
  hlsFolder(channel: string): string {
    return resolve(this.hlsDir, channel);
  }

  /** The outputs of a live channel (tests look at its bridges). */
  outputs(channel: Channel): { bridges: readonly Bridge[]; recording: Recording | undefined } | undefined {
    return this.sessions.get(channel);
  }

  publishStarted(channel: Channel, publisher: Publisher): void {
    if (this.closing) return;
    const config = this.config;
    const recording = config.recordDir === '' ? undefined : new Recording(channel, publisher, {
      dir: resolve(config.recordDir),
      maxBytes: Math.floor(config.recordMaxSizeMb * MEBIBYTE),
      remuxWith: config.recordRemux ? this.ffmpeg?.path : undefined,
      bufferBytes: this.bufferBytes,
      logger: this.logger,
    });
    const bridges: Bridge[] = [];
    if (config.bridgeRtmpUrl !== '') bridges.push(this.bridge(channel, publisher, this.rtmpOutput(channel, publisher)));
    let hls: HlsOutput | undefined;
    if (config.bridgeHls) {
      const session = publisher.startedAt.toString(36);
      hls = new HlsOutput(this.hlsDir, channel.name, session, { segmentSeconds: config.hlsSegmentSeconds, listSize: config.hlsListSize }, (task) =>
        this.serially(channel.name, task),
      );
      bridges.push(this.bridge(channel, publisher, hls));
    }
    const outputs: SessionOutputs = { publisher, bridges, hls, recording };
    this.sessions.set(channel, outputs);
    outputsByChannel.set(channel, outputs);
    recording?.start();
    for (const bridge of bridges) bridge.start();
  }

  publishEnded(channel: Channel, publisher: Publisher): void {
    const outputs = this.sessions.get(channel);
    if (outputs === undefined || outputs.publisher !== publisher) return;
    this.end(channel, outputs, false);
  }

  /** Stops every output and waits for every child process and file. */
  async close(): Promise<void> {
    this.closing = true;
    for (const [channel, outputs] of [...this.sessions]) this.end(channel, outputs, true);
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private get bufferBytes(): number {
    return Math.floor(this.config.bridgeBufferMb * MEBIBYTE);
  }

  private bridge(channel: Channel, publisher: Publisher, output: BridgeOutput): Bridge {
    return new Bridge(channel, publisher, output, {
      ffmpeg: this.ffmpeg!.path,
      encode: this.encode,
      bufferBytes: this.bufferBytes,
      maxRestarts: this.config.bridgeMaxRestarts,
      logger: this.logger,
      ...this.timings,
    });
  }

  private rtmpOutput(channel: Channel, publisher: Publisher): BridgeOutput {
    const url = expandTemplate(this.config.bridgeRtmpUrl, { channel: channel.name, streamId: publisher.streamId });
    const description = redactUrl(url);
    return {
      kind: 'rtmp',
      description,
      target: { kind: 'rtmp', url },
      redact: (args) => args.map((arg) => (arg === url ? description : arg)),
    };
  }

  private end(channel: Channel, outputs: SessionOutputs, shutdown: boolean): void {
    this.sessions.delete(channel);
    if (outputsByChannel.get(channel) === outputs) outputsByChannel.delete(channel);
    const stopped = Promise.all([
      ...outputs.bridges.map((bridge) => bridge.stop()),
      shutdown ? outputs.recording?.close() : outputs.recording?.stop(),
    ]);
    const hls = outputs.hls;
    let work: Promise<unknown> = stopped;
    if (hls !== undefined && !this.config.hlsKeepAfterEnd) {
      // After ffmpeg is gone (it would write again), before the channel's next session starts.
      work = this.serially(channel.name, async () => {
        await stopped;
        await rm(hls.folder, { recursive: true, force: true });
      }).catch((error: Error) => this.logger.error(`[BRIDGE] hls '${channel.name}': cannot remove ${hls.folder}: ${error.message}`));
    }
    const done = work.then(() => undefined);
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  /** Runs `task` after the channel's earlier folder work; the result is the task's own. */
  private serially(channel: string, task: () => Promise<void>): Promise<void> {
    const previous = this.folderWork.get(channel) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result.catch(() => undefined);
    this.folderWork.set(channel, tail);
    void tail.then(() => {
      if (this.folderWork.get(channel) === tail) this.folderWork.delete(channel);
    });
    return result;
  }
}
