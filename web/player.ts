// Playing a stream through Media Source Extensions: binary messages are appended to one
// SourceBuffer whose type comes from the stream's own track list (or the chosen fallback).
// The player keeps near the live edge (a slightly faster rate when a little behind, a jump when
// far behind), removes what has been played so memory stays flat, and measures what it can:
// how long a chunk waits between arriving and being on screen, the buffer ahead, and, with the
// test clock source, the whole publisher-to-screen delay.

import { ClockReader } from './clock.js';
import { pageStreamUrl, StreamLink } from './link.js';
import type { Closed } from './link.js';
import { concatBytes } from '../src/media/bytes.js';
import { StreamSplitter } from '../src/media/stream-splitter.js';
import type { SplitPiece, StreamStart } from '../src/media/stream-splitter.js';
import { describeStart } from './describe.js';

export interface PlaySettings {
  readonly channel: string;
  readonly key: string;
  readonly mode: AppendMode;
  /** Jump to the live edge when more than this many seconds behind it. */
  readonly maxBehindSeconds: number;
  /** Used when the stream does not say its codecs. */
  readonly fallbackMimeType: string | undefined;
  readonly reconnect: boolean;
}

/**
 * `finished`: the publisher ended the stream and everything received has been played; the
 * player waits for the next stream. `ended`: the player itself stopped.
 */
export type PlayPhase = 'connecting' | 'waiting' | 'buffering' | 'playing' | 'stalled' | 'finished' | 'ended' | 'unsupported';

export interface PlayState {
  readonly phase: PlayPhase;
  readonly message: string;
  readonly alert: string | undefined;
  readonly media: string | undefined;
  readonly mimeType: string | undefined;
  readonly receivedBytes: number;
  readonly kbps: number;
  /** Seconds of media buffered ahead of the playback position. */
  readonly bufferAhead: number | undefined;
  /** Seconds of media the SourceBuffer holds (behind and ahead). */
  readonly bufferHeld: number;
  /** Milliseconds from a chunk's arrival to its last frame being played. */
  readonly arrivalToDisplayMs: number | undefined;
  /** Milliseconds from the test clock being drawn at the publisher to that frame on screen. */
  readonly glassToGlassMs: number | undefined;
  readonly width: number;
  readonly height: number;
  readonly jumps: number;
  readonly stalls: number;
  readonly restarts: number;
  readonly droppedFrames: number;
  /** Milliseconds from start() to the first frame played. */
  readonly startupMs: number | undefined;
}

/** The MediaSource constructor: ManagedMediaSource on iPhone Safari, MediaSource elsewhere. */
function mediaSourceClass(): typeof MediaSource | undefined {
  const scope = globalThis as { ManagedMediaSource?: typeof MediaSource; MediaSource?: typeof MediaSource };
  return scope.MediaSource ?? scope.ManagedMediaSource;
}

export function canUseMse(): boolean {
  return mediaSourceClass() !== undefined;
}

const BACK_BUFFER_SECONDS = 10;
const MAX_APPEND_BYTES = 1024 * 1024;
/** Bytes waiting for the SourceBuffer beyond which the player resynchronises (reconnects). */
const MAX_QUEUED_BYTES = 32 * 1024 * 1024;

interface Pending {
  bytes: Uint8Array;
  arrival: number;
  /** A new stream's init after earlier data: reset the SourceBuffer's parser first. */
  restart: StreamStart | undefined;
}

