/**
 * The client's address, for per-address rate limits: from the header a trusted load balancer sets, when one is
 * configured (HOP_CLIENT_IP_HEADER; its right-most entry, the one that proxy added), else from the runtime (the
 * connection's peer on Node and Bun, `cf-connecting-ip` on Workers). Counters key an IPv6 client by its /64, the
 * block one subscriber usually holds, so that rotating addresses within it gains nothing.
 */

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const HEXTET = /^[0-9a-f]{1,4}$/;

// Keys of recent IPv6 addresses: parsing one costs microseconds, a lookup tens of nanoseconds (the redirect's budget).
const ipv6Keys = new Map<string, string | undefined>();

/**
 * The counter key of an address: an IPv4 address as it is (also when written IPv4-mapped, as a dual-stack socket
 * reports it), an IPv6 address as its /64 prefix. Undefined when `address` is not an IP address.
 */
export function addressKey(address: string): string | undefined {
  let text = address.trim();
  if (IPV4.test(text)) return text;
  text = text.toLowerCase();
  if (text.startsWith('::ffff:') && IPV4.test(text.slice(7))) return text.slice(7);
  // Some proxies write a port: 192.0.2.1:51234 or [2001:db8::1]:51234.
  if (text.startsWith('[')) text = text.slice(1, text.indexOf(']') === -1 ? text.length : text.indexOf(']'));
  else if (/^[\d.]+:\d+$/.test(text)) return addressKey(text.slice(0, text.indexOf(':')));
  // No address is longer (45 characters, a zone id of up to 16): anything else is not one, and is not memorised.
  if (text.length > 64) return undefined;
  let key = ipv6Keys.get(text);
  if (key === undefined && !ipv6Keys.has(text)) {
    key = ipv6Key(text);
    if (ipv6Keys.size >= 4096) ipv6Keys.clear();
    ipv6Keys.set(text, key);
  }
  return key;
}

/** The /64 of an IPv6 address (lower case; a zone or an IPv4 tail allowed), or undefined when it is not one. */
function ipv6Key(address: string): string | undefined {
  let text = address.split('%')[0]!;
  const last = text.slice(text.lastIndexOf(':') + 1);
  if (last.includes('.')) {
    // An IPv4 tail (64:ff9b::192.0.2.1) stands for the last two groups.
    if (!IPV4.test(last)) return undefined;
    text = `${text.slice(0, -last.length)}0:0`;
  }
  const halves = text.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length > 2 || (halves.length === 2 ? missing < 1 : missing !== 0)) return undefined;
  const groups = [...head, ...Array<string>(missing).fill('0'), ...rest];
  if (!groups.every((g) => HEXTET.test(g))) return undefined;
  const [a, b, c, d, e, f, g, h] = groups.map((x) => parseInt(x, 16)) as number[];
  // IPv4-mapped in hex (::ffff:c000:201) is that IPv4 address.
  if (!(a! | b! | c! | d! | e!) && f === 0xffff) return `${g! >> 8}.${g! & 255}.${h! >> 8}.${h! & 255}`;
  return `${[a, b, c, d].map((x) => x!.toString(16)).join(':')}::/64`;
}

/** The key of the configured header's right-most entry, else of the runtime's address; `unknown` when neither is one. */
export function clientKey(headerValue: string | null | undefined, peer: string | undefined): string {
  if (headerValue) {
    const entries = headerValue.split(',');
    const key = addressKey(entries[entries.length - 1]!);
    if (key) return key;
  }
  return (peer !== undefined && addressKey(peer)) || 'unknown';
}
