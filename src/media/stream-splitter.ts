// A receiver's view of a stream: where each stream start (the whole init: WebM header and track
// list, MP4 ftyp + moov) begins and ends, whatever the publisher's chunking. Messages carry any
// slice of the stream: Chromium's MediaRecorder sometimes hands out its first byte alone, other
// publishers cut anywhere. Plain Uint8Array code, no Node API: the test page bundles it.
import { Fmp4Parser } from './fmp4.js';
import { SNIFF_BYTES, sniffContainer } from './sniff.js';
import { mediaSourceType } from './codec-strings.js';
import type { ContainerParser, ParserEvents, TrackInfo } from './types.js';
import { WebmParser } from './webm.js';
import { concatBytes } from './bytes.js';

/** A stream start, complete: its init in one piece and what it says. */
export interface StreamStart {
  readonly container: 'webm' | 'fmp4';
  /** The init bytes (everything before the first Cluster or moof). */
  readonly init: Uint8Array;
  readonly tracks: readonly TrackInfo[];
  /** RFC 6381 codec strings, video first. */
  readonly codecs: readonly string[];
  /** E.g. `video/webm; codecs="vp8,opus"`; undefined when the track list names no codec. */
  readonly mimeType: string | undefined;
  /** Timestamp of the first media (Cluster / fragment) after the init, when known. */
  readonly firstTimeMs: number | undefined;
}

export type SplitPiece =
  /** A new stream begins: give a decoder its init before the media that follows. */
  | { readonly type: 'start'; readonly start: StreamStart }
  /** Media of the current stream, in order. */
  | { readonly type: 'media'; readonly bytes: Uint8Array }
  /** Bytes from the middle of a stream, before any stream start: not decodable, dropped. */
  | { readonly type: 'skipped'; readonly bytes: number }
  /** A container a MediaSource cannot take (FLV, MPEG-TS) or unknown bytes: nothing more is reported. */
  | { readonly type: 'unplayable'; readonly container: 'flv' | 'mpegts' | 'opaque'; readonly reason?: string };

/** Bytes held while a stream start is incomplete, beyond which the stream is given up on. */
export const MAX_START_BYTES = 2 * 1024 * 1024;

type Event =
  | { kind: 'restart'; at: number }
  | { kind: 'init'; start: number; end: number }
  | { kind: 'tracks'; tracks: readonly TrackInfo[]; codecs: readonly string[] }
  | { kind: 'keyframe'; time: number | undefined };

interface Pending {
  at: number;
  initEnd?: number;
  tracks?: readonly TrackInfo[];
  codecs?: readonly string[];
}

/** Feed it every binary message in order; it returns what they complete, in stream order. */
export class StreamSplitter {
  /** Messages kept until the container is known. */
  private sniffed: Uint8Array[] = [];
  private parser: (ContainerParser & { readonly codecStrings: readonly string[] }) | undefined;
  private container: 'webm' | 'fmp4' | undefined;
  /** The stream parsed wrongly after it started: pass the rest on as it is. */
  private passThrough = false;
  private done = false;
  private events: Event[] = [];
  /** Bytes fed to the parser and not handed out yet, from stream offset `sentUpTo`. */
  private unsent: Uint8Array[] = [];
  private sentUpTo = 0;
  private position = 0;
  /** The stream start being collected. */
  private pending: Pending | undefined;

  push(bytes: Uint8Array): SplitPiece[] {
    if (this.done || bytes.byteLength === 0) return [];
    const container = this.container;
    if (container !== undefined && this.position > 0 && beginsStream(bytes, container)) {
      // A message that begins a new stream: the publisher restarted its recorder, maybe after
      // dropping chunks (the page's congestion handling), which leaves the old stream cut
      // inside an element where the parser could not see the new header. Start over here.
      const pieces: SplitPiece[] = [];
      if (this.pending === undefined && !this.passThrough) this.emitMedia(this.position, pieces);
      if (this.passThrough) this.unsent = [];
      this.passThrough = false;
      this.reset();
      this.start(container);
      return [...pieces, ...this.feed(bytes)];
    }
    if (this.passThrough) return [{ type: 'media', bytes }];
    if (this.parser === undefined) return this.sniff(bytes);
    return this.feed(bytes);
  }

  /**
   * Hands out the stream start being collected once its track list is known, and what follows
   * it, without waiting for its first media (a probe's one chunk).
   */
  flush(): SplitPiece[] {
    const pending = this.pending;
    if (pending === undefined || pending.tracks === undefined) return [];
    const pieces: SplitPiece[] = [];
    pending.initEnd ??= this.position;
    this.emitStart(pending, undefined, pieces);
    this.emitMedia(this.position, pieces);
    return pieces;
  }

  private sniff(bytes: Uint8Array): SplitPiece[] {
    this.sniffed.push(bytes);
    const pieces: SplitPiece[] = [];
    while (this.sniffed.length > 0) {
      const head = concatBytes(this.sniffed);
      const kind = sniffContainer(head.subarray(0, SNIFF_BYTES));
      if (kind === undefined) return pieces; // a prefix of a container's signature: wait for more
      if (kind === 'webm' || kind === 'fmp4') {
        this.sniffed = [];
        this.start(kind);
        return [...pieces, ...this.feed(head)];
      }
      if (kind === 'flv' || kind === 'mpegts') return this.give(pieces, { type: 'unplayable', container: kind });
      // Not a stream start: the middle of a stream (a receiver that joined without the header).
      // Drop the first message and look again from the next one.
      pieces.push({ type: 'skipped', bytes: this.sniffed.shift()!.byteLength });
    }
    return pieces;
  }

