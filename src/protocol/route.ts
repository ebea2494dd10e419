import { Rejections } from './errors.js';
import type { UpgradeRejection } from './errors.js';

export const CONNECTION_KINDS = ['publish', 'receive', 'receive-clear-cache', 'probe'] as const;
export type ConnectionKind = (typeof CONNECTION_KINDS)[number];

export interface StreamRoute {
  readonly channel: string;
  readonly key: string;
  readonly kind: ConnectionKind;
}

export type RouteResult =
  | { readonly ok: true; readonly route: StreamRoute }
  /** The path has the stream shape (three segments) but a bad part. */
  | { readonly ok: false; readonly rejection: UpgradeRejection }
  /** Not a stream path at all (other routes may serve it). */
  | { readonly ok: false; readonly rejection: null };

const ID_PATTERN = /^[A-Za-z0-9_-]+$/;

/** Channel and key rule: letters, digits, `-`, `_`; 1 to `maxLength` characters. */
export function isValidId(id: string, maxLength: number): boolean {
  return id.length > 0 && id.length <= maxLength && ID_PATTERN.test(id);
}

/**
 * Parses `/<CHANNEL>/<KEY>/<KIND>`. `path` must be the path without the query string
 * (uWebSockets.js' getUrl() already strips it); a query string is stripped here anyway.
 * Checks in the Go server's order: channel, key, kind.
 */
export function parseStreamRoute(path: string, idMaxLength: number): RouteResult {
  const queryAt = path.indexOf('?');
  const parts = (queryAt === -1 ? path : path.slice(0, queryAt)).split('/');
  if (parts.length !== 4 || parts[0] !== '') return { ok: false, rejection: null };
  const [, channel = '', key = '', kind = ''] = parts;
  if (!isValidId(channel, idMaxLength)) return { ok: false, rejection: Rejections.INVALID_CHANNEL };
  if (!isValidId(key, idMaxLength)) return { ok: false, rejection: Rejections.INVALID_KEY };
  if (!isConnectionKind(kind)) return { ok: false, rejection: Rejections.INVALID_KIND };
  return { ok: true, route: { channel, key, kind } };
}

function isConnectionKind(kind: string): kind is ConnectionKind {
  return (CONNECTION_KINDS as readonly string[]).includes(kind);
}

