import { parseWebSocketUrl } from '../config/parsers.js';

/**
 * ORIGIN_URL: empty (not an edge), or comma-separated ws:// / wss:// base URLs, each possibly
 * with a path prefix (a reverse proxy's), without query, fragment or credentials; a trailing
 * `/` is dropped, as `/<channel>/<key>/receive` is appended.
 */
export function parseOriginUrls(raw: string): readonly string[] {
  if (raw.trim() === '') return [];
  return raw.split(',').map((part) => {
    const text = part.trim();
    if (text === '') throw new Error(`"${raw}" has an empty entry`);
    const url = new URL(parseWebSocketUrl(text));
    if (url.search !== '' || url.hash !== '') throw new Error(`"${text}" must not have a query or fragment: give the base URL, /<channel>/<key>/receive is appended`);
    if (url.username !== '' || url.password !== '') throw new Error(`an entry contains credentials (user:password@): not supported`);
    return url.href.replace(/\/+$/, '');
  });
}