  private start(kind: 'webm' | 'fmp4'): void {
    const events: ParserEvents = {
      restart: (at) => this.events.push({ kind: 'restart', at }),
      initPart: (part) => this.events.push({ kind: 'init', start: part.start, end: part.end }),
      tracks: (tracks) => this.events.push({ kind: 'tracks', tracks, codecs: this.parser!.codecStrings }),
      keyframe: (_at, time) => this.events.push({ kind: 'keyframe', time }),
      keyframeEnd: () => undefined,
    };
    this.container = kind;
    this.parser = kind === 'webm' ? new WebmParser(events) : new Fmp4Parser(events);
    this.pending = { at: 0 };
  }

  private feed(bytes: Uint8Array): SplitPiece[] {
    const pieces: SplitPiece[] = [];
    this.unsent.push(bytes);
    this.position += bytes.byteLength;
    try {
      this.parser!.push(bytes);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (this.pending !== undefined) return this.give(pieces, { type: 'unplayable', container: 'opaque', reason });
      // It played until here: hand on the rest unparsed and let the decoder judge.
      this.passThrough = true;
      this.emitMedia(this.position, pieces);
      return pieces;
    }
    const events = this.events;
    this.events = [];
    for (const event of events) {
      const pending = this.pending;
      if (event.kind === 'restart') {
        if (pending === undefined) this.emitMedia(event.at, pieces);
        else this.drop(event.at); // a start without media: nothing to play from it
        this.pending = { at: event.at };
      } else if (pending === undefined) {
        continue;
      } else if (event.kind === 'tracks') {
        pending.tracks = event.tracks;
        pending.codecs = event.codecs;
      } else if (event.kind === 'init') {
        pending.at = event.start;
        pending.initEnd = event.end;
        if (pending.tracks === undefined) {
          // Media before any track list (an MP4 fragment without its moov): the middle of a stream.
          pieces.push({ type: 'skipped', bytes: event.end - this.sentUpTo });
          this.pending = undefined;
          this.reset();
          return pieces;
        }
      } else if (pending.initEnd !== undefined) {
        this.emitStart(pending, event.time, pieces);
      }
    }
    const pending = this.pending;
    if (pending === undefined) {
      // Not the bytes the parser has not read yet: they may begin the next stream's header.
      this.emitMedia(Math.min(this.position, this.parser!.retainFrom), pieces);
    } else if (this.position - pending.at > MAX_START_BYTES) {
      if (pending.initEnd !== undefined) return [...pieces, ...this.flush()];
      return this.give(pieces, { type: 'unplayable', container: 'opaque', reason: `no complete ${this.container === 'webm' ? 'WebM track list' : 'MP4 moov'} in the first ${MAX_START_BYTES} bytes` });
    }
    return pieces;
  }

  private emitStart(pending: Pending, firstTimeMs: number | undefined, pieces: SplitPiece[]): void {
    this.drop(pending.at);
    const init = this.take(pending.initEnd!);
    const tracks = pending.tracks ?? [];
    const codecs = pending.codecs ?? [];
    const hasVideo = tracks.some((track) => track.type === 'video');
    const container = this.container!;
    pieces.push({ type: 'start', start: { container, init, tracks, codecs, mimeType: mediaSourceType(container, codecs, hasVideo), firstTimeMs } });
    this.pending = undefined;
  }

  private emitMedia(upTo: number, pieces: SplitPiece[]): void {
    if (upTo > this.sentUpTo) pieces.push({ type: 'media', bytes: this.take(upTo) });
  }

  /** Goes back to looking for a stream start at the next message. */
  private reset(): void {
    this.parser = undefined;
    this.container = undefined;
    this.unsent = [];
    this.sentUpTo = this.position = 0;
  }

  private give(pieces: SplitPiece[], last: SplitPiece): SplitPiece[] {
    this.done = true;
    this.unsent = [];
    this.sniffed = [];
    return [...pieces, last];
  }

  /** The unsent bytes up to stream offset `upTo`, in one piece (copied only when they span messages). */
  private take(upTo: number): Uint8Array {
    const parts: Uint8Array[] = [];
    let left = upTo - this.sentUpTo;
    while (left > 0) {
      const first = this.unsent[0]!;
      if (first.byteLength <= left) {
        parts.push(first);
        this.unsent.shift();
        left -= first.byteLength;
      } else {
        parts.push(first.subarray(0, left));
        this.unsent[0] = first.subarray(left);
        left = 0;
      }
    }
    this.sentUpTo = upTo;
    return concatBytes(parts);
  }

  private drop(upTo: number): void {
    if (upTo > this.sentUpTo) this.take(upTo);
  }
}

/** The message starts with a whole stream signature: an EBML header ID, or an MP4 `ftyp` box. */
function beginsStream(bytes: Uint8Array, container: 'webm' | 'fmp4'): boolean {
  if (container === 'webm') return sniffContainer(bytes.subarray(0, 4)) === 'webm';
  return bytes.byteLength >= 8 && String.fromCharCode(bytes[4]!, bytes[5]!, bytes[6]!, bytes[7]!) === 'ftyp';
}

