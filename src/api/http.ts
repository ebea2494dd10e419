import type uWS from 'uWebSockets.js';

export class BodyTooLarge extends Error {}

/** Reads a request body up to `limit` bytes. `res.onAborted` must already be attached. */
export function readBody(res: uWS.HttpResponse, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let failed = false;
    res.onData((chunk, isLast) => {
      if (failed) return;
      size += chunk.byteLength;
      if (size > limit) {
        failed = true;
        reject(new BodyTooLarge(`request body over ${limit} bytes`));
        return;
      }
      // The chunk is only valid during this call.
      parts.push(Buffer.from(chunk.slice(0)));
      if (isLast) resolve(Buffer.concat(parts));
    });
  });
}
