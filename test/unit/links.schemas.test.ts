// Input rules of the link schemas (PRODUCT.md "Rules for every input"): each bad input next to a good one.
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  CreateLinkSchema,
  ListLinksQuery,
  MAX_URL_LENGTH,
  RESERVED_SLUGS,
  SlugSchema,
  TargetUrl,
  UpdateLinkSchema,
} from '../../src/modules/links/links.schemas.ts';

/** The issues of a failed parse as `path: message` lines; fails the test when the parse succeeds. */
function issues(schema: z.ZodType, input: unknown): string[] {
  const result = schema.safeParse(input);
  if (result.success) throw new Error(`expected ${JSON.stringify(input)?.slice(0, 120)} to be refused`);
  return result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

/** The parsed value; fails the test with the issues when the parse fails. */
function parsed<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input);
  if (!result.success) throw new Error(`expected ${JSON.stringify(input)?.slice(0, 120)} to pass: ${result.error.message}`);
  return result.data;
}

const URL_OK = 'https://example.com/';
const create = (extra: Record<string, unknown>) => ({ url: URL_OK, ...extra });

describe('TargetUrl', () => {
  it.each(['https://example.com/a?b=c#d', 'http://example.com', 'https://[::1]/', 'https://sub.example.co.uk:8443/x'])(
    'accepts the absolute http(s) URL %s',
    (url) => {
      expect(() => parsed(TargetUrl, url)).not.toThrow();
    },
  );

  it.each([
    ['ftp://example.com/file', 'must use http or https'],
    ['javascript:alert(1)', 'must use http or https'],
    ['data:text/html,hi', 'must use http or https'],
    ['file:///etc/passwd', 'must use http or https'],
    ['mailto:someone@example.com', 'must use http or https'],
  ])('refuses the non-http scheme of %s', (url, message) => {
    expect(issues(TargetUrl, url)).toEqual([`: ${message}`]);
  });

  it.each(['/relative/path', '//example.com/x', 'example.com', '', 'https://'])('refuses %j, which is not absolute', (url) => {
    expect(issues(TargetUrl, url)).toEqual([': must be an absolute URL']);
  });

  it.each(['https://user@example.com/', 'https://user:secret@example.com/', 'https://:secret@example.com/'])(
    'refuses credentials in %s',
    (url) => {
      expect(issues(TargetUrl, url)).toEqual([': must not contain credentials (user:password@)']);
    },
  );

  it.each([
    ['a NUL', 'https://exa\u0000mple.com/'],
    ['a tab', 'https://example.com/a\tb'],
    ['a newline', 'https://example.com/a\nb'],
    ['a carriage return', 'https://example.com/a\rb'],
    ['DEL', 'https://example.com/\u007f'],
    ['a C1 control', 'https://example.com/\u0085'],
    ['a line separator', 'https://example.com/\u2028'],
    ['a space', 'https://example.com/a b'],
    ['a leading space', ' https://example.com/'],
    ['a no-break space', 'https://example.com/\u00a0'],
  ])('refuses %s', (_what, url) => {
    expect(issues(TargetUrl, url)).toEqual([': must not contain whitespace or control characters']);
  });

  it(`accepts ${MAX_URL_LENGTH} characters and refuses one more`, () => {
    const prefix = 'https://example.com/';
    const longest = prefix + 'a'.repeat(MAX_URL_LENGTH - prefix.length);
    expect(parsed(TargetUrl, longest)).toHaveLength(MAX_URL_LENGTH);
    expect(issues(TargetUrl, `${longest}a`)).toEqual([`: must be at most ${MAX_URL_LENGTH} characters`]);
  });

  it('normalises to the parsed href (scheme and host lower-cased, default port and dot segments dropped)', () => {
    expect(parsed(TargetUrl, 'HTTPS://Example.COM:443/a/../b?x=1#f')).toBe('https://example.com/b?x=1#f');
    expect(parsed(TargetUrl, 'http://example.com')).toBe('http://example.com/');
    expect(parsed(TargetUrl, 'https://exämple.com/ü')).toBe('https://xn--exmple-cua.com/%C3%BC');
  });

  // The cap is on what is stored and redirected to: percent-encoding must not carry a URL past it.
  it(`never yields a normalised href longer than ${MAX_URL_LENGTH} characters`, () => {
    const input = `https://example.com/${'é'.repeat(1000)}`;
    expect(input.length).toBeLessThanOrEqual(MAX_URL_LENGTH);
    const result = TargetUrl.safeParse(input);
    if (result.success) expect(result.data.length).toBeLessThanOrEqual(MAX_URL_LENGTH);
    else expect(result.error.issues[0]?.message).toMatch(/at most 2048/);
  });
});

