// The probe connection: the server sends the stream's first chunk (the oldest cached one, or the
// next live one) and closes. The page reads the container, codecs and picture size from it.

import { StreamSocket, streamUrl } from './connection.js';
import { sniffMedia } from './media-info.js';
import type { MediaInfo } from './media-info.js';

export interface ProbeResult {
  readonly size: number;
  readonly info: MediaInfo;
}

export interface Probe {
  readonly result: Promise<ProbeResult>;
  cancel(): void;
}

/** Waits (for a publisher, if there is none yet) for the first chunk; rejects with the reason it failed. */
export function probe(channel: string, key: string): Probe {
  let socket: StreamSocket | undefined;
  const result = new Promise<ProbeResult>((resolve, reject) => {
    let got: ProbeResult | undefined;
    socket = new StreamSocket(streamUrl(channel, key, 'probe'), {
      binary: (data) => {
        const bytes = new Uint8Array(data);
        got ??= { size: bytes.length, info: sniffMedia(bytes) };
      },
      close: (closed) => {
        if (got !== undefined) resolve(got);
        else reject(new Error(closed.serverError ?? closed.explanation));
      },
    });
  });
  return { result, cancel: () => socket?.close() };
}
