/**
 * The redirect's read port: which columns a redirect needs and the interface its adapters implement
 * (the links repository, portable; src/runtimes/embedded-lookup.ts, a prepared statement for `file:` databases).
 */
import type { LinkRow } from '../../db/schema.ts';

/** The columns a redirect needs; reading only these keeps the hot query small. */
export const REDIRECT_COLUMNS = [
  'id', 'workspaceId', 'domain', 'url', 'expiresAt', 'maxClicks', 'clicks', 'fallbackUrl', 'redirectStatus', 'cacheMaxAge',
  'forwardQuery', 'iosUrl', 'androidUrl', 'geo',
] as const satisfies ReadonlyArray<keyof LinkRow>;

export type RedirectLink = Pick<LinkRow, (typeof REDIRECT_COLUMNS)[number]>;

/**
 * The link for (host, slug). When `host` has no such link and is not a registered domain, the default domain
 * `fallback` is tried: unknown hosts (a load balancer's address, a CNAME not yet registered) serve default links,
 * but a workspace's own domain never serves another workspace's default-domain links.
 */
export interface RedirectLookup {
  /** May answer synchronously (an embedded statement), sparing the redirect a promise per click. */
  findForRedirect(
    host: string,
    fallback: string,
    slug: string,
  ): RedirectLink | undefined | Promise<RedirectLink | undefined>;
}

