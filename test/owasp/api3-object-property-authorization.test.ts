// OWASP API3:2023 Broken Object Property Level Authorization, against hop on Bun over a file: mass assignment of
// read-only properties (clicks, id, workspaceId, key...) and prototype keys are refused with 400 naming the field,
// and leave everything as it was; answers expose no property a client should not see (key secrets, hashes).
import { beforeAll, expect, it } from 'vitest';
import { expectProblem, rawRequest, type Workspace } from '../blackbox/suite.ts';
import { describeTarget } from '../blackbox/targets.ts';
import { owaspClient, type Link } from './client.ts';

describeTarget({ runtime: 'bun', storage: 'file' }, (target) => {
  const { api, createWorkspace, createLink, snapshot } = owaspClient(target);
  let a: Workspace;
  let b: Workspace;
  let link: Link;

  beforeAll(async () => {
    [a, b] = [await createWorkspace('api3-a'), await createWorkspace('api3-b')];
    link = await createLink(a, { url: 'https://a.example/', maxClicks: 1 });
  });

  async function refusedNaming(res: Response, field: string, message: RegExp) {
    const problem = await expectProblem(res, 400, 'validation');
    expect(problem.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field, message: expect.stringMatching(message) })]));
  }

  it.each<[string, unknown]>([
    ['clicks', 0],
    ['workspaceId', 'placeholder: B'],
    ['id', 'lnk_attacker'],
    ['createdAt', '2000-01-01T00:00:00.000Z'],
    ['shortUrl', 'https://attacker.example/x'],
  ])('refuses a PATCH setting the read-only %s (400), the link and B unchanged', async (field, value) => {
    const before = [await snapshot(a), await snapshot(b)];
    const json = { url: 'https://changed.example/', [field]: field === 'workspaceId' ? b.id : value };
    await refusedNaming(await api(`/v1/links/${link.id}`, { method: 'PATCH', key: a.key, json }), field, /read-only/);
    expect([await snapshot(a), await snapshot(b)]).toEqual(before);
  });

  it.each<[string, unknown]>([
    ['clicks', 1_000_000],
    ['workspaceId', 'placeholder: B'],
    ['id', 'lnk_attacker'],
  ])('refuses a POST setting the read-only %s (400), storing nothing in A or B', async (field, value) => {
    const before = [await snapshot(a), await snapshot(b)];
    const json = { url: 'https://new.example/', [field]: field === 'workspaceId' ? b.id : value };
    await refusedNaming(await api('/v1/links', { method: 'POST', key: a.key, json }), field, /read-only/);
    expect([await snapshot(a), await snapshot(b)]).toEqual(before);
  });

  it('refuses a key that chooses its own secret, and a workspace created with an id', async () => {
    const before = await snapshot(a);
    const key = await api('/v1/keys', { method: 'POST', key: a.key, json: { name: 'x', scopes: ['links:read'], key: 'hop_mine' } });
    await refusedNaming(key, 'key', /read-only/);
    const ws = await api('/v1/workspaces', { method: 'POST', key: target().adminToken, json: { name: 'x', id: b.id } });
    await refusedNaming(ws, 'id', /read-only/);
    expect(await snapshot(a)).toBe(before);
  });

  it.each([
    '{"__proto__":{"admin":true},"url":"https://example.com/"}',
    '{"url":"https://example.com/","constructor":{"prototype":{"admin":true}}}',
    '{"url":"https://example.com/","geo":{"__proto__":"https://attacker.example/"}}',
  ])('refuses a prototype key in %s (400), storing nothing', async (body) => {
    const before = await snapshot(a);
    const res = await rawRequest(target().baseUrl, '/v1/links', {
      method: 'POST',
      headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' },
      body,
    });
    expect(res.status, res.body).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ type: 'urn:hop:problem:validation' });
    expect(await snapshot(a)).toBe(before);
  });

  it('never shows a key secret or its hash after creation, nor the workspace of a link', async () => {
    const keys = await (await api('/v1/keys', { key: a.key })).text();
    expect(keys).not.toContain(a.key);
    expect(keys).not.toMatch(/hash|secret|"key"/i);
    const read = (await (await api(`/v1/links/${link.id}`, { key: a.key })).json()) as Record<string, unknown>;
    expect(Object.keys(read)).not.toContain('workspaceId');
    expect(read.clicks).toBe(0);
  });
});
