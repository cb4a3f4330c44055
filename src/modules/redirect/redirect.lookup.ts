/**
 * The redirect's read port: which columns a redirect needs and the interface its adapters implement (the links
 * repository, portable; src/runtimes/embedded-lookup.ts, prepared statements for `file:` databases; the link cache).
 */
import type { LinkRow } from '../../db/schema.ts';
import { SpanKind, type Tracer } from '../../platform/tracing.ts';

/** The columns a redirect needs; reading only these keeps the hot query small. */
export const REDIRECT_COLUMNS = [
  'id', 'workspaceId', 'domain', 'url', 'expiresAt', 'maxClicks', 'clicks', 'fallbackUrl', 'redirectStatus', 'cacheMaxAge',
  'forwardQuery', 'iosUrl', 'androidUrl', 'geo',
] as const satisfies ReadonlyArray<keyof LinkRow>;

export type RedirectLink = Pick<LinkRow, (typeof REDIRECT_COLUMNS)[number]>;

/**
 * The redirect's reads. A request's host is resolved first: a registered domain serves its own links; any other
 * host (a load balancer's address, a CNAME not yet registered) serves the default domain's, but a workspace's own
 * domain never serves another workspace's default-domain links. Then one exact (domain, slug) read, which is also
 * what the link cache keys on (src/modules/redirect/redirect.cache.ts).
 *
 * Either read may answer synchronously (an embedded statement, a cache hit), sparing the redirect a promise.
 */
export interface RedirectLookup {
  /** `defer` keeps background work (a cache fill) alive past the response where the platform needs it. */
  findLink(
    domain: string,
    slug: string,
    defer?: (work: Promise<unknown>) => void,
  ): RedirectLink | undefined | Promise<RedirectLink | undefined>;
  /** The workspace that registered `host` as its short-link domain; undefined when none did. */
  domainOwner(host: string): string | undefined | Promise<string | undefined>;
}

/**
 * A runtime's own read (the embedded prepared statement) with a database span per call under the current span;
 * a synchronous answer stays synchronous. Composed only when tracing is on.
 */
export function tracedLookup(lookup: RedirectLookup, tracer: Tracer): RedirectLookup {
  function traced<T>(operation: string, read: () => T | Promise<T>): T | Promise<T> {
    const parent = tracer.current();
    if (!parent) return read();
    const span = tracer.start(`SELECT ${operation}`, {
      kind: SpanKind.client,
      parent,
      attributes: { 'db.system': 'libsql', 'db.operation': 'SELECT' },
    });
    try {
      const answer = read();
      if (!(answer instanceof Promise)) return span.end(), answer;
      return answer.finally(() => span.end());
    } catch (err) {
      span.fail(err instanceof Error ? err.name : 'error');
      span.end();
      throw err;
    }
  }
  return {
    findLink: (domain, slug, defer) => traced('links', () => lookup.findLink(domain, slug, defer)),
    domainOwner: (host) => traced('domains', () => lookup.domainOwner(host)),
  };
}
