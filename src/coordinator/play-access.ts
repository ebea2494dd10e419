import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IpList } from '../config/ip-list.js';
import type { PublishAuthorizer } from './authorizer.js';

// Play tokens (PLAY_TOKEN_SECRET): `<expiry>-<tag><mac>`, accepted in the key position of
// receive, receive-clear-cache and probe for one channel until `expiry`. The format is public
// (docs/access.md): web apps mint tokens themselves, in any language.
//
//   expiry = Unix time in seconds, decimal, no leading zero
//   tag    = first 4 characters of base64url(SHA-256(channel))        (not secret: says "which channel" in logs)
//   mac    = first 22 characters of base64url(HMAC-SHA256(secret, "play\n" + channel + "\n" + expiry))
//
// The "play\n" prefix and the newlines keep the signed bytes apart from STREAM_KEY_SECRET's
// (the bare channel name, which never contains a newline), so even with the same secret a play
// token's MAC is never a publish key's; a token (with its `-` and 37 characters) never has the
// shape of a derived key (64 hex digits) either.

/** Characters of the channel tag and of the MAC in a token. */
const TAG_LENGTH = 4;
const MAC_LENGTH = 22;
const TOKEN_PATTERN = /^([1-9][0-9]{0,11})-([A-Za-z0-9_-]{4})([A-Za-z0-9_-]{22})$/;
/** Length of a token with a 10-digit expiry (until the year 2286). */
export const PLAY_TOKEN_LENGTH = 10 + 1 + TAG_LENGTH + MAC_LENGTH;

/** The exact bytes (UTF-8) a play token's MAC signs. */
export function playTokenMessage(channel: string, expiresAt: number): string {
  return `play\n${channel}\n${expiresAt}`;
}

function channelTag(channel: string): string {
  return createHash('sha256').update(channel, 'utf8').digest('base64url').slice(0, TAG_LENGTH);
}

function playTokenMac(secret: string, channel: string, expiresAt: string | number): string {
  return createHmac('sha256', secret).update(playTokenMessage(channel, Number(expiresAt)), 'utf8').digest('base64url').slice(0, MAC_LENGTH);
}

/** A play token for `channel`, valid until `expiresAt` (Unix seconds, an integer). */
export function mintPlayToken(secret: string, channel: string, expiresAt: number): string {
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 1 || expiresAt > 999_999_999_999) throw new RangeError(`bad expiry time ${expiresAt}`);
  return `${expiresAt}-${channelTag(channel)}${playTokenMac(secret, channel, expiresAt)}`;
}

/** Why a key is not a valid play token for a channel (logged; the client gets the wrong-key answer). */
export type PlayTokenProblem = 'malformed' | 'wrong channel' | 'tampered' | 'expired';

export type PlayTokenCheck = { readonly valid: true } | { readonly valid: false; readonly problem: PlayTokenProblem };

/** Checks `key` as a play token for `channel` at `nowSeconds`; the MAC is compared in constant time. */
export function checkPlayToken(secret: string, channel: string, key: string, nowSeconds: number): PlayTokenCheck {
  const match = TOKEN_PATTERN.exec(key);
  if (match === null) return { valid: false, problem: 'malformed' };
  const [, expiry = '', tag = '', mac = ''] = match;
  if (tag !== channelTag(channel)) return { valid: false, problem: 'wrong channel' };
  if (!timingSafeEqual(Buffer.from(mac), Buffer.from(playTokenMac(secret, channel, expiry)))) return { valid: false, problem: 'tampered' };
  if (Number(expiry) <= nowSeconds) return { valid: false, problem: 'expired' };
  return { valid: true };
}

const PROBLEM_TEXT: Record<PlayTokenProblem, string> = {
  malformed: 'malformed play token',
  'wrong channel': 'play token of another channel',
  tampered: 'play token with a bad signature (tampered, or another secret)',
  expired: 'expired play token',
};

