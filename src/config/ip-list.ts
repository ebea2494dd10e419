import ipaddr from 'ipaddr.js';

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * A parsed list of IPs and CIDR ranges (IPv4 and IPv6). IPv4-mapped IPv6 addresses, on
 * either side, are treated as the IPv4 address they carry, so `127.0.0.1` matches a peer
 * seen as `::ffff:127.0.0.1` on a dual-stack listener.
 */
export class IpList {
  private constructor(
    /** The text it was parsed from, for logs and the config summary. */
    readonly source: string,
    readonly matchesAll: boolean,
    private readonly ranges: readonly Range[],
  ) {}

  static readonly empty = new IpList('', false, []);

  /** Throws an Error naming the first bad entry. */
  static parse(text: string): IpList {
    const entries = text
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '');
    if (entries.includes('*')) return new IpList(text, true, []);
    const ranges = entries.map((entry) => {
      try {
        return normaliseRange(entry.includes('/') ? ipaddr.parseCIDR(entry) : singleAddress(entry));
      } catch {
        throw new Error(`"${entry}" is not an IP address or CIDR range`);
      }
    });
    return new IpList(text, false, ranges);
  }

  get isEmpty(): boolean {
    return !this.matchesAll && this.ranges.length === 0;
  }

  /** `address` is any textual IP (including uWebSockets.js' long IPv6 form); false when unparsable. */
  includes(address: string): boolean {
    if (this.matchesAll) return true;
    const parsed = parseAddress(address);
    if (parsed === undefined) return false;
    return this.ranges.some(([base, bits]) => base.kind() === parsed.kind() && parsed.match(base, bits));
  }
}

/** Parses and normalises a peer address: IPv4-mapped IPv6 becomes IPv4. */
export function parseAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  try {
    return ipaddr.process(address);
  } catch {
    return undefined;
  }
}

/** Canonical text of a peer address (`127.0.0.1`, `::1`), or the input when unparsable. */
export function canonicalAddress(address: string): string {
  return parseAddress(address)?.toString() ?? address;
}

function singleAddress(text: string): Range {
  const address = ipaddr.parse(text);
  return [address, address.kind() === 'ipv4' ? 32 : 128];
}

function normaliseRange([base, bits]: Range): Range {
  if (base.kind() === 'ipv6' && bits >= 96 && (base as ipaddr.IPv6).isIPv4MappedAddress()) {
    return [(base as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return [base, bits];
}
