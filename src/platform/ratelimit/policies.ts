/**
 * hop's rate limits as data: the store the configuration chose and the named policies of HOP_RATE_LIMIT_* (per API
 * key with overrides, per address on failed authentications, on redirects and on unknown slugs). The HTTP layer
 * decides whose counter a request is (src/http/middleware/rate-limit.ts); the redirect service applies the
 * redirect's two policies.
 */
import type { Config } from '../../config.ts';
import type { RatePolicy, RateLimitStore } from './ratelimit.ts';

export interface RateLimiter {
  readonly store: RateLimitStore;
  readonly unauthenticated: RatePolicy;
  readonly redirect: RatePolicy;
  readonly notFound: RatePolicy;
  /** The policy of an API key: its override, or the default. */
  keyPolicy(keyId: string): RatePolicy;
  nowMs(): number;
}

const policy = (name: string, quota: { limit: number; windowS: number }): RatePolicy => ({ name, ...quota });

export function createRateLimiter(settings: Config['rateLimit'], store: RateLimitStore, now: () => Date): RateLimiter {
  const api = policy('api', settings.api);
  const overrides = new Map([...settings.keyOverrides].map(([id, quota]) => [id, policy('api', quota)]));
  return {
    store,
    unauthenticated: policy('unauthenticated', settings.unauthenticated),
    redirect: policy('redirect', settings.redirect),
    notFound: policy('not-found', settings.notFound),
    keyPolicy: (keyId) => overrides.get(keyId) ?? api,
    nowMs: () => now().getTime(),
  };
}
