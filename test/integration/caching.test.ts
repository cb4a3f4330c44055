// Conditional GET on the management API: ETag, If-None-Match → 304, Cache-Control and Vary on JSON answers; none of
// it on errors, on other methods, on the streamed click export, on the probes or on the redirect; and its OpenAPI.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { composeClicksService } from '../../src/composition/clicks.ts';
import type { ClickEvent, LinkClickEvent } from '../../src/modules/clicks/clicks.schemas.ts';
import { newId } from '../../src/platform/crypto.ts';
import { ADMIN_TOKEN, createTestApp, expectProblem, type TestApp } from '../helpers/app.ts';

let t: TestApp;
let sent: ClickEvent[];
let linkId: string;

beforeEach(async () => {
  sent = [];
  t = await createTestApp({}, { clickQueue: { send: (e) => void sent.push(e) } });
  const res = await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/a', slug: 'a' } });
  expect(res.status).toBe(201);
  linkId = ((await res.json()) as { id: string }).id;
});
afterEach(() => t.close());

const STRONG_TAG = /^"[0-9a-f]{40}"$/;

/** GET (or HEAD) with If-None-Match, as a client revalidating its cached copy would send it. */
const revalidate = (path: string, ifNoneMatch: string, init: { key?: string; method?: string } = {}) =>
  t.request(path, { ...init, headers: { 'if-none-match': ifNoneMatch } });

async function etagOf(path: string, key?: string): Promise<string> {
  const res = await t.request(path, { key });
  expect(res.status, await res.clone().text()).toBe(200);
  const tag = res.headers.get('etag');
  expect(tag).toMatch(STRONG_TAG);
  return tag!;
}

async function expectNotModified(res: Response, etag: string) {
  expect(res.status).toBe(304);
  expect(await res.text()).toBe('');
  expect(res.headers.get('etag')).toBe(etag);
  expect(res.headers.get('cache-control')).toBe('private, no-cache');
  expect(res.headers.get('vary')).toBe('Authorization');
  expect(res.headers.get('x-request-id')).toBeTruthy();
  expect(res.headers.get('content-type')).toBeNull();
}

