// What the page says about a stream, from what the shared parsers (src/media) read in it.
import { StreamSplitter } from '../src/media/stream-splitter.js';
import type { StreamStart } from '../src/media/stream-splitter.js';

/** E.g. `WEBM, vp8 + opus, 640×360`. */
export function describeStart(start: StreamStart): string {
  const parts = [start.container === 'webm' ? 'WEBM' : 'MP4'];
  if (start.codecs.length > 0) parts.push(start.codecs.join(' + '));
  const video = start.tracks.find((track) => track.type === 'video' && track.width !== undefined);
  if (video !== undefined) parts.push(`${video.width}×${video.height}`);
  return parts.join(', ');
}

/** What one chunk (a probe's) is: its container, codecs and picture size as far as it tells. */
export function describeChunk(bytes: Uint8Array): string {
  const splitter = new StreamSplitter();
  const pieces = [...splitter.push(bytes), ...splitter.flush()];
  for (const piece of pieces) {
    if (piece.type === 'start') return describeStart(piece.start);
    if (piece.type === 'unplayable') return piece.container === 'flv' ? 'FLV' : piece.container === 'mpegts' ? 'MPEG-TS' : 'neither WebM nor MP4';
  }
  return pieces.some((piece) => piece.type === 'skipped') ? 'the middle of a stream, without its header' : 'too short to tell';
}
