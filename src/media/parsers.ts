import { Fmp4Parser } from './fmp4.js';
import { FlvParser } from './flv.js';
import { MpegTsParser } from './mpegts.js';
import { sniffContainer } from './sniff.js';
import type { ContainerKind, ContainerParser, InitPart, ParserEvents, TrackInfo } from './types.js';
import { WebmParser } from './webm.js';

export function createParser(kind: ContainerKind, events: ParserEvents): ContainerParser {
  switch (kind) {
    case 'webm':
      return new WebmParser(events);
    case 'flv':
      return new FlvParser(events);
    case 'mpegts':
      return new MpegTsParser(events);
    case 'fmp4':
      return new Fmp4Parser(events);
  }
}

/** Everything a parser reported about a whole buffer. */
export interface ParseSummary {
  readonly container: ContainerKind | 'opaque';
  readonly initParts: InitPart[];
  /** Keyframe point offsets, in order. */
  readonly keyframes: number[];
  readonly keyframeEnds: number[];
  readonly restarts: number[];
  readonly tracks: readonly TrackInfo[];
  /** Set when the bytes stopped parsing as the container (the server then treats the stream as opaque). */
  readonly error?: string;
}

/**
 * Sniffs and parses a whole buffer fed in chunks of `chunkSize` bytes, as the server does on
 * the publisher side. For tests and for the benchmark of parse cost (`npm run bench`, issue 3's
 * scenario g): time this against a plain loop over the same chunks.
 */
export function parseBuffer(buffer: Uint8Array, chunkSize = 64 * 1024, kind?: ContainerKind): ParseSummary {
  const container = kind ?? sniffContainer(buffer.subarray(0, 4096)) ?? 'opaque';
  const summary = { container, initParts: [] as InitPart[], keyframes: [] as number[], keyframeEnds: [] as number[], restarts: [] as number[], tracks: [] as readonly TrackInfo[] };
  if (container === 'opaque') return summary;
  const parser = createParser(container, {
    initPart: (part) => summary.initParts.push(part),
    restart: (offset) => summary.restarts.push(offset),
    keyframe: (offset) => summary.keyframes.push(offset),
    keyframeEnd: (offset) => summary.keyframeEnds.push(offset),
    tracks: (tracks) => (summary.tracks = tracks),
  });
  try {
    for (let at = 0; at < buffer.byteLength; at += chunkSize) parser.push(buffer.subarray(at, Math.min(at + chunkSize, buffer.byteLength)));
  } catch (error) {
    return { ...summary, error: error instanceof Error ? error.message : String(error) };
  }
  return summary;
}