export class MsePlayer {
  private socket: StreamLink | undefined;
  private mediaSource: MediaSource | undefined;
  private sourceBuffer: SourceBuffer | undefined;
  private objectUrl: string | undefined;
  private mimeType: string | undefined;
  private info: StreamStart | undefined;
  /** Finds each stream start (its whole init) in the messages, however the publisher cut them; one per connection. */
  private splitter = new StreamSplitter();
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private marks: Array<{ mediaTime: number; arrival: number }> = [];
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly clock = new ClockReader();
  private lastClockRead = 0;
  private phase: PlayPhase = 'connecting';
  private message = 'Connecting…';
  private alert: string | undefined;
  private receivedBytes = 0;
  private readonly samples: Array<{ at: number; bytes: number }> = [];
  private arrivalToDisplayMs: number | undefined;
  private glassToGlassMs: number | undefined;
  private lastArrival: number | undefined;
  private chunkInterval = 250;
  private jumps = 0;
  private stalls = 0;
  private restarts = 0;
  private reconnects = 0;
  private resyncs: number[] = [];
  private started = false;
  private readonly startedAt = performance.now();
  private startupMs: number | undefined;
  private stopped = false;
  private readonly listeners: Array<[string, EventListener]> = [];

  constructor(
    private readonly settings: PlaySettings,
    private readonly video: HTMLVideoElement,
    private readonly onChange: (state: PlayState) => void,
  ) {
    this.timer = setInterval(() => this.tick(), 200);
    this.listen('waiting', () => {
      if (this.started && !this.publisherEnded) this.stalls++; // running out after the stream ended is no stall
    });
    this.listen('error', () => this.resync(`The browser could not decode the stream (${this.video.error?.message || `error ${this.video.error?.code}`}).`));
    this.watchFrames();
    this.connect();
  }

  get state(): PlayState {
    const now = performance.now();
    while (this.samples.length > 0 && now - this.samples[0]!.at > 5000) this.samples.shift();
    const windowBytes = this.samples.reduce((sum, sample) => sum + sample.bytes, 0);
    const buffered = this.bufferedRanges();
    const last = buffered.at(-1);
    return {
      phase: this.phase,
      message: this.message,
      alert: this.alert,
      media: this.info === undefined ? undefined : describeStart(this.info),
      mimeType: this.mimeType,
      receivedBytes: this.receivedBytes,
      kbps: (windowBytes * 8) / Math.max(1000, Math.min(5000, now - this.startedAt)),
      bufferAhead: last === undefined || !this.started ? undefined : Math.max(0, last[1] - this.video.currentTime),
      bufferHeld: buffered.reduce((sum, [start, end]) => sum + end - start, 0),
      arrivalToDisplayMs: this.arrivalToDisplayMs,
      glassToGlassMs: this.glassToGlassMs,
      width: this.video.videoWidth,
      height: this.video.videoHeight,
      jumps: this.jumps,
      stalls: this.stalls,
      restarts: this.restarts,
      droppedFrames: this.video.getVideoPlaybackQuality?.().droppedVideoFrames ?? 0,
      startupMs: this.startupMs,
    };
  }

  stop(message = 'Stopped.'): void {
    if (this.stopped) return;
    this.stopped = true;
    this.phase = this.phase === 'unsupported' ? 'unsupported' : 'ended';
    this.message = message;
    clearInterval(this.timer);
    this.socket?.close();
    this.resetMedia();
    for (const [type, listener] of this.listeners) this.video.removeEventListener(type, listener);
    this.changed();
  }

  // ------------------------------------------------------------------------------ connection

  private connect(): void {
    const { channel, key } = this.settings;
    this.phase = this.started ? this.phase : 'connecting';
    this.splitter = new StreamSplitter(); // a new connection starts at a stream start (or mid-stream)
    this.socket = new StreamLink(pageStreamUrl(channel, key, 'receive'), {
      open: () => {
        if (!this.started) {
          this.phase = 'waiting';
          // Keep saying why the last stream stopped while waiting for the next one.
          const previous = this.lastEnd === undefined ? '' : `${this.lastEnd} `;
          this.message = `${previous}Connected; waiting for a publisher on “${channel}”…`;
        }
        this.reconnects = 0;
        this.changed();
      },
      binary: (data) => this.receive(data),
      close: (closed) => this.closed(closed),
    });
  }

