/**
 * The rate limiter's port: fixed-window counters by policy and key (an API key's id, a client's address), kept by
 * one of three stores: in process (memory.ts), Upstash Redis (redis.ts) or the Cloudflare `ratelimits` bindings
 * (cloudflare.ts). A remote store is wrapped in guard.ts (deadline, circuit breaker, fail open or closed).
 */

/** A named quota: `limit` requests per fixed window of `windowS` seconds (named in the RateLimit headers). */
export interface RatePolicy {
  readonly name: string;
  readonly limit: number;
  readonly windowS: number;
}

/**
 * One counter to consult: `cost` 1 counts this request, 0 only reads the counter, -1 gives back a place taken
 * earlier in the window (a store whose `refunds` is true; never below zero).
 */
export interface RateTake {
  policy: RatePolicy;
  key: string;
  cost: -1 | 0 | 1;
}

export interface RateVerdict {
  policy: RatePolicy;
  /** With cost 1: this request is within the limit. With cost 0: the counter has room left. */
  allowed: boolean;
  /** Requests left in the window; undefined when the store cannot tell (a Cloudflare binding, a failing store). */
  remaining: number | undefined;
  /** Seconds until the window ends (at least 1); undefined when the store cannot tell. */
  resetS: number | undefined;
  /** The counter after this take; undefined when the store cannot tell. */
  used?: number | undefined;
}

export interface RateLimitStore {
  readonly kind: 'memory' | 'redis' | 'cloudflare';
  /** Whether a place can be given back (cost -1): counters can then hold requests in flight, not only outcomes. */
  readonly refunds: boolean;
  /** Consults the counters in order; synchronous when the store is in process, so a redirect needs no promise. */
  take(takes: readonly RateTake[], nowMs: number): RateVerdict[] | Promise<RateVerdict[]>;
}

/** The verdict of a counter at `used` requests (this one included when `cost` is 1) with `resetMs` left. */
export function verdictOf(take: RateTake, used: number, resetMs: number): RateVerdict {
  const { policy } = take;
  return {
    policy,
    allowed: used - take.cost < policy.limit,
    remaining: Math.max(0, policy.limit - used),
    resetS: Math.max(1, Math.ceil(resetMs / 1000)),
    used,
  };
}
