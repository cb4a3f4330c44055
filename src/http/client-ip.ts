/**
 * The client's address, for per-address rate limits: from the header a trusted load balancer sets, when one is
 * configured (HOP_CLIENT_IP_HEADER; its right-most entry, the one that proxy added), else from the runtime (the
 * connection's peer on Node and Bun, `cf-connecting-ip` on Workers). Counters key an IPv6 client by its /64, the
 * block one subscriber usually holds, so that rotating addresses within it gains nothing.
 */

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const HEXTET = /^[0-9a-f]{1,4}$/;

/** The eight hextets of an IPv6 address (lower case, without leading zeros or zone), or undefined. */
function ipv6Hextets(address: string): string[] | undefined {
  let text = address.toLowerCase();
  if (text.includes('%')) text = text.slice(0, text.indexOf('%'));
  const lastColon = text.lastIndexOf(':');
  if (lastColon === -1) return undefined;
  const tail: string[] = [];
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    // An IPv4 tail (::ffff:192.0.2.1) stands for the last two hextets.
    if (!IPV4.test(last)) return undefined;
    const [a, b, c, d] = last.split('.').map(Number) as [number, number, number, number];
    tail.push(((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
    text = text[lastColon - 1] === ':' ? text.slice(0, lastColon + 1) : text.slice(0, lastColon);
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === '' ? [] : part.split(':'));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const given = head.length + rest.length + tail.length;
  if (halves.length === 2 ? given > 7 : given !== 8) return undefined;
  const hextets = [...head, ...Array<string>(8 - given).fill('0'), ...rest];
  if (!hextets.every((h) => HEXTET.test(h))) return undefined;
  return [...hextets.map((h) => h.replace(/^0+(?=.)/, '')), ...tail];
}

/**
 * The counter key of an address: an IPv4 address as it is (also when written IPv4-mapped, as a dual-stack socket
 * reports it), an IPv6 address as its /64 prefix. Undefined when `address` is not an IP address.
 */
export function addressKey(address: string): string | undefined {
  let text = address.trim();
  // Some proxies write a port: 192.0.2.1:51234 or [2001:db8::1]:51234.
  if (text.startsWith('[')) text = text.slice(1, text.indexOf(']') === -1 ? text.length : text.indexOf(']'));
  else if (/^[\d.]+:\d+$/.test(text)) text = text.slice(0, text.indexOf(':'));
  if (IPV4.test(text)) return text;
  const hextets = ipv6Hextets(text);
  if (!hextets) return undefined;
  if (hextets.slice(0, 5).every((h) => h === '0') && hextets[5] === 'ffff') {
    const [hi, lo] = [parseInt(hextets[6]!, 16), parseInt(hextets[7]!, 16)];
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return `${hextets.slice(0, 4).join(':')}::/64`;
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