  private closed(closed: Closed): void {
    if (this.stopped) return;
    this.socket = undefined;
    if (closed.serverError !== undefined) this.alert = closed.serverError;
    const fatal = closed.code === 1008 || closed.code === 1009 || (closed.opened === false && this.reconnects >= 3);
    if (!this.settings.reconnect || fatal) {
      if (closed.failed) this.alert ??= closed.explanation;
      this.stop(closed.failed ? `Disconnected. ${closed.explanation}` : closed.explanation);
      return;
    }
    // Publisher ended, network trouble, too slow, server restarting: reconnect and wait for the
    // next stream, which begins with its own header.
    const delay = closed.code === 1000 ? 500 : Math.min(10_000, 1000 * 2 ** this.reconnects);
    this.lastEnd = closed.explanation;
    this.publisherEnded = closed.code === 1000;
    this.reconnects++;
    if (this.started && this.publisherEnded) {
      this.updatePhase(); // playing out what is buffered, or finished
    } else {
      this.message = `${closed.explanation} Reconnecting in ${(delay / 1000).toFixed(1)} s…`;
      if (this.phase !== 'playing') this.phase = 'waiting';
    }
    this.changed();
    setTimeout(() => {
      if (!this.stopped && this.socket === undefined) this.connect();
    }, delay);
  }

  /** Why the previous connection ended, shown until the next stream's data arrives. */
  private lastEnd: string | undefined;
  /** The publisher ended the stream (a normal close) and no new stream has sent anything yet. */
  private publisherEnded = false;

  /** While what was buffered plays out after a stream ended, the status still says it ended. */
  private withLastEnd(status: string): string {
    return this.lastEnd === undefined ? status : `${status.replace(/[.…]+$/, '')}. ${this.lastEnd}`;
  }

  /** Starts again from a clean point: a new connection gets the stream header and a keyframe. */
  private resync(reason: string): void {
    if (this.stopped) return;
    const now = performance.now();
    this.resyncs = this.resyncs.filter((at) => now - at < 60_000);
    if (this.resyncs.length >= 3) {
      this.alert = reason;
      this.stop(`${reason} Stopped after repeated failures.`);
      return;
    }
    this.resyncs.push(now);
    this.message = `${reason} Resynchronising…`;
    this.socket?.close();
    this.socket = undefined;
    this.resetMedia();
    this.started = false;
    this.connect();
  }

  // ---------------------------------------------------------------------------------- input

  private receive(bytes: Uint8Array): void {
    const now = performance.now();
    this.lastEnd = undefined;
    this.publisherEnded = false;
    this.receivedBytes += bytes.length;
    this.samples.push({ at: now, bytes: bytes.length });
    if (this.lastArrival !== undefined) this.chunkInterval = 0.8 * this.chunkInterval + 0.2 * Math.min(2000, now - this.lastArrival);
    this.lastArrival = now;
    for (const piece of this.splitter.push(bytes)) {
      if (this.phase === 'unsupported' || this.stopped) return;
      this.take(piece, now);
    }
    if (this.queuedBytes > MAX_QUEUED_BYTES) return this.resync('The player fell too far behind the stream.');
    this.pump();
  }

  private take(piece: SplitPiece, now: number): void {
    switch (piece.type) {
      case 'skipped':
        if (this.mimeType !== undefined) return;
        // Mid-stream data cannot start a SourceBuffer: wait for a stream header (the next
        // publisher, or the publisher's recorder restarting).
        this.phase = 'waiting';
        this.message = 'Joined in the middle of the stream, without its header (is the server’s cache off?): waiting for the next stream start…';
        this.changed();
        return;
      case 'unplayable':
        if (piece.container === 'opaque') {
          return this.unsupported(piece.reason === undefined ? 'The stream is neither WebM nor MP4: this page cannot play it.' : `The stream’s header cannot be read (${piece.reason}).`);
        }
        return this.unsupported(
          `The stream is ${piece.container === 'flv' ? 'FLV' : 'MPEG-TS'}: browsers cannot play this container through Media Source Extensions. ` +
            'Play it with ffmpeg/ffplay or VLC (e.g. websocat -b URL | ffplay -), or through the HLS output when the server has it.',
        );
      case 'start':
        if (this.mimeType === undefined) return this.firstStart(piece.start, now);
        // A new stream on the same connection (the publisher's recorder restarted).
        this.restarts++;
        return this.enqueue(piece.start.init, now, piece.start);
      case 'media':
        if (this.mimeType !== undefined) this.enqueue(piece.bytes, now, undefined);
    }
  }

