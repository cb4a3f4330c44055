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
import type { Logger } from '../../platform/logger.ts';
import type { Metrics } from '../../platform/metrics.ts';
import { guardRateLimitStore } from '../../platform/ratelimit/guard.ts';
import { createMemoryRateLimitStore } from '../../platform/ratelimit/memory.ts';
import type { RatePolicy, RateLimitStore, RateVerdict } from '../../platform/ratelimit/ratelimit.ts';
import { clientKey } from '../client-ip.ts';
import type { AppEnv } from '../env.ts';
import { HttpError } from '../problem.ts';

export interface RateLimitsOptions {
  /** The remote store the runtime entry built (Redis, the Cloudflare bindings); the in-process one otherwise. */
  store?: RateLimitStore | undefined;
  /** The client's address as the runtime sees it (the connection's peer; Workers: cf-connecting-ip). */
  /** The connection's peer address from the request and the runtime's `env` (Node: the socket; Bun: the server). */
  clientIp?: ((request: Request, env: unknown) => string | undefined) | undefined;
  logger: Logger;
  metrics: Metrics;
  now: () => Date;
}

export interface RateLimits {
  readonly store: RateLimitStore;
  readonly unauthenticated: RatePolicy;
  readonly redirect: RatePolicy;
  readonly notFound: RatePolicy;
  /** The policy of an API key: its override, or the default. */
  keyPolicy(keyId: string): RatePolicy;
  /** The counter key of the request's client (its address, an IPv6 one by /64; `unknown` when there is none). */
  client(request: Request, env: unknown): string;
  nowMs(): number;
  /** The 429 for a refusing verdict (counted in `hop_ratelimit_limited_total`). */
  refuse(verdict: RateVerdict): AppError;
}

const policy = (name: string, quota: { limit: number; windowS: number }): RatePolicy => ({ name, ...quota });

/** The limits of a configuration, or undefined when HOP_RATE_LIMIT=off. */
export function createRateLimits(config: Config, options: RateLimitsOptions): RateLimits | undefined {
  const settings = config.rateLimit;
  if (settings.mode === 'off') return undefined;
  const { logger, metrics, now } = options;
  let store: RateLimitStore;
  if (settings.mode === 'memory') {
    store = options.store ?? createMemoryRateLimitStore();
  } else {
    if (!options.store) throw new Error(`HOP_RATE_LIMIT=${settings.mode}: the runtime entry did not provide the store`);
    store = guardRateLimitStore(options.store, { timeoutMs: settings.timeoutMs, onError: settings.onError, logger, metrics });
  }
  const api = policy('api', settings.api);
  const overrides = new Map([...settings.keyOverrides].map(([id, quota]) => [id, policy('api', quota)]));
  const header = config.clientIpHeader;
  const peer = options.clientIp ?? (() => undefined);
  return {
    store,
    unauthenticated: policy('unauthenticated', settings.unauthenticated),
    redirect: policy('redirect', settings.redirect),
    notFound: policy('not-found', settings.notFound),
    keyPolicy: (keyId) => overrides.get(keyId) ?? api,
    client: (request, env) => clientKey(header ? request.headers.get(header) : undefined, peer(request, env)),
    nowMs: () => now().getTime(),
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
 */
export function authFailureLimit(limits: RateLimits): MiddlewareHandler<AppEnv> {
  const { store, unauthenticated } = limits;
  return async function authFailureLimit(c, next) {
    const key = limits.client(c.req.raw, c.env);
    const [seen] = await store.take([{ policy: unauthenticated, key, cost: 0 }], limits.nowMs());
    if (!seen!.allowed) throw limits.refuse(seen!);
    await next();
    if (c.res.status === 401) {
      // The answer is decided: a store failing now (closed mode) must not turn this 401 into a 503.
      await Promise.resolve()
        .then(() => store.take([{ policy: unauthenticated, key, cost: 1 }], limits.nowMs()))
        .catch(() => undefined);
    }
  };
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

/** What the redirect route (a plain handler, no middleware) asks of the limits; see redirect.routes.ts. */
export interface RedirectLimits {
  /**
   * Counts the request against its address's redirect policy and reads the address's unknown-slug counter. Returns
   * the refusing verdict (answer 429), or undefined; synchronous with the in-process store.
   */
  check(request: Request, env: unknown, nowMs: number): RateVerdict | undefined | Promise<RateVerdict | undefined>;
  /** Counts an unknown-slug answer; a promise when the store is remote (it never rejects). */
  countNotFound(request: Request, env: unknown, nowMs: number): Promise<void> | undefined;
  refuse(verdict: RateVerdict): AppError;
}

export function redirectLimits(limits: RateLimits): RedirectLimits {
  const { store, redirect, notFound } = limits;
  const refusal = ([r, nf]: RateVerdict[]) => {
    if (r!.allowed && nf!.allowed) return undefined;
    if (r!.allowed || nf!.allowed) return r!.allowed ? nf : r;
    return (nf!.resetS ?? 0) > (r!.resetS ?? 0) ? nf : r;
  };
  return {
    check(request, env, nowMs) {
      const key = limits.client(request, env);
      const verdicts = store.take(
        [
          { policy: redirect, key, cost: 1 },
          { policy: notFound, key, cost: 0 },
        ],
        nowMs,
      );
      return verdicts instanceof Promise ? verdicts.then(refusal) : refusal(verdicts);
    },
    countNotFound(request, env, nowMs) {
      const counted = store.take([{ policy: notFound, key: limits.client(request, env), cost: 1 }], nowMs);
      // The 404 is already decided: a failing store (closed mode) must not turn it into an error.
      return counted instanceof Promise ? counted.then(
        () => undefined,
        () => undefined,
      ) : undefined;
    },
    refuse: (verdict) => limits.refuse(verdict),
  };
}
