// The link cache on Workers, inside workerd: the Worker as wrangler.toml configures it (HOP_CACHE=kv, the local KV
// namespace bound as CACHE) over a real sqld (started by test/support/workers-sqld.ts; a Worker needs libSQL over
// HTTP). A redirect fills KV with the link as JSON; "not found" is never written to KV (its eventual consistency
// would keep a new link dark); a change through the API deletes the KV entry, so the next redirect, and another
// isolate once its own copy has expired, serve the new target; the consumer Worker deletes the entry of a link with
// maxClicks whose count its batch moved; a poisoned KV value is never served.
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import consumer from '../../src/runtimes/worker-consumer.ts';
import worker from '../../src/runtimes/worker.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    hopSqldUrl: string;
    hopSqldMissing: string;
  }
}

const SQLD = inject('hopSqldUrl');
const MISSING = inject('hopSqldMissing');
if (!SQLD) console.warn(`skipping the Worker's link cache tests: ${MISSING}`);

const ADMIN = 'k'.repeat(40);
const METRICS_TOKEN = 'w'.repeat(40);
/** HOP_CACHE_TTL_S: how long an isolate keeps its own copy. */
const TTL_S = 1;
const run = crypto.randomUUID().slice(0, 8);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One isolate's bindings: wrangler.toml's (CACHE, HOP_CACHE=kv...) plus the database; a new object is a new app. */
const isolate = () => ({
  ...env,
  HOP_DATABASE_URL: SQLD,
  HOP_ADMIN_TOKEN: ADMIN,
  // A Worker answers /metrics only with the token (no client of a Worker is on its machine).
  HOP_METRICS_TOKEN: METRICS_TOKEN,
  HOP_LOG_LEVEL: 'silent',
  HOP_CLICKS: 'off',
  HOP_CACHE_TTL_S: String(TTL_S),
});

/** A request through the Worker's fetch handler, and everything it left to waitUntil (the KV fill). */
async function call(bindings: Record<string, unknown>, path: string, init?: RequestInit): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://localhost${path}`, init), bindings, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

async function visit(bindings: Record<string, unknown>, slug: string) {
  const res = await call(bindings, `/${slug}`, { redirect: 'manual' });
  await res.body?.cancel();
  return { status: res.status, location: res.headers.get('location') };
}

type Link = Record<string, unknown>;
const kvKey = (slug: string) => `hop:link:localhost/${slug}`;
const kvGet = (slug: string) => env.CACHE.get(kvKey(slug), 'text');