/**
 * What the server does with a receiver (`receive`, `receive-clear-cache`, `probe`):
 * - `granted`: it may view, whatever the publisher's key (a play token or a keys-file play key);
 * - `key`: today's rule, its key must be the live publisher's (checked by the channel);
 * - `refused`: the wrong-key answer now. `reason` (and `note` for `key`) says why, for the log;
 *   neither ever contains the key.
 */
export type ViewDecision =
  | { readonly verdict: 'granted'; readonly via: 'play token' | 'play key' }
  | { readonly verdict: 'key'; readonly note?: string }
  | { readonly verdict: 'refused'; readonly reason: string };

export interface PlayAccessOptions {
  /** PLAY_TOKEN_SECRET; empty: no tokens, keys work as they always did. */
  readonly tokenSecret: string;
  /** PLAY_REQUIRES_TOKEN: outside `internalReceivers`, only a play token views. */
  readonly requireToken: boolean;
  /** INTERNAL_RECEIVERS: encoders, edges. */
  readonly internalReceivers: IpList;
  /** Unix time in seconds (tests may pass a clock). */
  readonly now?: () => number;
}

/** Who may view a channel: play tokens, play keys, the publisher's key. Checked once, when a receiver connects. */
export class PlayAccess {
  private readonly now: () => number;

  constructor(
    private readonly options: PlayAccessOptions,
    private readonly authorizer: PublishAuthorizer,
  ) {
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  get tokensEnabled(): boolean {
    return this.options.tokenSecret !== '';
  }

  /** True when `key` is a play token signed for `channel` (expired or not): it must never publish. */
  isPlayToken(channel: string, key: string): boolean {
    if (!this.tokensEnabled) return false;
    const check = checkPlayToken(this.options.tokenSecret, channel, key, this.now());
    return check.valid || check.problem === 'expired';
  }

  decide(channel: string, key: string, ip: string): ViewDecision {
    let problem: PlayTokenProblem | undefined;
    if (this.tokensEnabled) {
      const check = checkPlayToken(this.options.tokenSecret, channel, key, this.now());
      if (check.valid) return { verdict: 'granted', via: 'play token' };
      problem = check.problem;
      // A key of the token's exact shape is a token: no key is tried for it.
      if (problem !== 'malformed') return { verdict: 'refused', reason: PROBLEM_TEXT[problem] };
    }
    if (this.options.requireToken && !this.options.internalReceivers.includes(ip)) {
      return { verdict: 'refused', reason: `PLAY_REQUIRES_TOKEN and not in INTERNAL_RECEIVERS: ${PROBLEM_TEXT[problem ?? 'malformed']}` };
    }
    const tokenNote = problem === undefined ? '' : `; not a play token either: ${PROBLEM_TEXT[problem]}`;
    if (this.authorizer.isPlayKey?.(channel, key) === true) return { verdict: 'granted', via: 'play key' };
    if (this.authorizer.isReceiverKeyValid?.(channel, key) === false) return { verdict: 'refused', reason: `not a key of the channel${tokenNote}` };
    return problem === undefined ? { verdict: 'key' } : { verdict: 'key', note: `not the publisher's key${tokenNote}` };
  }
}

const TTL_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
/** Longest `--ttl` of `ws-stream-server token`: ten years. */
const MAX_TTL_SECONDS = 3650 * 86_400;

/** A token lifetime such as `90s`, `15m`, `1h`, `2d`, in seconds. Throws an Error saying what is expected. */
export function parseTokenTtl(raw: string): number {
  const match = /^([0-9]{1,9})([smhd])$/.exec(raw.trim());
  const seconds = match === null ? NaN : Number(match[1]) * TTL_UNITS[match[2]!]!;
  if (!(seconds > 0 && seconds <= MAX_TTL_SECONDS)) {
    throw new Error(`"${raw}" is not a lifetime: expected a positive whole number with s, m, h or d (e.g. 90s, 15m, 1h, 2d), at most 3650d`);
  }
  return seconds;
}
