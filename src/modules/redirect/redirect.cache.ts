/**
 * The link cache: the redirect's reads (RedirectLookup) answered from memory most of the time, from the shared
 * tier (Redis or KV) next, and from the database last; see src/platform/cache/. Keys are exact (domain, slug)
 * pairs; which domain a host serves is remembered in process too. Changes made through hop invalidate both here
 * (`invalidate`, `invalidateHost`): this process's memory at once, the shared tier before the API answers; the other
 * workers of this host (HOP_WORKERS) are told through their supervisor before the API answers (`forget`); other
 * hosts' memory lasts at most HOP_CACHE_TTL_S (1 s for links with maxClicks, whose count moves).
 */
import type { CacheConfig } from '../../config.ts';
import { createLru } from '../../platform/cache/lru.ts';
import type { GuardedStore } from '../../platform/cache/shared.ts';
import { createTieredCache, type Codec } from '../../platform/cache/tiered.ts';
import type { Logger } from '../../platform/logger.ts';
import type { Metrics } from '../../platform/metrics.ts';
import * as z from '../../platform/zod.ts';
import { TargetUrl } from '../links/links.schemas.ts';
import type { RedirectLink, RedirectLookup } from './redirect.lookup.ts';

/**
 * A link as the shared tier holds it; anything else found there is dropped, never served. Targets obey the same
 * rules as on input (absolute http(s), no credentials...), so a poisoned entry cannot send visitors anywhere else.
 */
const CachedLinkSchema = z.strictObject({
  id: z.string().min(1).max(64),
  workspaceId: z.string().min(1).max(64),
  domain: z.string().min(1).max(253),
  url: TargetUrl,
  expiresAt: z.number().int().nullable(),
  maxClicks: z.number().int().positive().nullable(),
  clicks: z.number().int().nonnegative(),
  fallbackUrl: TargetUrl.nullable(),
  redirectStatus: z.union([z.literal(301), z.literal(302), z.literal(307), z.literal(308)]),
  cacheMaxAge: z.number().int().nonnegative(),
  forwardQuery: z.boolean(),
  iosUrl: TargetUrl.nullable(),
  androidUrl: TargetUrl.nullable(),
  geo: z.record(z.string().regex(/^[A-Z]{2}$/), TargetUrl).nullable(),
});

export const linkCodec: Codec<RedirectLink> = {
  encode: (link) => JSON.stringify({ ...link, expiresAt: link.expiresAt?.getTime() ?? null }),
  decode(raw) {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return undefined;
    }
    const parsed = CachedLinkSchema.safeParse(json);
    if (!parsed.success) return undefined;
    const v = parsed.data;
    return { ...v, expiresAt: v.expiresAt === null ? null : new Date(v.expiresAt) };
  },
  size(link) {
    let chars = link.url.length + (link.fallbackUrl?.length ?? 0) + (link.iosUrl?.length ?? 0) + (link.androidUrl?.length ?? 0);
    if (link.geo) for (const [k, v] of Object.entries(link.geo)) chars += k.length + v.length + 32;
    // Strings are two bytes a character at worst; the rest is the object, its ids and the Map entry.
    return chars * 2 + 400;
  },
};

export interface LinkCacheOptions {
  config: CacheConfig;
  /** The shared tier, guarded (platform/cache/shared.ts); none: memory only. */
  shared?: GuardedStore | undefined;
  /** Whether concurrent misses share one read (off on Workers; see TieredCacheOptions). */
  singleFlight: boolean;
  /** The database's deadline: an invalidated key refuses shared fills for longer than any read can take. */
  databaseTimeoutMs: number;
  logger: Logger;
  metrics: Metrics;
}

export interface LinkRef {
  domain: string;
  slug: string;
}

export interface CachedRedirectLookup extends RedirectLookup {
  /** After a change to these links (created, updated, deleted, out of clicks). */
  invalidate(links: LinkRef[]): Promise<void>;
  /** After a domain was added or removed. */
  invalidateHost(host: string): void;
  /** After another process of this host changed these links: this process's memory only. */
  forget(links: LinkRef[]): void;
}

const MAX_CLICKS_TTL_MS = 1000;
/** The cache key of a link; the shared tier prefixes it (`hop:link:{domain}/{slug}`). */
export const linkCacheKey = (domain: string, slug: string) => `link:${domain}/${slug}`;
/** How long an invalidated key refuses fills: twice the database deadline, longer than any read that began before. */
export const tombstoneTtlS = (databaseTimeoutMs: number) => Math.ceil((2 * databaseTimeoutMs) / 1000);
const keyOf = linkCacheKey;

export function createCachedLookup(lookup: RedirectLookup, options: LinkCacheOptions): CachedRedirectLookup {
  const { config } = options;
  const ttlMs = config.ttlS * 1000;
  const links = createTieredCache<RedirectLink>({
    name: 'links',
    l1: createLru({ maxEntries: config.maxEntries, maxBytes: config.maxBytes }),
    shared: options.shared,
    codec: linkCodec,
    ttlMs: (link) => (link.maxClicks === null ? ttlMs : Math.min(ttlMs, MAX_CLICKS_TTL_MS)),
    negativeTtlMs: config.negativeTtlS * 1000,
    sharedTtlS: config.sharedTtlS,
    negativeSharedTtlS: config.negativeTtlS,
    tombstoneTtlS: tombstoneTtlS(options.databaseTimeoutMs),
    singleFlight: options.singleFlight,
    logger: options.logger,
    metrics: options.metrics,
  });
  // Which workspace registered each host ('' for none): few, rarely changed, asked for only by this process's requests.
  const hosts = createLru<string>({ maxEntries: 10_000, maxBytes: 10_000 * 512 });
  const hostLoads = new Map<string, Promise<string | undefined>>();
  const keep = (host: string, owner: string | undefined) => {
    hosts.set(host, owner ?? '', ttlMs, host.length * 2 + 100);
    return owner;
  };

  return {
    findLink(domain, slug, defer) {
      const found = links.get(keyOf(domain, slug), () => lookup.findLink(domain, slug), defer);
      return found instanceof Promise ? found.then((link) => link ?? undefined) : (found ?? undefined);
    },
    domainOwner(host) {
      const known = hosts.get(host);
      if (known !== undefined) return known || undefined;
      const pending = options.singleFlight ? hostLoads.get(host) : undefined;
      if (pending) return pending;
      const answer = lookup.domainOwner(host);
      if (!(answer instanceof Promise)) return keep(host, answer);
      // One read per host however many redirects miss together (the entry expires every HOP_CACHE_TTL_S under
      // load; Workers read per request, see singleFlight); kept only if the host was not changed meanwhile.
      const shared: Promise<string | undefined> = answer.then(
        (owner) => (hostLoads.get(host) === shared ? (hostLoads.delete(host), keep(host, owner)) : owner),
        (err: unknown) => {
          if (hostLoads.get(host) === shared) hostLoads.delete(host);
          throw err;
        },
      );
      hostLoads.set(host, shared);
      return shared;
    },
    invalidate: (refs) => links.invalidate(refs.map((r) => keyOf(r.domain, r.slug))),
    invalidateHost: (host) => {
      hosts.delete(host);
      hostLoads.delete(host);
    },
    forget: (refs) => links.forget(refs.map((r) => keyOf(r.domain, r.slug))),
  };
}
