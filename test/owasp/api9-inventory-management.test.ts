// OWASP API9:2023 Improper Inventory Management, against hop on Node over sqld: the OpenAPI document served at
// /openapi.json is the inventory. Every operation it lists is served; on each of its paths, every other method
// answers 405 with an Allow of exactly the documented methods; and no undocumented path answers under /v1, nor
// another API version, nor the usual debug and admin paths. (test/contract/openapi.test.ts checks the answers'
// shapes against the document.)
import { beforeAll, expect, it } from 'vitest';
import { expectProblem, type Workspace } from '../blackbox/suite.ts';
import { describeTarget } from '../blackbox/targets.ts';
import { owaspClient, type Link } from './client.ts';

interface OpenApi {
  paths: Record<string, Record<string, { security?: Array<Record<string, unknown>> }>>;
}

const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete'];

describeTarget({ runtime: 'node', storage: 'sqld' }, (target) => {
  const { api, createWorkspace, createLink, createKey, addDomain } = owaspClient(target);
  let doc: OpenApi;
  let ws: Workspace;
  let ids: Record<string, string>;

  beforeAll(async () => {
    doc = (await (await api('/openapi.json')).json()) as OpenApi;
    ws = await createWorkspace('api9');
    const link: Link = await createLink(ws, { url: 'https://example.com/api9', slug: 'api9' });
    ids = { link: link.id, key: (await createKey(ws, ['links:read'])).id, domain: (await addDomain(ws, 'api9.example.com')).id };
  });

  /** A request for a documented path, its parameters filled with objects that exist. */
  function concrete(path: string): string {
    const id = path.startsWith('/v1/keys') ? ids.key : path.startsWith('/v1/domains') ? ids.domain : ids.link;
    return path
      .replace('{id}', id!)
      .replace('{slug}', 'api9')
      .replace('{asset}', 'init.js')
      .replace(/\/v1\/(operator\/)?orphans$/, (p) => `${p}?domain=api9.example.com`)
      .replace(/\/v1\/operator\/orphans\?domain=api9\.example\.com/, '/v1/operator/orphans?domain=localhost');
  }
  const keyFor = (operation: { security?: Array<Record<string, unknown>> }) =>
    operation.security?.some((s) => 'operatorToken' in s) ? target().adminToken : ws.key;

  it('lists the routes every deployment has: the API, the redirect, the probes and the documents', () => {
    const listed = Object.keys(doc.paths);
    for (const path of ['/v1/links', '/v1/links/{id}', '/v1/keys', '/v1/domains', '/v1/workspaces', '/v1/stats', '/{slug}', '/livez', '/openapi.json']) {
      expect(listed).toContain(path);
    }
  });

  it('serves every documented operation (never "Nothing at", never 405)', async () => {
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations).filter(([m]) => METHODS.includes(m))) {
        // A write with an empty body reaches validation: enough to show it is routed. DELETEs really delete.
        const res = await api(concrete(path), {
          method: method.toUpperCase(),
          key: keyFor(operation),
          json: method === 'post' || method === 'patch' ? {} : undefined,
          // The landing page answers browsers only (documented: 404 to any other client).
          headers: path === '/' ? { accept: 'text/html' } : {},
        });
        const text = await res.text();
        const what = `${method.toUpperCase()} ${path}: ${res.status} ${text}`;
        expect(res.status, what).not.toBe(405);
        expect(text, what).not.toMatch(/Nothing at/);
      }
    }
  });

  it("answers 405 to every undocumented method of a documented path, its Allow exactly the document's", async () => {
    for (const [path, operations] of Object.entries(doc.paths)) {
      if (path === '/{slug}') continue; // Any one-segment path is a slug; checked below with a real one.
      const documented = Object.keys(operations).filter((m) => METHODS.includes(m)).map((m) => m.toUpperCase()).sort();
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => !documented.includes(m))) {
        // An API key passes authentication on every /v1 path (the operator token is not one): the router answers.
        const res = await api(concrete(path), { method, key: ws.key });
        const what = `${method} ${path}`;
        await expectProblem(res, 405, 'method-not-allowed').catch((err: Error) => {
          throw new Error(`${what}: ${err.message}`);
        });
        expect(res.headers.get('allow')?.split(/, */).sort(), what).toEqual(documented);
      }
    }
  });

  it.each([
    '/v1/admin',
    '/v1/users',
    '/v1/debug',
    '/v1/config',
    '/v1/internal/links',
    '/v1/links/export',
    '/v1/workspaces/all',
    '/v0/links',
    '/v2/links',
    '/api/v1/links',
    '/v1.0/links',
    '/.env',
    '/.git/config',
    '/swagger.json',
    '/graphql',
    '/actuator/health',
    '/debug/pprof',
  ])('answers the undocumented %s with 404 to a valid key, and nothing more to the operator token', async (path) => {
    const problem = await expectProblem(await api(path, { key: ws.key }), 404);
    expect(problem.type).toMatch(/^urn:hop:problem:(not-found|link-not-found)$/);
    // The operator token opens only the operator's two routes: elsewhere under /v1 it is no API key (401).
    const operator = await api(path, { key: target().adminToken });
    await expectProblem(operator, path.startsWith('/v1/') ? 401 : 404);
  });
});
