// One shared suite of authentication, scope and tenant-isolation checks, applied to every /v1 route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scope } from '../../src/http/env.ts';
import { createTestApp, expectProblem, type TestApp } from '../helpers/app.ts';

interface Fixture {
  linkId: string;
  domainId: string;
  keyId: string;
}

interface RouteCase {
  /** The route as the OpenAPI document names it. */
  name: string;
  method: string;
  path: (f: Fixture) => string;
  /** The scope the route needs; null when any valid key may call it. */
  scope: Scope | null;
  body?: () => unknown;
}

let n = 0;
const routes: RouteCase[] = [
  { name: 'GET /v1/workspace', method: 'GET', path: () => '/v1/workspace', scope: null },
  { name: 'GET /v1/keys', method: 'GET', path: () => '/v1/keys', scope: 'workspace:admin' },
  {
    name: 'POST /v1/keys',
    method: 'POST',
    path: () => '/v1/keys',
    scope: 'workspace:admin',
    body: () => ({ name: 'k', scopes: ['links:read'] }),
  },
  { name: 'DELETE /v1/keys/{id}', method: 'DELETE', path: (f) => `/v1/keys/${f.keyId}`, scope: 'workspace:admin' },
  { name: 'GET /v1/domains', method: 'GET', path: () => '/v1/domains', scope: 'links:read' },
  {
    name: 'POST /v1/domains',
    method: 'POST',
    path: () => '/v1/domains',
    scope: 'workspace:admin',
    body: () => ({ hostname: `sec${++n}.example.org` }),
  },
  {
    name: 'DELETE /v1/domains/{id}',
    method: 'DELETE',
    path: (f) => `/v1/domains/${f.domainId}`,
    scope: 'workspace:admin',
  },
  { name: 'GET /v1/links', method: 'GET', path: () => '/v1/links', scope: 'links:read' },
  {
    name: 'POST /v1/links',
    method: 'POST',
    path: () => '/v1/links',
    scope: 'links:write',
    body: () => ({ url: 'https://example.com/' }),
  },
  { name: 'GET /v1/links/{id}', method: 'GET', path: (f) => `/v1/links/${f.linkId}`, scope: 'links:read' },
  {
    name: 'PATCH /v1/links/{id}',
    method: 'PATCH',
    path: (f) => `/v1/links/${f.linkId}`,
    scope: 'links:write',
    body: () => ({ title: 'changed' }),
  },
  { name: 'DELETE /v1/links/{id}', method: 'DELETE', path: (f) => `/v1/links/${f.linkId}`, scope: 'links:write' },
  { name: 'GET /v1/links/{id}/stats', method: 'GET', path: (f) => `/v1/links/${f.linkId}/stats`, scope: 'analytics:read' },
  { name: 'GET /v1/links/{id}/clicks', method: 'GET', path: (f) => `/v1/links/${f.linkId}/clicks`, scope: 'analytics:read' },
  { name: 'GET /v1/stats', method: 'GET', path: () => '/v1/stats', scope: 'analytics:read' },
  { name: 'GET /v1/orphans', method: 'GET', path: () => '/v1/orphans?domain=fixture.example.net', scope: 'analytics:read' },
];

let t: TestApp;
let fixture: Fixture;
let other: { id: string; adminKey: string };

async function snapshot(): Promise<string> {
  const rows = await Promise.all(
    ['workspaces', 'api_keys', 'domains', 'links', 'link_tags', 'idempotency_records'].map(async (table) => {
      const rs = await t.db.client.execute(`select * from ${table} order by 1`);
      return JSON.stringify(rs.rows);
    }),
  );
  return rows.join('\n');
}

function call(route: RouteCase, key: string | null, headers: Record<string, string> = {}) {
  const body = route.body?.();
  return t.request(route.path(fixture), {
    method: route.method,
    key,
    headers,
    ...(body === undefined ? {} : { json: body }),
  });
}

beforeAll(async () => {
  t = await createTestApp();
  other = await t.createWorkspace('other');
  const link = await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/x', slug: 'fixture' } });
  const domain = await t.request('/v1/domains', { method: 'POST', json: { hostname: 'fixture.example.net' } });
  const key = await t.createKey(['links:read']);
  fixture = {
    linkId: ((await link.json()) as { id: string }).id,
    domainId: ((await domain.json()) as { id: string }).id,
    keyId: key.id,
  };
});

