// Value parsers for settings. Each throws an Error whose message describes the problem;
// the loader prefixes it with the setting's env var and flag.

import { availableParallelism } from 'node:os';
import { IpList, parseAddress } from './ip-list.js';

export { IpList };

export interface NumberRule {
  integer?: boolean;
  min: number;
  max: number;
}

export function parseNumber(raw: string, rule: NumberRule): number {
  const text = raw.trim();
  // Number('') is 0 and Number('0x10') is 16: accept plain decimal notation only.
  if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(text)) throw new Error(`"${raw}" is not a number`);
  const value = Number(text);
  if (rule.integer === true && !Number.isInteger(value)) throw new Error(`"${raw}" is not a whole number`);
  if (value < rule.min || value > rule.max) {
    throw new Error(`${raw} is out of range (${formatBound(rule.min)} to ${formatBound(rule.max)})`);
  }
  return value;
}

function formatBound(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(3);
}

const TRUE_WORDS = new Set(['yes', 'true', '1', 'on']);
const FALSE_WORDS = new Set(['no', 'false', '0', 'off']);

export function parseBoolean(raw: string): boolean {
  const word = raw.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new Error(`"${raw}" is not YES or NO`);
}

export function parseString(raw: string): string {
  return raw.trim();
}

export function parseIpList(raw: string): IpList {
  return IpList.parse(raw);
}

/** Empty, or an absolute ws:// or wss:// URL. */
export function parseWebSocketUrl(raw: string): string {
  const text = raw.trim();
  if (text === '') return '';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`"${raw}" is not a URL`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error(`"${raw}" must start with ws:// or wss://`);
  return url.toString();
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  /** True for 127.0.0.0/8 and ::1: only this machine can connect. */
  readonly loopback: boolean;
}

/** `host:port`, `[ipv6]:port`, or `off` (null). */
export function parseListenAddress(raw: string): ListenAddress | null {
  const text = raw.trim();
  if (text.toLowerCase() === 'off') return null;
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d+)$/.exec(text);
  if (match === null) throw new Error(`"${raw}" is not host:port, [ipv6]:port or off`);
  const host = match[1] ?? match[2] ?? '';
  const port = parseNumber(match[3] ?? '', { integer: true, min: 1, max: 65535 });
  const address = parseAddress(host);
  if (address === undefined && host !== 'localhost') throw new Error(`"${host}" is not an IP address`);
  const loopback = host === 'localhost' || address?.range() === 'loopback';
  return { host: host === 'localhost' ? '127.0.0.1' : host, port, loopback };
}

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

/** WORKERS: `auto` (one thread per core) or a count. */
export function parseWorkers(raw: string): number {
  if (raw.trim().toLowerCase() === 'auto') return availableParallelism();
  return parseNumber(raw, { integer: true, min: 1, max: 256 });
}
