// The redirect decision: query merging, device/geo targeting, cache policy, exhaustion, and resolve() over a fake repository.
import { describe, expect, it } from 'vitest';
import type { LinkRow } from '../../src/db/schema.ts';
import type { LinksRepository } from '../../src/modules/links/links.repository.ts';
import { linkDefaults } from '../../src/modules/links/links.service.ts';
import {
  cachePolicy,
  createRedirectService,
  isExhausted,
  mergeQuery,
  pickTarget,
  type RedirectRequest,
  type RedirectVisit,
  type VisitOutcome,
} from '../../src/modules/redirect/redirect.service.ts';
import type { ClickEvent } from '../../src/modules/clicks/clicks.schemas.ts';
import { createMemoryRateLimitStore } from '../../src/platform/ratelimit/memory.ts';
import { createRateLimiter } from '../../src/platform/ratelimit/policies.ts';

const NOW = new Date('2027-03-01T12:00:00Z');
const inSeconds = (s: number) => new Date(NOW.getTime() + s * 1000);

const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1';
const IPAD = 'Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148';
const ANDROID = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36';
const DESKTOP = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36';

function link(overrides: Partial<LinkRow> = {}): LinkRow {
  return {
    id: 'lnk_1',
    workspaceId: 'ws_1',
    domain: 'localhost',
    slug: 'launch',
    url: 'https://example.com/target',
    ...linkDefaults(),
    createdAt: new Date('2027-01-01T00:00:00Z'),
    updatedAt: new Date('2027-01-01T00:00:00Z'),
    ...overrides,
  };
}

describe('mergeQuery', () => {
  it('returns the target unchanged without a query', () => {
    expect(mergeQuery('https://example.com/p?a=1', '')).toBe('https://example.com/p?a=1');
    expect(mergeQuery('https://example.com/p?a=1', '?')).toBe('https://example.com/p?a=1');
  });

  it('adds the click parameters to a target without a query', () => {
    expect(mergeQuery('https://example.com/p', '?utm_source=x&b=2')).toBe('https://example.com/p?utm_source=x&b=2');
  });

  it("keeps the target's value when both have a parameter", () => {
    expect(mergeQuery('https://example.com/p?a=target', '?a=click&b=2')).toBe('https://example.com/p?a=target&b=2');
  });

  it('keeps the fragment of the target', () => {
    expect(mergeQuery('https://example.com/p#top', '?x=1')).toBe('https://example.com/p?x=1#top');
  });

  it('keeps every value of a repeated click parameter', () => {
    expect(mergeQuery('https://example.com/p', '?tag=a&tag=b')).toBe('https://example.com/p?tag=a&tag=b');
    expect(mergeQuery('https://example.com/p?tag=t', '?tag=a&tag=b')).toBe('https://example.com/p?tag=t');
  });

  it('encodes click values so they cannot break out of the query', () => {
    const merged = new URL(mergeQuery('https://example.com/p', '?next=%2F%2Fevil.com%23x&a=b%26c'));
    expect(merged.origin + merged.pathname).toBe('https://example.com/p');
    expect(merged.hash).toBe('');
    expect(merged.searchParams.get('next')).toBe('//evil.com#x');
    expect(merged.searchParams.get('a')).toBe('b&c');
  });
});

describe('pickTarget', () => {
  const targeted = link({
    iosUrl: 'https://apps.apple.com/app',
    androidUrl: 'https://play.google.com/app',
    geo: { DE: 'https://example.de/', FR: 'https://example.fr/' },
  });

  it('sends iPhone and iPad user agents to iosUrl', () => {
    expect(pickTarget(targeted, IPHONE, undefined)).toBe('https://apps.apple.com/app');
    expect(pickTarget(targeted, IPAD, 'DE')).toBe('https://apps.apple.com/app');
  });

  it('sends Android user agents to androidUrl', () => {
    expect(pickTarget(targeted, ANDROID, undefined)).toBe('https://play.google.com/app');
    expect(pickTarget(targeted, ANDROID, 'FR')).toBe('https://play.google.com/app');
  });

  it('ignores device targets the link does not have', () => {
    expect(pickTarget(link(), IPHONE, undefined)).toBe('https://example.com/target');
    expect(pickTarget(link({ iosUrl: 'https://apps.apple.com/app' }), ANDROID, undefined)).toBe('https://example.com/target');
  });

  it('picks the geo target of the country, in any case', () => {
    expect(pickTarget(targeted, DESKTOP, 'DE')).toBe('https://example.de/');
    expect(pickTarget(targeted, DESKTOP, 'fr')).toBe('https://example.fr/');
    expect(pickTarget(targeted, undefined, 'FR')).toBe('https://example.fr/');
  });

  it('falls back to url for other countries, no country, or no targets', () => {
    expect(pickTarget(targeted, DESKTOP, 'US')).toBe('https://example.com/target');
    expect(pickTarget(targeted, DESKTOP, undefined)).toBe('https://example.com/target');
    expect(pickTarget(targeted, undefined, undefined)).toBe('https://example.com/target');
    expect(pickTarget(link(), DESKTOP, 'DE')).toBe('https://example.com/target');
  });

  it('does not read inherited properties as geo targets', () => {
    expect(pickTarget(targeted, DESKTOP, 'constructor')).toBe('https://example.com/target');
    expect(pickTarget(targeted, DESKTOP, '__proto__')).toBe('https://example.com/target');
  });
});