describe.skipIf(!SQLD)('the link cache on Workers KV (HOP_CACHE=kv)', () => {
  const app = isolate();
  let auth: Record<string, string>;

  async function key() {
    if (auth) return auth;
    const res = await call(app, '/v1/workspaces', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `cache-${run}` }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const created = (await res.json()) as { apiKey: { key: string } };
    auth = { authorization: `Bearer ${created.apiKey.key}`, 'content-type': 'application/json' };
    return auth;
  }

  async function createLink(slug: string, url: string): Promise<string> {
    const res = await call(app, '/v1/links', { method: 'POST', headers: await key(), body: JSON.stringify({ url, slug }) });
    expect(res.status, await res.clone().text()).toBe(201);
    return ((await res.json()) as { id: string }).id;
  }

  async function patchUrl(id: string, url: string) {
    const res = await call(app, `/v1/links/${id}`, { method: 'PATCH', headers: await key(), body: JSON.stringify({ url }) });
    expect(res.status, await res.clone().text()).toBe(200);
  }

  it('runs as wrangler.toml configures it: HOP_CACHE=kv with a KV namespace bound as CACHE', () => {
    expect(env.HOP_CACHE).toBe('kv');
    expect(typeof env.CACHE.get).toBe('function');
  });

  it('a redirect fills KV with the link as JSON', async () => {
    const slug = `fill-${run}`;
    const url = `https://example.com/${slug}`;
    await createLink(slug, url);
    expect(await kvGet(slug)).toBeNull();
    expect(await visit(app, slug)).toEqual({ status: 302, location: url });
    const stored = await kvGet(slug);
    expect(stored).not.toBeNull();
    expect(JSON.parse(stored!)).toMatchObject({ url, domain: 'localhost', redirectStatus: 302, maxClicks: null });
  });

  it('an unknown slug answers 404 and writes nothing to KV', async () => {
    const slug = `nope-${run}`;
    expect((await visit(app, slug)).status).toBe(404);
    expect((await visit(isolate(), slug)).status).toBe(404);
    expect(await kvGet(slug)).toBeNull();
    expect((await env.CACHE.list({ prefix: kvKey(slug) })).keys).toEqual([]);
    // So a link created there is served at once by an isolate that has not asked before.
    await createLink(slug, `https://example.com/${slug}`);
    expect(await visit(isolate(), slug)).toEqual({ status: 302, location: `https://example.com/${slug}` });
  });

  it('a PATCH deletes the KV entry: the next redirect serves the new target, another isolate within HOP_CACHE_TTL_S', async () => {
    const slug = `chg-${run}`;
    const id = await createLink(slug, `https://example.com/${slug}/v1`);
    const other = isolate();
    expect(await visit(app, slug)).toEqual({ status: 302, location: `https://example.com/${slug}/v1` });
    expect(await visit(other, slug)).toEqual({ status: 302, location: `https://example.com/${slug}/v1` });
    expect(JSON.parse((await kvGet(slug))!)).toMatchObject({ url: `https://example.com/${slug}/v1` });

    await patchUrl(id, `https://example.com/${slug}/v2`);
    expect(await kvGet(slug)).toBeNull();
    expect(await visit(app, slug)).toEqual({ status: 302, location: `https://example.com/${slug}/v2` });
    expect(JSON.parse((await kvGet(slug))!)).toMatchObject({ url: `https://example.com/${slug}/v2` });
    // The other isolate's own copy lasts HOP_CACHE_TTL_S; then it reads KV, which holds the new link.
    await sleep(TTL_S * 1000 + 100);
    expect(await visit(other, slug)).toEqual({ status: 302, location: `https://example.com/${slug}/v2` });

    const res = await call(app, `/v1/links/${id}`, { method: 'DELETE', headers: await key() });
    expect(res.status).toBe(204);
    expect(await kvGet(slug)).toBeNull();
    expect((await visit(app, slug)).status).toBe(404);
    expect(await kvGet(slug)).toBeNull();
  });

  it('the consumer Worker deletes the KV entry of a link with maxClicks once it has stored its clicks: it stops redirecting', async () => {
    const slug = `max-${run}`;
    const url = `https://example.com/${slug}`;
    const res = await call(app, '/v1/links', { method: 'POST', headers: await key(), body: JSON.stringify({ url, slug, maxClicks: 2 }) });
    expect(res.status, await res.clone().text()).toBe(201);
    const linkId = ((await res.json()) as { id: string }).id;
    const workspaceId = ((await (await call(app, '/v1/workspace', { headers: await key() })).json()) as { id: string }).id;
    expect(await visit(app, slug)).toEqual({ status: 302, location: url });
    expect(JSON.parse((await kvGet(slug))!)).toMatchObject({ url, maxClicks: 2, clicks: 0 });

    // Two clicks reach the consumer Worker (as wrangler.consumer.toml binds it: the same KV namespace as CACHE).
    const clicks = [1, 2].map((n) => ({
      v: 1,
      kind: 'click',
      id: `clk_${crypto.randomUUID().replaceAll('-', '')}`,
      at: Date.now() + n,
      workspaceId,
      linkId,
      country: null,
      userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15',
      referrer: null,
      head: false,
    }));
    const batch = createMessageBatch('hop-clicks', clicks.map((body, i) => ({ id: `m-${i}`, timestamp: new Date(), attempts: 1, body })));
    const ctx = createExecutionContext();
    await consumer.queue(batch, { ...env, HOP_DATABASE_URL: SQLD, HOP_LOG_LEVEL: 'silent', CLICKS_DEAD: env.CLICKS });
    expect(await getQueueResult(batch, ctx)).toMatchObject({ explicitAcks: ['m-0', 'm-1'], retryMessages: [] });

    // KV no longer holds the copy with the old count: an isolate that reads it now reads the database, and the
    // link has reached its maxClicks.
    expect(await kvGet(slug)).toBeNull();
    expect((await visit(isolate(), slug)).status).toBe(410);
  });

  it.each([
    ['garbage', 'g', () => '{"url":"https://evil.example/"'],
    ['a link whose target is javascript:', 'js', (real: Link) => JSON.stringify({ ...real, url: 'javascript:alert(1)' })],
    ['a link with a field too many', 'x', (real: Link) => JSON.stringify({ ...real, url: 'https://evil.example/', extra: 1 })],
  ])('a poisoned KV value (%s) is not served; the database answers', async (_, tag, poison) => {
    const slug = `poison-${tag}-${run}`;
    const url = `https://example.com/${slug}`;
    await createLink(slug, url);
    expect(await visit(app, slug)).toEqual({ status: 302, location: url });
    const real = JSON.parse((await kvGet(slug))!) as Link;
    const bad = poison(real);
    await env.CACHE.put(kvKey(slug), bad);

    // A new isolate has no copy of its own: it reads KV, refuses the value and serves the database's target.
    const fresh = isolate();
    expect(await visit(fresh, slug)).toEqual({ status: 302, location: url });
    expect(await kvGet(slug)).not.toBe(bad);
    expect((await call(fresh, '/metrics')).status).toBe(404);
    const metrics = await (await call(fresh, '/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    expect(metrics).toContain('hop_cache_requests_total{cache="links",result="poisoned",tier="shared"} 1');
  });
});
