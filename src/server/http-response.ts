import type uWS from 'uWebSockets.js';
import type { UpgradeRejection } from '../protocol/errors.js';

/** Reason phrases for the statuses the server answers with. */
const REASONS: Record<number, string> = {
  200: 'OK',
  204: 'No Content',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export interface HttpAnswer {
  status: number;
  /** Reason phrase; by default the standard one for the status. */
  reason?: string;
  /** A string or bytes are sent as is (with `contentType`, default text/plain); anything else as JSON. */
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  /** For HEAD: the length to report when the body is not at hand (default: the body's). */
  length?: number;
}

/** Statuses that never carry a body, nor a Content-Length (RFC 9110: 204, and 304 says nothing new). */
const BODILESS = new Set([204, 304]);

/**
 * Writes a whole answer inside cork (uWebSockets.js needs that outside its own callbacks);
 * with `headOnly` the body is left out but its length reported, as HEAD requires.
 */
export function send(res: uWS.HttpResponse, answer: HttpAnswer, headOnly = false): void {
  const { body } = answer;
  const bodiless = BODILESS.has(answer.status);
  // uWebSockets.js does not count `endWithoutBody` as an answer: a handler returning after it
  // with no abort handler attached aborts the whole process. Answered now, nothing to abort.
  if (headOnly || bodiless) res.onAborted(ignoreAbort);
  const raw = typeof body === 'string' || body instanceof Uint8Array;
  const payload: string | Uint8Array = body === undefined ? '' : raw ? body : JSON.stringify(body, null, 2) + '\n';
  const contentType = answer.contentType ?? (raw ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8');
  res.cork(() => {
    res.writeStatus(`${answer.status} ${answer.reason ?? REASONS[answer.status] ?? ''}`.trim());
    if (body !== undefined) res.writeHeader('Content-Type', contentType);
    for (const [name, value] of Object.entries(answer.headers ?? {})) res.writeHeader(name, value);
    if (bodiless) res.endWithoutBody();
    else if (headOnly) res.endWithoutBody(answer.length ?? Buffer.byteLength(payload));
    else res.end(payload);
  });
}

function ignoreAbort(): void {}

/** The plain-text answer to a refused request, as the Go server gives it. */
export function sendRejection(res: uWS.HttpResponse, rejection: UpgradeRejection, headers?: Record<string, string>): void {
  send(res, { status: rejection.status, reason: rejection.reason, body: rejection.body, ...(headers === undefined ? {} : { headers }) });
}