afterAll(() => t.close());

describe.each(routes)('$name', (route) => {
  it('answers 401 with a Bearer challenge and changes nothing without credentials', async () => {
    const before = await snapshot();
    const res = await call(route, null);
    await expectProblem(res, 401, 'unauthorized');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="hop"/);
    expect(await snapshot()).toBe(before);
  });

  it.each([
    ['a malformed key', 'Bearer not-a-key'],
    ['an unknown key', `Bearer hop_${'a'.repeat(43)}`],
    ['another scheme', `Basic ${btoa('user:pass')}`],
    ['an empty bearer', 'Bearer '],
  ])('answers 401 invalid_token for %s', async (_, authorization) => {
    const before = await snapshot();
    const res = await call(route, null, { authorization });
    await expectProblem(res, 401, 'unauthorized');
    expect(await snapshot()).toBe(before);
  });

  if (route.body) {
    it('authenticates before it validates: a bad body without a key is 401, not 400', async () => {
      const res = await t.request(route.path(fixture), {
        method: route.method,
        key: null,
        headers: { 'content-type': 'application/json' },
        body: '{"broken":',
      });
      await expectProblem(res, 401);
    });
  }

  it('refuses a revoked key on the very next request', async () => {
    const key = await t.createKey(route.scope ? [route.scope] : ['links:read']);
    const revoke = await t.request(`/v1/keys/${key.id}`, { method: 'DELETE' });
    expect(revoke.status).toBe(204);
    const before = await snapshot();
    const res = await call(route, key.key);
    const problem = await expectProblem(res, 401, 'unauthorized');
    expect(problem.detail).toMatch(/revoked/);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(await snapshot()).toBe(before);
  });

  if (route.scope) {
    const scope = route.scope;
    it(`answers 403 insufficient_scope without "${scope}" and changes nothing`, async () => {
      const others = (['links:read', 'links:write', 'analytics:read'] as Scope[]).filter((s) => s !== scope);
      const key = await t.createKey(others);
      const before = await snapshot();
      const res = await call(route, key.key);
      await expectProblem(res, 403, 'forbidden');
      expect(res.headers.get('www-authenticate')).toContain(`scope="${scope}"`);
      expect(await snapshot()).toBe(before);
    });
  }

  if (route.name.includes('{id}')) {
    it("answers another workspace's object exactly like a missing one, and changes nothing", async () => {
      const before = await snapshot();
      const foreign = await call(route, other.adminKey);
      const missingPath = route.path(fixture).replace(/[a-z]+_[0-9a-f]{32}/, (id) => `${id.split('_')[0]}_${'0'.repeat(32)}`);
      const body = route.body?.();
      const missing = await t.request(missingPath, {
        method: route.method,
        key: other.adminKey,
        ...(body === undefined ? {} : { json: body }),
      });
      const a = await expectProblem(foreign, 404, 'not-found');
      const b = await expectProblem(missing, 404, 'not-found');
      expect({ ...a, instance: '' }).toEqual({ ...b, instance: '' });
      expect(await snapshot()).toBe(before);
    });
  }
});

describe('tenant isolation in lists', () => {
  it("never lists another workspace's links, keys or domains", async () => {
    for (const path of ['/v1/links', '/v1/keys', '/v1/domains']) {
      const res = await t.request(path, { key: other.adminKey });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { data: Array<{ id: string }> };
      const ids = body.data.map((x) => x.id);
      expect(ids).not.toContain(fixture.linkId);
      expect(ids).not.toContain(fixture.domainId);
      expect(ids).not.toContain(fixture.keyId);
    }
  });

  it("cannot create a link on another workspace's domain", async () => {
    const res = await t.request('/v1/links', {
      method: 'POST',
      key: other.adminKey,
      json: { url: 'https://example.com/', domain: 'fixture.example.net' },
    });
    const problem = await expectProblem(res, 400, 'validation');
    expect(problem.errors?.map((e) => e.field)).toEqual(['domain']);
  });
});
