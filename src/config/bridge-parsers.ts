// Parsers for the bridge and recording settings (see src/config/settings.ts). Each throws an
// Error describing the problem; the config loader prefixes it with the setting's name and flag.
// No imports: the config table depends on this file; the bridge only receives parsed values.

/** The placeholders BRIDGE_RTMP_URL may contain. */
export const RTMP_URL_PLACEHOLDERS = ['{channel}', '{streamId}'] as const;

/**
 * BRIDGE_RTMP_URL: empty (no RTMP push), or an `rtmp://` / `rtmps://` URL template whose only
 * placeholders are `{channel}` and `{streamId}`.
 */
export function parseRtmpTemplate(raw: string): string {
  const text = raw.trim();
  if (text === '') return '';
  const unknown = text.replace(/\{channel\}|\{streamId\}/g, '').match(/\{[^}]*\}?/);
  if (unknown !== null) throw new Error(`unknown placeholder "${unknown[0]}" (only {channel} and {streamId} are replaced)`);
  let url: URL;
  try {
    url = new URL(text.replace(/\{channel\}|\{streamId\}/g, 'x'));
  } catch {
    throw new Error('not a URL (expected e.g. rtmp://127.0.0.1/live/{channel})');
  }
  if (url.protocol !== 'rtmp:' && url.protocol !== 'rtmps:') throw new Error(`must start with rtmp:// or rtmps:// (got ${url.protocol}//)`);
  if (url.hostname === '') throw new Error('has no host');
  if (/\s/.test(text)) throw new Error('must not contain spaces');
  return text;
}

/** A bitrate as ffmpeg writes it: `2500k`, `4M`, `800000`. Returned normalised (`2500k`). */
export function parseBitrate(raw: string): string {
  const match = /^(\d+(?:\.\d+)?)\s*([kKmM]?)$/.exec(raw.trim());
  if (match === null) throw new Error(`"${raw}" is not a bitrate (e.g. 2500k or 4M)`);
  const unit = (match[2] ?? '').toLowerCase();
  const bits = Number(match[1]) * (unit === 'k' ? 1e3 : unit === 'm' ? 1e6 : 1);
  if (bits < 16e3 || bits > 200e6) throw new Error(`${raw} is out of range (16k to 200M)`);
  return `${Math.round(bits / 1000)}k`;
}

/**
 * BRIDGE_EXTRA_ARGS: arguments split on white space, with '…' and "…" quoting (no escapes
 * inside single quotes; backslash escapes elsewhere). Never given to a shell.
 */
export function parseArgList(raw: string): readonly string[] {
  const args: string[] = [];
  let current = '';
  let started = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < raw.length; i++) {
    const char = raw[i]!;
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
      else if (char === '\\' && quote === '"' && i + 1 < raw.length) current += raw[++i];
      else current += char;
      continue;
    }
    if (/\s/.test(char)) {
      if (started) args.push(current);
      current = '';
      started = false;
      continue;
    }
    started = true;
    if (char === '"' || char === "'") quote = char;
    else if (char === '\\' && i + 1 < raw.length) current += raw[++i];
    else current += char;
  }
  if (quote !== undefined) throw new Error(`unterminated ${quote} quote`);
  if (started) args.push(current);
  const output = args.find((arg) => /^(-f|-i|-y)$/.test(arg));
  if (output !== undefined) throw new Error(`${output} is set by the bridge itself and cannot be given here`);
  return args;
}