describe('SlugSchema', () => {
  it.each(['a', 'Z', '7', 'launch', 'Spring-Sale_2027', 'a-', 'a_', 'x'.repeat(64)])('accepts %s', (slug) => {
    expect(parsed(SlugSchema, slug)).toBe(slug);
  });

  it.each([
    ['empty', ''],
    ['65 characters', 'x'.repeat(65)],
    ['a leading hyphen', '-launch'],
    ['a leading underscore', '_launch'],
    ['a dot', 'a.b'],
    ['a slash', 'a/b'],
    ['a space', 'a b'],
    ['a percent sign', 'a%20b'],
    ['a non-ASCII letter', 'café'],
    ['a trailing newline', 'launch\n'],
  ])('refuses %s', (_what, slug) => {
    expect(issues(SlugSchema, slug)[0]).toMatch(/^: must be 1-64 characters of A-Z/);
  });

  it.each(['v1', 'docs', 'livez', 'readyz', 'healthz', 'metrics', 'api', 'admin'])(
    'refuses the reserved word %s in any case',
    (word) => {
      expect(RESERVED_SLUGS.has(word)).toBe(true);
      expect(issues(SlugSchema, word)).toEqual([': is reserved']);
      expect(issues(SlugSchema, word.toUpperCase())).toEqual([': is reserved']);
      expect(issues(SlugSchema, word[0]!.toUpperCase() + word.slice(1))).toEqual([': is reserved']);
    },
  );

  it('accepts words that merely contain a reserved word', () => {
    expect(parsed(SlugSchema, 'docs2')).toBe('docs2');
    expect(parsed(SlugSchema, 'my-metrics')).toBe('my-metrics');
  });

  it.each(['openapi.json', 'robots.txt', 'favicon.ico', '.well-known'])('refuses the reserved path %s', (path) => {
    expect(issues(SlugSchema, path)).toContain(': is reserved');
    expect(issues(SlugSchema, path)[0]).toMatch(/^: must be 1-64 characters/);
  });
});

