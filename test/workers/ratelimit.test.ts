// The Cloudflare ratelimits bindings of wrangler.toml, inside workerd: the store on the real bindings, and the Worker
// (HOP_RATE_LIMIT=cloudflare from wrangler.toml's vars) refusing failed authentications and unknown slugs per
// cf-connecting-ip. The database is unreachable on purpose: both paths are decided before it is needed.
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { createCloudflareRateLimitStore } from '../../src/platform/ratelimit/cloudflare.ts';
import type { RatePolicy, RateVerdict } from '../../src/platform/ratelimit/ratelimit.ts';
import worker, { RATE_LIMIT_BINDINGS } from '../../src/runtimes/worker.ts';

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;

/**
 * Locally a binding counts in windows aligned to the clock (a new one every 60 s on the minute): a test that spends a
 * whole limit starts early enough in a window to finish inside it.
 */
async function freshWindowTime(spendMs = 5000) {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < spendMs) await new Promise((r) => setTimeout(r, left + 50));
}

async function problem(res: Response, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  return (await res.json()) as Record<string, unknown>;
}

describe('the ratelimits bindings', () => {
  it('are bound as wrangler.toml says, one per policy', () => {
    for (const name of Object.values(RATE_LIMIT_BINDINGS)) {
      expect(typeof (env as unknown as Record<string, { limit?: unknown }>)[name]?.limit, name).toBe('function');
    }
  });

  it('let the store count each key up to the binding limit, then refuse it, and remember the refusal for reads', async () => {
    await freshWindowTime();
    const store = createCloudflareRateLimitStore({ unauthenticated: env.RATE_LIMIT_UNAUTHENTICATED });
    const policy: RatePolicy = { name: 'unauthenticated', limit: 30, windowS: 60 };
    const take = async (key: string, cost: 0 | 1) => (await store.take([{ policy, key, cost }], Date.now()))[0] as RateVerdict;
    for (let i = 0; i < 30; i++) {
      expect(await take('store-a', 1)).toEqual({ policy, allowed: true, remaining: undefined, resetS: undefined });
    }
    expect(await take('store-a', 0)).toMatchObject({ allowed: true });
    expect(await take('store-a', 1)).toEqual({ policy, allowed: false, remaining: undefined, resetS: 60 });
    expect(await take('store-a', 0)).toMatchObject({ allowed: false, resetS: 60 });
    expect(await take('store-b', 1)).toMatchObject({ allowed: true });
    expect(await take('store-b', 0)).toMatchObject({ allowed: true });
  });

  it('refuse a store policy without a binding', async () => {
    const store = createCloudflareRateLimitStore({});
    await expect(store.take([{ policy: { name: 'api', limit: 1, windowS: 60 }, key: 'k', cost: 1 }], Date.now())).rejects.toThrow(
      /no ratelimits binding for the "api" policy/,
    );
  });
});

describe('the Worker with HOP_RATE_LIMIT=cloudflare', () => {
  const bindings = { ...env, HOP_DATABASE_URL: 'http://127.0.0.1:9', HOP_ADMIN_TOKEN: 'a'.repeat(40), HOP_LOG_LEVEL: 'silent' };
  const call = (path: string, ip: string, init: RequestInit = {}) =>
    worker.fetch(new Request(`http://localhost${path}`, { ...init, headers: { 'cf-connecting-ip': ip, ...init.headers } }), bindings, ctx);

  it('refuses an address past its failed authentications with 429 problem+json and the RateLimit fields', async () => {
    await freshWindowTime();
    const guess = () => call('/v1/links', '203.0.113.7', { headers: { authorization: 'Bearer not-a-key' } });
    // The binding cannot be read without counting: the request that finds the limit spent is still answered (401).
    for (let i = 0; i < 31; i++) await problem(await guess(), 401);
    const refused = await guess();
    expect(refused.headers.get('ratelimit-policy')).toBe('"unauthenticated";q=30;w=60');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get('ratelimit')).toBe(`"unauthenticated";r=0;t=${refused.headers.get('retry-after')}`);
    expect(await problem(refused, 429)).toMatchObject({ type: 'urn:hop:problem:rate-limited', status: 429 });
    await problem(await call('/v1/links', '203.0.113.8', { headers: { authorization: 'Bearer not-a-key' } }), 401);
  });

  it('refuses an address past its unknown slugs, for every slug', async () => {
    await freshWindowTime();
    // The binding counts each unknown slug once its lookup has answered: the 61st is refused instead of answered.
    for (let i = 0; i < 60; i++) await problem(await call(`/~guess-${i}`, '198.51.100.7'), 404);
    await problem(await call('/~guess-60', '198.51.100.7'), 429);
    const refused = await call('/known-or-not', '198.51.100.7');
    expect(refused.headers.get('ratelimit-policy')).toBe('"not-found";q=60;w=60');
    expect(await problem(refused, 429)).toMatchObject({ type: 'urn:hop:problem:rate-limited' });
    await problem(await call('/~guess', '198.51.100.8'), 404);
  });

  it('answers 500 problem+json with HOP_RATE_LIMIT=redis, which is for Node and Bun', async () => {
    const redis = { ...bindings, HOP_RATE_LIMIT: 'redis', HOP_REDIS_URL: 'https://r.example.com', HOP_REDIS_TOKEN: 't', HOP_RATE_LIMIT_SALT: 's'.repeat(16) };
    await problem(await worker.fetch(new Request('http://localhost/x'), redis, ctx), 500);
  });

  it('answers 500 problem+json, naming no binding to the client, when a binding is missing', async () => {
    const { RATE_LIMIT_NOT_FOUND: _, ...without } = bindings;
    const body = await problem(await worker.fetch(new Request('http://localhost/x'), without, ctx), 500);
    expect(JSON.stringify(body)).not.toMatch(/RATE_LIMIT/);
  });
});