  private enqueue(bytes: Uint8Array, arrival: number, restart: StreamStart | undefined): void {
    this.queue.push({ bytes, arrival, restart });
    this.queuedBytes += bytes.length;
  }

  /** The first stream start: its type decides the SourceBuffer. */
  private firstStart(start: StreamStart, now: number): void {
    this.info = start;
    const MediaSourceClass = mediaSourceClass();
    if (MediaSourceClass === undefined) return this.unsupported('This browser has no Media Source Extensions, so it cannot play the stream here.');
    const mimeType = start.mimeType ?? this.settings.fallbackMimeType;
    if (mimeType === undefined) {
      return this.unsupported('The stream’s header does not say its codecs; choose a format under “Play as”.');
    }
    if (!MediaSourceClass.isTypeSupported(mimeType)) {
      const h264InWebm = start.container === 'webm' && start.codecs.some((codec) => codec.startsWith('avc1'));
      return this.unsupported(`This browser cannot play ${mimeType} through Media Source Extensions${h264InWebm ? ' (H.264 in WebM: publish VP8 or VP9 instead)' : ''}.`);
    }
    this.mimeType = mimeType;
    this.enqueue(start.init, now, undefined);
    this.phase = 'buffering';
    this.message = `Receiving ${describeStart(start)}…`;
    this.openMediaSource(MediaSourceClass, mimeType);
    this.changed();
  }

  private openMediaSource(MediaSourceClass: typeof MediaSource, mimeType: string): void {
    const mediaSource = new MediaSourceClass();
    this.mediaSource = mediaSource;
    this.video.disableRemotePlayback = true; // required by ManagedMediaSource
    this.objectUrl = URL.createObjectURL(mediaSource);
    this.video.src = this.objectUrl;
    mediaSource.addEventListener(
      'sourceopen',
      () => {
        if (this.mediaSource !== mediaSource) return;
        try {
          const sourceBuffer = mediaSource.addSourceBuffer(mimeType);
          sourceBuffer.mode = this.settings.mode;
          sourceBuffer.addEventListener('updateend', () => this.appended());
          sourceBuffer.addEventListener('error', () => undefined); // the video element reports decode errors
          this.sourceBuffer = sourceBuffer;
          this.pump();
        } catch (error) {
          this.unsupported(`Cannot play ${mimeType}: ${error instanceof Error ? error.message : String(error)}`);
        }
      },
      { once: true },
    );
  }

  private unsupported(text: string): void {
    this.phase = 'unsupported';
    this.alert = text;
    this.stop(text);
  }

  private resetMedia(): void {
    this.mediaSource = undefined;
    this.sourceBuffer = undefined;
    this.mimeType = undefined;
    this.splitter = new StreamSplitter();
    this.queue = [];
    this.queuedBytes = 0;
    this.marks = [];
    this.video.removeAttribute('src');
    this.video.srcObject = null;
    this.video.load();
    if (this.objectUrl !== undefined) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = undefined;
  }

  // ----------------------------------------------------------------------------- appending

  private appendedArrival: number | undefined;

