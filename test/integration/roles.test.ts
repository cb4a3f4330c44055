// HOP_ROLE in process: the redirect role serves short links, the landing page, probes and metrics and answers the
// management API's paths 404; the API role serves /v1, its documents, probes and metrics and answers short links 404;
// both over one database, so a link created through one is followed through the other.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, expectProblem, type TestApp, METRICS_AUTH } from '../helpers/app.ts';
import { loadServerConfig, ConfigError } from '../../src/config.ts';

describe('roles', () => {
  let api: TestApp;
  let redirect: TestApp;
  let all: TestApp;

  beforeAll(async () => {
    api = await createTestApp({}, { role: 'api' });
    // The redirect role over the API role's database file, as two processes over one sqld.
    redirect = await createTestApp({ HOP_DATABASE_URL: `file:${api.dbPath}` }, { role: 'redirect' });
    all = await createTestApp();
  });
  afterAll(() => {
    redirect.close();
    api.close();
    all.close();
  });

  it('a link created through the API role is followed through the redirect role', async () => {
    const created = await api.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/r', slug: 'roles' } });
    expect(created.status).toBe(201);
    const followed = await redirect.app.request('http://localhost:8787/roles');
    expect(followed.status).toBe(302);
    expect(followed.headers.get('location')).toBe('https://example.com/r');
    expect((await redirect.app.request('http://localhost:8787/roles', { method: 'HEAD' })).status).toBe(302);
  });

  it('the API role answers a short link 404 problem+json naming the role that serves it', async () => {
    for (const method of ['GET', 'HEAD']) {
      const res = await api.app.request('http://localhost:8787/roles', { method });
      expect(res.status, method).toBe(404);
      expect(res.headers.get('location')).toBeNull();
      if (method === 'GET') {
        await expectProblem(res, 404, 'not-found');
      }
    }
    const body = await (await api.app.request('http://localhost:8787/roles')).json();
    expect(body.detail).toBe('Short links are not served by this process (HOP_ROLE=api); the redirect role serves them.');
    // The rest of a single segment keeps its usual answers.
    expect((await api.app.request('/roles', { method: 'POST' })).status).toBe(405);
  });

  it('the redirect role answers the management API and its documents 404, whatever the method or credentials', async () => {
    for (const [method, path] of [['GET', '/v1/links'], ['POST', '/v1/links'], ['GET', '/v1'], ['GET', '/docs'], ['GET', '/docs/init.js'], ['GET', '/openapi.json'], ['DELETE', '/v1/links/x']]) {
      const res = await redirect.request(path!, { method, json: method === 'POST' ? { url: 'https://example.com' } : undefined });
      await expectProblem(res, 404, 'not-found');
    }
    const body = await (await redirect.request('/v1/links')).json();
    expect(body.detail).toBe('The management API and its documents are not served by this process (HOP_ROLE=redirect); the api role serves them.');
    // Nothing was created through it.
    expect(await redirect.count('links')).toBe(1);
  });

  it('both roles serve the probes and /metrics; the landing page is the redirect role\'s too', async () => {
    for (const app of [api, redirect]) {
      expect((await app.app.request('/livez')).status).toBe(200);
      expect((await app.app.request('/readyz')).status).toBe(200);
      expect((await app.app.request('/metrics', METRICS_AUTH)).status).toBe(200);
      const landing = await app.app.request('/', { headers: { accept: 'text/html' } });
      expect(landing.status).toBe(200);
      expect(await landing.text()).toContain('<h1>hop</h1>');
    }
  });

  it('the API role documents the whole service, redirect included, as `all` does', async () => {
    const fromApi = await (await api.app.request('/openapi.json')).json();
    const fromAll = await (await all.app.request('/openapi.json')).json();
    expect(Object.keys(fromApi.paths).sort()).toEqual(Object.keys(fromAll.paths).sort());
    expect(fromApi.paths['/{slug}']).toBeDefined();
  });

  it('HOP_ROLE is validated with the other variables, all by default', () => {
    expect(loadServerConfig({}).role).toBe('all');
    expect(loadServerConfig({ HOP_ROLE: 'redirect' }).role).toBe('redirect');
    expect(() => loadServerConfig({ HOP_ROLE: 'edge' })).toThrow(ConfigError);
    expect(() => loadServerConfig({ HOP_ROLE: 'edge' })).toThrow(/HOP_ROLE: Invalid option: expected one of "redirect"\|"api"\|"all"/);
  });
});
