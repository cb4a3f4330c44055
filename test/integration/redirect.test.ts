// GET|HEAD /{slug} through the real app: status, Location, Cache-Control, query forwarding, targeting, expiry, hosts.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Link } from '../../src/modules/links/links.schemas.ts';
import { createTestApp, expectProblem, type TestApp } from '../helpers/app.ts';

let t: TestApp;

const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1';
const ANDROID = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36';
const DESKTOP = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36';
const HOUR = 60 * 60 * 1000;

async function createLink(body: Record<string, unknown>, app: TestApp = t): Promise<Link> {
  const res = await app.request('/v1/links', { method: 'POST', json: body });
  if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
  return (await res.json()) as Link;
}

/** A click as a visitor makes it: no API key, on the default host unless `path` names another. */
const visit = (path: string, init: RequestInit = {}, app: TestApp = t) => app.app.request(path, init);

async function expectRedirect(res: Response, status: number, location: string) {
  expect({ status: res.status, location: res.headers.get('location') }).toEqual({ status, location });
  expect(await res.text()).toBe('');
}

// The same behaviour whichever adapter serves the redirect's read.
describe.each(['portable', 'embedded'] as const)('with the %s redirect lookup', (redirectLookup) => {
  beforeEach(async () => {
    t = await createTestApp({}, { redirectLookup });
  });

  afterEach(() => {
    t.close();
  });

  describe('GET /{slug}', () => {
    it('redirects with 302, the Location and no-store by default', async () => {
      await createLink({ url: 'https://example.com/target', slug: 'go' });
      const res = await visit('/go');
      expect(res.headers.get('cache-control')).toBe('no-store');
      await expectRedirect(res, 302, 'https://example.com/target');
    });

    it.each([301, 302, 307, 308])('answers with the redirectStatus %i of the link', async (redirectStatus) => {
      await createLink({ url: 'https://example.com/', slug: 's', redirectStatus });
      await expectRedirect(await visit('/s'), redirectStatus, 'https://example.com/');
    });

    it('needs no API key and ignores a bad one', async () => {
      await createLink({ url: 'https://example.com/', slug: 's' });
      const res = await visit('/s', { headers: { authorization: 'Bearer nonsense' } });
      expect(res.status).toBe(302);
    });

    it('serves a changed target at once and forgets a deleted link', async () => {
      const link = await createLink({ url: 'https://example.com/old', slug: 's' });
      await t.request(`/v1/links/${link.id}`, { method: 'PATCH', json: { url: 'https://example.com/new' } });
      await expectRedirect(await visit('/s'), 302, 'https://example.com/new');
      await t.request(`/v1/links/${link.id}`, { method: 'DELETE' });
      await expectProblem(await visit('/s'), 404, 'not-found');
    });

    describe('Cache-Control', () => {
      it('is public with the max-age of cacheMaxAge', async () => {
        await createLink({ url: 'https://example.com/', slug: 's', cacheMaxAge: 3600 });
        expect((await visit('/s')).headers.get('cache-control')).toBe('public, max-age=3600');
      });

      it('is private for a link that varies by device or country', async () => {
        await createLink({ url: 'https://example.com/', slug: 'd', cacheMaxAge: 600, iosUrl: 'https://apps.apple.com/x' });
        await createLink({ url: 'https://example.com/', slug: 'g', cacheMaxAge: 600, geo: { DE: 'https://example.de/' } });
        expect((await visit('/d')).headers.get('cache-control')).toBe('private, max-age=600');
        expect((await visit('/g')).headers.get('cache-control')).toBe('private, max-age=600');
      });

      it('is no-store for a link with maxClicks', async () => {
        await createLink({ url: 'https://example.com/', slug: 's', cacheMaxAge: 3600, maxClicks: 10 });
        expect((await visit('/s')).headers.get('cache-control')).toBe('no-store');
      });

      it('does not outlive the expiry', async () => {
        const expiresAt = new Date(t.clock.now.getTime() + 600_000).toISOString();
        await createLink({ url: 'https://example.com/', slug: 's', cacheMaxAge: 3600, expiresAt });
        expect((await visit('/s')).headers.get('cache-control')).toBe('public, max-age=600');
        t.clock.now = new Date(t.clock.now.getTime() + 599_000);
        expect((await visit('/s')).headers.get('cache-control')).toBe('public, max-age=1');
      });
    });

    describe('query forwarding', () => {
      it('adds the click query to the target by default', async () => {
        await createLink({ url: 'https://example.com/p', slug: 's' });
        await expectRedirect(await visit('/s?utm_source=news&ref=a%20b'), 302, 'https://example.com/p?utm_source=news&ref=a%20b');
      });

      it("forwards the click's query byte for byte, even where it is not well-formed", async () => {
        await createLink({ url: 'https://example.com/p', slug: 's' });
        await expectRedirect(await visit('/s?%zz=%ff&a=%E0&flag'), 302, 'https://example.com/p?%zz=%ff&a=%E0&flag');
      });

      it("keeps the target's own value for a parameter both have", async () => {
        await createLink({ url: 'https://example.com/p?utm_source=hop&x=1', slug: 's' });
        await expectRedirect(
          await visit('/s?utm_source=evil&y=2'),
          302,
          'https://example.com/p?utm_source=hop&x=1&y=2',
        );
      });

      it('keeps the target as is when forwardQuery is false', async () => {
        await createLink({ url: 'https://example.com/p?x=1', slug: 's', forwardQuery: false });
        await expectRedirect(await visit('/s?utm_source=news'), 302, 'https://example.com/p?x=1');
      });

      it('can be switched off by a patch', async () => {
        const link = await createLink({ url: 'https://example.com/p', slug: 's' });
        await t.request(`/v1/links/${link.id}`, { method: 'PATCH', json: { forwardQuery: false } });
        await expectRedirect(await visit('/s?a=1'), 302, 'https://example.com/p');
      });
    });

    describe('device and geo targeting', () => {
      beforeEach(async () => {
        await createLink({
          url: 'https://example.com/',
          slug: 'app',
          iosUrl: 'https://apps.apple.com/app/id1',
          androidUrl: 'https://play.google.com/store/apps/details?id=x',
          geo: { DE: 'https://example.de/', FR: 'https://example.fr/' },
        });
      });

      it('sends iOS and Android user agents to their stores, others to url', async () => {
        await expectRedirect(await visit('/app', { headers: { 'user-agent': IPHONE } }), 302, 'https://apps.apple.com/app/id1');
        await expectRedirect(
          await visit('/app', { headers: { 'user-agent': ANDROID } }),
          302,
          'https://play.google.com/store/apps/details?id=x',
        );
        await expectRedirect(await visit('/app', { headers: { 'user-agent': DESKTOP } }), 302, 'https://example.com/');
        await expectRedirect(await visit('/app'), 302, 'https://example.com/');
      });

      it('sends a country from cf-ipcountry to its geo target, others to url', async () => {
        const from = (country: string) => visit('/app', { headers: { 'user-agent': DESKTOP, 'cf-ipcountry': country } });
        await expectRedirect(await from('DE'), 302, 'https://example.de/');
        await expectRedirect(await from('fr'), 302, 'https://example.fr/');
        await expectRedirect(await from('US'), 302, 'https://example.com/');
      });

      it('prefers the device target over the geo target', async () => {
        const res = await visit('/app', { headers: { 'user-agent': IPHONE, 'cf-ipcountry': 'DE' } });
        await expectRedirect(res, 302, 'https://apps.apple.com/app/id1');
      });
    });

    it('trusts no country header unless HOP_GEO_HEADER names one (any client can send cf-ipcountry to Node or Bun)', async () => {
      const bare = await createTestApp({ HOP_GEO_HEADER: undefined }, { redirectLookup });
      try {
        await createLink({ url: 'https://example.com/', slug: 'g', geo: { DE: 'https://example.de/' } }, bare);
        await expectRedirect(await visit('/g', { headers: { 'cf-ipcountry': 'DE' } }, bare), 302, 'https://example.com/');
      } finally {
        bare.close();
      }
    });

    it('reads the country from HOP_GEO_HEADER when it is set', async () => {
      const custom = await createTestApp({ HOP_GEO_HEADER: 'X-Visitor-Country' }, { redirectLookup });
      try {
        await createLink({ url: 'https://example.com/', slug: 'g', geo: { DE: 'https://example.de/' } }, custom);
        await expectRedirect(await visit('/g', { headers: { 'x-visitor-country': 'DE' } }, custom), 302, 'https://example.de/');
        await expectRedirect(await visit('/g', { headers: { 'cf-ipcountry': 'DE' } }, custom), 302, 'https://example.com/');
      } finally {
        custom.close();
      }
    });

    describe('expiry', () => {
      const expiresIn = (ms: number) => new Date(t.clock.now.getTime() + ms).toISOString();

      it('redirects until expiresAt, then answers 410 problem+json', async () => {
        await createLink({ url: 'https://example.com/', slug: 's', expiresAt: expiresIn(HOUR) });
        const start = t.clock.now.getTime();
        t.clock.now = new Date(start + HOUR - 1);
        expect((await visit('/s')).status).toBe(302);
        t.clock.now = new Date(start + HOUR);
        const problem = await expectProblem(await visit('/s'), 410, 'link-gone');
        expect(problem.detail).toMatch(/expired/);
        t.clock.now = new Date(start + 2 * HOUR);
        await expectProblem(await visit('/s'), 410, 'link-gone');
      });

      it('answers a small HTML page with 410 to a browser', async () => {
        await createLink({ url: 'https://example.com/', slug: 's', expiresAt: expiresIn(HOUR) });
        t.clock.now = new Date(t.clock.now.getTime() + 2 * HOUR);
        const res = await visit('/s', { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
        expect(res.status).toBe(410);
        expect(res.headers.get('content-type')).toMatch(/^text\/html/);
        expect(res.headers.get('cache-control')).toBe('no-store');
        expect(await res.text()).toMatch(/<title>410 /);
      });

      it('redirects an expired link to its fallbackUrl with 302 and no-store', async () => {
        await createLink({
          url: 'https://example.com/',
          slug: 's',
          redirectStatus: 301,
          cacheMaxAge: 3600,
          expiresAt: expiresIn(HOUR),
          fallbackUrl: 'https://example.com/expired',
        });
        t.clock.now = new Date(t.clock.now.getTime() + 2 * HOUR);
        const res = await visit('/s');
        expect(res.headers.get('cache-control')).toBe('no-store');
        await expectRedirect(res, 302, 'https://example.com/expired');
      });

      it('serves the link again when a patch clears the expiry', async () => {
        const link = await createLink({ url: 'https://example.com/', slug: 's', expiresAt: expiresIn(HOUR) });
        t.clock.now = new Date(t.clock.now.getTime() + 2 * HOUR);
        await expectProblem(await visit('/s'), 410, 'link-gone');
        await t.request(`/v1/links/${link.id}`, { method: 'PATCH', json: { expiresAt: null } });
        expect((await visit('/s')).status).toBe(302);
      });
    });

    describe('unknown slugs', () => {
      it.each(['/nope', '/a.b', '/-x', `/${'x'.repeat(65)}`, '/%E2%9C%93', '/a%2Fb'])('answer 404 problem+json at %s', async (path) => {
        const res = await visit(path);
        expect(res.headers.get('cache-control')).toBe('no-store');
        await expectProblem(res, 404, 'not-found');
      });

      it('answer a small HTML page to a browser', async () => {
        const res = await visit('/nope', { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
        expect(res.status).toBe(404);
        expect(res.headers.get('content-type')).toMatch(/^text\/html/);
        const html = await res.text();
        expect(html).toMatch(/^<!doctype html>/);
        expect(html).toContain('Link not found');
      });

      it('answer problem+json to a client that also accepts JSON', async () => {
        await expectProblem(await visit('/nope', { headers: { accept: 'text/html, application/json' } }), 404, 'not-found');
      });

      it("are not served from another host's links", async () => {
        await t.request('/v1/domains', { method: 'POST', json: { hostname: 'go.example.com' } });
        await createLink({ url: 'https://example.com/', slug: 'only-custom', domain: 'go.example.com' });
        await expectProblem(await visit('/only-custom'), 404, 'not-found');
      });
    });

    describe('hosts', () => {
      beforeEach(async () => {
        const res = await t.request('/v1/domains', { method: 'POST', json: { hostname: 'go.example.com' } });
        expect(res.status).toBe(201);
      });

      it('serves a link on a custom domain for that Host', async () => {
        await createLink({ url: 'https://example.com/custom', slug: 'x', domain: 'go.example.com' });
        await expectRedirect(await visit('http://go.example.com/x'), 302, 'https://example.com/custom');
        await expectRedirect(await visit('https://GO.example.com/x'), 302, 'https://example.com/custom');
      });

      it('prefers the link of the Host over the same slug on the default domain', async () => {
        await createLink({ url: 'https://example.com/custom', slug: 'x', domain: 'go.example.com' });
        await createLink({ url: 'https://example.com/default', slug: 'x' });
        await expectRedirect(await visit('http://go.example.com/x'), 302, 'https://example.com/custom');
        await expectRedirect(await visit('http://localhost/x'), 302, 'https://example.com/default');
      });

      it('serves an unknown Host from the default domain', async () => {
        await createLink({ url: 'https://example.com/default', slug: 'y' });
        await expectRedirect(await visit('http://unknown.example.net/y'), 302, 'https://example.com/default');
        await expectRedirect(await visit('http://localhost:8787/y'), 302, 'https://example.com/default');
      });

      it("never serves default-domain links on a registered domain, its own workspace's or another's", async () => {
        await createLink({ url: 'https://example.com/default', slug: 'mine' });
        const other = await t.createWorkspace('phisher');
        const phish = await t.request('/v1/links', {
          method: 'POST',
          key: other.adminKey,
          json: { url: 'https://evil.example/login', slug: 'phish' },
        });
        expect(phish.status).toBe(201);
        await expectProblem(await visit('http://go.example.com/phish'), 404, 'not-found');
        await expectProblem(await visit('http://go.example.com/mine'), 404, 'not-found');
        await expectRedirect(await visit('http://localhost/phish'), 302, 'https://evil.example/login');
      });

      it('treats a trailing dot in the Host as the same name', async () => {
        await createLink({ url: 'https://example.com/custom', slug: 'dot', domain: 'go.example.com' });
        await expectRedirect(await visit('http://go.example.com./dot'), 302, 'https://example.com/custom');
      });
    });
  });

  describe('HEAD /{slug}', () => {
    /** GET and HEAD with the same request id, so that every header can be compared. */
    async function both(path: string, headers: Record<string, string> = {}) {
      const get = await visit(path, { headers: { ...headers, 'x-request-id': 'compare-1' } });
      const head = await visit(path, { method: 'HEAD', headers: { ...headers, 'x-request-id': 'compare-1' } });
      return { get, head };
    }

    it.each<[string, string, () => Promise<unknown>, Record<string, string>]>([
      ['a redirect', '/s', () => createLink({ url: 'https://example.com/', slug: 's', cacheMaxAge: 60 }), {}],
      ['a targeted redirect', '/s', () => createLink({ url: 'https://example.com/', slug: 's', iosUrl: 'https://apps.apple.com/x' }), { 'user-agent': IPHONE }],
      ['an unknown slug', '/nope', async () => undefined, {}],
      ['an unknown slug for a browser', '/nope', async () => undefined, { accept: 'text/html' }],
      [
        'an expired link',
        '/s',
        async () => {
          await createLink({ url: 'https://example.com/', slug: 's', expiresAt: new Date(t.clock.now.getTime() + 1000).toISOString() });
          t.clock.now = new Date(t.clock.now.getTime() + HOUR);
        },
        {},
      ],
    ])('answers %s with the status and headers of GET and no body', async (_what, path, setup, headers) => {
      await setup();
      const { get, head } = await both(path, headers);
      expect(head.status).toBe(get.status);
      expect(Object.fromEntries(head.headers)).toEqual(Object.fromEntries(get.headers));
      expect(await head.text()).toBe('');
    });
  });

  describe('X-Request-Id', () => {
    it('is on a redirect, and echoes a well-formed incoming id', async () => {
      await createLink({ url: 'https://example.com/', slug: 's' });
      expect((await visit('/s')).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect((await visit('/s', { headers: { 'x-request-id': 'abc-123' } })).headers.get('x-request-id')).toBe('abc-123');
    });

    it('replaces a malformed incoming id', async () => {
      await createLink({ url: 'https://example.com/', slug: 's' });
      const res = await visit('/s', { headers: { 'x-request-id': 'bad id <script>' } });
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('is on the HTML not-found page', async () => {
      const res = await visit('/nope', { headers: { accept: 'text/html' } });
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('is on a problem+json answer and equals its instance', async () => {
      const res = await visit('/nope', { headers: { 'x-request-id': 'trace-me-42' } });
      const header = res.headers.get('x-request-id');
      const problem = await expectProblem(res, 404, 'not-found');
      expect(problem.instance).toBe('trace-me-42');
      expect(header).toBe('trace-me-42');
    });
  });
});

describe('a Host header that is not one host', () => {
  it.each(['go.example.com, other', 'a b', 'exa_mple.com', ''])('answers 400 problem+json for %j', async (host) => {
    t = await createTestApp({}, { redirectLookup: 'embedded' });
    try {
      const res = await t.app.request(new Request('http://localhost/s', { headers: { host } }));
      await expectProblem(res, 400, 'bad-request');
    } finally {
      t.close();
    }
  });
});
