// /v1/links through the real app and a migrated libSQL file: create, list, read, update, delete, Idempotency-Key.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Link } from '../../src/modules/links/links.schemas.ts';
import { createTestApp, expectProblem, type TestApp } from '../helpers/app.ts';

let t: TestApp;

beforeEach(async () => {
  t = await createTestApp();
});

afterEach(() => {
  t.close();
});

const HOUR = 60 * 60 * 1000;
const later = (ms: number) => new Date(t.clock.now.getTime() + ms);

async function createLink(body: Record<string, unknown>, key?: string): Promise<Link> {
  const res = await t.request('/v1/links', { method: 'POST', json: body, key });
  if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
  return (await res.json()) as Link;
}

async function list(query = '', key?: string): Promise<{ data: Link[]; nextCursor: string | null }> {
  const res = await t.request(`/v1/links${query}`, { key });
  if (res.status !== 200) throw new Error(`list: ${res.status} ${await res.text()}`);
  return (await res.json()) as { data: Link[]; nextCursor: string | null };
}

async function addDomain(hostname: string, key?: string) {
  const res = await t.request('/v1/domains', { method: 'POST', json: { hostname }, key });
  if (res.status !== 201) throw new Error(`domain: ${res.status} ${await res.text()}`);
}

async function counts() {
  return { links: await t.count('links'), tags: await t.count('link_tags') };
}

/** Asserts a 400 validation problem naming each of `fields` in errors[], and that nothing was stored. */
async function expectRefused(res: Response | Promise<Response>, fields: string[], before: { links: number; tags: number }) {
  const problem = await expectProblem(await res, 400, 'validation');
  const named = (problem.errors ?? []).map((e) => e.field);
  for (const field of fields) expect(named, `errors[] should name ${field}: ${problem.detail}`).toContain(field);
  expect(await counts()).toEqual(before);
  return problem;
}