describe('CreateLinkSchema', () => {
  it('accepts a link with only a url, leaving every other field unset', () => {
    expect(parsed(CreateLinkSchema, { url: 'https://example.com' })).toEqual({ url: 'https://example.com/' });
  });

  it('accepts every field at once and normalises each URL', () => {
    const input = {
      url: 'https://Example.com',
      slug: 'launch',
      domain: ' Go.Example.COM ',
      title: '  Launch day  ',
      tags: ['news', 'News'],
      expiresAt: '2030-01-31T12:00:00+01:00',
      maxClicks: 10,
      fallbackUrl: 'https://example.com/over',
      redirectStatus: 308,
      cacheMaxAge: 60,
      forwardQuery: false,
      iosUrl: 'https://apps.apple.com/app',
      androidUrl: 'https://play.google.com/app',
      geo: { DE: 'https://example.de', FR: 'https://example.fr/' },
    };
    expect(parsed(CreateLinkSchema, input)).toEqual({
      ...input,
      url: 'https://example.com/',
      domain: 'go.example.com',
      title: 'Launch day',
      expiresAt: new Date('2030-01-31T11:00:00Z'),
      geo: { DE: 'https://example.de/', FR: 'https://example.fr/' },
    });
  });

  it('requires url', () => {
    expect(issues(CreateLinkSchema, {})).toEqual(['url: Invalid input: expected string, received undefined']);
    expect(issues(CreateLinkSchema, { url: 42 })).toHaveLength(1);
  });

  it.each(['fallbackUrl', 'iosUrl', 'androidUrl'])('applies the target URL rules to %s', (field) => {
    expect(parsed(CreateLinkSchema, create({ [field]: 'https://example.org' }))[field as 'iosUrl']).toBe(
      'https://example.org/',
    );
    expect(issues(CreateLinkSchema, create({ [field]: 'ftp://example.org' }))).toEqual([
      `${field}: must use http or https`,
    ]);
    expect(issues(CreateLinkSchema, create({ [field]: 'https://u:p@example.org' }))).toEqual([
      `${field}: must not contain credentials (user:password@)`,
    ]);
  });

  describe('tags', () => {
    it('accepts up to 20 distinct tags of up to 50 characters, trimmed', () => {
      const twenty = Array.from({ length: 20 }, (_, i) => `t${i}`);
      expect(parsed(CreateLinkSchema, create({ tags: twenty })).tags).toEqual(twenty);
      expect(parsed(CreateLinkSchema, create({ tags: ['x'.repeat(50)] })).tags).toEqual(['x'.repeat(50)]);
      expect(parsed(CreateLinkSchema, create({ tags: [' a '] })).tags).toEqual(['a']);
      expect(parsed(CreateLinkSchema, create({ tags: [] })).tags).toEqual([]);
    });

    it('refuses a 21st tag', () => {
      const many = Array.from({ length: 21 }, (_, i) => `t${i}`);
      expect(issues(CreateLinkSchema, create({ tags: many }))).toEqual(['tags: must have at most 20 tags']);
    });

    it('refuses a repeated tag, also when only surrounding spaces differ', () => {
      expect(issues(CreateLinkSchema, create({ tags: ['a', 'b', 'a'] }))).toEqual(['tags: must not repeat a tag']);
      expect(issues(CreateLinkSchema, create({ tags: ['a', ' a '] }))).toEqual(['tags: must not repeat a tag']);
    });

    it('refuses a tag over 50 characters, an empty tag, and control characters', () => {
      expect(issues(CreateLinkSchema, create({ tags: ['x'.repeat(51)] }))).toEqual(['tags.0: must be at most 50 characters']);
      expect(issues(CreateLinkSchema, create({ tags: ['ok', '  '] }))).toEqual(['tags.1: must not be empty']);
      expect(issues(CreateLinkSchema, create({ tags: ['a\u0000b'] }))).toEqual(['tags.0: must not contain control characters']);
      expect(issues(CreateLinkSchema, create({ tags: ['a\u2029b'] }))).toEqual(['tags.0: must not contain control characters']);
    });

    it('refuses a tag that is not a string', () => {
      expect(issues(CreateLinkSchema, create({ tags: [1] }))).toHaveLength(1);
      expect(issues(CreateLinkSchema, create({ tags: 'news' }))).toHaveLength(1);
    });
  });

  describe('geo', () => {
    it('accepts ISO alpha-2 capitals mapped to target URLs, up to 50 countries', () => {
      const fifty = Object.fromEntries(
        Array.from({ length: 50 }, (_, i) => [`${String.fromCharCode(65 + Math.floor(i / 26))}${String.fromCharCode(65 + (i % 26))}`, URL_OK]),
      );
      expect(parsed(CreateLinkSchema, create({ geo: { DE: 'https://example.de' } })).geo).toEqual({ DE: 'https://example.de/' });
      expect(Object.keys(parsed(CreateLinkSchema, create({ geo: fifty })).geo!)).toHaveLength(50);
      expect(parsed(CreateLinkSchema, create({ geo: {} })).geo).toEqual({});
    });

    it('refuses a 51st country', () => {
      const fiftyOne = Object.fromEntries(
        Array.from({ length: 51 }, (_, i) => [`${String.fromCharCode(65 + Math.floor(i / 26))}${String.fromCharCode(65 + (i % 26))}`, URL_OK]),
      );
      expect(issues(CreateLinkSchema, create({ geo: fiftyOne }))).toEqual(['geo: must have at most 50 countries']);
    });

    it.each(['de', 'De', 'DEU', 'D', '12', 'D1', ''])('refuses the country key %j', (country) => {
      const found = issues(CreateLinkSchema, create({ geo: { [country]: URL_OK } }));
      expect(found).toHaveLength(1);
      expect(found[0]).toMatch(new RegExp(`^geo\\.${country}: `));
    });

    it('applies the target URL rules to each value', () => {
      expect(issues(CreateLinkSchema, create({ geo: { DE: 'ftp://example.de' } }))).toEqual(['geo.DE: must use http or https']);
      expect(issues(CreateLinkSchema, create({ geo: { DE: 'example.de' } }))).toEqual(['geo.DE: must be an absolute URL']);
      expect(issues(CreateLinkSchema, create({ geo: { DE: 5 } }))).toHaveLength(1);
    });
  });

  it.each([301, 302, 307, 308])('accepts redirectStatus %i', (status) => {
    expect(parsed(CreateLinkSchema, create({ redirectStatus: status })).redirectStatus).toBe(status);
  });

  it.each([200, 300, 303, 304, 305, 306, 309, 404, '302', null])('refuses redirectStatus %j', (status) => {
    expect(issues(CreateLinkSchema, create({ redirectStatus: status }))).toEqual([
      'redirectStatus: must be one of 301, 302, 307, 308',
    ]);
  });

  it('bounds maxClicks to integers from 1 to 1e12', () => {
    expect(parsed(CreateLinkSchema, create({ maxClicks: 1 })).maxClicks).toBe(1);
    expect(parsed(CreateLinkSchema, create({ maxClicks: 1e12 })).maxClicks).toBe(1e12);
    expect(issues(CreateLinkSchema, create({ maxClicks: 0 }))).toHaveLength(1);
    expect(issues(CreateLinkSchema, create({ maxClicks: -1 }))).toHaveLength(1);
    expect(issues(CreateLinkSchema, create({ maxClicks: 1e12 + 1 }))).toHaveLength(1);
    expect(issues(CreateLinkSchema, create({ maxClicks: 1.5 }))).toEqual(['maxClicks: must be an integer']);
    expect(issues(CreateLinkSchema, create({ maxClicks: '5' }))).toHaveLength(1);
  });

  it('bounds cacheMaxAge to integers from 0 to one year', () => {
    expect(parsed(CreateLinkSchema, create({ cacheMaxAge: 0 })).cacheMaxAge).toBe(0);
    expect(parsed(CreateLinkSchema, create({ cacheMaxAge: 31_536_000 })).cacheMaxAge).toBe(31_536_000);
    expect(issues(CreateLinkSchema, create({ cacheMaxAge: -1 }))).toHaveLength(1);
    expect(issues(CreateLinkSchema, create({ cacheMaxAge: 31_536_001 }))).toHaveLength(1);
    expect(issues(CreateLinkSchema, create({ cacheMaxAge: 0.5 }))).toEqual(['cacheMaxAge: must be an integer']);
  });

  it('takes forwardQuery as a boolean only', () => {
    expect(parsed(CreateLinkSchema, create({ forwardQuery: false })).forwardQuery).toBe(false);
    expect(issues(CreateLinkSchema, create({ forwardQuery: 'false' }))).toHaveLength(1);
    expect(issues(CreateLinkSchema, create({ forwardQuery: 0 }))).toHaveLength(1);
  });

  it('takes title as trimmed plain text of up to 200 characters', () => {
    expect(parsed(CreateLinkSchema, create({ title: 't'.repeat(200) })).title).toHaveLength(200);
    expect(issues(CreateLinkSchema, create({ title: 't'.repeat(201) }))).toEqual(['title: must be at most 200 characters']);
    expect(issues(CreateLinkSchema, create({ title: '   ' }))).toEqual(['title: must not be empty']);
    expect(issues(CreateLinkSchema, create({ title: 'a\u001bb' }))).toEqual(['title: must not contain control characters']);
  });

  it('takes domain as a lower-cased hostname', () => {
    expect(parsed(CreateLinkSchema, create({ domain: 'GO.example.com' })).domain).toBe('go.example.com');
    expect(issues(CreateLinkSchema, create({ domain: 'https://go.example.com' }))).toHaveLength(1);
    expect(issues(CreateLinkSchema, create({ domain: 'go.example.com/x' }))).toHaveLength(1);
    expect(issues(CreateLinkSchema, create({ domain: 'go.example.com:8080' }))).toHaveLength(1);
  });

  it('takes expiresAt as an ISO-8601 date-time with a time zone', () => {
    expect(parsed(CreateLinkSchema, create({ expiresAt: '2030-01-01T00:00:00Z' })).expiresAt).toEqual(
      new Date('2030-01-01T00:00:00Z'),
    );
    for (const bad of ['2030-01-01T00:00:00', '2030-01-01', 'tomorrow', '2030-13-01T00:00:00Z', 1893456000000]) {
      expect(issues(CreateLinkSchema, create({ expiresAt: bad }))).toHaveLength(1);
    }
  });

  it('refuses unknown fields, naming each', () => {
    expect(issues(CreateLinkSchema, create({ target: 'x', color: 'red' }))).toEqual([
      ': Unrecognized keys: "target", "color"',
    ]);
  });

  it.each(['id', 'clicks', 'createdAt', 'updatedAt', 'workspaceId', 'shortUrl'])('refuses the read-only field %s', (field) => {
    const result = CreateLinkSchema.safeParse(create({ [field]: field === 'clicks' ? 0 : 'x' }));
    expect(result.success).toBe(false);
    expect(result.error?.issues).toEqual([expect.objectContaining({ code: 'unrecognized_keys', keys: [field] })]);
  });

  it('refuses a body that is not an object', () => {
    for (const body of [null, [], 'https://example.com', 42]) expect(issues(CreateLinkSchema, body)).toHaveLength(1);
  });
});

