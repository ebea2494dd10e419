import type uWS from 'uWebSockets.js';

const REASONS: Record<number, string> = {
  200: 'OK',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  503: 'Service Unavailable',
};

export interface HttpAnswer {
  status: number;
  /** A string is sent as is (with `contentType`); anything else as JSON. */
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

/** Writes an answer inside cork; with `headOnly` the body is left out but its length reported. */
export function send(res: uWS.HttpResponse, answer: HttpAnswer, headOnly = false): void {
  const text = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body, null, 2) + '\n';
  const contentType = answer.contentType ?? (typeof answer.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8');
  res.cork(() => {
    res.writeStatus(`${answer.status} ${REASONS[answer.status] ?? ''}`.trim());
    if (answer.body !== undefined) res.writeHeader('Content-Type', contentType);
    res.writeHeader('Cache-Control', 'no-store');
    for (const [name, value] of Object.entries(answer.headers ?? {})) res.writeHeader(name, value);
    if (headOnly) res.endWithoutBody(Buffer.byteLength(text));
    else res.end(text);
  });
}

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