describe('a JSON answer to GET', () => {
  it('carries a strong ETag, Cache-Control: private, no-cache and Vary: Authorization; the same ETag back is a 304', async () => {
    const res = await t.request(`/v1/links/${linkId}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('private, no-cache');
    expect(res.headers.get('vary')).toBe('Authorization');
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(STRONG_TAG);
    expect(await res.json()).toMatchObject({ id: linkId });
    await expectNotModified(await revalidate(`/v1/links/${linkId}`, etag), etag);
    // The ETag is of the answer, not of the request: the same answer twice has the same one.
    expect(await etagOf(`/v1/links/${linkId}`)).toBe(etag);
  });

  it('answers HEAD with the ETag of the GET, and a 304 to it', async () => {
    const etag = await etagOf(`/v1/links/${linkId}`);
    const head = await t.request(`/v1/links/${linkId}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('etag')).toBe(etag);
    expect(await head.text()).toBe('');
    await expectNotModified(await revalidate(`/v1/links/${linkId}`, etag, { method: 'HEAD' }), etag);
  });

  it.each([
    ['/v1/workspace', undefined],
    ['/v1/keys', undefined],
    ['/v1/domains', undefined],
    ['/v1/links', undefined],
    ['/v1/links?tag=none&limit=5', undefined],
    ['/v1/links/{id}/stats', undefined],
    ['/v1/stats?interval=day', undefined],
    ['/v1/orphans?domain=go.example.com', undefined],
    ['/v1/operator/orphans?domain=localhost', ADMIN_TOKEN],
  ])('revalidates GET %s', async (template, key) => {
    expect((await t.request('/v1/domains', { method: 'POST', json: { hostname: 'go.example.com' } })).status).toBe(201);
    const path = template.replace('{id}', linkId);
    const etag = await etagOf(path, key);
    await expectNotModified(await revalidate(path, etag, { key }), etag);
  });

  it.each([
    ['a weak tag of it (weak comparison)', (e: string) => `W/${e}`],
    ['a list holding it', (e: string) => `"0000", W/"1111", ${e}`],
    ['a list holding it weakly, without spaces', (e: string) => `"0000",W/${e}`],
    ['*', () => '*'],
  ])('answers 304 to %s', async (_what, header) => {
    const etag = await etagOf(`/v1/links/${linkId}`);
    await expectNotModified(await revalidate(`/v1/links/${linkId}`, header(etag)), etag);
  });

  it.each([
    ['another tag', () => '"0000000000000000000000000000000000000000"'],
    ['a list without it', () => '"0000", W/"1111"'],
    ['its value unquoted', (e: string) => e.slice(1, -1)],
    ['its value in upper case', (e: string) => e.toUpperCase()],
    ['an empty value', () => ''],
    ['garbage', () => 'garbage; <script>'],
    ['an unterminated quote', (e: string) => e.slice(0, -1)],
    ['a lone W/', () => 'W/'],
    ['a lone quote', () => '"'],
    ['commas only', () => ',,,'],
    ['* inside a list', () => '*, "0000"'],
    ['a very long value', () => `"${'a'.repeat(6000)}"`],
    ['a non-ASCII value', () => '"é"'],
  ])('answers a normal 200 to %s', async (_what, header) => {
    const etag = await etagOf(`/v1/links/${linkId}`);
    const res = await revalidate(`/v1/links/${linkId}`, header(etag));
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(etag);
    expect(await res.json()).toMatchObject({ id: linkId });
  });

  it('changes its ETag when the link changes: the old one answers 200 with the new one, the new one 304', async () => {
    const before = await etagOf(`/v1/links/${linkId}`);
    const listBefore = await etagOf('/v1/links');
    t.clock.now = new Date(t.clock.now.getTime() + 1000);
    const patch = await t.request(`/v1/links/${linkId}`, { method: 'PATCH', json: { title: 'changed' } });
    expect(patch.status).toBe(200);
    const res = await revalidate(`/v1/links/${linkId}`, before);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ title: 'changed' });
    const after = res.headers.get('etag')!;
    expect(after).toMatch(STRONG_TAG);
    expect(after).not.toBe(before);
    await expectNotModified(await revalidate(`/v1/links/${linkId}`, after), after);
    const list = await revalidate('/v1/links', listBefore);
    expect(list.status).toBe(200);
    expect(list.headers.get('etag')).not.toBe(listBefore);
  });

  it("never answers another workspace's key with a 304 for the first one's answer", async () => {
    const other = await t.createWorkspace('other');
    const etag = await etagOf(`/v1/links/${linkId}`);
    for (const header of [etag, `W/${etag}`, '*']) {
      const res = await revalidate(`/v1/links/${linkId}`, header, { key: other.adminKey });
      await expectProblem(res, 404, 'not-found');
      expect(res.headers.get('etag')).toBeNull();
    }
    const mine = await etagOf('/v1/workspace');
    const theirs = await revalidate('/v1/workspace', mine, { key: other.adminKey });
    expect(theirs.status).toBe(200);
    expect(await theirs.json()).toMatchObject({ id: other.id, name: 'other' });
    expect(theirs.headers.get('etag')).toMatch(STRONG_TAG);
    expect(theirs.headers.get('etag')).not.toBe(mine);
  });
});

