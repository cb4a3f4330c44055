// OWASP API8:2023 Security Misconfiguration, against hop on Node over a file started with hop's own defaults for
// the country header (none trusted on Node and Bun): security headers on every API answer, errors that say nothing
// of the internals, no CORS (hop's API is called with a bearer key, never by a browser on another origin), 405 for
// methods a path does not serve (TRACE included), and a client-sent country header ignored.
import { beforeAll, expect, it } from 'vitest';
import { call, expectProblem, rawRequest, type Workspace } from '../blackbox/suite.ts';
import { describeTarget, type TargetSpec } from '../blackbox/targets.ts';
import { owaspClient } from './client.ts';

// The black-box targets trust cf-ipcountry for the suite's geo tests; this one takes hop's default (unset).
const spec: TargetSpec = { runtime: 'node', storage: 'file', env: { HOP_GEO_HEADER: undefined as unknown as string } };

describeTarget(spec, (target) => {
  const { api, createWorkspace, createLink } = owaspClient(target);
  let ws: Workspace;

  beforeAll(async () => {
    ws = await createWorkspace('api8');
  });

  it.each([
    ['/v1/workspace', 'with a key', true],
    ['/v1/links', 'without a key (401)', false],
    ['/v1/nothing-here', '(404)', true],
    ['/openapi.json', '', false],
    ['/livez', '', false],
  ])('sends the security headers on %s %s', async (path, _what, withKey) => {
    const res = await api(path, { key: withKey ? ws.key : null });
    await res.body?.cancel();
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(res.headers.get('referrer-policy')).toBe('strict-origin-when-cross-origin');
    expect(res.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    // Plain HTTP: HSTS only over TLS (test/e2e/tls.test.ts), where a browser honours it.
    expect(res.headers.get('strict-transport-security')).toBeNull();
    expect(res.headers.get('x-powered-by')).toBeNull();
    expect(res.headers.get('server') ?? '').not.toMatch(/\d/);
  });

  it.each<[string, string, Record<string, string>, string | undefined]>([
    ['malformed JSON', '/v1/links', { 'content-type': 'application/json' }, '{"url":'],
    ['SQL in an id', "/v1/links/1'%20OR%201=1--", {}, undefined],
    ['a NUL in the path', '/v1/links/%00', {}, undefined],
    ['a broken percent-encoding', '/v1/links/%E0%A4%A', {}, undefined],
    ['a cursor that is not one', '/v1/links?cursor=eyJ4IjoxfQ', {}, undefined],
  ])('answers %s with a 4xx problem that leaks no stack, path or SQL', async (_what, path, headers, body) => {
    const res = await rawRequest(target().baseUrl, path, {
      method: body ? 'POST' : 'GET',
      headers: { authorization: `Bearer ${ws.key}`, ...headers },
      body,
    });
    expect(res.status, res.body).toBeGreaterThanOrEqual(400);
    expect(res.status, res.body).toBeLessThan(500);
    const asResponse = new Response(res.body, { status: res.status, headers: { 'content-type': String(res.headers['content-type']) } });
    await expectProblem(asResponse, res.status);
  });

  it('answers no cross-origin request: no Access-Control-Allow-Origin, and a preflight is not allowed', async () => {
    const origin = { origin: 'https://evil.example' };
    const read = await api('/v1/workspace', { key: ws.key, headers: origin });
    await read.body?.cancel();
    expect(read.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await api('/v1/links', {
      method: 'OPTIONS',
      headers: { ...origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
    // Without a key the preflight is refused like any request (401): a browser then refuses the cross-origin call.
    await expectProblem(preflight, 401, 'unauthorized');
  });

  it('takes SQL in a filter as text: an empty page, and the table is still there', async () => {
    await createLink(ws, { url: 'https://example.com/sql', tags: ['kept'] });
    const res = await api("/v1/links?q=%27%29%3B%20DROP%20TABLE%20links%3B--&tag=%27%20OR%201%3D1", { key: ws.key });
    expect(await res.json()).toEqual({ data: [], nextCursor: null });
    const kept = (await (await api('/v1/links?tag=kept', { key: ws.key })).json()) as { data: unknown[] };
    expect(kept.data).toHaveLength(1);
  });

  it.each([
    ['TRACE', '/v1/links'],
    ['PUT', '/v1/links'],
    ['DELETE', '/v1/links'],
    ['POST', '/v1/workspace'],
    ['TRACE', '/livez'],
    ['PATCH', '/some-slug'],
  ])('answers %s %s with 405 and Allow, echoing nothing back', async (method, path) => {
    const res = await rawRequest(target().baseUrl, path, { method, headers: { authorization: `Bearer ${ws.key}`, 'x-secret': 'echo-me' } });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toMatch(/GET|POST/);
    expect(res.body).not.toContain('echo-me');
    expect(res.body).not.toContain(ws.key);
  });

  it('ignores a country header sent by the client on Node (HOP_GEO_HEADER unset): the default target', async () => {
    await createLink(ws, { url: 'https://example.com/default', slug: 'api8-geo', geo: { FR: 'https://example.fr/' } });
    for (const header of ['cf-ipcountry', 'x-country', 'x-vercel-ip-country', 'cloudfront-viewer-country']) {
      const res = await call(target().baseUrl, '/api8-geo', { headers: { [header]: 'FR' } });
      expect(res.headers.get('location'), header).toBe('https://example.com/default');
    }
  });

  it('builds short links and the document from HOP_BASE_URL, never from Host or X-Forwarded-Host', async () => {
    const spoof = { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' };
    const created = await rawRequest(target().baseUrl, '/v1/links', {
      method: 'POST',
      headers: { ...spoof, authorization: `Bearer ${ws.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'https://example.com/host' }),
    });
    expect(created.status, created.body).toBe(201);
    expect((JSON.parse(created.body) as { shortUrl: string }).shortUrl.startsWith(`${target().publicUrl}/`)).toBe(true);
    const document = await rawRequest(target().baseUrl, '/openapi.json', { headers: spoof });
    expect(document.body).not.toContain('evil.example');
  });

  it('never shows a key or the operator token in /metrics', async () => {
    const res = await api('/metrics');
    const text = await res.text();
    expect(text).not.toContain(target().adminToken);
    expect(text).not.toContain(ws.key);
  });
});
