// The probe connection: the server sends the stream's first chunk (the oldest cached one, or the
// next live one) and closes. The page says what it reads from it (container, codecs, picture size).

import { probe as probeStream } from '../src/client/receiver.js';
import { pageStreamUrl } from './link.js';
import { describeChunk } from './describe.js';

export interface ProbeResult {
  readonly size: number;
  /** E.g. `WEBM, vp8 + opus, 640×360`. */
  readonly description: string;
}

export interface Probe {
  readonly result: Promise<ProbeResult>;
  cancel(): void;
}

/** Waits (for a publisher, if there is none yet) for the first chunk; rejects with the reason it failed. */
export function probe(channel: string, key: string): Probe {
  const controller = new AbortController();
  const result = probeStream(pageStreamUrl(channel, key, 'probe'), { signal: controller.signal }).then((bytes) => ({
    size: bytes.byteLength,
    description: describeChunk(bytes),
  }));
  return { result, cancel: () => controller.abort(new Error('Cancelled.')) };
}