describe('UpdateLinkSchema', () => {
  it('requires at least one field', () => {
    expect(issues(UpdateLinkSchema, {})).toEqual([': must change at least one field']);
  });

  it('accepts a single field', () => {
    expect(parsed(UpdateLinkSchema, { title: 'New' })).toEqual({ title: 'New' });
    expect(parsed(UpdateLinkSchema, { url: 'https://example.org' })).toEqual({ url: 'https://example.org/' });
    expect(parsed(UpdateLinkSchema, { forwardQuery: false })).toEqual({ forwardQuery: false });
  });

  it.each(['title', 'expiresAt', 'maxClicks', 'fallbackUrl', 'iosUrl', 'androidUrl', 'geo'])(
    'accepts null to clear %s',
    (field) => {
      expect(parsed(UpdateLinkSchema, { [field]: null })).toEqual({ [field]: null });
    },
  );

  it.each(['url', 'slug', 'domain', 'tags', 'redirectStatus', 'cacheMaxAge', 'forwardQuery'])(
    'refuses null for the required-on-the-resource field %s',
    (field) => {
      expect(issues(UpdateLinkSchema, { [field]: null })).toHaveLength(1);
    },
  );

  it('applies the create rules to each field', () => {
    expect(issues(UpdateLinkSchema, { url: 'ftp://x.com' })).toEqual(['url: must use http or https']);
    expect(issues(UpdateLinkSchema, { slug: 'docs' })).toEqual(['slug: is reserved']);
    expect(issues(UpdateLinkSchema, { tags: ['a', 'a'] })).toEqual(['tags: must not repeat a tag']);
    expect(issues(UpdateLinkSchema, { redirectStatus: 303 })).toEqual(['redirectStatus: must be one of 301, 302, 307, 308']);
    expect(issues(UpdateLinkSchema, { maxClicks: 0 })).toHaveLength(1);
    expect(issues(UpdateLinkSchema, { geo: { de: URL_OK } })).toHaveLength(1);
  });

  it('refuses unknown and read-only fields', () => {
    expect(UpdateLinkSchema.safeParse({ title: 'x', clicks: 5 }).error?.issues).toEqual([
      expect.objectContaining({ code: 'unrecognized_keys', keys: ['clicks'] }),
    ]);
    expect(UpdateLinkSchema.safeParse({ id: 'lnk_x' }).success).toBe(false);
    expect(UpdateLinkSchema.safeParse({ nonsense: true }).success).toBe(false);
  });
});

