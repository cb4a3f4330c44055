// Workspaces (operator route), API keys and domains through the real app and a real migrated libSQL file.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, createTestApp, expectProblem, type TestApp } from '../helpers/app.ts';

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp();
});
afterEach(() => t.close());

describe('POST /v1/workspaces (operator)', () => {
  it('creates a workspace whose admin key works at once and is stored only as a hash', async () => {
    const res = await t.request('/v1/workspaces', { method: 'POST', key: ADMIN_TOKEN, json: { name: 'Acme' } });
    expect(res.status).toBe(201);
    // The admin key is in this answer only: nothing between hop and the client may keep it.
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { id: string; name: string; apiKey: { key: string; scopes: string[]; prefix: string } };
    expect(body.name).toBe('Acme');
    expect(body.apiKey.key).toMatch(/^hop_[0-9A-Za-z]{43}$/);
    expect(body.apiKey.scopes).toEqual(['workspace:admin']);
    expect(body.apiKey.key.startsWith(body.apiKey.prefix)).toBe(true);
    const me = await t.request('/v1/workspace', { key: body.apiKey.key });
    expect(await me.json()).toMatchObject({ id: body.id, name: 'Acme' });
    const stored = await t.db.client.execute('select hash from api_keys');
    expect(JSON.stringify(stored.rows)).not.toContain(body.apiKey.key);
  });

  it('refuses API keys, wrong tokens and missing tokens with 401, storing nothing', async () => {
    for (const key of [t.adminKey, `${ADMIN_TOKEN}x`, null]) {
      const res = await t.request('/v1/workspaces', { method: 'POST', key, json: { name: 'x' } });
      await expectProblem(res, 401, 'unauthorized');
    }
    expect(await t.count('workspaces')).toBe(1);
  });

  it('refuses everyone when HOP_ADMIN_TOKEN is not configured', async () => {
    const bare = await createTestApp({ HOP_ADMIN_TOKEN: '' });
    try {
      const res = await bare.request('/v1/workspaces', { method: 'POST', key: ADMIN_TOKEN, json: { name: 'x' } });
      await expectProblem(res, 401);
      expect(await bare.count('workspaces')).toBe(1);
    } finally {
      bare.close();
    }
  });

  it.each([
    [{}, 'name'],
    [{ name: '' }, 'name'],
    [{ name: 'x'.repeat(101) }, 'name'],
    [{ name: 'a\u0000b' }, 'name'],
    [{ name: 'ok', id: 'ws_1' }, 'id'],
  ])('refuses %j naming %s', async (json, field) => {
    const res = await t.request('/v1/workspaces', { method: 'POST', key: ADMIN_TOKEN, json });
    const problem = await expectProblem(res, 400, 'validation');
    expect(problem.errors?.map((e) => e.field)).toContain(field);
    expect(await t.count('workspaces')).toBe(1);
  });
});

describe('API keys', () => {
  it('creates a key shown once, lists it without the secret, and revokes it', async () => {
    const res = await t.request('/v1/keys', { method: 'POST', json: { name: 'ci', scopes: ['links:read', 'links:write'] } });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const created = (await res.json()) as { id: string; key: string; prefix: string; scopes: string[] };
    expect(created.scopes).toEqual(['links:read', 'links:write']);

    const list = (await (await t.request('/v1/keys')).json()) as { data: Array<Record<string, unknown>> };
    expect(list.data.map((k) => k.id)).toContain(created.id);
    expect(JSON.stringify(list)).not.toContain(created.key);

    expect((await t.request('/v1/links', { key: created.key })).status).toBe(200);
    expect((await t.request(`/v1/keys/${created.id}`, { method: 'DELETE' })).status).toBe(204);
    await expectProblem(await t.request('/v1/links', { key: created.key }), 401);
    await expectProblem(await t.request(`/v1/keys/${created.id}`, { method: 'DELETE' }), 404, 'not-found');
    const after = (await (await t.request('/v1/keys')).json()) as { data: Array<{ id: string }> };
    expect(after.data.map((k) => k.id)).not.toContain(created.id);
  });

  it.each([
    [{ name: 'x', scopes: [] }, 'scopes'],
    [{ name: 'x', scopes: ['links:read', 'links:read'] }, 'scopes'],
    [{ name: 'x', scopes: ['root'] }, 'scopes.0'],
    [{ scopes: ['links:read'] }, 'name'],
    [{ name: 'x', scopes: ['links:read'], key: 'hop_mine' }, 'key'],
    [{ name: 'x', scopes: ['links:read'], workspaceId: 'ws_x' }, 'workspaceId'],
  ])('refuses %j naming %s and stores nothing', async (json, field) => {
    const before = await t.count('api_keys');
    const problem = await expectProblem(await t.request('/v1/keys', { method: 'POST', json }), 400, 'validation');
    expect(problem.errors?.map((e) => e.field)).toContain(field);
    expect(await t.count('api_keys')).toBe(before);
  });

  it('lets a key revoke itself; it fails on the next request', async () => {
    const own = await t.createKey(['workspace:admin']);
    expect((await t.request(`/v1/keys/${own.id}`, { method: 'DELETE', key: own.key })).status).toBe(204);
    await expectProblem(await t.request('/v1/workspace', { key: own.key }), 401);
  });

  it("keeps the workspace's last admin key (409), so the workspace cannot lock itself out", async () => {
    const keys = (await (await t.request('/v1/keys')).json()) as { data: Array<{ id: string; scopes: string[] }> };
    const admin = keys.data.find((k) => k.scopes.includes('workspace:admin'))!;
    await expectProblem(await t.request(`/v1/keys/${admin.id}`, { method: 'DELETE' }), 409, 'conflict');
    expect((await t.request('/v1/workspace')).status).toBe(200);

    const second = await t.createKey(['workspace:admin']);
    expect((await t.request(`/v1/keys/${admin.id}`, { method: 'DELETE', key: second.key })).status).toBe(204);
    await expectProblem(await t.request(`/v1/keys/${second.id}`, { method: 'DELETE', key: second.key }), 409);
  });
});

