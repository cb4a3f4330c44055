// wrangler.toml's ratelimits bindings and the HOP_RATE_LIMIT_* vars of the same environment say the same: a binding's
// limit is fixed in wrangler.toml, and the vars are what the RateLimit headers announce. Read as wrangler reads them.
import { unstable_readConfig } from 'wrangler';
import { describe, expect, it } from 'vitest';
import { configFromBindings, workerConfig } from '../../src/runtimes/worker-bindings.ts';
import { RATE_LIMIT_BINDINGS } from '../../src/runtimes/worker.ts';

const environments = ['', 'staging', 'production'];
interface RateLimitBindingConfig {
  name: string;
  namespace_id: string;
  simple: { limit: number; period: number };
}

const read = (env: string) => {
  const config = unstable_readConfig({ config: 'wrangler.toml', env: env || undefined }, { hideWarnings: true });
  return { vars: config.vars, ratelimits: config.ratelimits as RateLimitBindingConfig[] };
};

describe.each(environments)('wrangler.toml, environment "%s"', (env) => {
  it('binds one rate limiter per policy, with the limit and period of its HOP_RATE_LIMIT_* var', () => {
    const wrangler = read(env);
    const config = workerConfig({ ...configFromBindings(wrangler.vars), HOP_DATABASE_URL: 'https://db.example.com' });
    expect(config.rateLimit.mode).toBe('cloudflare');
    const quotas = {
      api: config.rateLimit.api,
      unauthenticated: config.rateLimit.unauthenticated,
      redirect: config.rateLimit.redirect,
      'not-found': config.rateLimit.notFound,
    };
    const bound = Object.fromEntries(wrangler.ratelimits.map((r) => [r.name, r.simple]));
    for (const [policy, name] of Object.entries(RATE_LIMIT_BINDINGS)) {
      const quota = quotas[policy as keyof typeof quotas];
      expect(bound[name], name).toEqual({ limit: quota.limit, period: quota.windowS });
    }
    expect(wrangler.ratelimits).toHaveLength(Object.keys(RATE_LIMIT_BINDINGS).length);
  });
});

it('gives every environment namespaces of its own, so that staging never spends production counts', () => {
  const ids = environments.flatMap((env) => read(env).ratelimits.map((r) => r.namespace_id));
  expect(new Set(ids).size).toBe(ids.length);
});
