/**
 * hop's rate limits over HTTP (HOP_RATE_LIMIT_*): per API key on the management API, per client address on failed
 * authentications and on redirects, and a stricter per-address limit on unknown-slug answers against slug
 * enumeration. Answers carry the IETF RateLimit-Policy and RateLimit fields (draft-ietf-httpapi-ratelimit-headers,
 * the syntax of drafts 08 to 11): `RateLimit-Policy: "api";q=600;w=60` and `RateLimit: "api";r=599;t=42`; a refusal
 * is 429 problem+json with `Retry-After` in seconds.
 */
import type { MiddlewareHandler } from 'hono';
import type { Config } from '../../config.ts';
import type { AppError } from '../../errors.ts';
import type { Metrics } from '../../platform/metrics.ts';
import type { RateLimiter } from '../../platform/ratelimit/policies.ts';
import type { RateTake, RateVerdict } from '../../platform/ratelimit/ratelimit.ts';
import { clientKey } from '../client-ip.ts';
import type { AppEnv } from '../env.ts';
import { HttpError } from '../problem.ts';

export interface RateLimitsOptions {
  /** The connection's peer address from the request and the runtime's `env` (Node: the socket; Bun: the server). */
  clientIp?: ((request: Request, env: unknown) => string | undefined) | undefined;
  metrics: Metrics;
}

/** The composed limiter (src/platform/ratelimit/policies.ts), with what HTTP adds: whose counter, and the 429. */
export interface RateLimits extends RateLimiter {
  /** The counter key of the request's client (its address, an IPv6 one by /64; `unknown` when there is none). */
  client(request: Request, env: unknown): string;
  /** The 429 for a refusing verdict (counted in `hop_ratelimit_limited_total`). */
  refuse(verdict: RateVerdict): AppError;
}

/** The limits over HTTP of the composed limiter; undefined when HOP_RATE_LIMIT=off. */
export function createRateLimits(config: Config, limiter: RateLimiter | undefined, options: RateLimitsOptions): RateLimits | undefined {
  if (!limiter) return undefined;
  const { metrics } = options;
  const header = config.clientIpHeader;
  const peer = options.clientIp ?? (() => undefined);
  return {
    ...limiter,
    client: (request, env) => clientKey(header ? request.headers.get(header) : undefined, peer(request, env)),
    refuse(verdict) {
      metrics.increment('hop_ratelimit_limited_total', 'Requests refused with 429, by rate-limit policy.', {
        policy: verdict.policy.name,
      });
      return new HttpError('rate_limited', `Too many requests; retry in ${retryAfter(verdict)} seconds.`, {
        retryAfterS: retryAfter(verdict),
        headers: rateLimitHeaders(verdict),
      });
    },
  };
}

const retryAfter = (v: RateVerdict) => v.resetS ?? v.policy.windowS;

/** RateLimit-Policy always; RateLimit when the store knows the count; Retry-After on a refusal. */
export function rateLimitHeaders(verdict: RateVerdict): Record<string, string> {
  const { name, limit, windowS } = verdict.policy;
  const headers: Record<string, string> = { 'ratelimit-policy': `"${name}";q=${limit};w=${windowS}` };
  if (!verdict.allowed) {
    headers.ratelimit = `"${name}";r=0;t=${retryAfter(verdict)}`;
    headers['retry-after'] = String(retryAfter(verdict));
  } else if (verdict.remaining !== undefined) {
    headers.ratelimit = `"${name}";r=${verdict.remaining};t=${verdict.resetS}`;
  }
  return headers;
}

/**
 * On all of `/v1`, operator routes included: an address that has failed authentication (401) `unauthenticated`
 * times in the window is refused with 429 before its credentials are checked, so guessing keys or the operator
 * token is slow, and a refused guess learns nothing. Only failures count: a busy office behind one address is not
 * limited by its good requests.
 *
 * Credentials checked at the same time must not all pass on a count taken before any of them failed. With a store
 * that can give places back (memory, Redis), a request holds a place in a second counter of its address while its
 * credentials are checked: it starts only while failures + checks in flight are under the quota, so at most the
 * quota of credentials is ever checked. One that finds the places taken by checks in flight (not by failures) waits
 * for them instead of being refused. A Cloudflare binding only counts up: there failures are counted once answered.
 */
export function authFailureLimit(limits: RateLimits): MiddlewareHandler<AppEnv> {
  const { store, unauthenticated: policy } = limits;
  return async function authFailureLimit(c, next) {
    const key = limits.client(c.req.raw, c.env);
    if (!store.refunds) {
      const [seen] = await store.take([{ policy, key, cost: 0 }], limits.nowMs());
      if (!seen!.allowed) throw limits.refuse(seen!);
      await next();
      if (c.res.status === 401) await settle(store.take([{ policy, key, cost: 1 }], limits.nowMs()));
      return;
    }
    const checking = `${key}:checking`;
    for (let waits = 0; ; waits++) {
      const [failures, held] = await store.take(
        [
          { policy, key, cost: 0 },
          { policy, key: checking, cost: 1 },
        ],
        limits.nowMs(),
      );
      if (!failures!.allowed) {
        await settle(store.take([{ policy, key: checking, cost: -1 }], limits.nowMs()));
        throw limits.refuse(failures!);
      }
      // A store that could not count (failing open) reports no figures: nothing is held then.
      if (failures!.used === undefined || held!.used === undefined) return next();
      if (failures!.used + held!.used <= policy.limit) break;
      await settle(store.take([{ policy, key: checking, cost: -1 }], limits.nowMs()));
      // Checks in flight take every place left: wait for one to finish (each lasts a database read).
      if (waits >= MAX_CHECK_WAITS) throw limits.refuse({ ...failures!, allowed: false, resetS: 1 });
      await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 8));
    }
    try {
      await next();
    } finally {
      const takes: RateTake[] = [{ policy, key: checking, cost: -1 }];
      if (c.res.status === 401) takes.push({ policy, key, cost: 1 });
      await settle(store.take(takes, limits.nowMs()));
    }
  };
}

/** About a second of waiting for other checks of the same address, after which the request is refused (429). */
const MAX_CHECK_WAITS = 200;

/** Bookkeeping after the answer is decided: a store failing now (closed mode) must not turn it into a 503. */
async function settle(take: RateVerdict[] | Promise<RateVerdict[]>) {
  await Promise.resolve(take).catch(() => undefined);
}

/** After apiKeyAuth: counts the request against its key's policy; 429 past it, the RateLimit fields on every answer. */
export function apiKeyLimit(limits: RateLimits): MiddlewareHandler<AppEnv> {
  return async function apiKeyLimit(c, next) {
    const { keyId } = c.get('principal');
    const [verdict] = await limits.store.take([{ policy: limits.keyPolicy(keyId), key: keyId, cost: 1 }], limits.nowMs());
    if (!verdict!.allowed) throw limits.refuse(verdict!);
    await next();
    for (const [name, value] of Object.entries(rateLimitHeaders(verdict!))) c.res.headers.set(name, value);
  };
}