describe('domains', () => {
  it('adds, lists and removes a domain; hostnames are normalised to lower case', async () => {
    const res = await t.request('/v1/domains', { method: 'POST', json: { hostname: ' Go.Example.COM ' } });
    expect(res.status).toBe(201);
    const domain = (await res.json()) as { id: string; hostname: string };
    expect(domain.hostname).toBe('go.example.com');
    const list = (await (await t.request('/v1/domains')).json()) as { data: Array<{ hostname: string }> };
    expect(list.data.map((d) => d.hostname)).toEqual(['go.example.com']);
    expect((await t.request(`/v1/domains/${domain.id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await t.count('domains')).toBe(0);
  });

  it('refuses a hostname another workspace registered (409) and the default domain (400)', async () => {
    const other = await t.createWorkspace();
    expect((await t.request('/v1/domains', { method: 'POST', key: other.adminKey, json: { hostname: 'taken.example.com' } })).status).toBe(201);
    await expectProblem(await t.request('/v1/domains', { method: 'POST', json: { hostname: 'taken.example.com' } }), 409, 'conflict');
    const config = await expectProblem(await t.request('/v1/domains', { method: 'POST', json: { hostname: 'localhost' } }), 400);
    expect(config.errors?.[0]?.field).toBe('hostname');
  });

  it.each(['https://go.example.com', 'go.example.com:8080', 'go.example.com/x', '127.0.0.1', 'nodot', '-bad.example.com', 'a..b.com', `${'a'.repeat(64)}.com`, 'exa mple.com'])(
    'refuses the hostname %j',
    async (hostname) => {
      const problem = await expectProblem(await t.request('/v1/domains', { method: 'POST', json: { hostname } }), 400, 'validation');
      expect(problem.errors?.[0]?.field).toBe('hostname');
      expect(await t.count('domains')).toBe(0);
    },
  );

  it('refuses to remove a domain that links still use (409), then removes it once they are gone', async () => {
    const domain = (await (await t.request('/v1/domains', { method: 'POST', json: { hostname: 'go.example.com' } })).json()) as { id: string };
    const link = (await (await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/', domain: 'go.example.com' } })).json()) as { id: string };
    await expectProblem(await t.request(`/v1/domains/${domain.id}`, { method: 'DELETE' }), 409, 'conflict');
    expect(await t.count('domains')).toBe(1);
    expect((await t.request(`/v1/links/${link.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await t.request(`/v1/domains/${domain.id}`, { method: 'DELETE' })).status).toBe(204);
  });

  it('refuses (409) a hostname that links of the workspace redirect to, since serving it would loop', async () => {
    for (const json of [{ url: 'https://new.example/loop' }, { url: 'https://a.example/', geo: { DE: 'https://new.example:8443/x' } }]) {
      const link = (await (await t.request('/v1/links', { method: 'POST', json })).json()) as { id: string };
      await expectProblem(await t.request('/v1/domains', { method: 'POST', json: { hostname: 'new.example' } }), 409, 'conflict');
      expect(await t.count('domains')).toBe(0);
      expect((await t.request(`/v1/links/${link.id}`, { method: 'DELETE' })).status).toBe(204);
    }
    expect((await t.request('/v1/domains', { method: 'POST', json: { hostname: 'new.example' } })).status).toBe(201);
  });

  it('refuses to move a link onto a domain its own target points at', async () => {
    await t.request('/v1/domains', { method: 'POST', json: { hostname: 'go.example.com' } });
    const link = (await (await t.request('/v1/links', { method: 'POST', json: { url: 'https://other.example/x' } })).json()) as { id: string };
    const problem = await expectProblem(
      await t.request(`/v1/links/${link.id}`, { method: 'PATCH', json: { domain: 'go.example.com', url: 'https://go.example.com/x' } }),
      400,
      'validation',
    );
    expect(problem.errors?.map((e) => e.field)).toEqual(['url']);
  });

  it('stores a hostname written with trailing dots under its canonical name', async () => {
    const res = await t.request('/v1/domains', { method: 'POST', json: { hostname: 'Go.Example.COM.' } });
    expect(((await res.json()) as { hostname: string }).hostname).toBe('go.example.com');
  });

  it('makes a registered domain one of hop’s own hosts: links may not redirect to it', async () => {
    await t.request('/v1/domains', { method: 'POST', json: { hostname: 'go.example.com' } });
    const problem = await expectProblem(
      await t.request('/v1/links', { method: 'POST', json: { url: 'https://go.example.com/loop' } }),
      400,
      'validation',
    );
    expect(problem.errors?.[0]?.field).toBe('url');
  });
});
