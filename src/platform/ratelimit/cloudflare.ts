/**
 * The rate-limit store on Cloudflare's `ratelimits` bindings (wrangler.toml `[[ratelimits]]`), one binding per
 * policy. A binding only answers whether a request is within its limit, which is fixed in wrangler.toml for every
 * key, counted per Cloudflare location, in a window of 10 or 60 seconds: so no remaining count, no reset time, no
 * per-key limits, and no read without counting. A read (cost 0) answers from this isolate's memory of the keys the
 * binding refused, until their window has passed.
 */
import type { RateLimitStore, RateVerdict } from './ratelimit.ts';

/** The part of a `ratelimits` binding hop uses. */
export interface RateLimitBinding {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

export function createCloudflareRateLimitStore(
  bindings: Readonly<Record<string, RateLimitBinding>>,
  { maxKeys = 10_000 } = {},
): RateLimitStore {
  // Per policy name: key → when the binding's refusal ends (at the latest: one window after it refused).
  const refused = new Map<string, Map<string, number>>();

  function remember(name: string, key: string, until: number) {
    let keys = refused.get(name);
    if (!keys) refused.set(name, (keys = new Map()));
    keys.delete(key);
    if (keys.size >= maxKeys) keys.delete(keys.keys().next().value!);
    keys.set(key, until);
  }

  return {
    kind: 'cloudflare',
    // A binding only counts up.
    refunds: false,
    async take(takes, now) {
      return Promise.all(
        takes.map(async ({ policy, key, cost }): Promise<RateVerdict> => {
          const binding = bindings[policy.name];
          if (!binding) throw new Error(`no ratelimits binding for the "${policy.name}" policy`);
          if (cost <= 0) {
            const until = refused.get(policy.name)?.get(key);
            const allowed = until === undefined || until <= now;
            return { policy, allowed, remaining: undefined, resetS: allowed ? undefined : Math.ceil((until - now) / 1000) };
          }
          const { success } = await binding.limit({ key });
          if (!success) remember(policy.name, key, now + policy.windowS * 1000);
          return { policy, allowed: success, remaining: undefined, resetS: success ? undefined : policy.windowS };
        }),
      );
    },
  };
}
