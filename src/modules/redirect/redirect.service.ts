/**
 * The redirect decision: (host, slug) → the host's domain → one indexed read → expiry, max clicks, device and geo targeting,
 * query forwarding and cache policy. Pure apart from that read, so it stays cheap and easy to test.
 */
import { SLUG_PATTERN } from '../links/links.schemas.ts';
import type { RedirectLink, RedirectLookup } from './redirect.lookup.ts';

export interface RedirectRequest {
  host: string;
  slug: string;
  /** The click's query string, with its leading `?`, or ''. */
  search: string;
  /** Read only when a link targets devices: most do not, and a header read is not free at this rate. */
  userAgent: () => string | undefined;
  /** ISO alpha-2 country from the trusted geo header, if any; read only for links with geo targets. */
  country: () => string | undefined;
  now: Date;
  /** Keeps background work (a cache fill) alive past the response (waitUntil on Workers). */
  defer?: (work: Promise<unknown>) => void;
}

export type RedirectOutcome =
  | { kind: 'redirect'; status: number; location: string; cacheControl: string; linkId: string; workspaceId: string }
  | { kind: 'gone' }
  | { kind: 'not_found' };

const IOS = /\b(iPhone|iPad|iPod)\b/;
const ANDROID = /\bAndroid\b/;

function decodedKey(piece: string): string {
  const raw = piece.slice(0, piece.includes('=') ? piece.indexOf('=') : piece.length).replaceAll('+', ' ');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/**
 * Adds the click's query parameters to the target; parameters the target already has keep its value.
 * Both queries are kept byte for byte (a signed target, a click's own encoding), only compared by decoded key,
 * and repeated click parameters keep every value.
 */
export function mergeQuery(target: string, search: string): string {
  if (search.length <= 1) return target;
  const url = new URL(target);
  const own = new Set(url.searchParams.keys());
  const extra = search
    .slice(1)
    .split('&')
    .filter((piece) => piece !== '' && !own.has(decodedKey(piece)));
  if (!extra.length) return target;
  url.search = url.search.length > 1 ? `${url.search}&${extra.join('&')}` : `?${extra.join('&')}`;
  return url.href;
}

export function pickTarget(link: RedirectLink, userAgent: string | undefined, country: string | undefined): string {
  if (userAgent) {
    if (link.iosUrl && IOS.test(userAgent)) return link.iosUrl;
    if (link.androidUrl && ANDROID.test(userAgent)) return link.androidUrl;
  }
  if (country && link.geo) return link.geo[country.toUpperCase()] ?? link.url;
  return link.url;
}

/**
 * The Cache-Control of a redirect. Links whose answer can change by click count are never cached, links that
 * vary by device or country only privately, and no cache outlives the link's expiry.
 */
export function cachePolicy(link: RedirectLink, now: Date): string {
  if (link.cacheMaxAge <= 0 || link.maxClicks !== null) return 'no-store';
  let maxAge = link.cacheMaxAge;
  if (link.expiresAt) maxAge = Math.min(maxAge, Math.floor((link.expiresAt.getTime() - now.getTime()) / 1000));
  if (maxAge <= 0) return 'no-store';
  const varies = link.iosUrl !== null || link.androidUrl !== null || link.geo !== null;
  return `${varies ? 'private' : 'public'}, max-age=${maxAge}`;
}

export function isExhausted(link: RedirectLink, now: Date): boolean {
  if (link.expiresAt && now.getTime() >= link.expiresAt.getTime()) return true;
  return link.maxClicks !== null && link.clicks >= link.maxClicks;
}

/** The answer for a link found (or not) for this request. */
function decide(link: RedirectLink | undefined, req: RedirectRequest): RedirectOutcome {
  if (!link) return { kind: 'not_found' };
  if (isExhausted(link, req.now)) {
    if (!link.fallbackUrl) return { kind: 'gone' };
    return {
      kind: 'redirect',
      status: 302,
      location: link.fallbackUrl,
      cacheControl: 'no-store',
      linkId: link.id,
      workspaceId: link.workspaceId,
    };
  }
  const target =
    link.iosUrl !== null || link.androidUrl !== null || link.geo !== null ? pickTarget(link, req.userAgent(), req.country()) : link.url;
  return {
    kind: 'redirect',
    status: link.redirectStatus,
    location: link.forwardQuery ? mergeQuery(target, req.search) : target,
    cacheControl: cachePolicy(link, req.now),
    linkId: link.id,
    workspaceId: link.workspaceId,
  };
}

export function createRedirectService(links: RedirectLookup, defaultDomain: string) {
  return {
    /** Synchronous when the lookup is (see RedirectLookup); a promise otherwise. */
    resolve(req: RedirectRequest): RedirectOutcome | Promise<RedirectOutcome> {
      if (!SLUG_PATTERN.test(req.slug)) return { kind: 'not_found' };
      const find = (domain: string) => {
        const found = links.findLink(domain, req.slug, req.defer);
        return found instanceof Promise ? found.then((link) => decide(link, req)) : decide(found, req);
      };
      if (req.host === defaultDomain) return find(defaultDomain);
      const own = links.isDomain(req.host);
      return own instanceof Promise ? own.then((yes) => find(yes ? req.host : defaultDomain)) : find(own ? req.host : defaultDomain);
    },
  };
}

export type RedirectService = ReturnType<typeof createRedirectService>;