describe('what keeps its headers as they were', () => {
  it.each([
    ['no key (401)', '/v1/links', null, 401],
    ['a key without the scope (403)', '/v1/keys', 'links:read', 403],
    ['a missing link (404)', '/v1/links/lnk_missing', undefined, 404],
    ['a bad query (400)', '/v1/links?limit=0', undefined, 400],
    ['an unknown path (404)', '/v1/nothing-here', undefined, 404],
  ] as const)('an error answers problem+json with no-store and no ETag, even to *: %s', async (_what, path, who, status) => {
    const key = who === 'links:read' ? (await t.createKey(['links:read'])).key : who;
    const res = await t.request(path, { key, headers: { 'if-none-match': '*' } });
    expect(res.headers.get('etag')).toBeNull();
    expect(res.headers.get('cache-control')).toBe('no-store');
    await expectProblem(res, status);
  });

  it.each([
    ['POST', '/v1/links', { url: 'https://example.com/b' }, 201],
    ['PATCH', '/v1/links/{id}', { title: 'x' }, 200],
    ['DELETE', '/v1/links/{id}', undefined, 204],
  ] as const)('%s %s answers as before: no ETag, no Cache-Control, If-None-Match ignored', async (method, path, json, status) => {
    const res = await t.request(path.replace('{id}', linkId), { method, json, headers: { 'if-none-match': '*' } });
    expect(res.status).toBe(status);
    expect(res.headers.get('etag')).toBeNull();
    expect(res.headers.get('cache-control')).toBeNull();
  });

  it('leaves the probes, the OpenAPI document and the redirect alone', async () => {
    for (const path of ['/livez', '/readyz', '/openapi.json', '/a']) {
      const res = await t.request(path, { key: null, headers: { host: 'localhost:8787', 'if-none-match': '*' } });
      expect(res.status, path).toBeLessThan(400);
      expect(res.status, path).not.toBe(304);
      expect(res.headers.get('etag'), path).toBeNull();
      expect(res.headers.get('vary'), path).toBeNull();
      await res.body?.cancel();
    }
  });

  it('streams the click export untouched: no ETag, its own no-store and Vary: Accept, and * is no 304', async () => {
    const clicks = composeClicksService(t.db);
    const visit = await t.app.request('/a', { headers: { host: 'localhost:8787' } });
    expect(visit.status).toBe(302);
    const template = sent.pop() as LinkClickEvent;
    // More than two pages of the export (1,000 rows each), so the answer comes in several chunks.
    const events = Array.from({ length: 2500 }, (_, i) => ({ ...template, id: newId('clk'), at: template.at + i }));
    expect((await clicks.ingest(events)).rejected).toEqual([]);
    for (const format of ['ndjson', 'csv']) {
      const res = await revalidate(`/v1/links/${linkId}/clicks?format=${format}`, '*');
      expect(res.status).toBe(200);
      expect(res.headers.get('etag')).toBeNull();
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('vary')).toBe('Accept');
      const reader = res.body!.getReader();
      let chunks = 0;
      let bytes = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks++;
        bytes += value.byteLength;
      }
      expect(chunks).toBeGreaterThanOrEqual(3);
      expect(bytes).toBeGreaterThan(2500 * 50);
    }
  });
});

describe('OpenAPI', () => {
  interface Operation {
    parameters?: Array<{ $ref?: string; name?: string }>;
    responses: Record<string, { $ref?: string; headers?: Record<string, { $ref: string }> }>;
  }

  it('documents If-None-Match, the 304 and the 200 headers once, on every JSON GET of /v1 (and its HEAD) and nowhere else', async () => {
    const doc = (await (await t.request('/openapi.json', { key: null })).json()) as {
      paths: Record<string, Record<string, Operation>>;
      components: Record<string, Record<string, unknown>>;
    };
    const conditional: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const documented = op.responses['304']?.$ref === '#/components/responses/NotModified';
        const parameter = (op.parameters ?? []).some((p) => p.$ref === '#/components/parameters/IfNoneMatch');
        expect(parameter, `${method} ${path}`).toBe(documented);
        if (!documented) continue;
        conditional.push(`${method.toUpperCase()} ${path}`);
        expect(op.responses['200']!.headers).toEqual({
          ETag: { $ref: '#/components/headers/ETag' },
          'Cache-Control': { $ref: '#/components/headers/CacheControl' },
          Vary: { $ref: '#/components/headers/Vary' },
        });
      }
    }
    // Each with its HEAD twin, which answers 304 the same way.
    const gets = [
      'GET /v1/workspace', 'GET /v1/keys', 'GET /v1/domains', 'GET /v1/links', 'GET /v1/links/{id}',
      'GET /v1/links/{id}/stats', 'GET /v1/stats', 'GET /v1/orphans', 'GET /v1/operator/orphans',
    ];
    expect(conditional.sort()).toEqual([...gets, ...gets.map((g) => g.replace('GET', 'HEAD'))].sort());
    expect(doc.components.parameters!.IfNoneMatch).toMatchObject({ name: 'If-None-Match', in: 'header', required: false });
    expect(doc.components.responses!.NotModified).toMatchObject({ headers: { ETag: { $ref: '#/components/headers/ETag' } } });
    expect(doc.components.headers!.CacheControl).toMatchObject({ schema: { const: 'private, no-cache' } });
  });
});