  private pump(): void {
    const sourceBuffer = this.sourceBuffer;
    if (sourceBuffer === undefined || sourceBuffer.updating || this.queue.length === 0 || this.mediaSource?.readyState !== 'open') return;
    const first = this.queue[0]!;
    if (first.restart !== undefined) {
      this.beginNewStream(sourceBuffer, first.restart);
      first.restart = undefined;
    }
    // Merge what waits into one append (fewer, larger appends), up to a new stream's start.
    let count = 1;
    let size = first.bytes.length;
    while (count < this.queue.length && this.queue[count]!.restart === undefined && size + this.queue[count]!.bytes.length <= MAX_APPEND_BYTES) {
      size += this.queue[count]!.bytes.length;
      count++;
    }
    const taken = this.queue.slice(0, count);
    const data = count === 1 ? first.bytes : concatBytes(taken.map((pending) => pending.bytes));
    try {
      sourceBuffer.appendBuffer(data as Uint8Array<ArrayBuffer>);
    } catch (error) {
      if (error instanceof DOMException && error.name === 'QuotaExceededError') {
        this.evict(true);
        return;
      }
      this.resync(`Appending to the media buffer failed (${error instanceof Error ? error.message : String(error)}).`);
      return;
    }
    this.queue.splice(0, count);
    this.queuedBytes -= size;
    this.appendedArrival = taken.at(-1)!.arrival;
  }

  /** A new header mid-stream (the publisher's recorder restarted, or a new publisher): place it after what is buffered. */
  private beginNewStream(sourceBuffer: SourceBuffer, start: StreamStart): void {
    try {
      sourceBuffer.abort(); // the previous stream's last cluster ends here
      if (start.mimeType !== undefined && start.mimeType !== this.mimeType && typeof sourceBuffer.changeType === 'function') {
        sourceBuffer.changeType(start.mimeType);
        this.mimeType = start.mimeType;
      }
      this.info = start;
      if (this.settings.mode === 'segments') {
        const end = this.bufferedRanges().at(-1)?.[1] ?? 0;
        sourceBuffer.timestampOffset = end - (start.firstTimeMs ?? 0) / 1000;
      }
    } catch {
      // Left as it is: the gap-skipping in tick() copes with odd timestamps.
    }
  }

  private appended(): void {
    const end = this.bufferedRanges().at(-1)?.[1];
    if (end !== undefined && this.appendedArrival !== undefined) {
      const lastMark = this.marks.at(-1);
      if (lastMark === undefined || end > lastMark.mediaTime) this.marks.push({ mediaTime: end, arrival: this.appendedArrival });
      if (this.marks.length > 400) this.marks.shift();
    }
    this.appendedArrival = undefined;
    if (!this.started && end !== undefined) this.startPlayback();
    this.pump();
  }

  private startPlayback(): void {
    const ranges = this.bufferedRanges();
    const last = ranges.at(-1);
    if (last === undefined) return;
    this.started = true;
    this.video.currentTime = Math.max(last[0], last[1] - this.targetAhead());
    this.dropMarksBefore(this.video.currentTime);
    this.video.play().catch((error: unknown) => {
      if (error instanceof DOMException && error.name === 'NotAllowedError') {
        this.message = 'The browser blocked autoplay: press play on the video.';
        this.changed();
      }
    });
  }

  /** Removes played media beyond the back buffer; with `urgent`, everything before the playback position. */
  private evict(urgent: boolean): void {
    const sourceBuffer = this.sourceBuffer;
    const ranges = this.bufferedRanges();
    if (sourceBuffer === undefined || sourceBuffer.updating || ranges.length === 0) return;
    const keep = urgent ? 1 : BACK_BUFFER_SECONDS;
    const until = this.video.currentTime - keep;
    if (until - ranges[0]![0] > (urgent ? 0.5 : 5)) sourceBuffer.remove(0, until);
  }

  // ------------------------------------------------------------------------------ live edge

  /** How far behind the live edge to play: a little more than the time between chunks. */
  private targetAhead(): number {
    return Math.min(Math.max(0.25, 0.1 + this.chunkInterval / 1000), this.settings.maxBehindSeconds / 2);
  }

