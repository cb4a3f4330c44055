/**
 * The redirect's rules: the visitor's rate limits (every request counts against the redirect policy; an address past
 * its unknown-slug quota is refused for every slug), then the decision ((host, slug) → the host's domain → one
 * indexed read → expiry, max clicks, device and geo targeting, query forwarding and cache policy), then what is
 * recorded: a click for every redirect served (HEAD included, marked), an orphan visit for an unknown slug, nothing
 * for a gone link or a refusal; and an unknown slug counts against the visitor's not-found quota. When the click
 * queue is full it refuses the event (an `overloaded` AppError) and the visit fails with it: a redirect is never
 * served without its click being taken. Pure apart from
 * the read, the limit store and the queue, so it stays cheap and easy to test.
 */
import { linkClick, orphanVisit } from '../clicks/clicks.events.ts';
import type { ClickEvent } from '../clicks/clicks.schemas.ts';
import { SLUG_PATTERN } from '../links/links.schemas.ts';
import type { QueueProducer } from '../../platform/queue/queue.ts';
import type { RateLimiter } from '../../platform/ratelimit/policies.ts';
import type { RateVerdict } from '../../platform/ratelimit/ratelimit.ts';
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

/** One visit: the request's facts, read lazily where the hot path can skip them. */
export interface RedirectVisit extends RedirectRequest {
  /** The visitor's rate-limit counter key (its address); read only when limits apply. */
  client: () => string;
  referer: () => string | undefined;
  /** A HEAD request: answered like GET, its click marked (previews, not visitors). */
  head: boolean;
}

export type RedirectOutcome =
  | { kind: 'redirect'; status: number; location: string; cacheControl: string; linkId: string; workspaceId: string }
  | { kind: 'gone' }
  | { kind: 'not_found' };

/** A visit's answer: the decision, or the verdict that refused it (429). */
export type VisitOutcome = RedirectOutcome | { kind: 'limited'; verdict: RateVerdict };

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

export interface RedirectServiceOptions {
  lookup: RedirectLookup;
  defaultDomain: string;
  /** Where click events go; none: clicks are not recorded. */
  clicks?: QueueProducer<ClickEvent> | undefined;
  /** The per-address limits (HOP_RATE_LIMIT_REDIRECT, HOP_RATE_LIMIT_NOT_FOUND); none: no limits. */
  limits?: RateLimiter | undefined;
}

/** The refusing verdict of the redirect policy and the unknown-slug counter, if either refuses (the later reset). */
function refusal([r, nf]: RateVerdict[]): RateVerdict | undefined {
  if (r!.allowed && nf!.allowed) return undefined;
  if (r!.allowed || nf!.allowed) return r!.allowed ? nf : r;
  return (nf!.resetS ?? 0) > (r!.resetS ?? 0) ? nf : r;
}

export function createRedirectService({ lookup: links, defaultDomain, clicks, limits }: RedirectServiceOptions) {
  /** Synchronous when the lookup is (see RedirectLookup); a promise otherwise. */
  function resolve(req: RedirectRequest): RedirectOutcome | Promise<RedirectOutcome> {
    if (!SLUG_PATTERN.test(req.slug)) return { kind: 'not_found' };
    // On a registered domain, only a link of the workspace that owns it: a link left on a host its workspace no
    // longer owns must not follow the host to a new owner.
    const find = (domain: string, owner?: string) => {
      const mine = (link: RedirectLink | undefined) => (owner === undefined || link?.workspaceId === owner ? link : undefined);
      const found = links.findLink(domain, req.slug, req.defer);
      return found instanceof Promise ? found.then((link) => decide(mine(link), req)) : decide(mine(found), req);
    };
    if (req.host === defaultDomain) return find(defaultDomain);
    const at = (owner: string | undefined) => (owner === undefined ? find(defaultDomain) : find(req.host, owner));
    const owner = links.domainOwner(req.host);
    return owner instanceof Promise ? owner.then(at) : at(owner);
  }

  /**
   * An unknown slug is counted, and judged, once its lookup has answered: lookups started together all passed the
   * check before any was counted, so this count is what bounds the 404s an address gets; past the quota the visit is
   * refused instead (and not recorded). A failing store (closed mode) leaves the 404 as decided.
   */
  function recorded(v: RedirectVisit, o: RedirectOutcome): VisitOutcome | Promise<VisitOutcome> {
    if (!limits || o.kind !== 'not_found') return record(v, o);
    const judge = ([verdict]: RateVerdict[]): VisitOutcome => (verdict!.allowed ? record(v, o) : { kind: 'limited', verdict: verdict! });
    let counted: RateVerdict[] | Promise<RateVerdict[]>;
    try {
      counted = limits.store.take([{ policy: limits.notFound, key: v.client(), cost: 1 }], v.now.getTime());
    } catch {
      return record(v, o);
    }
    return counted instanceof Promise ? counted.then(judge, () => record(v, o)) : judge(counted);
  }

  /** Sends the outcome's click (or orphan visit) when it calls for one. */
  function record(v: RedirectVisit, o: RedirectOutcome): RedirectOutcome {
    if (clicks && o.kind !== 'gone') {
      const facts = {
        at: v.now.getTime(),
        userAgent: v.userAgent() ?? null,
        referer: v.referer() ?? null,
        country: v.country() ?? null,
        head: v.head,
      };
      const pending = clicks.send(o.kind === 'redirect' ? linkClick(o.workspaceId, o.linkId, facts) : orphanVisit(v.host, v.slug, facts));
      if (pending) v.defer?.(pending);
    }
    return o;
  }

  function visitAdmitted(v: RedirectVisit): VisitOutcome | Promise<VisitOutcome> {
    const outcome = resolve(v);
    // No await when the lookup answered synchronously: a promise per click is measurable at this rate.
    return outcome instanceof Promise ? outcome.then((o) => recorded(v, o)) : recorded(v, outcome);
  }

  return {
    resolve,
    /** A visit, start to end: limits, decision, click. Synchronous with in-process limits and a cached link. */
    visit(v: RedirectVisit): VisitOutcome | Promise<VisitOutcome> {
      if (!limits) return visitAdmitted(v);
      const key = v.client();
      const verdicts = limits.store.take(
        [
          { policy: limits.redirect, key, cost: 1 },
          { policy: limits.notFound, key, cost: 0 },
        ],
        v.now.getTime(),
      );
      const next = (vs: RateVerdict[]): VisitOutcome | Promise<VisitOutcome> => {
        const refused = refusal(vs);
        return refused ? { kind: 'limited', verdict: refused } : visitAdmitted(v);
      };
      return verdicts instanceof Promise ? verdicts.then(next) : next(verdicts);
    },
  };
}

export type RedirectService = ReturnType<typeof createRedirectService>;