describe('POST /v1/links', () => {
  it('creates a link with every field and echoes each one', async () => {
    const expiresAt = later(24 * HOUR);
    const body = {
      url: 'https://example.com/launch?utm_source=hop',
      slug: 'launch',
      title: 'Launch day',
      tags: ['news', 'promo'],
      expiresAt: expiresAt.toISOString(),
      maxClicks: 100,
      fallbackUrl: 'https://example.com/over',
      redirectStatus: 307,
      cacheMaxAge: 60,
      forwardQuery: false,
      iosUrl: 'https://apps.apple.com/app/id1',
      androidUrl: 'https://play.google.com/store/apps/details?id=x',
      geo: { DE: 'https://example.de/', FR: 'https://example.fr/' },
    };
    const res = await t.request('/v1/links', { method: 'POST', json: body });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const link = (await res.json()) as Link;
    expect(link).toEqual({
      ...body,
      id: expect.stringMatching(/^lnk_[0-9a-f]{32}$/),
      domain: 'localhost',
      shortUrl: 'http://localhost:8787/launch',
      clicks: 0,
      createdAt: t.clock.now.toISOString(),
      updatedAt: t.clock.now.toISOString(),
    });
    expect(res.headers.get('location')).toBe(`/v1/links/${link.id}`);

    const read = await t.request(`/v1/links/${link.id}`);
    expect(read.status).toBe(200);
    expect(await read.json()).toEqual(link);
    expect(await counts()).toEqual({ links: 1, tags: 2 });
  });

  it('fills in the defaults and generates a 7-character slug when none is given', async () => {
    const link = await createLink({ url: 'https://example.com' });
    expect(link).toMatchObject({
      url: 'https://example.com/',
      domain: 'localhost',
      title: null,
      tags: [],
      expiresAt: null,
      maxClicks: null,
      fallbackUrl: null,
      redirectStatus: 302,
      cacheMaxAge: 0,
      forwardQuery: true,
      iosUrl: null,
      androidUrl: null,
      geo: {},
      clicks: 0,
    });
    expect(link.slug).toMatch(/^[0-9A-Za-z]{7}$/);
    expect(link.shortUrl).toBe(`http://localhost:8787/${link.slug}`);
  });

  it('generates a different slug for every link', async () => {
    const slugs = new Set<string>();
    for (let i = 0; i < 25; i++) slugs.add((await createLink({ url: 'https://example.com' })).slug);
    expect(slugs.size).toBe(25);
  });

  it('gives a link on a custom domain an https short URL on that domain', async () => {
    await addDomain('go.example.com');
    const link = await createLink({ url: 'https://example.com', slug: 'x', domain: 'Go.Example.com' });
    expect(link.domain).toBe('go.example.com');
    expect(link.shortUrl).toBe('https://go.example.com/x');
  });

  it.each<[string, Record<string, unknown>, string[]]>([
    ['a missing url', {}, ['url']],
    ['an ftp url', { url: 'ftp://example.com/f' }, ['url']],
    ['a javascript: url', { url: 'javascript:alert(1)' }, ['url']],
    ['a relative url', { url: '/path' }, ['url']],
    ['credentials in the url', { url: 'https://user:pw@example.com/' }, ['url']],
    ['whitespace in the url', { url: 'https://example.com/a b' }, ['url']],
    ['a control character in the url', { url: 'https://example.com/\u0007' }, ['url']],
    ['a url over 2048 characters', { url: `https://example.com/${'a'.repeat(2040)}` }, ['url']],
    ['a reserved slug', { url: 'https://example.com', slug: 'Docs' }, ['slug']],
    ['a slug with a slash', { url: 'https://example.com', slug: 'a/b' }, ['slug']],
    ['a 65-character slug', { url: 'https://example.com', slug: 'x'.repeat(65) }, ['slug']],
    ['21 tags', { url: 'https://example.com', tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, ['tags']],
    ['a repeated tag', { url: 'https://example.com', tags: ['a', 'a'] }, ['tags']],
    ['a 51-character tag', { url: 'https://example.com', tags: ['x'.repeat(51)] }, ['tags.0']],
    ['a lower-case country', { url: 'https://example.com', geo: { de: 'https://example.de/' } }, ['geo.de']],
    ['a geo target that is not http(s)', { url: 'https://example.com', geo: { DE: 'ftp://example.de/' } }, ['geo.DE']],
    ['redirectStatus 303', { url: 'https://example.com', redirectStatus: 303 }, ['redirectStatus']],
    ['maxClicks 0', { url: 'https://example.com', maxClicks: 0 }, ['maxClicks']],
    ['a negative cacheMaxAge', { url: 'https://example.com', cacheMaxAge: -1 }, ['cacheMaxAge']],
    ['expiresAt without a time zone', { url: 'https://example.com', expiresAt: '2030-01-01T00:00:00' }, ['expiresAt']],
    ['a string forwardQuery', { url: 'https://example.com', forwardQuery: 'yes' }, ['forwardQuery']],
    ['a control character in the title', { url: 'https://example.com', title: 'a\u0000b' }, ['title']],
    ['an unknown field', { url: 'https://example.com', color: 'red' }, ['color']],
    ['the read-only id', { url: 'https://example.com', id: 'lnk_mine' }, ['id']],
    ['the read-only clicks', { url: 'https://example.com', clicks: 1000 }, ['clicks']],
    ['the read-only workspaceId', { url: 'https://example.com', workspaceId: 'ws_other' }, ['workspaceId']],
    ['the read-only createdAt', { url: 'https://example.com', createdAt: '2020-01-01T00:00:00Z' }, ['createdAt']],
    ['several bad fields', { url: 'ftp://x', slug: 'v1', redirectStatus: 200, extra: 1 }, ['url', 'slug', 'redirectStatus', 'extra']],
    ['an array body', [{ url: 'https://example.com' }] as unknown as Record<string, unknown>, ['(root)']],
  ])('refuses %s with 400 naming the field, storing nothing', async (_what, body, fields) => {
    await expectRefused(t.request('/v1/links', { method: 'POST', json: body }), fields, { links: 0, tags: 0 });
  });

  it('says which fields are read-only and which unknown', async () => {
    const problem = await expectProblem(
      await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com', clicks: 1, color: 'red' } }),
      400,
      'validation',
    );
    expect(problem.errors).toEqual(
      expect.arrayContaining([
        { in: 'body', field: 'clicks', message: 'is read-only and cannot be set' },
        { in: 'body', field: 'color', message: 'is not a known field' },
      ]),
    );
  });

  it.each([
    ['url', 'http://localhost/x'],
    ['url', 'https://LOCALHOST:8787/x'],
    ['url', 'http://localhost:9999/'],
    ['fallbackUrl', 'http://localhost/over'],
    ['iosUrl', 'http://localhost/ios'],
    ['androidUrl', 'http://localhost/android'],
    ['geo.DE', 'http://localhost/de'],
  ])('refuses %s pointing at the default domain (%s), which would loop', async (field, target) => {
    const body: Record<string, unknown> = { url: 'https://example.com/', tags: ['t'] };
    if (field === 'geo.DE') body.geo = { DE: target };
    else body[field] = target;
    const problem = await expectRefused(t.request('/v1/links', { method: 'POST', json: body }), [field], {
      links: 0,
      tags: 0,
    });
    expect(problem.errors).toContainEqual({ in: 'body', field, message: expect.stringMatching(/loop/) });
  });

  it("refuses a url on the workspace's own short-link domains, but not on another workspace's", async () => {
    await addDomain('go.example.com');
    const other = await t.createWorkspace();
    await addDomain('other.example.net', other.adminKey);
    await expectRefused(t.request('/v1/links', { method: 'POST', json: { url: 'https://go.example.com/x' } }), ['url'], {
      links: 0,
      tags: 0,
    });
    // Unverified, another workspace's registration must not stop anyone from linking to that host.
    const res = await t.request('/v1/links', { method: 'POST', json: { url: 'https://other.example.net/x' } });
    expect(res.status).toBe(201);
  });

  it("reads the workspace's domains with its API key: a create on a domain makes one read, then its write", async () => {
    await addDomain('go.example.com');
    const reads = () => t.metrics.value('hop_db_calls_total', { operation: 'select', outcome: 'ok' });
    const before = reads();
    const res = await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/x', domain: 'go.example.com' } });
    expect(res.status).toBe(201);
    expect(reads() - before).toBe(1);
    // The same read answers the rules: a target on that domain would loop.
    await expectRefused(t.request('/v1/links', { method: 'POST', json: { url: 'https://go.example.com/y' } }), ['url'], {
      links: 1,
      tags: 0,
    });
  });

  it.each(['http://[::]:8787/x', 'http://sub.localhost:8787/x', 'http://0/x', 'http://2130706433/x', 'http://[::ffff:127.0.0.1]/x'])(
    'refuses the loopback target %s',
    async (url) => {
      await expectRefused(t.request('/v1/links', { method: 'POST', json: { url } }), ['url'], { links: 0, tags: 0 });
    },
  );

  it('stores a trailing-dot domain under its canonical name, so it cannot dodge slug uniqueness', async () => {
    await t.request('/v1/links', { method: 'POST', json: { url: 'https://a.example/', slug: 'dotted' } });
    const res = await t.request('/v1/links', {
      method: 'POST',
      json: { url: 'https://a.example/dot', slug: 'dotted', domain: 'localhost.' },
    });
    expect(res.status).toBe(409);
    expect(await t.count('links')).toBe(1);
  });

  // A trailing dot names the same host in DNS (and the redirect serves unknown hosts from the default domain).
  it('refuses a url on the default domain written with a trailing dot', async () => {
    await expectRefused(t.request('/v1/links', { method: 'POST', json: { url: 'http://localhost./x' } }), ['url'], {
      links: 0,
      tags: 0,
    });
  });

  it('refuses a domain the workspace does not own', async () => {
    await expectRefused(
      t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com', domain: 'nobody.example.com' } }),
      ['domain'],
      { links: 0, tags: 0 },
    );
  });

  it("refuses another workspace's domain", async () => {
    const other = await t.createWorkspace();
    await addDomain('theirs.example.com', other.adminKey);
    await expectRefused(
      t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com', domain: 'theirs.example.com' } }),
      ['domain'],
      { links: 0, tags: 0 },
    );
  });

  it('refuses expiresAt in the past or now, and accepts it a second later', async () => {
    for (const expiresAt of [later(-HOUR), t.clock.now]) {
      await expectRefused(
        t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com', expiresAt: expiresAt.toISOString() } }),
        ['expiresAt'],
        { links: 0, tags: 0 },
      );
    }
    const link = await createLink({ url: 'https://example.com', expiresAt: later(1000).toISOString() });
    expect(link.expiresAt).toBe(later(1000).toISOString());
  });

  it('answers 409 for a slug already taken on the domain, storing nothing', async () => {
    await createLink({ url: 'https://example.com/1', slug: 'taken', tags: ['a'] });
    const res = await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/2', slug: 'taken', tags: ['b'] } });
    await expectProblem(res, 409, 'conflict');
    expect(await counts()).toEqual({ links: 1, tags: 1 });
  });

  it('allows the same slug on another domain', async () => {
    await addDomain('go.example.com');
    await createLink({ url: 'https://example.com/1', slug: 'same' });
    const link = await createLink({ url: 'https://example.com/2', slug: 'same', domain: 'go.example.com' });
    expect(link.domain).toBe('go.example.com');
  });

  it('answers 400 malformed-json for a body that is not JSON', async () => {
    for (const body of ['{"url": ', "{'url': 'https://example.com'}", 'null garbage']) {
      const res = await t.request('/v1/links', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      await expectProblem(res, 400, 'malformed-json');
    }
    expect(await counts()).toEqual({ links: 0, tags: 0 });
  });

  it('answers 415 for a body that is not declared as JSON', async () => {
    const body = JSON.stringify({ url: 'https://example.com' });
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await t.request('/v1/links', { method: 'POST', body, headers: { 'content-type': type } });
      await expectProblem(res, 415, 'unsupported-media-type');
    }
    await expectProblem(await t.request('/v1/links', { method: 'POST', body }), 415, 'unsupported-media-type');
    expect(await counts()).toEqual({ links: 0, tags: 0 });
  });

  it('accepts JSON with a charset parameter', async () => {
    const res = await t.request('/v1/links', {
      method: 'POST',
      body: JSON.stringify({ url: 'https://example.com' }),
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(res.status).toBe(201);
  });
});

describe('POST /v1/links body limit', () => {
  let small: TestApp;

  beforeEach(async () => {
    small = await createTestApp({ HOP_BODY_LIMIT_BYTES: '2048' });
  });

  afterEach(() => {
    small.close();
  });

  const bodyOf = (bytes: number) => {
    const prefix = JSON.stringify({ url: 'https://example.com/' }).slice(0, -2);
    const text = `${prefix}${'a'.repeat(bytes - prefix.length - 3)}"}`;
    expect(new TextEncoder().encode(text).length).toBe(bytes - 1);
    return text;
  };

  it('accepts a body at the limit', async () => {
    const body = bodyOf(2049);
    const res = await small.request('/v1/links', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(201);
  });

  it('answers 413 for a body over the limit with a content-length', async () => {
    const body = bodyOf(2050);
    const res = await small.request('/v1/links', {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
    });
    await expectProblem(res, 413, 'payload-too-large');
    expect(await small.count('links')).toBe(0);
  });

  it('answers 413 for a body over the limit without a content-length', async () => {
    const res = await small.request('/v1/links', {
      method: 'POST',
      body: bodyOf(2050),
      headers: { 'content-type': 'application/json' },
    });
    await expectProblem(res, 413, 'payload-too-large');
    expect(await small.count('links')).toBe(0);
  });

  it('answers 413 for a chunked body streamed past the limit', async () => {
    const bytes = new TextEncoder().encode(bodyOf(3000));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 500) controller.enqueue(bytes.slice(i, i + 500));
        controller.close();
      },
    });
    const init = { method: 'POST', body: stream, duplex: 'half', headers: { 'content-type': 'application/json' } };
    const res = await small.request('/v1/links', init as RequestInit);
    await expectProblem(res, 413, 'payload-too-large');
    expect(await small.count('links')).toBe(0);
  });

  it('accepts a chunked body under the limit', async () => {
    const bytes = new TextEncoder().encode(JSON.stringify({ url: 'https://example.com/', slug: 'streamed' }));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 10));
        controller.enqueue(bytes.slice(10));
        controller.close();
      },
    });
    const init = { method: 'POST', body: stream, duplex: 'half', headers: { 'content-type': 'application/json' } };
    const res = await small.request('/v1/links', init as RequestInit);
    expect(res.status).toBe(201);
    expect(((await res.json()) as Link).slug).toBe('streamed');
  });
});

