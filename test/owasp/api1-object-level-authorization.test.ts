// OWASP API1:2023 Broken Object Level Authorization, against hop on Node over sqld (a real process): every object
// id of another workspace answers 404, as an unknown id would, and leaves the object as it was. The same attack
// with an OIDC token (workspace A's token on B's link) is in api2-authentication.test.ts, which runs a provider.
import { beforeAll, expect, it } from 'vitest';
import { expectProblem, rawRequest, type Workspace } from '../blackbox/suite.ts';
import { describeTarget } from '../blackbox/targets.ts';
import { owaspClient, type Link } from './client.ts';

describeTarget({ runtime: 'node', storage: 'sqld' }, (target) => {
  const { api, createWorkspace, createLink, createKey, addDomain, snapshot } = owaspClient(target);
  let a: Workspace;
  let b: Workspace;
  let linkOfB: Link;
  let keyOfB: { id: string };
  let domainOfB: { id: string };

  beforeAll(async () => {
    [a, b] = [await createWorkspace('api1-a'), await createWorkspace('api1-b')];
    linkOfB = await createLink(b, { url: 'https://b.example/', tags: ['b'] });
    keyOfB = await createKey(b, ['links:read']);
    domainOfB = await addDomain(b, 'api1-b.example.com');
  });

  it.each<[string, string, unknown?]>([
    ['GET', 'link'],
    ['HEAD', 'link'],
    ['PATCH', 'link', { url: 'https://attacker.example/' }],
    ['DELETE', 'link'],
    ['GET', 'link/stats'],
    ['GET', 'link/clicks'],
    ['DELETE', 'key'],
    ['DELETE', 'domain'],
  ])("refuses %s on workspace B's %s with A's admin key: 404, B unchanged", async (method, object, json) => {
    const before = await snapshot(b);
    const path = {
      link: `/v1/links/${linkOfB.id}`,
      'link/stats': `/v1/links/${linkOfB.id}/stats`,
      'link/clicks': `/v1/links/${linkOfB.id}/clicks`,
      key: `/v1/keys/${keyOfB.id}`,
      domain: `/v1/domains/${domainOfB.id}`,
    }[object]!;
    const res = await api(path, { method, key: a.key, json });
    if (method === 'HEAD') expect(res.status).toBe(404);
    else await expectProblem(res, 404, 'not-found');
    expect(await snapshot(b)).toBe(before);
  });

  it("answers B's id exactly as an unknown id, so ids of other workspaces cannot be probed", async () => {
    const theirs = await expectProblem(await api(`/v1/links/${linkOfB.id}`, { key: a.key }), 404, 'not-found');
    const unknownId = linkOfB.id.replace(/.{4}$/, '0000');
    const unknown = await expectProblem(await api(`/v1/links/${unknownId}`, { key: a.key }), 404, 'not-found');
    expect({ ...theirs, instance: '' }).toEqual({ ...unknown, instance: '' });
  });

  it("lists nothing of B's with A's key, whatever the filter", async () => {
    for (const path of ['/v1/links?limit=100', '/v1/links?tag=b', `/v1/links?q=b.example`, '/v1/keys', '/v1/domains']) {
      const text = await (await api(path, { key: a.key })).text();
      for (const id of [linkOfB.id, keyOfB.id, domainOfB.id]) expect(text, path).not.toContain(id);
    }
  });

  it("refuses A's links on B's domain and the registration of B's hostname: B's domain keeps its links", async () => {
    const before = await snapshot(b);
    const link = await api('/v1/links', { method: 'POST', key: a.key, json: { url: 'https://a.example/', domain: 'api1-b.example.com' } });
    await expectProblem(link, 400, 'validation');
    await expectProblem(await api('/v1/domains', { method: 'POST', key: a.key, json: { hostname: 'api1-b.example.com' } }), 409);
    await expectProblem(await api('/v1/orphans?domain=api1-b.example.com', { key: a.key }), 400, 'validation');
    expect(await snapshot(b)).toBe(before);
  });

  it("refuses to move A's own link onto B's domain (400): B's host never redirects to A's target", async () => {
    const mine = await createLink(a, { url: 'https://a.example/moved', slug: 'api1-move' });
    const res = await api(`/v1/links/${mine.id}`, { method: 'PATCH', key: a.key, json: { domain: 'api1-b.example.com' } });
    const problem = await expectProblem(res, 400, 'validation');
    expect(problem.errors?.map((e) => e.field)).toEqual(['domain']);
    const followed = await rawRequest(target().baseUrl, '/api1-move', { headers: { host: 'api1-b.example.com' } });
    expect(followed.status).toBe(404);
    expect(followed.headers.location).toBeUndefined();
  });

  it("never shows a hostname's next owner the orphan visits of its previous owner", async () => {
    const hostname = 'api1-orphans.example.com';
    const first = await addDomain(a, hostname);
    expect((await rawRequest(target().baseUrl, '/secret-slug-of-a', { headers: { host: hostname } })).status).toBe(404);
    // The visit is stored by the click queue: wait until the operator sees it.
    const operatorView = async () =>
      (await (await api(`/v1/operator/orphans?domain=${hostname}`, { key: target().adminToken })).json()) as {
        top: { slug: Array<{ value: string }> };
      };
    await expect.poll(async () => (await operatorView()).top.slug.map((e) => e.value), { timeout: 10_000 }).toContain('secret-slug-of-a');
    expect((await api(`/v1/domains/${first.id}`, { method: 'DELETE', key: a.key })).status).toBe(204);
    await addDomain(b, hostname);
    const res = await api(`/v1/orphans?domain=${hostname}`, { key: b.key });
    expect(res.status).toBe(200);
    const theirs = (await res.json()) as { totals: { humans: number; bots: number }; top: { slug: unknown[] } };
    expect(theirs.totals).toEqual({ humans: 0, bots: 0 });
    expect(theirs.top.slug).toEqual([]);
  });
});