describe('cachePolicy', () => {
  it('is no-store when cacheMaxAge is 0', () => {
    expect(cachePolicy(link({ cacheMaxAge: 0 }), NOW)).toBe('no-store');
  });

  it('is public with max-age for a plain link', () => {
    expect(cachePolicy(link({ cacheMaxAge: 3600 }), NOW)).toBe('public, max-age=3600');
  });

  it('is no-store for a link with maxClicks, since the answer changes with the count', () => {
    expect(cachePolicy(link({ cacheMaxAge: 3600, maxClicks: 100 }), NOW)).toBe('no-store');
  });

  it.each([
    ['iosUrl', { iosUrl: 'https://apps.apple.com/app' }],
    ['androidUrl', { androidUrl: 'https://play.google.com/app' }],
    ['geo', { geo: { DE: 'https://example.de/' } }],
  ])('is private when the link varies by %s', (_field, targets) => {
    expect(cachePolicy(link({ cacheMaxAge: 600, ...targets }), NOW)).toBe('private, max-age=600');
  });

  it('never outlives the expiry', () => {
    expect(cachePolicy(link({ cacheMaxAge: 3600, expiresAt: inSeconds(100) }), NOW)).toBe('public, max-age=100');
    expect(cachePolicy(link({ cacheMaxAge: 60, expiresAt: inSeconds(100) }), NOW)).toBe('public, max-age=60');
    expect(cachePolicy(link({ cacheMaxAge: 3600, expiresAt: inSeconds(1.9) }), NOW)).toBe('public, max-age=1');
  });

  it('is no-store when less than a second of life is left', () => {
    expect(cachePolicy(link({ cacheMaxAge: 3600, expiresAt: inSeconds(0.5) }), NOW)).toBe('no-store');
    expect(cachePolicy(link({ cacheMaxAge: 3600, expiresAt: NOW }), NOW)).toBe('no-store');
  });
});

describe('isExhausted', () => {
  it('is false for a link without limits', () => {
    expect(isExhausted(link(), NOW)).toBe(false);
  });

  it('is true from the expiry instant on', () => {
    expect(isExhausted(link({ expiresAt: inSeconds(1) }), NOW)).toBe(false);
    expect(isExhausted(link({ expiresAt: NOW }), NOW)).toBe(true);
    expect(isExhausted(link({ expiresAt: inSeconds(-1) }), NOW)).toBe(true);
  });

  it('is true once clicks reach maxClicks', () => {
    expect(isExhausted(link({ maxClicks: 3, clicks: 2 }), NOW)).toBe(false);
    expect(isExhausted(link({ maxClicks: 3, clicks: 3 }), NOW)).toBe(true);
    expect(isExhausted(link({ maxClicks: 3, clicks: 4 }), NOW)).toBe(true);
  });
});

