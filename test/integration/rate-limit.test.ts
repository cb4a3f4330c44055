// Rate limiting through the real app: per API key (with an override), per address on failed authentications, per
// address on redirects and, stricter, on unknown slugs; the RateLimit fields, Retry-After and the 429 problem. First
// with the in-process store and the test's clock; then with real parts: redis-server behind the Upstash REST
// stand-in, shared by two apps, killed and stopped mid-test to show fail-open and fail-closed.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { composeApp } from '../../src/composition/root.ts';
import { composeForProcess } from '../../src/composition/process.ts';
import { loadConfig } from '../../src/config.ts';
import type { ClickEvent } from '../../src/modules/clicks/clicks.schemas.ts';
import { createMetrics } from '../../src/platform/metrics.ts';
import { createRedisRestClient } from '../../src/platform/redis.ts';
import { ADMIN_TOKEN, createTestApp, expectProblem, GENEROUS_RATE_LIMITS, type TestApp, METRICS_AUTH } from '../helpers/app.ts';
import { redisAvailable, startRedis, type RedisServer } from '../support/redis.ts';
import { startUpstashRest, type UpstashRest } from '../support/upstash-rest.ts';

const apps: TestApp[] = [];
afterEach(() => {
  while (apps.length) apps.pop()!.close();
});

/** A test app whose client address is the right-most entry of X-Forwarded-For, as behind a load balancer. */
async function limitedApp(env: Record<string, string>, options: Parameters<typeof createTestApp>[1] = {}) {
  const t = await createTestApp({ HOP_CLIENT_IP_HEADER: 'x-forwarded-for', ...env }, options);
  apps.push(t);
  return t;
}

const from = (ip: string, headers: Record<string, string> = {}) => ({ headers: { 'x-forwarded-for': ip, ...headers } });

async function createLink(t: TestApp, slug: string) {
  const res = await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/', slug } });
  expect(res.status, await res.clone().text()).toBe(201);
}

function headersOf(res: Response) {
  return {
    policy: res.headers.get('ratelimit-policy'),
    state: res.headers.get('ratelimit'),
    retryAfter: res.headers.get('retry-after'),
  };
}