describe('ListLinksQuery', () => {
  it('defaults limit to 20', () => {
    expect(parsed(ListLinksQuery, {})).toEqual({ limit: 20 });
  });

  it('coerces limit from the query string and bounds it to 1..100', () => {
    expect(parsed(ListLinksQuery, { limit: '1' }).limit).toBe(1);
    expect(parsed(ListLinksQuery, { limit: '100' }).limit).toBe(100);
    for (const bad of ['0', '101', '-5', '2.5', 'abc', '']) expect(issues(ListLinksQuery, { limit: bad })).toHaveLength(1);
  });

  it('refuses unknown parameters', () => {
    expect(issues(ListLinksQuery, { page: '2' })).toEqual([': Unrecognized key: "page"']);
    expect(issues(ListLinksQuery, { offset: '0', sort: 'x' })).toHaveLength(1);
  });

  it('takes createdAfter and createdBefore only with a time zone', () => {
    expect(parsed(ListLinksQuery, { createdAfter: '2026-01-01T00:00:00+02:00' }).createdAfter).toEqual(
      new Date('2025-12-31T22:00:00Z'),
    );
    expect(parsed(ListLinksQuery, { createdBefore: '2026-01-01T00:00:00.123Z' }).createdBefore).toEqual(
      new Date('2026-01-01T00:00:00.123Z'),
    );
    for (const bad of ['2026-01-01T00:00:00', '2026-01-01', '1767225600000', 'yesterday']) {
      expect(issues(ListLinksQuery, { createdAfter: bad })).toEqual([
        'createdAfter: must be an ISO-8601 date-time with a time zone, e.g. 2027-01-31T12:00:00Z',
      ]);
      expect(issues(ListLinksQuery, { createdBefore: bad })).toHaveLength(1);
    }
  });

  it('bounds cursor, tag, q and domain', () => {
    expect(parsed(ListLinksQuery, { cursor: 'c'.repeat(200), tag: 'news', q: 'launch', domain: 'Go.Example.com' })).toEqual({
      limit: 20,
      cursor: 'c'.repeat(200),
      tag: 'news',
      q: 'launch',
      domain: 'go.example.com',
    });
    expect(issues(ListLinksQuery, { cursor: 'c'.repeat(201) })).toHaveLength(1);
    expect(issues(ListLinksQuery, { tag: 'x'.repeat(51) })).toHaveLength(1);
    expect(issues(ListLinksQuery, { q: 'x'.repeat(201) })).toHaveLength(1);
    expect(issues(ListLinksQuery, { q: 'a\u0000' })).toHaveLength(1);
  });

  it('refuses a repeated parameter (an array)', () => {
    expect(issues(ListLinksQuery, { tag: ['a', 'b'] })).toHaveLength(1);
  });
});