describe('GET /v1/links', () => {
  /** Creates `n` links one minute apart, oldest first. */
  async function createSpaced(n: number, extra: (i: number) => Record<string, unknown> = () => ({})) {
    const made: Link[] = [];
    for (let i = 0; i < n; i++) {
      made.push(await createLink({ url: `https://example.com/${i}`, slug: `s${i}`, ...extra(i) }));
      t.clock.now = later(60_000);
    }
    return made;
  }

  async function allPages(limit: number, filter = '') {
    const pages: Link[][] = [];
    let cursor: string | null = null;
    do {
      const page = await list(`?limit=${limit}${filter}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      pages.push(page.data);
      cursor = page.nextCursor;
      if (pages.length > 20) throw new Error('pagination does not end');
    } while (cursor);
    return pages;
  }

  it('lists nothing for a new workspace', async () => {
    expect(await list()).toEqual({ data: [], nextCursor: null });
  });

  it('pages newest first across 3 pages with no duplicates or gaps', async () => {
    const made = await createSpaced(7);
    const pages = await allPages(3);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat().map((l) => l.id)).toEqual(made.map((l) => l.id).reverse());
  });

  it('pages links created in the same millisecond without duplicates or gaps', async () => {
    const made: Link[] = [];
    for (let i = 0; i < 8; i++) made.push(await createLink({ url: 'https://example.com/', slug: `same${i}` }));
    const pages = await allPages(3);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 2]);
    const ids = pages.flat().map((l) => l.id);
    expect(new Set(ids).size).toBe(8);
    expect(ids).toEqual(made.map((l) => l.id).reverse());
  });

  it('gives no cursor when the page holds the last link exactly', async () => {
    await createSpaced(3);
    const page = await list('?limit=3');
    expect(page.data).toHaveLength(3);
    expect(page.nextCursor).toBeNull();
  });

  it('defaults to 20 per page', async () => {
    for (let i = 0; i < 21; i++) await createLink({ url: 'https://example.com/' });
    const first = await list();
    expect(first.data).toHaveLength(20);
    expect(first.nextCursor).not.toBeNull();
    const second = await list(`?cursor=${first.nextCursor}`);
    expect(second).toMatchObject({ data: [expect.anything()], nextCursor: null });
  });

  it.each(['limit=0', 'limit=101', 'limit=abc', 'limit=2.5'])('refuses %s', async (query) => {
    const problem = await expectProblem(await t.request(`/v1/links?${query}`), 400, 'validation');
    expect(problem.errors).toEqual([expect.objectContaining({ in: 'query', field: 'limit' })]);
  });

  it('refuses unknown query parameters', async () => {
    const problem = await expectProblem(await t.request('/v1/links?page=2'), 400, 'validation');
    expect(problem.errors).toEqual([{ in: 'query', field: 'page', message: 'is not a known field' }]);
  });

  it.each(['not-a-cursor!', 'bm9wZQ', 'A'.repeat(201)])('refuses the cursor %s with 400', async (cursor) => {
    const problem = await expectProblem(await t.request(`/v1/links?cursor=${cursor}`), 400, 'validation');
    // bm9wZQ passes the schema and is refused by the service, which names the field; the route says where it was.
    expect(problem.errors?.map((e) => [e.in, e.field])).toEqual([['query', 'cursor']]);
  });

  it('filters by domain', async () => {
    await addDomain('go.example.com');
    const custom = await createLink({ url: 'https://example.com/', slug: 'c', domain: 'go.example.com' });
    const plain = await createLink({ url: 'https://example.com/', slug: 'p' });
    expect((await list('?domain=go.example.com')).data.map((l) => l.id)).toEqual([custom.id]);
    expect((await list('?domain=GO.example.com')).data.map((l) => l.id)).toEqual([custom.id]);
    expect((await list('?domain=localhost')).data.map((l) => l.id)).toEqual([plain.id]);
    expect((await list('?domain=other.example.com')).data).toEqual([]);
  });

  it('filters by tag, across pages', async () => {
    const made = await createSpaced(6, (i) => ({ tags: i % 2 === 0 ? ['even', 'all'] : ['odd', 'all'] }));
    expect((await list('?tag=odd')).data.map((l) => l.slug)).toEqual(['s5', 's3', 's1']);
    expect((await list('?tag=all')).data).toHaveLength(6);
    expect((await list('?tag=none')).data).toEqual([]);
    const pages = await allPages(2, '&tag=even');
    expect(pages.flat().map((l) => l.id)).toEqual([made[4]!.id, made[2]!.id, made[0]!.id]);
  });

  it('searches slug, url and title case-insensitively', async () => {
    await createLink({ url: 'https://example.com/', slug: 'SpringSale' });
    await createLink({ url: 'https://shop.example.com/WINTER', slug: 'w' });
    await createLink({ url: 'https://example.com/', slug: 't', title: 'Autumn Deals' });
    expect((await list('?q=springsale')).data.map((l) => l.slug)).toEqual(['SpringSale']);
    expect((await list('?q=winter')).data.map((l) => l.slug)).toEqual(['w']);
    expect((await list('?q=AUTUMN')).data.map((l) => l.slug)).toEqual(['t']);
    expect((await list('?q=nothing-like-this')).data).toEqual([]);
  });

  it('matches % and _ in q literally', async () => {
    await createLink({ url: 'https://example.com/', slug: 'pct', title: '100% off' });
    await createLink({ url: 'https://example.com/', slug: 'nopct', title: '100 off' });
    await createLink({ url: 'https://example.com/', slug: 'a_b' });
    await createLink({ url: 'https://example.com/', slug: 'axb' });
    expect((await list(`?q=${encodeURIComponent('100%')}`)).data.map((l) => l.slug)).toEqual(['pct']);
    expect((await list('?q=a_b')).data.map((l) => l.slug)).toEqual(['a_b']);
    expect((await list(`?q=${encodeURIComponent('%')}`)).data.map((l) => l.slug)).toEqual(['pct']);
    expect((await list('?q=_')).data.map((l) => l.slug)).toEqual(['a_b']);
  });

  it('filters by createdAfter and createdBefore', async () => {
    const t0 = t.clock.now.getTime();
    const made: Link[] = [];
    for (let i = 0; i < 3; i++) {
      t.clock.now = new Date(t0 + i * HOUR);
      made.push(await createLink({ url: 'https://example.com/', slug: `h${i}` }));
    }
    const at = (ms: number) => encodeURIComponent(new Date(t0 + ms).toISOString());
    expect((await list(`?createdAfter=${at(HOUR / 2)}`)).data.map((l) => l.slug)).toEqual(['h2', 'h1']);
    expect((await list(`?createdBefore=${at(1.5 * HOUR)}`)).data.map((l) => l.slug)).toEqual(['h1', 'h0']);
    expect((await list(`?createdAfter=${at(HOUR / 2)}&createdBefore=${at(1.5 * HOUR)}`)).data.map((l) => l.slug)).toEqual([
      'h1',
    ]);
    const offset = encodeURIComponent(new Date(t0 + HOUR / 2 + 2 * HOUR).toISOString().replace('Z', '+02:00'));
    expect((await list(`?createdAfter=${offset}`)).data.map((l) => l.slug)).toEqual(['h2', 'h1']);
  });

  it('refuses createdAfter without a time zone', async () => {
    const problem = await expectProblem(await t.request('/v1/links?createdAfter=2026-01-01T00:00:00'), 400, 'validation');
    expect(problem.errors?.map((e) => e.field)).toEqual(['createdAfter']);
  });

  it("never lists another workspace's links", async () => {
    const other = await t.createWorkspace();
    await createLink({ url: 'https://example.com/', slug: 'theirs' }, other.adminKey);
    const mine = await createLink({ url: 'https://example.com/', slug: 'mine' });
    expect((await list()).data.map((l) => l.id)).toEqual([mine.id]);
  });
});

describe('GET, PATCH and DELETE /v1/links/{id}', () => {
  it('answers 404 for an unknown id', async () => {
    await expectProblem(await t.request('/v1/links/lnk_0000'), 404, 'not-found');
    await expectProblem(await t.request('/v1/links/lnk_0000', { method: 'PATCH', json: { title: 'x' } }), 404, 'not-found');
    await expectProblem(await t.request('/v1/links/lnk_0000', { method: 'DELETE' }), 404, 'not-found');
  });

  it("answers 404 for another workspace's link and leaves it alone", async () => {
    const other = await t.createWorkspace();
    const theirs = await createLink({ url: 'https://example.com/', slug: 'theirs' }, other.adminKey);
    await expectProblem(await t.request(`/v1/links/${theirs.id}`), 404, 'not-found');
    await expectProblem(await t.request(`/v1/links/${theirs.id}`, { method: 'PATCH', json: { title: 'x' } }), 404, 'not-found');
    await expectProblem(await t.request(`/v1/links/${theirs.id}`, { method: 'DELETE' }), 404, 'not-found');
    const res = await t.request(`/v1/links/${theirs.id}`, { key: other.adminKey });
    expect(await res.json()).toEqual(theirs);
  });

  it('changes the given fields and updatedAt, keeping the rest', async () => {
    const link = await createLink({ url: 'https://example.com/', slug: 'orig', title: 'Old', tags: ['a'] });
    t.clock.now = later(60_000);
    const res = await t.request(`/v1/links/${link.id}`, {
      method: 'PATCH',
      json: { url: 'https://example.org/new', title: 'New', redirectStatus: 301, cacheMaxAge: 30, forwardQuery: false },
    });
    expect(res.status).toBe(200);
    const changed = (await res.json()) as Link;
    expect(changed).toEqual({
      ...link,
      url: 'https://example.org/new',
      title: 'New',
      redirectStatus: 301,
      cacheMaxAge: 30,
      forwardQuery: false,
      updatedAt: t.clock.now.toISOString(),
    });
    expect(changed.createdAt).toBe(link.createdAt);
    expect(await (await t.request(`/v1/links/${link.id}`)).json()).toEqual(changed);
  });

  it('changes the slug and with it the short URL', async () => {
    const link = await createLink({ url: 'https://example.com/', slug: 'before' });
    const res = await t.request(`/v1/links/${link.id}`, { method: 'PATCH', json: { slug: 'after' } });
    expect(await res.json()).toMatchObject({ slug: 'after', shortUrl: 'http://localhost:8787/after' });
  });

  it('clears optional fields with null', async () => {
    const link = await createLink({
      url: 'https://example.com/',
      title: 'T',
      expiresAt: later(HOUR).toISOString(),
      maxClicks: 5,
      fallbackUrl: 'https://example.com/over',
      iosUrl: 'https://apps.apple.com/x',
      androidUrl: 'https://play.google.com/x',
      geo: { DE: 'https://example.de/' },
    });
    const res = await t.request(`/v1/links/${link.id}`, {
      method: 'PATCH',
      json: { title: null, expiresAt: null, maxClicks: null, fallbackUrl: null, iosUrl: null, androidUrl: null, geo: null },
    });
    expect(res.status).toBe(200);
    const cleared = { title: null, expiresAt: null, maxClicks: null, fallbackUrl: null, iosUrl: null, androidUrl: null, geo: {} };
    expect(await res.json()).toMatchObject(cleared);
    expect(await (await t.request(`/v1/links/${link.id}`)).json()).toMatchObject(cleared);
  });

  it('replaces the tags, and the tag filter follows', async () => {
    const link = await createLink({ url: 'https://example.com/', tags: ['a', 'b'] });
    const res = await t.request(`/v1/links/${link.id}`, { method: 'PATCH', json: { tags: ['c'] } });
    expect(((await res.json()) as Link).tags).toEqual(['c']);
    expect((await list('?tag=a')).data).toEqual([]);
    expect((await list('?tag=c')).data.map((l) => l.id)).toEqual([link.id]);
    expect(await t.count('link_tags')).toBe(1);

    await t.request(`/v1/links/${link.id}`, { method: 'PATCH', json: { tags: [] } });
    expect((await list('?tag=c')).data).toEqual([]);
    expect(await t.count('link_tags')).toBe(0);
  });

  it('answers 409 when the new slug is taken, changing nothing', async () => {
    await createLink({ url: 'https://example.com/1', slug: 'taken' });
    const link = await createLink({ url: 'https://example.com/2', slug: 'mine', tags: ['x'] });
    for (const patch of [{ slug: 'taken' }, { slug: 'taken', tags: ['y'] }]) {
      const res = await t.request(`/v1/links/${link.id}`, { method: 'PATCH', json: patch });
      await expectProblem(res, 409, 'conflict');
      expect(await (await t.request(`/v1/links/${link.id}`)).json()).toEqual(link);
    }
    expect((await list('?tag=x')).data.map((l) => l.id)).toEqual([link.id]);
  });

  it('refuses an empty patch', async () => {
    const link = await createLink({ url: 'https://example.com/' });
    const problem = await expectProblem(await t.request(`/v1/links/${link.id}`, { method: 'PATCH', json: {} }), 400, 'validation');
    expect(problem.errors).toHaveLength(1);
  });

  it.each([
    ['id', { id: 'lnk_other', title: 'x' }],
    ['clicks', { clicks: 99 }],
    ['createdAt', { createdAt: '2020-01-01T00:00:00Z' }],
    ['workspaceId', { workspaceId: 'ws_other' }],
  ])('refuses the read-only field %s, changing nothing', async (field, patch) => {
    const link = await createLink({ url: 'https://example.com/', title: 'keep' });
    const problem = await expectProblem(await t.request(`/v1/links/${link.id}`, { method: 'PATCH', json: patch }), 400, 'validation');
    expect(problem.errors).toContainEqual({ in: 'body', field, message: 'is read-only and cannot be set' });
    expect(await (await t.request(`/v1/links/${link.id}`)).json()).toEqual(link);
  });

  it.each<[string, Record<string, unknown>]>([
    ['url', { url: 'http://localhost/loop' }],
    ['url', { url: 'ftp://example.com/' }],
    ['domain', { domain: 'nobody.example.com' }],
    ['expiresAt', { expiresAt: '2000-01-01T00:00:00Z' }],
    ['slug', { slug: 'metrics' }],
    ['tags', { tags: ['a', 'a'] }],
    ['geo.DE', { geo: { DE: 'http://localhost/' } }],
  ])('refuses a bad %s in a patch, changing nothing', async (field, patch) => {
    const link = await createLink({ url: 'https://example.com/' });
    await expectRefused(t.request(`/v1/links/${link.id}`, { method: 'PATCH', json: patch }), [field], { links: 1, tags: 0 });
    expect(await (await t.request(`/v1/links/${link.id}`)).json()).toEqual(link);
  });

  it('deletes with 204, then answers 404', async () => {
    const link = await createLink({ url: 'https://example.com/', tags: ['a', 'b'] });
    const keep = await createLink({ url: 'https://example.com/', tags: ['a'] });
    const res = await t.request(`/v1/links/${link.id}`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    await expectProblem(await t.request(`/v1/links/${link.id}`), 404, 'not-found');
    await expectProblem(await t.request(`/v1/links/${link.id}`, { method: 'DELETE' }), 404, 'not-found');
    expect(await counts()).toEqual({ links: 1, tags: 1 });
    expect((await list('?tag=a')).data.map((l) => l.id)).toEqual([keep.id]);
  });

  it('frees the slug of a deleted link', async () => {
    const link = await createLink({ url: 'https://example.com/', slug: 'reuse' });
    await t.request(`/v1/links/${link.id}`, { method: 'DELETE' });
    expect((await createLink({ url: 'https://example.com/2', slug: 'reuse' })).slug).toBe('reuse');
  });
});

describe('Idempotency-Key on POST /v1/links', () => {
  const post = (key: string, json: unknown, apiKey?: string) =>
    t.request('/v1/links', { method: 'POST', json, key: apiKey, headers: { 'idempotency-key': key } });

  it('replays the first answer to a retry with the same key and body, storing one link', async () => {
    const body = { url: 'https://example.com/', tags: ['a'] };
    const first = await post('key-1', body);
    expect(first.status).toBe(201);
    const created = (await first.json()) as Link;
    expect(first.headers.get('idempotent-replayed')).toBeNull();

    const again = await post('key-1', body);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(`/v1/links/${created.id}`);
    expect(again.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await again.json()).toEqual(created);
    expect(await counts()).toEqual({ links: 1, tags: 1 });
  });

  it('answers 422 to the same key with another body, storing nothing more', async () => {
    expect((await post('key-2', { url: 'https://example.com/a' })).status).toBe(201);
    await expectProblem(await post('key-2', { url: 'https://example.com/b' }), 422, 'idempotency-mismatch');
    expect(await t.count('links')).toBe(1);
  });

  it('runs a request with another key as a new one', async () => {
    const body = { url: 'https://example.com/' };
    const a = (await (await post('key-a', body)).json()) as Link;
    const b = (await (await post('key-b', body)).json()) as Link;
    expect(a.id).not.toBe(b.id);
    expect(await t.count('links')).toBe(2);
  });

  it('keeps the keys of workspaces apart', async () => {
    const other = await t.createWorkspace();
    const mine = (await (await post('shared', { url: 'https://example.com/' })).json()) as Link;
    const res = await post('shared', { url: 'https://example.com/' }, other.adminKey);
    expect(res.status).toBe(201);
    expect(res.headers.get('idempotent-replayed')).toBeNull();
    expect(((await res.json()) as Link).id).not.toBe(mine.id);
  });

  it('leaves no record for a refused request, so a corrected retry with the same key succeeds', async () => {
    await expectProblem(await post('key-3', { url: 'ftp://example.com/' }), 400, 'validation');
    expect(await t.count('idempotency_records')).toBe(0);
    await expectProblem(await post('key-3', { url: 'http://localhost/loop' }), 400, 'validation');
    expect(await t.count('idempotency_records')).toBe(0);

    const fixed = await post('key-3', { url: 'https://example.com/' });
    expect(fixed.status).toBe(201);
    expect(fixed.headers.get('idempotent-replayed')).toBeNull();
    expect(await t.count('idempotency_records')).toBe(1);
    expect(await t.count('links')).toBe(1);
  });

  it('leaves no record for a conflict', async () => {
    await createLink({ url: 'https://example.com/', slug: 'taken' });
    await expectProblem(await post('key-4', { url: 'https://example.com/', slug: 'taken' }), 409, 'conflict');
    expect(await t.count('idempotency_records')).toBe(0);
  });

  it('stores one link when a create whose outcome was unknown is retried: the retry answers the stored link', async () => {
    const body = { url: 'https://example.com/unknown', tags: ['a'] };
    const first = (await (await post('key-unknown', body)).json()) as Link;
    // As a 503 past the database deadline leaves it: the write committed, the answer was lost, the record released.
    await t.db.client.execute("update idempotency_records set status = 0, body = null where key = 'key-unknown'");
    const retry = await post('key-unknown', body);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
    expect(await retry.json()).toEqual(first);
    expect(await counts()).toEqual({ links: 1, tags: 1 });
    // Completed by the retry: the next one is a plain replay.
    expect((await post('key-unknown', body)).headers.get('idempotent-replayed')).toBe('true');
  });

  it('stores one link when a create that failed before writing is retried', async () => {
    const body = { url: 'https://example.com/never', slug: 'never' };
    const first = await post('key-never', body);
    const id = ((await first.json()) as Link).id;
    await t.db.client.execute(`delete from links where id = '${id}'`);
    await t.db.client.execute("update idempotency_records set status = 0, body = null where key = 'key-never'");
    const retry = await post('key-never', body);
    expect(retry.status).toBe(201);
    expect(((await retry.json()) as Link).id).toBe(id);
    expect(await t.count('links')).toBe(1);
  });

  it('answers 409 to a retry while the first attempt is pending, and lets it run as that attempt once stale', async () => {
    const body = { url: 'https://example.com/pending' };
    const first = (await (await post('key-pending', body)).json()) as Link;
    await t.db.client.execute("update idempotency_records set status = null, body = null where key = 'key-pending'");
    await expectProblem(await post('key-pending', body), 409, 'idempotency-in-progress');
    t.clock.now = new Date(t.clock.now.getTime() + 61_000);
    const retry = await post('key-pending', body);
    expect(retry.status).toBe(201);
    expect(((await retry.json()) as Link).id).toBe(first.id);
    expect(await t.count('links')).toBe(1);
  });

  it('refuses the same key with another body even after an unknown outcome', async () => {
    await post('key-other', { url: 'https://example.com/1' });
    await t.db.client.execute("update idempotency_records set status = 0, body = null where key = 'key-other'");
    await expectProblem(await post('key-other', { url: 'https://example.com/2' }), 422, 'idempotency-mismatch');
    expect(await t.count('links')).toBe(1);
  });

  it.each([
    ['300 characters', 'k'.repeat(300)],
    ['a space', 'two words'],
    ['a non-ASCII character', 'clé'],
  ])('refuses a key with %s', async (_what, key) => {
    const problem = await expectProblem(await post(key, { url: 'https://example.com/' }), 400, 'validation');
    expect(problem.errors).toEqual([expect.objectContaining({ in: 'header', field: 'Idempotency-Key' })]);
    expect(await t.count('links')).toBe(0);
    expect(await t.count('idempotency_records')).toBe(0);
  });

  it('accepts a key of 255 visible characters', async () => {
    expect((await post('k'.repeat(255), { url: 'https://example.com/' })).status).toBe(201);
  });

  it('carries the request id of the retry on a replay', async () => {
    await post('key-rid', { url: 'https://example.com/' });
    const again = await t.request('/v1/links', {
      method: 'POST',
      json: { url: 'https://example.com/' },
      headers: { 'idempotency-key': 'key-rid', 'x-request-id': 'retry-42' },
    });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('x-request-id')).toBe('retry-42');
  });

  it('forgets keys after 24 hours: expired records are purged and the key runs anew', async () => {
    await post('old-key', { url: 'https://example.com/' });
    await post('other-old-key', { url: 'https://example.com/' });
    t.clock.now = new Date(t.clock.now.getTime() + 24 * 60 * 60 * 1000 + 1);
    const res = await post('old-key', { url: 'https://example.com/' });
    expect(res.status).toBe(201);
    expect(res.headers.get('idempotent-replayed')).toBeNull();
    expect(await t.count('idempotency_records')).toBe(1);
    expect(await t.count('links')).toBe(3);
  });
});
