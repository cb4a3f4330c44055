// OWASP API5:2023 Broken Function Level Authorization, against hop as Workers in workerd over sqld: a key calls only
// the functions of its scopes (403 insufficient_scope otherwise), an API key never reaches the operator's routes
// (401), a key cannot mint a key with more rights than it has, and method-override headers change nothing.
import { beforeAll, expect, it } from 'vitest';
import { expectProblem, type CallInit, type Workspace } from '../blackbox/suite.ts';
import { describeTarget } from '../blackbox/targets.ts';
import { owaspClient, type Link } from './client.ts';

describeTarget({ runtime: 'workerd', storage: 'sqld' }, (target) => {
  const { api, createWorkspace, createLink, createKey, snapshot } = owaspClient(target);
  let ws: Workspace;
  let link: Link;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    ws = await createWorkspace('api5');
    link = await createLink(ws, { url: 'https://example.com/api5' });
    for (const scopes of [['links:read'], ['links:write'], ['analytics:read'], ['links:read', 'links:write', 'analytics:read']]) {
      keys[scopes.join(' ')] = (await createKey(ws, scopes)).key;
    }
  });

  it.each<[string, string, string, CallInit, string]>([
    ['create a link', 'links:read', '/v1/links', { method: 'POST', json: { url: 'https://example.com/x' } }, 'links:write'],
    ['change a link', 'links:read', '/v1/links/:id', { method: 'PATCH', json: { url: 'https://example.com/x' } }, 'links:write'],
    ['delete a link', 'links:read', '/v1/links/:id', { method: 'DELETE' }, 'links:write'],
    ['read a link', 'analytics:read', '/v1/links/:id', {}, 'links:read'],
    ['read statistics', 'links:read', '/v1/links/:id/stats', {}, 'analytics:read'],
    ['export clicks', 'links:write', '/v1/links/:id/clicks', {}, 'analytics:read'],
    ['list keys', 'links:read links:write analytics:read', '/v1/keys', {}, 'workspace:admin'],
    ['mint an admin key', 'links:read links:write analytics:read', '/v1/keys', { method: 'POST', json: { name: 'x', scopes: ['workspace:admin'] } }, 'workspace:admin'],
    ['add a domain', 'links:read links:write analytics:read', '/v1/domains', { method: 'POST', json: { hostname: 'api5.example.com' } }, 'workspace:admin'],
  ])('refuses to %s with a %s key: 403 insufficient_scope, nothing changed', async (_what, scopes, path, init, needed) => {
    const before = await snapshot(ws);
    const res = await api(path.replace(':id', link.id), { ...init, key: keys[scopes] });
    expect(res.headers.get('www-authenticate')).toMatch(new RegExp(`error="insufficient_scope".*scope="${needed}"`));
    await expectProblem(res, 403, 'forbidden');
    expect(await snapshot(ws)).toBe(before);
  });

  it.each<[string, CallInit]>([
    ['/v1/workspaces', { method: 'POST', json: { name: 'by a key' } }],
    ['/v1/operator/orphans?domain=localhost', {}],
  ])("refuses a workspace admin key on the operator's %s (401)", async (path, init) => {
    await expectProblem(await api(path, { ...init, key: ws.key }), 401, 'unauthorized');
  });

  it("refuses the operator's token with a wrong byte or a prefix of it", async () => {
    const token = target().adminToken;
    for (const wrong of [`${token.slice(0, -1)}x`, token.slice(0, 20), `${token}x`]) {
      await expectProblem(await api('/v1/workspaces', { method: 'POST', key: wrong, json: { name: 'x' } }), 401, 'unauthorized');
    }
  });

  it('ignores method-override headers: a GET with X-HTTP-Method-Override: DELETE deletes nothing', async () => {
    for (const header of ['x-http-method-override', 'x-http-method', 'x-method-override']) {
      const res = await api(`/v1/links/${link.id}`, { key: keys['links:read links:write analytics:read'], headers: { [header]: 'DELETE' } });
      expect(res.status).toBe(200);
    }
    expect((await api(`/v1/links/${link.id}`, { key: ws.key })).status).toBe(200);
  });
});
