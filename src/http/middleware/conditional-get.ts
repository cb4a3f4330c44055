/**
 * Conditional GET for the management API's JSON answers: `Cache-Control: private, no-cache`, `Vary: Authorization`
 * and a strong `ETag` (a hash of the body, by hono/etag), so that a client that sends it back in `If-None-Match`
 * gets 304 Not Modified without the body. The router attaches it to GET routes that declare a JSON answer
 * (src/http/router.ts); a streamed export never gets it, since hashing reads a body whole.
 */
import type { MiddlewareHandler } from 'hono';
import { etag, RETAINED_304_HEADERS } from 'hono/etag';
import type { AppEnv } from '../env.ts';

/**
 * `private`: an answer depends on the API key, so no shared cache may store it. `no-cache`: a client cache may keep
 * it but must revalidate before every reuse, so a revoked key or a changed link is never served from a cache.
 */
export const REVALIDATE = 'private, no-cache';

const isJson = (contentType: string | null) => contentType?.split(';')[0]!.trim().toLowerCase() === 'application/json';

export function conditionalGet(): MiddlewareHandler<AppEnv> {
  // hono/etag compares weakly (W/ ignored) against each quoted tag of the list, or `*`; anything else just misses.
  const tag = etag({ retainedHeaders: [...RETAINED_304_HEADERS, 'x-request-id'] });
  const answered = async () => {};
  return async function conditionalGet(c, next) {
    await next();
    // Only a 2xx JSON answer whose route left caching to us: a problem+json, or a route's own policy, stays as is.
    if (!c.res.ok || !isJson(c.res.headers.get('content-type')) || c.res.headers.has('cache-control')) return;
    c.header('cache-control', REVALIDATE);
    c.header('vary', 'Authorization', { append: true });
    // Run after the handler with the answer already in c.res: etag only hashes it and compares.
    await tag(c, answered);
  };
}