describe('createRedirectService', () => {
  /** A fake repository over an array with one registered domain, recording each read. */
  function fakeRepository(rows: LinkRow[]) {
    const calls: string[][] = [];
    const repo = {
      async findLink(domain: string, slug: string) {
        calls.push(['findLink', domain, slug]);
        return rows.find((r) => r.slug === slug && r.domain === domain);
      },
      async domainOwner(host: string) {
        calls.push(['domainOwner', host]);
        return host === 'go.example.com' ? 'ws_1' : undefined;
      },
    } satisfies Pick<LinksRepository, 'findLink' | 'domainOwner'>;
    return { repo: repo as unknown as LinksRepository, calls };
  }

  const request = ({ userAgent = DESKTOP, country, ...overrides }: Partial<Omit<RedirectRequest, 'userAgent' | 'country'>> & {
    userAgent?: string;
    country?: string;
  } = {}): RedirectRequest => ({
    host: 'localhost',
    slug: 'launch',
    search: '',
    userAgent: () => userAgent,
    country: () => country,
    now: NOW,
    ...overrides,
  });

  function service(rows: LinkRow[]) {
    const { repo, calls } = fakeRepository(rows);
    return { redirect: createRedirectService({ lookup: repo, defaultDomain: 'localhost' }), calls };
  }

  it('redirects with the status, location and cache policy of the link', async () => {
    const { redirect, calls } = service([link({ redirectStatus: 301, cacheMaxAge: 120 })]);
    expect(await redirect.resolve(request())).toEqual({
      kind: 'redirect',
      status: 301,
      location: 'https://example.com/target',
      cacheControl: 'public, max-age=120',
      linkId: 'lnk_1',
      workspaceId: 'ws_1',
    });
    expect(calls).toEqual([['findLink', 'localhost', 'launch']]);
  });

  it.each([301, 302, 307, 308])('answers with redirectStatus %i', async (status) => {
    const { redirect } = service([link({ redirectStatus: status })]);
    expect(await redirect.resolve(request())).toMatchObject({ kind: 'redirect', status });
  });

  it.each(['', 'a.b', '../etc', '-x', 'x'.repeat(65), 'a b', 'a/b', 'é', '%2e'])(
    'answers not_found for the bad slug %j without touching the repository',
    async (slug) => {
      const { redirect, calls } = service([link({ slug })]);
      expect(await redirect.resolve(request({ slug }))).toEqual({ kind: 'not_found' });
      expect(calls).toEqual([]);
    },
  );

  it('answers not_found for an unknown slug after one lookup', async () => {
    const { redirect, calls } = service([link()]);
    expect(await redirect.resolve(request({ slug: 'other' }))).toEqual({ kind: 'not_found' });
    expect(calls).toHaveLength(1);
  });

  it('looks the slug up on a registered host, and on the default domain for any other host', async () => {
    const { redirect, calls } = service([
      link({ domain: 'go.example.com', url: 'https://custom.example/' }),
      link({ id: 'lnk_2', url: 'https://default.example/' }),
      link({ id: 'lnk_3', slug: 'only-default', url: 'https://default.example/only' }),
    ]);
    expect(await redirect.resolve(request({ host: 'go.example.com' }))).toMatchObject({ location: 'https://custom.example/' });
    expect(await redirect.resolve(request({ host: 'unknown.example' }))).toMatchObject({ location: 'https://default.example/' });
    // A registered domain never serves the default domain's links.
    expect(await redirect.resolve(request({ host: 'go.example.com', slug: 'only-default' }))).toEqual({ kind: 'not_found' });
    // A link on the domain left by a workspace that no longer owns it (ws_2) is not followed for the new owner.
    const { repo: stale } = fakeRepository([link({ domain: 'go.example.com', workspaceId: 'ws_2', url: 'https://old-owner.example/' })]);
    const staleRedirect = createRedirectService({ lookup: stale, defaultDomain: 'localhost' });
    expect(await staleRedirect.resolve(request({ host: 'go.example.com' }))).toEqual({ kind: 'not_found' });
    expect(calls.slice(0, 4)).toEqual([
      ['domainOwner', 'go.example.com'],
      ['findLink', 'go.example.com', 'launch'],
      ['domainOwner', 'unknown.example'],
      ['findLink', 'localhost', 'launch'],
    ]);
  });

  it('answers gone for an expired link without fallbackUrl', async () => {
    const { redirect } = service([link({ expiresAt: inSeconds(-1) })]);
    expect(await redirect.resolve(request())).toEqual({ kind: 'gone' });
  });

  it('answers gone for an exhausted link without fallbackUrl', async () => {
    const { redirect } = service([link({ maxClicks: 5, clicks: 5 })]);
    expect(await redirect.resolve(request())).toEqual({ kind: 'gone' });
  });

  it('sends expired and exhausted links to fallbackUrl with 302 and no-store, whatever their own status', async () => {
    const fallbackUrl = 'https://example.com/over';
    for (const row of [
      link({ expiresAt: inSeconds(-1), fallbackUrl, redirectStatus: 301, cacheMaxAge: 3600 }),
      link({ maxClicks: 1, clicks: 1, fallbackUrl, redirectStatus: 308 }),
    ]) {
      const { redirect } = service([row]);
      expect(await redirect.resolve(request({ search: '?a=1' }))).toEqual({
        kind: 'redirect',
        status: 302,
        location: fallbackUrl,
        cacheControl: 'no-store',
        linkId: 'lnk_1',
        workspaceId: 'ws_1',
      });
    }
  });

  it('still redirects a link just before its expiry and below maxClicks', async () => {
    const { redirect } = service([link({ expiresAt: inSeconds(1), maxClicks: 5, clicks: 4 })]);
    expect(await redirect.resolve(request())).toMatchObject({ kind: 'redirect', status: 302, cacheControl: 'no-store' });
  });

  it('forwards the click query when forwardQuery is on', async () => {
    const { redirect } = service([link({ url: 'https://example.com/p?a=target' })]);
    expect(await redirect.resolve(request({ search: '?a=click&utm_source=news' }))).toMatchObject({
      location: 'https://example.com/p?a=target&utm_source=news',
    });
  });

  it('drops the click query when forwardQuery is off', async () => {
    const { redirect } = service([link({ url: 'https://example.com/p?a=target', forwardQuery: false })]);
    expect(await redirect.resolve(request({ search: '?utm_source=news' }))).toMatchObject({
      location: 'https://example.com/p?a=target',
    });
  });

  it('applies device and geo targeting, then forwards the query onto the chosen target', async () => {
    const { redirect } = service([
      link({ iosUrl: 'https://apps.apple.com/app', geo: { DE: 'https://example.de/' }, cacheMaxAge: 60 }),
    ]);
    expect(await redirect.resolve(request({ userAgent: IPHONE, search: '?x=1' }))).toEqual({
      kind: 'redirect',
      status: 302,
      location: 'https://apps.apple.com/app?x=1',
      cacheControl: 'private, max-age=60',
      linkId: 'lnk_1',
      workspaceId: 'ws_1',
    });
    expect(await redirect.resolve(request({ country: 'DE' }))).toMatchObject({ location: 'https://example.de/' });
    expect(await redirect.resolve(request({ country: 'US' }))).toMatchObject({ location: 'https://example.com/target' });
  });

  describe('visit: limits, decision and what is recorded', () => {
    const settings = {
      redirect: { limit: 3, windowS: 60 },
      notFound: { limit: 1, windowS: 60 },
      unauthenticated: { limit: 10, windowS: 60 },
      api: { limit: 10, windowS: 60 },
      keyOverrides: new Map(),
    } as unknown as Parameters<typeof createRateLimiter>[0];

    function visiting(rows: LinkRow[], withLimits = false) {
      const sent: ClickEvent[] = [];
      const { repo } = fakeRepository(rows);
      const limits = withLimits ? createRateLimiter(settings, createMemoryRateLimitStore(), () => NOW) : undefined;
      const redirect = createRedirectService({ lookup: repo, defaultDomain: 'localhost', clicks: { send: (e) => void sent.push(e) }, limits });
      const visit = (slug: string, overrides: Partial<RedirectVisit> = {}): Promise<VisitOutcome> =>
        Promise.resolve(
          redirect.visit({ ...request({ slug }), client: () => '203.0.113.9', referer: () => 'https://news.example/x', head: false, ...overrides }),
        );
      return { visit, sent };
    }

    it('records a click for a redirect served (HEAD marked), an orphan visit for an unknown slug, nothing for a gone link', async () => {
      const { visit, sent } = visiting([link(), link({ id: 'lnk_2', slug: 'old', expiresAt: inSeconds(-1) })]);
      expect(await visit('launch')).toMatchObject({ kind: 'redirect' });
      expect(await visit('launch', { head: true })).toMatchObject({ kind: 'redirect' });
      expect(await visit('nope')).toEqual({ kind: 'not_found' });
      expect(await visit('old')).toEqual({ kind: 'gone' });
      expect(sent.map((e) => [e.kind, e.kind === 'click' ? e.linkId : e.slug, e.head])).toEqual([
        ['click', 'lnk_1', false],
        ['click', 'lnk_1', true],
        ['orphan', 'nope', false],
      ]);
      expect(sent[0]).toMatchObject({ workspaceId: 'ws_1', referrer: 'news.example', at: NOW.getTime() });
    });

    it('refuses past the redirect quota, and every slug once the unknown-slug quota is spent, recording nothing', async () => {
      const { visit, sent } = visiting([link()], true);
      expect(await visit('launch')).toMatchObject({ kind: 'redirect' });
      expect(await visit('nope')).toEqual({ kind: 'not_found' });
      // The unknown-slug quota (1) is spent: the known link is refused too, by the not-found policy.
      const refused = await visit('launch');
      expect(refused).toMatchObject({ kind: 'limited', verdict: { allowed: false, policy: { name: 'not-found' } } });
      expect(await visit('launch', { client: () => '198.51.100.1' })).toMatchObject({ kind: 'redirect' });
      expect(sent).toHaveLength(3);
    });
  });
});