describe('rate limits with the in-process store', () => {
  describe('per API key', () => {
    it('counts each key in its window, with the RateLimit fields on each answer, then 429 with Retry-After', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_API: '3/60s' });
      for (const remaining of [2, 1, 0]) {
        const res = await t.request('/v1/workspace');
        expect(res.status).toBe(200);
        expect(headersOf(res)).toEqual({ policy: '"api";q=3;w=60', state: `"api";r=${remaining};t=60`, retryAfter: null });
      }
      t.clock.now = new Date(t.clock.now.getTime() + 20_000);
      const refused = await t.request('/v1/workspace');
      expect(headersOf(refused)).toEqual({ policy: '"api";q=3;w=60', state: '"api";r=0;t=40', retryAfter: '40' });
      const problem = await expectProblem(refused, 429, 'rate-limited');
      expect(problem.title).toBe('Too many requests.');
      expect(problem.detail).toBe('Too many requests; retry in 40 seconds.');
      expect(refused.headers.get('x-request-id')).toBe(problem.instance);
      // The security headers of the API stay, and nothing else is hidden by the refusal.
      expect(refused.headers.get('x-content-type-options')).toBe('nosniff');
    });

    it('counts keys apart: another key of the same workspace is not limited by the first', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_API: '2/60s' });
      // Creating the key spends one of the admin key's two requests.
      const other = await t.createKey(['links:read']);
      expect((await t.request('/v1/links')).status).toBe(200);
      expect((await t.request('/v1/links')).status).toBe(429);
      const res = await t.request('/v1/links', { key: other.key });
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit')).toBe('"api";r=1;t=60');
    });

    it('starts a new window when the old one has passed', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_API: '1/10s' });
      expect((await t.request('/v1/workspace')).status).toBe(200);
      expect((await t.request('/v1/workspace')).status).toBe(429);
      t.clock.now = new Date(t.clock.now.getTime() + 9_999);
      expect((await t.request('/v1/workspace')).status).toBe(429);
      t.clock.now = new Date(t.clock.now.getTime() + 1);
      const res = await t.request('/v1/workspace');
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit')).toBe('"api";r=0;t=10');
    });

    it('puts the fields on error answers too, and counts them', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_API: '2/60s' });
      const missing = await t.request('/v1/links/lnk_nope');
      await expectProblem(missing.clone(), 404, 'not-found');
      expect(missing.headers.get('ratelimit')).toBe('"api";r=1;t=60');
      const invalid = await t.request('/v1/links', { method: 'POST', json: { url: 'ftp://x' } });
      await expectProblem(invalid.clone(), 400, 'validation');
      expect(invalid.headers.get('ratelimit')).toBe('"api";r=0;t=60');
      await expectProblem(await t.request('/v1/workspace'), 429, 'rate-limited');
      expect(await t.count('links')).toBe(0);
    });

    it('gives a key named in HOP_RATE_LIMIT_KEY_OVERRIDES its own quota', async () => {
      const t = await limitedApp({});
      const big = await t.createKey(['links:read']);
      const small = await t.createKey(['links:read']);
      // A second app over the same database, configured with overrides for keys the first one created.
      const config = loadConfig({
        HOP_DATABASE_URL: `file:${t.dbPath}`,
        HOP_ADMIN_TOKEN: ADMIN_TOKEN,
        HOP_RATE_LIMIT_API: '2/60s',
        HOP_RATE_LIMIT_KEY_OVERRIDES: `${big.id}=4/30s, ${small.id}=1/1h`,
      });
      const app = composeApp(composeForProcess(config, { db: t.db, now: () => t.clock.now }));
      const get = (key: string) => app.request('/v1/links', { headers: { authorization: `Bearer ${key}` } });

      const statuses = async (key: string, n: number) => {
        const out: Array<[number, string | null]> = [];
        for (let i = 0; i < n; i++) {
          const res = await get(key);
          out.push([res.status, res.headers.get('ratelimit-policy')]);
        }
        return out;
      };
      expect(await statuses(big.key, 5)).toEqual([
        ...Array(4).fill([200, '"api";q=4;w=30']),
        [429, '"api";q=4;w=30'],
      ]);
      expect(await statuses(small.key, 2)).toEqual([
        [200, '"api";q=1;w=3600'],
        [429, '"api";q=1;w=3600'],
      ]);
      expect((await get(small.key)).headers.get('retry-after')).toBe('3600');
      expect(await statuses(t.adminKey, 3)).toEqual([
        [200, '"api";q=2;w=60'],
        [200, '"api";q=2;w=60'],
        [429, '"api";q=2;w=60'],
      ]);
    });

    it('counts the refusals in hop_ratelimit_limited_total', async () => {
      const metrics = createMetrics();
      const t = await limitedApp({ HOP_RATE_LIMIT_API: '1/60s' }, { metrics });
      for (let i = 0; i < 3; i++) await t.request('/v1/workspace');
      expect(metrics.value('hop_ratelimit_limited_total', { policy: 'api' })).toBe(2);
      const text = await (await t.app.request('/metrics', METRICS_AUTH)).text();
      expect(text).toContain('hop_ratelimit_limited_total{policy="api"} 2');
    });
  });

  describe('failed authentications per address', () => {
    it('refuses an address after its failures, before its credentials are checked, then lets it in after the window', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_UNAUTHENTICATED: '3/60s' });
      const guess = (key: string | null) => t.request('/v1/workspace', { key, ...from('198.51.100.1') });
      await expectProblem(await guess(null), 401, 'unauthorized');
      await expectProblem(await guess('hop_' + 'x'.repeat(43)), 401, 'unauthorized');
      await expectProblem(await guess('not-even-a-key'), 401, 'unauthorized');
      const refused = await guess('hop_' + 'y'.repeat(43));
      expect(headersOf(refused)).toEqual({
        policy: '"unauthenticated";q=3;w=60',
        state: '"unauthenticated";r=0;t=60',
        retryAfter: '60',
      });
      await expectProblem(refused, 429, 'rate-limited');
      // A valid key from that address is refused as well: a guess that happens to be right learns nothing.
      await expectProblem(await guess(t.adminKey), 429, 'rate-limited');
      // Another address is not affected.
      expect((await t.request('/v1/workspace', from('198.51.100.2'))).status).toBe(200);
      t.clock.now = new Date(t.clock.now.getTime() + 60_000);
      expect((await guess(t.adminKey)).status).toBe(200);
    });

    it('does not count good requests, so a busy address with valid keys is never refused for them', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_UNAUTHENTICATED: '2/60s' });
      for (let i = 0; i < 10; i++) expect((await t.request('/v1/workspace', from('198.51.100.3'))).status).toBe(200);
      await expectProblem(await t.request('/v1/workspace', { key: 'hop_wrong', ...from('198.51.100.3') }), 401);
      // A 403 (missing scope) and a 404 are not failed authentications either.
      const reader = await t.createKey(['links:read']);
      for (let i = 0; i < 3; i++) {
        await expectProblem(await t.request('/v1/keys', { key: reader.key, ...from('198.51.100.3') }), 403, 'forbidden');
      }
      await expectProblem(await t.request('/v1/workspace', { key: 'hop_wrong', ...from('198.51.100.3') }), 401);
      await expectProblem(await t.request('/v1/workspace', { key: 'hop_wrong', ...from('198.51.100.3') }), 429);
    });

    it('checks at most the quota of concurrent bad keys from one address (200 races of 60 at a quota of 30)', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_UNAUTHENTICATED: '30/60s' });
      for (let race = 0; race < 200; race++) {
        const ip = `10.1.${race >> 8}.${race & 255}`;
        const answers = await Promise.all(
          Array.from({ length: 60 }, (_, i) =>
            t.request('/v1/workspace', { key: `hop_${String(i).padStart(43, 'x')}`, ...from(ip) }).then((r) => r.status),
          ),
        );
        expect(answers.filter((s) => s === 401), `race ${race}`).toHaveLength(30);
        expect(answers.filter((s) => s === 429), `race ${race}`).toHaveLength(30);
      }
      // Good requests hold a place only while their key is checked: afterwards the address is not limited by them.
      const busy = await Promise.all(Array.from({ length: 60 }, () => t.request('/v1/workspace', from('10.2.0.1'))));
      expect(busy.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
      for (let i = 0; i < 30; i++) await expectProblem(await t.request('/v1/workspace', { key: 'hop_wrong', ...from('10.2.0.1') }), 401);
      await expectProblem(await t.request('/v1/workspace', { key: 'hop_wrong', ...from('10.2.0.1') }), 429);
    });

    it('limits guesses of the operator token the same way', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_UNAUTHENTICATED: '2/60s' });
      const create = (token: string) =>
        t.request('/v1/workspaces', { method: 'POST', key: token, json: { name: 'w' }, ...from('198.51.100.4') });
      await expectProblem(await create('wrong-operator-token-0123456789abcdef'), 401);
      await expectProblem(await create('wrong-operator-token-0123456789abcdeg'), 401);
      await expectProblem(await create(ADMIN_TOKEN), 429, 'rate-limited');
      expect(await t.count('workspaces')).toBe(1);
      expect((await t.request('/v1/workspaces', { method: 'POST', key: ADMIN_TOKEN, json: { name: 'w' } })).status).toBe(201);
    });
  });

  describe('redirects per address', () => {
    it('counts every redirect request of an address; past the limit 429 problem+json, and no click recorded', async () => {
      const events: ClickEvent[] = [];
      const t = await limitedApp(
        { HOP_RATE_LIMIT_REDIRECT: '3/60s' },
        { clickQueue: { send: (e) => void events.push(e) } },
      );
      await createLink(t, 'r');
      const visit = (ip: string, headers: Record<string, string> = {}) => t.app.request('/r', from(ip, headers));
      for (let i = 0; i < 2; i++) {
        const res = await visit('203.0.113.1');
        expect(res.status).toBe(302);
        // The redirect stays lean: the fields come only with a refusal.
        expect(res.headers.get('ratelimit-policy')).toBeNull();
      }
      expect((await visit('203.0.113.1')).status).toBe(302);
      const refused = await visit('203.0.113.1');
      expect(headersOf(refused)).toEqual({ policy: '"redirect";q=3;w=60', state: '"redirect";r=0;t=60', retryAfter: '60' });
      await expectProblem(refused, 429, 'rate-limited');
      expect(events).toHaveLength(3);
      expect((await visit('203.0.113.2')).status).toBe(302);
    });

    it('answers a browser with the small HTML page, and HEAD without a body', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_REDIRECT: '1/60s' });
      await createLink(t, 'r');
      expect((await t.app.request('/r', from('203.0.113.3'))).status).toBe(302);
      const page = await t.app.request('/r', from('203.0.113.3', { accept: 'text/html,application/xhtml+xml' }));
      expect(page.status).toBe(429);
      expect(page.headers.get('content-type')).toBe('text/html; charset=UTF-8');
      expect(headersOf(page)).toEqual({ policy: '"redirect";q=1;w=60', state: '"redirect";r=0;t=60', retryAfter: '60' });
      expect(await page.text()).toContain('Too many requests');
      const head = await t.app.request('/r', { method: 'HEAD', ...from('203.0.113.3') });
      expect(head.status).toBe(429);
      expect(head.headers.get('retry-after')).toBe('60');
      expect(await head.text()).toBe('');
    });
  });

  describe('unknown slugs per address (against enumeration)', () => {
    it('counts only unknown slugs; past the limit every slug of that address is 429 until the window passes', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_NOT_FOUND: '2/60s' });
      await createLink(t, 'known');
      const visit = (slug: string, ip = '192.0.2.10') => t.app.request(`/${slug}`, from(ip));
      for (let i = 0; i < 10; i++) expect((await visit('known')).status).toBe(302);
      await expectProblem(await visit('guess-1'), 404, 'not-found');
      // A syntactically impossible slug is an unknown slug too.
      await expectProblem(await visit('~bad~'), 404, 'not-found');
      t.clock.now = new Date(t.clock.now.getTime() + 15_000);
      for (const slug of ['known', 'guess-2']) {
        const refused = await visit(slug);
        expect(headersOf(refused)).toEqual({
          policy: '"not-found";q=2;w=60',
          state: '"not-found";r=0;t=45',
          retryAfter: '45',
        });
        await expectProblem(refused, 429, 'rate-limited');
      }
      expect((await visit('known', '192.0.2.11')).status).toBe(302);
      t.clock.now = new Date(t.clock.now.getTime() + 45_000);
      expect((await visit('known')).status).toBe(302);
    });

    it('answers at most the quota of 404s to concurrent unknown slugs from one address (200 races of 120 at 60)', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_NOT_FOUND: '60/60s' });
      for (let race = 0; race < 200; race++) {
        const ip = `10.3.${race >> 8}.${race & 255}`;
        const answers = await Promise.all(
          Array.from({ length: 120 }, async (_, i) => (await t.app.request(`/guess-${race}-${i}`, from(ip))).status),
        );
        expect(answers.filter((s) => s === 404), `race ${race}`).toHaveLength(60);
        expect(answers.filter((s) => s === 429), `race ${race}`).toHaveLength(60);
      }
    });

    it('reports the later window when both redirect limits refuse', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_REDIRECT: '2/10s', HOP_RATE_LIMIT_NOT_FOUND: '1/60s' });
      await expectProblem(await t.app.request('/nope', from('192.0.2.12')), 404);
      t.clock.now = new Date(t.clock.now.getTime() + 1000);
      const first = await t.app.request('/nope', from('192.0.2.12'));
      expect(headersOf(first)).toEqual({ policy: '"not-found";q=1;w=60', state: '"not-found";r=0;t=59', retryAfter: '59' });
      // Now the redirect limit (2 in 10 s, 9 s left) refuses too; the unknown-slug one lasts longer.
      const second = await t.app.request('/nope', from('192.0.2.12'));
      expect(headersOf(second)).toEqual({ policy: '"not-found";q=1;w=60', state: '"not-found";r=0;t=59', retryAfter: '59' });
      t.clock.now = new Date(t.clock.now.getTime() + 60_000);
      await expectProblem(await t.app.request('/nope', from('192.0.2.12')), 404);
    });
  });

  describe('the client address', () => {
    it('takes the right-most X-Forwarded-For entry, the one the trusted proxy added', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_REDIRECT: '1/60s' });
      await createLink(t, 'r');
      expect((await t.app.request('/r', from('10.0.0.1, 203.0.113.20'))).status).toBe(302);
      // A client writing its own left-most entries gains nothing.
      expect((await t.app.request('/r', from('10.0.0.2, 203.0.113.20'))).status).toBe(429);
      expect((await t.app.request('/r', from('203.0.113.20:51234'))).status).toBe(429);
      expect((await t.app.request('/r', from('::ffff:203.0.113.20'))).status).toBe(429);
    });

    it('counts an IPv6 client by its /64', async () => {
      const t = await limitedApp({ HOP_RATE_LIMIT_REDIRECT: '1/60s' });
      await createLink(t, 'r');
      expect((await t.app.request('/r', from('2001:db8:1:2::1'))).status).toBe(302);
      expect((await t.app.request('/r', from('2001:DB8:1:2:ffff:ffff:ffff:9'))).status).toBe(429);
      expect((await t.app.request('/r', from('[2001:db8:1:2::77]:443'))).status).toBe(429);
      expect((await t.app.request('/r', from('2001:db8:1:3::1'))).status).toBe(302);
    });

    it('never reads the header unless configured, and never fails on a bad one', async () => {
      const t = await createTestApp({ HOP_RATE_LIMIT_REDIRECT: '2/60s' });
      apps.push(t);
      await createLink(t, 'r');
      // Unconfigured: these differing addresses are ignored, so they all count as the same (unknown) client.
      expect((await t.app.request('/r', from('203.0.113.30'))).status).toBe(302);
      expect((await t.app.request('/r', from('203.0.113.31'))).status).toBe(302);
      expect((await t.app.request('/r', from('203.0.113.32'))).status).toBe(429);

      const u = await limitedApp({ HOP_RATE_LIMIT_REDIRECT: '1000/60s' });
      await createLink(u, 'r');
      for (const value of ['', 'garbage', '999.1.1.1', '1:2:3', 'a'.repeat(5000), '::ffff:1.2.3', '[::1', ', ,', '1::2::3']) {
        expect((await u.app.request('/r', from(value))).status, value).toBe(302);
      }
    });
  });

  it('limits nothing and adds no fields with HOP_RATE_LIMIT=off', async () => {
    const t = await limitedApp({ HOP_RATE_LIMIT: 'off', HOP_RATE_LIMIT_API: '1/60s', HOP_RATE_LIMIT_REDIRECT: '1/60s' });
    await createLink(t, 'r');
    for (let i = 0; i < 3; i++) {
      const res = await t.request('/v1/workspace');
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-policy')).toBeNull();
      expect((await t.app.request('/r', from('203.0.113.40'))).status).toBe(302);
    }
  });
});