  private tick(): void {
    if (this.stopped) return;
    const video = this.video;
    const ranges = this.bufferedRanges();
    const last = ranges.at(-1);
    if (this.started && last !== undefined && !video.seeking) {
      const now = video.currentTime;
      const inside = ranges.some(([start, end]) => now >= start - 0.05 && now < end);
      const ahead = last[1] - now;
      if (!inside) {
        // In a gap (a restart, a lost chunk): continue at the next range.
        const next = ranges.find(([start]) => start > now);
        if (next !== undefined) this.seek(Math.max(next[0], next[1] - this.targetAhead()));
      } else if (ahead > this.settings.maxBehindSeconds) {
        this.jumps++;
        this.seek(last[1] - this.targetAhead());
      } else {
        const rate = ahead > this.targetAhead() + 0.15 ? 1.08 : 1;
        if (video.playbackRate !== rate) video.playbackRate = rate;
      }
      this.evict(false);
      // A mark is reached when its media time is played: its chunk waited this long.
      while (this.marks.length > 0 && this.marks[0]!.mediaTime <= video.currentTime) {
        this.arrivalToDisplayMs = performance.now() - this.marks.shift()!.arrival;
      }
      if (video.paused && video.readyState >= 3 && !video.ended && !this.publisherEnded) video.play().catch(() => undefined);
    }
    this.updatePhase();
    this.changed();
  }

  /** The phase and status line from what the video element shows. */
  private updatePhase(): void {
    const video = this.video;
    const last = this.bufferedRanges().at(-1);
    const playedOut = last === undefined || last[1] - video.currentTime < 0.1;
    if (this.started && this.publisherEnded && (playedOut || video.readyState < 3)) {
      // Everything the ended stream sent has been shown: one state until the next stream comes
      // (paused on the last frame, without the video element's loading spinner).
      this.phase = 'finished';
      if (!video.paused) video.pause();
      this.message = `The publisher ended the stream.${this.settings.reconnect ? ` Waiting for the next stream on “${this.settings.channel}”…` : ''}`;
    } else if (this.started && video.readyState >= 3 && !video.paused) {
      if (this.startupMs === undefined && video.currentTime > 0) this.startupMs = performance.now() - this.startedAt;
      this.phase = 'playing';
      this.message = this.withLastEnd(`Playing ${this.info === undefined ? '' : describeStart(this.info)}`);
    } else if (this.started && this.phase === 'playing') {
      this.phase = 'stalled';
      this.message = this.withLastEnd('Waiting for data…');
    }
  }

  private seek(to: number): void {
    this.video.currentTime = to;
    this.dropMarksBefore(to);
  }

  /** Chunks skipped by a jump were never displayed: they measure nothing. */
  private dropMarksBefore(time: number): void {
    while (this.marks.length > 0 && this.marks[0]!.mediaTime <= time) this.marks.shift();
  }

  /** Reads the test clock from frames as they are shown (requestVideoFrameCallback), 4 times a second. */
  private watchFrames(): void {
    const video = this.video as HTMLVideoElement & {
      requestVideoFrameCallback?: (callback: (now: number, metadata: { expectedDisplayTime: number }) => void) => number;
    };
    const read = (displayAt: number): void => {
      if (displayAt - this.lastClockRead < 250) return;
      this.lastClockRead = displayAt;
      const drawn = this.clock.read(this.video);
      if (drawn !== undefined) this.glassToGlassMs = performance.timeOrigin + displayAt - drawn;
    };
    if (typeof video.requestVideoFrameCallback === 'function') {
      const next = (): void => {
        if (this.stopped) return;
        video.requestVideoFrameCallback!((_now, metadata) => {
          read(metadata.expectedDisplayTime);
          next();
        });
      };
      next();
    } else {
      const timer = setInterval(() => (this.stopped ? clearInterval(timer) : !video.paused && read(performance.now())), 250);
    }
  }

  // ---------------------------------------------------------------------------------- util

  private bufferedRanges(): Array<[number, number]> {
    const ranges: Array<[number, number]> = [];
    try {
      const buffered = this.sourceBuffer?.buffered ?? this.video.buffered;
      for (let i = 0; i < buffered.length; i++) ranges.push([buffered.start(i), buffered.end(i)]);
    } catch {
      // The SourceBuffer was removed from its MediaSource.
    }
    return ranges;
  }

  private listen(type: string, listener: EventListener): void {
    this.video.addEventListener(type, listener);
    this.listeners.push([type, listener]);
  }

  private changed(): void {
    this.onChange(this.state);
  }
}
