// The link cache through the app on a real libSQL file: a stampede of 1,000 concurrent requests for one uncached
// slug makes one database read (counted at the redirect's read port), with the in-process tier alone and with real
// Redis (redis-server behind the Upstash REST stand-in) as the shared tier; a change made through the API is never
// served stale by this process; with Redis unreachable, redirects keep working from memory and the database.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedirectLookup } from '../../src/modules/redirect/redirect.lookup.ts';
import { createTestApp, type TestApp, METRICS_AUTH } from '../helpers/app.ts';
import { redisAvailable, startRedis, type RedisServer } from '../support/redis.ts';
import { startUpstashRest, type UpstashRest } from '../support/upstash-rest.ts';

/** Wraps the portable read to count database reads of links. */
function counting() {
  const reads = { links: 0 };
  const wrap = (portable: RedirectLookup): RedirectLookup => ({
    findLink: (domain, slug) => (reads.links++, portable.findLink(domain, slug)),
    domainOwner: (host) => portable.domainOwner(host),
  });
  return { reads, wrap };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let t: TestApp | undefined;
afterEach(() => {
  t?.close();
  t = undefined;
});

const visit = async (app: TestApp, slug: string, host = 'localhost:8787') => app.app.request(`/${slug}`, { headers: { host } });

async function createLink(app: TestApp, slug: string, url = `https://example.com/${slug}`) {
  const res = await app.request('/v1/links', { method: 'POST', json: { slug, url } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function stampede(app: TestApp, slug: string, n = 1000) {
  const answers = await Promise.all(Array.from({ length: n }, () => visit(app, slug)));
  return answers.map((r) => `${r.status} ${r.headers.get('location') ?? ''}`);
}

describe('the in-process tier', () => {
  it('1,000 concurrent misses on one slug make exactly one database read', async () => {
    const { reads, wrap } = counting();
    t = await createTestApp({}, { redirectLookup: wrap });
    await createLink(t, 'hot');
    const answers = await stampede(t, 'hot');
    expect(new Set(answers)).toEqual(new Set(['302 https://example.com/hot']));
    expect(reads.links).toBe(1);
    // Unknown slugs too: "not found" is cached briefly.
    expect(new Set(await stampede(t, 'nothing-here'))).toEqual(new Set(['404 ']));
    expect(reads.links).toBe(2);
  });

  it('with HOP_CACHE=off every request reads the database (the counter above counts reads)', async () => {
    const { reads, wrap } = counting();
    t = await createTestApp({ HOP_CACHE: 'off' }, { redirectLookup: wrap });
    await createLink(t, 'hot');
    await stampede(t, 'hot', 50);
    expect(reads.links).toBe(50);
  });

  it('a link changed through the API is never served stale by this process', async () => {
    t = await createTestApp({ HOP_CACHE_TTL_S: '3600', HOP_CACHE_NEGATIVE_TTL_S: '3600' });
    expect((await visit(t, 'later')).status).toBe(404);
    const id = await createLink(t, 'later');
    expect((await visit(t, 'later')).headers.get('location')).toBe('https://example.com/later');
    await t.request(`/v1/links/${id}`, { method: 'PATCH', json: { url: 'https://example.com/changed' } });
    expect((await visit(t, 'later')).headers.get('location')).toBe('https://example.com/changed');
    await t.request(`/v1/links/${id}`, { method: 'PATCH', json: { slug: 'moved' } });
    expect((await visit(t, 'later')).status).toBe(404);
    expect((await visit(t, 'moved')).headers.get('location')).toBe('https://example.com/changed');
    await t.request(`/v1/links/${id}`, { method: 'DELETE' });
    expect((await visit(t, 'moved')).status).toBe(404);
  });

  it('a domain registered through the API serves its own links at once, not the default domain', async () => {
    t = await createTestApp({ HOP_CACHE_TTL_S: '3600' });
    await createLink(t, 'x', 'https://example.com/default-x');
    expect((await visit(t, 'x', 'go.example.net')).headers.get('location')).toBe('https://example.com/default-x');
    expect((await t.request('/v1/domains', { method: 'POST', json: { hostname: 'go.example.net' } })).status).toBe(201);
    expect((await visit(t, 'x', 'go.example.net')).status).toBe(404);
  });

  it('counts hits and misses at /metrics', async () => {
    t = await createTestApp();
    await createLink(t, 'm');
    for (let i = 0; i < 3; i++) await visit(t, 'm');
    const text = await (await t.app.request('/metrics', METRICS_AUTH)).text();
    expect(text).toContain('hop_cache_requests_total{cache="links",result="hit",tier="memory"} 2');
    expect(text).toContain('hop_cache_requests_total{cache="links",result="miss",tier="all"} 1');
  });
});

describe.runIf(redisAvailable())('with Redis as the shared tier', () => {
  let server: RedisServer;
  let rest: UpstashRest;
  let second: TestApp | undefined;
  beforeAll(async () => {
    server = await startRedis();
    rest = await startUpstashRest({ redisPort: server.port });
  });
  afterAll(async () => {
    await rest?.close();
    await server?.stop();
  });
  afterEach(() => {
    second?.close();
    second = undefined;
  });
  // A database deadline of 500 ms makes tombstones last 1 s.
  const env = () => ({
    HOP_CACHE: 'redis',
    HOP_REDIS_URL: rest.url,
    HOP_REDIS_TOKEN: rest.token,
    HOP_CACHE_TIMEOUT_MS: '200',
    HOP_DATABASE_TIMEOUT_MS: '500',
  });

  it('1,000 concurrent misses make one database read; a second process reads Redis, not the database', async () => {
    const { reads, wrap } = counting();
    t = await createTestApp(env(), { redirectLookup: wrap });
    await createLink(t, 'stampede');
    // Creating the link left a tombstone (see shared.ts) for twice the database deadline: fills wait until it is gone.
    await sleep(1100);
    expect(new Set(await stampede(t, 'stampede'))).toEqual(new Set(['302 https://example.com/stampede']));
    expect(reads.links).toBe(1);

    // Another app with its own memory (and its own, empty, database) sharing the Redis: Redis answers it.
    const other = counting();
    second = await createTestApp(env(), { redirectLookup: other.wrap });
    // The fill is written in the background: wait until Redis holds it (a fixed pause lost the race on a busy machine).
    const filled = () =>
      fetch(rest.url, { method: 'POST', headers: { authorization: `Bearer ${rest.token}` }, body: JSON.stringify(['GET', 'hop:link:localhost/stampede']) }).then((r) =>
        r.json(),
      );
    for (let i = 0; i < 250 && ((await filled()) as { result: string | null }).result === null; i++) await sleep(20);
    expect(((await filled()) as { result: string | null }).result).toContain('https://example.com/stampede');
    expect(new Set(await stampede(second, 'stampede', 100))).toEqual(new Set(['302 https://example.com/stampede']));
    expect(other.reads.links).toBe(0);
    const metrics = await (await second.app.request('/metrics', METRICS_AUTH)).text();
    expect(metrics).toContain('hop_cache_requests_total{cache="links",result="hit",tier="shared"} 1');
  });

  it('a change through one app reaches the other once its memory entry expires, never later', async () => {
    t = await createTestApp({ ...env(), HOP_CACHE_TTL_S: '1' });
    second = await createTestApp({ ...env(), HOP_CACHE_TTL_S: '1' });
    const id = await createLink(t, 'shared-change');
    await sleep(1100);
    expect((await visit(t, 'shared-change')).headers.get('location')).toBe('https://example.com/shared-change');
    await sleep(50);
    expect((await visit(second, 'shared-change')).headers.get('location')).toBe('https://example.com/shared-change');
    await t.request(`/v1/links/${id}`, { method: 'PATCH', json: { url: 'https://example.com/v2' } });
    expect((await visit(t, 'shared-change')).headers.get('location')).toBe('https://example.com/v2');
    // The second app's database is its own here, so once its memory entry is gone it can only learn the change
    // from Redis, which holds a tombstone: it reads its database (no such link) rather than the old value.
    const started = Date.now();
    let location: string | null = 'https://example.com/shared-change';
    while (location === 'https://example.com/shared-change' && Date.now() - started < 3000) {
      await sleep(50);
      location = (await visit(second, 'shared-change')).headers.get('location');
    }
    expect(location).toBeNull();
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('keeps redirecting from memory and the database while Redis is down, and says so in logs and metrics', async () => {
    const { reads, wrap } = counting();
    t = await createTestApp(env(), { redirectLookup: wrap });
    await createLink(t, 'warm');
    for (let i = 0; i < 10; i++) await createLink(t, `cold${i}`);
    expect((await visit(t, 'warm')).status).toBe(302);
    await server.kill();
    try {
      // Links in memory, and ten only in the database: each of those is a shared-tier failure, then a database read.
      const slugs = Array.from({ length: 200 }, (_, i) => (i % 2 ? 'warm' : `cold${i % 10}`));
      const answers = await Promise.all(slugs.map((slug) => visit(t!, slug).then((r) => `${r.status} ${r.headers.get('location')}`)));
      expect(answers).toEqual(slugs.map((slug) => `302 https://example.com/${slug}`));
      expect(t.logs.some((l) => l.includes('shared cache circuit open'))).toBe(true);
      expect(await (await t.app.request('/metrics', METRICS_AUTH)).text()).toContain('hop_cache_circuit_open{store="redis"} 1');
      expect(reads.links).toBeGreaterThanOrEqual(2);
    } finally {
      await server.restart();
    }
  });
});