describe.runIf(redisAvailable())('rate limits in Redis (redis-server behind the Upstash REST stand-in)', () => {
  let server: RedisServer;
  let rest: UpstashRest;
  let redis: ReturnType<typeof createRedisRestClient>;
  const salt = 'test-salt-0123456789abcdef';

  beforeAll(async () => {
    server = await startRedis();
    rest = await startUpstashRest({ redisPort: server.port });
    redis = createRedisRestClient({ url: rest.url, token: rest.token, timeoutMs: 2000, retries: 0 });
  });
  afterAll(async () => {
    await rest?.close();
    await server?.stop();
  });

  const redisEnv = (env: Record<string, string> = {}) => ({
    HOP_RATE_LIMIT: 'redis',
    HOP_REDIS_URL: rest.url,
    HOP_REDIS_TOKEN: rest.token,
    HOP_RATE_LIMIT_SALT: salt,
    HOP_RATE_LIMIT_TIMEOUT_MS: '300',
    ...env,
  });
  it('holds to the quotas across two apps under concurrency: bad keys checked and unknown slugs answered (200 races each)', async () => {
    // A generous deadline: a call past it fails open (allowed unchecked, as documented), which is not what this tests.
    const env = redisEnv({ HOP_RATE_LIMIT_UNAUTHENTICATED: '6/60s', HOP_RATE_LIMIT_NOT_FOUND: '6/60s', HOP_RATE_LIMIT_TIMEOUT_MS: '5000' });
    const [a, b] = [await limitedApp(env), await limitedApp(env)];
    for (let race = 0; race < 200; race++) {
      const ip = `10.9.${race >> 8}.${race & 255}`;
      const answers = await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          const app = i % 2 ? a : b;
          const guess = await app.request('/v1/workspace', { key: `hop_${String(i).padStart(43, 'z')}`, ...from(ip) });
          const slug = await app.app.request(`/nothing-${race}-${i}`, from(ip));
          return [guess.status, slug.status];
        }),
      );
      expect(answers.filter(([g]) => g === 401), `race ${race}`).toHaveLength(6);
      expect(answers.filter(([, s]) => s === 404), `race ${race}`).toHaveLength(6);
    }
  }, 60_000);

  it('shares the count between two apps: an address and an API key are counted once across them', async () => {
    const a = await limitedApp(redisEnv({ HOP_RATE_LIMIT_REDIRECT: '4/60s', HOP_RATE_LIMIT_API: '3/60s' }));
    const b = await limitedApp(redisEnv({ HOP_RATE_LIMIT_REDIRECT: '4/60s' }));
    await createLink(a, 'shared');
    await createLink(b, 'shared');
    const statuses: number[] = [];
    for (const t of [a, b, a, b, a, b]) statuses.push((await t.app.request('/shared', from('203.0.113.50'))).status);
    expect(statuses).toEqual([302, 302, 302, 302, 429, 429]);
    const refused = await b.app.request('/shared', from('203.0.113.50'));
    expect(refused.headers.get('ratelimit-policy')).toBe('"redirect";q=4;w=60');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(55);
    await expectProblem(refused, 429, 'rate-limited');

    // A second app over a's database (so the same key ids), sharing the Redis counters.
    // (createLink above spent one of a's admin key's three requests.)
    const config = loadConfig({
      HOP_DATABASE_URL: `file:${a.dbPath}`,
      ...GENEROUS_RATE_LIMITS,
      ...redisEnv({ HOP_RATE_LIMIT_API: '3/60s' }),
    });
    const twin = composeApp(composeForProcess(config, { db: a.db }));
    const first = await twin.request('/v1/workspace', { headers: { authorization: `Bearer ${a.adminKey}` } });
    expect(first.headers.get('ratelimit')).toMatch(/^"api";r=1;t=(59|60)$/);
    expect((await a.request('/v1/workspace')).headers.get('ratelimit')).toMatch(/^"api";r=0;t=(59|60)$/);
    await expectProblem(await twin.request('/v1/workspace', { headers: { authorization: `Bearer ${a.adminKey}` } }), 429);
  });

  it('keeps counters in Redis under HMACs, never the address or key id in the clear, and lets them expire', async () => {
    const t = await limitedApp(redisEnv({ HOP_RATE_LIMIT_NOT_FOUND: '5/10s' }));
    const earlier = new Set(await redis.keys('hop:rl:*'));
    await expectProblem(await t.app.request('/nope', from('203.0.113.60')), 404);
    await t.request('/v1/workspace');
    // The unknown slug is counted after the answer: wait for it.
    await new Promise((r) => setTimeout(r, 100));
    const keys = (await redis.keys('hop:rl:*')).filter((k) => !earlier.has(k));
    expect(keys.length).toBeGreaterThanOrEqual(3);
    for (const key of keys) {
      expect(key).toMatch(/^hop:rl:\{[A-Za-z0-9_-]{22}\}:(api|redirect|not-found|unauthenticated)$/);
      expect(key).not.toContain('203.0.113');
    }
    const notFound = keys.find((k) => k.endsWith(':not-found'))!;
    expect(await redis.get(notFound)).toBe('1');
    const ttl = await redis.pttl(notFound);
    expect(ttl).toBeGreaterThan(5_000);
    expect(ttl).toBeLessThanOrEqual(10_000);
  });

  describe('with Redis down', () => {
    afterEach(async () => {
      if (server.running()) process.kill(server.pid(), 'SIGCONT');
      else await server.restart();
    });

    it('fails open: requests are allowed unchecked, counted as degraded, with one warning each way', async () => {
      const metrics = createMetrics();
      const t = await limitedApp(redisEnv({ HOP_RATE_LIMIT_API: '2/60s', HOP_LOG_LEVEL: 'warn' }), { metrics });
      await createLink(t, 'open');
      const first = await t.request('/v1/workspace');
      expect(first.headers.get('ratelimit')).toMatch(/^"api";r=0;t=/);

      await server.kill();
      for (let i = 0; i < 8; i++) {
        const res = await t.request('/v1/workspace');
        expect(res.status).toBe(200);
        // The policy stands, but no count can be announced.
        expect(headersOf(res)).toEqual({ policy: '"api";q=2;w=60', state: null, retryAfter: null });
        expect((await t.app.request('/open', from('203.0.113.70'))).status).toBe(302);
      }
      await expectProblem(await t.app.request('/missing', from('203.0.113.70')), 404);
      expect(metrics.value('hop_ratelimit_degraded_total', { mode: 'open' })).toBeGreaterThanOrEqual(16);
      expect(metrics.value('hop_ratelimit_degraded_total', { mode: 'closed' })).toBe(0);
      const degraded = logLines(t, 'rate limiting degraded');
      expect(degraded).toHaveLength(1);
      expect(degraded[0]).toMatchObject({ level: 'warn', store: 'redis', mode: 'open' });

      // Back up (and empty: it had no persistence): after the breaker's cooldown the counts resume.
      await server.restart();
      await new Promise((r) => setTimeout(r, 5_100));
      expect((await t.request('/v1/workspace')).headers.get('ratelimit')).toMatch(/^"api";r=1;t=/);
      expect((await t.request('/v1/workspace')).headers.get('ratelimit')).toMatch(/^"api";r=0;t=/);
      await expectProblem(await t.request('/v1/workspace'), 429, 'rate-limited');
      expect(logLines(t, 'rate limiting restored')).toEqual([expect.objectContaining({ level: 'warn', mode: 'open' })]);
      expect(logLines(t, 'rate limiting degraded')).toHaveLength(1);
    }, 30_000);

    it('fails closed: 503 problem+json with Retry-After, on the API and the redirect', async () => {
      const metrics = createMetrics();
      const t = await limitedApp(redisEnv({ HOP_RATE_LIMIT_ON_ERROR: 'closed', HOP_LOG_LEVEL: 'warn' }), {
        metrics,
      });
      await createLink(t, 'closed');
      await server.kill();
      for (const res of [
        await t.request('/v1/workspace'),
        await t.request('/v1/workspace', { key: 'hop_wrong' }),
        await t.app.request('/closed', from('203.0.113.80')),
        await t.app.request('/closed', from('203.0.113.80', { accept: 'text/html' })),
      ]) {
        expect(res.headers.get('retry-after')).toBe('1');
        const problem = await expectProblem(res, 503, 'unavailable');
        expect(problem.detail).toBe('Rate limiting is unavailable; retry shortly.');
      }
      for (let i = 0; i < 4; i++) await t.request('/v1/workspace');
      expect(metrics.value('hop_ratelimit_degraded_total', { mode: 'closed' })).toBe(8);
      expect(logLines(t, 'rate limiting degraded')).toEqual([
        expect.objectContaining({ level: 'warn', store: 'redis', mode: 'closed' }),
      ]);
    });

    it('treats a Redis slower than the deadline as down, within the deadline', async () => {
      const metrics = createMetrics();
      const t = await limitedApp(redisEnv({ HOP_RATE_LIMIT_TIMEOUT_MS: '150' }), { metrics });
      await createLink(t, 'slow');
      process.kill(server.pid(), 'SIGSTOP');
      const started = performance.now();
      const res = await t.app.request('/slow', from('203.0.113.90'));
      const took = performance.now() - started;
      expect(res.status).toBe(302);
      expect(took).toBeGreaterThanOrEqual(140);
      expect(took).toBeLessThan(1000);
      expect(metrics.value('hop_ratelimit_degraded_total', { mode: 'open' })).toBe(1);
    });
  });
});

function logLines(t: TestApp, msg: string): Array<Record<string, unknown>> {
  return t.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => l.msg === msg);
}
