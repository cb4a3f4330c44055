// App-wide behaviour: probes, OpenAPI and docs, request ids, headers, logs, 404s, and no 500 for any outside input.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compose, composeApp } from '../../src/composition/root.ts';
import { ADMIN_TOKEN, createTestApp, expectProblem, METRICS_AUTH, type TestApp } from '../helpers/app.ts';

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ HOP_LOG_LEVEL: 'info' });
});
afterEach(() => t.close());

describe('health probes', () => {
  it('answers /livez and /readyz when the database answers', async () => {
    expect(await (await t.request('/livez', { key: null })).json()).toEqual({ status: 'ok' });
    const ready = await t.request('/readyz', { key: null });
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok' } });
  });

  it('answers /readyz 503 when the database does not answer within the deadline', async () => {
    const slow = { ...t.db, ping: (ms: number) => new Promise<void>((_, reject) => setTimeout(() => reject(new Error('slow')), ms)) };
    const app = composeApp(compose(t.config, { db: slow }));
    const res = await app.request('/readyz');
    const problem = await expectProblem(res, 503, 'unavailable');
    expect(problem.detail).toContain('database');
    expect((await app.request('/livez')).status).toBe(200);
  });

  it('answers /readyz 503 while draining', async () => {
    const app = composeApp(compose(t.config, { db: t.db }), { draining: () => true });
    await expectProblem(await app.request('/readyz'), 503, 'unavailable');
  });

  it('names every check that failed, and tells a failure from a deadline', async () => {
    const app = composeApp(compose(t.config, { db: t.db }), {
      readiness: { cache: () => Promise.reject(new Error('refused')), queue: () => new Promise<void>(() => {}) },
    });
    const problem = await expectProblem(await app.request('/readyz'), 503, 'unavailable');
    expect(problem.detail).toBe(`Not ready: cache failed; queue did not answer within ${t.config.readyTimeoutMs} ms.`);
  });
});

describe('request metrics', () => {
  it('counts answers by route template, method and status class, and server errors by problem type', async () => {
    await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/m', slug: 'm' } });
    await t.request('/v1/links/lnk_missing');
    await t.request('/m', { key: null });
    await t.request('/no/such/path/here', { key: null });
    const draining = composeApp(compose(t.config, { db: t.db, metrics: t.metrics }), { draining: () => true });
    await draining.request('/readyz');
    const text = await (await t.app.request('/metrics', METRICS_AUTH)).text();
    expect(text).toContain('hop_http_requests_total{method="POST",route="/v1/links",status_class="2xx"} 1');
    expect(text).toContain('hop_http_requests_total{method="GET",route="/v1/links/:id",status_class="4xx"} 1');
    expect(text).toContain('hop_http_requests_total{method="GET",route="/:slug",status_class="3xx"} 1');
    expect(text).toContain('hop_http_requests_total{method="GET",route="unmatched",status_class="4xx"} 1');
    expect(text).toContain('hop_http_requests_total{method="GET",route="/readyz",status_class="5xx"} 1');
    expect(text).toContain('hop_http_errors_total{route="/readyz",type="unavailable"} 1');
    expect(text).toMatch(/^hop_http_request_duration_seconds_count\{method="POST",route="\/v1\/links"\} 1$/m);
    // The path itself never becomes a label.
    expect(text).not.toContain('lnk_missing');
    expect(text).not.toContain('/no/such');
  });
});

describe('OpenAPI and docs', () => {
  it('publishes an OpenAPI 3.1 document naming every route of the contract', async () => {
    const doc = (await (await t.request('/openapi.json', { key: null })).json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.1.0');
    const ops = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
    // Every GET is documented with its HEAD twin.
    for (const op of ops.filter((o) => o.startsWith('GET '))) expect(ops).toContain(op.replace('GET', 'HEAD'));
    expect(ops.filter((o) => !o.startsWith('HEAD ')).sort()).toEqual(
      [
        'POST /v1/workspaces', 'GET /v1/workspace', 'POST /v1/keys', 'GET /v1/keys', 'DELETE /v1/keys/{id}',
        'POST /v1/domains', 'GET /v1/domains', 'DELETE /v1/domains/{id}', 'POST /v1/links', 'GET /v1/links',
        'GET /v1/links/{id}', 'PATCH /v1/links/{id}', 'DELETE /v1/links/{id}', 'GET /livez', 'GET /readyz', 'GET /metrics',
        'GET /{slug}', 'GET /v1/links/{id}/stats', 'GET /v1/stats', 'GET /v1/links/{id}/clicks', 'GET /v1/orphans',
        'GET /v1/operator/orphans', 'GET /', 'GET /openapi.json', 'GET /docs', 'GET /docs/{asset}',
      ].sort(),
    );
    for (const name of ['Link', 'CreateLink', 'UpdateLink', 'LinkList', 'Problem', 'CreatedWorkspace', 'Domain']) {
      expect(doc.components.schemas).toHaveProperty(name);
    }
    expect(doc.components.securitySchemes).toHaveProperty('bearerAuth');
    const createLink = doc.components.schemas.CreateLink as { additionalProperties?: boolean; required?: string[] };
    expect(createLink.additionalProperties).toBe(false);
    expect(createLink.required).toEqual(['url']);
  });

  it('serves an interactive reference at /docs', async () => {
    const res = await t.request('/docs', { key: null });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(await res.text()).toContain('/openapi.json');
  });
});

describe('every response', () => {
  it('carries a request id, echoing a well-formed incoming one and replacing a bad one', async () => {
    const own = await t.request('/livez', { key: null, headers: { 'x-request-id': 'abc-123' } });
    expect(own.headers.get('x-request-id')).toBe('abc-123');
    const bad = await t.request('/livez', { key: null, headers: { 'x-request-id': 'no spaces <script>' } });
    expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const problem = await expectProblem(await t.request('/nope/deeper', { key: null, headers: { 'x-request-id': 'trace-9' } }), 404);
    expect(problem.instance).toBe('trace-9');
  });

  it('carries security headers', async () => {
    const res = await t.request('/v1/workspace');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
  });

  it('carries Strict-Transport-Security only when the request arrived over TLS', async () => {
    expect((await t.request('/v1/workspace')).headers.get('strict-transport-security')).toBeNull();
    const tls = await t.request('https://localhost/v1/workspace');
    expect(tls.status).toBe(200);
    expect(tls.headers.get('strict-transport-security')).toBe('max-age=31536000');
    // No proxy is configured here: a client's own X-Forwarded-Proto is not believed.
    const claimed = await t.request('/v1/workspace', { headers: { 'x-forwarded-proto': 'https' } });
    expect(claimed.headers.get('strict-transport-security')).toBeNull();
  });

  it('logs a request whose client went away while its body was read as 499, with no error and no stack', async () => {
    const client = new AbortController();
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // What a runtime does when the connection closes mid-upload: the signal aborts, the body errors.
        client.abort();
        controller.error(new TypeError('terminated'));
      },
    });
    const init = { method: 'POST', body, signal: client.signal, duplex: 'half', headers: { 'content-type': 'application/json', 'x-request-id': 'gone-1' } };
    const res = await t.request('/v1/links', init as RequestInit);
    expect(res.status).toBe(499);
    const lines = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.requestId === 'gone-1');
    expect(lines.filter((l) => l.msg === 'request')).toMatchObject([{ level: 'info', status: 499 }]);
    expect(lines.filter((l) => l.level === 'error' || 'stack' in l)).toEqual([]);
  });

  it('writes one JSON log line per request with its id, status and duration', async () => {
    await t.request('/livez', { key: null, headers: { 'x-request-id': 'log-me' } });
    const lines = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.requestId === 'log-me');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'request', method: 'GET', path: '/livez', status: 200 });
    expect(typeof lines[0]!.durationMs).toBe('number');
  });

  it('keeps the same books on the redirect path, which runs without middleware', async () => {
    await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/', slug: 'logged' } });
    const hit = await t.request('/logged', { key: null, headers: { 'x-request-id': 'click-1' } });
    const miss = await t.request('/missing', { key: null, headers: { 'x-request-id': 'click-2' } });
    expect(hit.headers.get('x-request-id')).toBe('click-1');
    expect(miss.headers.get('x-request-id')).toBe('click-2');
    const lines = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.requestId === 'click-1')).toMatchObject({ path: '/logged', status: 302 });
    expect(lines.find((l) => l.requestId === 'click-2')).toMatchObject({ path: '/missing', status: 404 });
  });

  it.each([
    ['GET', '/'],
    ['POST', '/launch'],
    ['GET', '/a/b/c'],
    ['PROPFIND', '/launch'],
    ['GET', '//'],
    ['GET', '/v1/'],
    ['GET', '/docs/'],
  ])('gives %s %s a request id and a log line too', async (method, path) => {
    const res = await t.request(path, { method, key: null, headers: { 'x-request-id': 'any-path' } });
    expect(res.headers.get('x-request-id')).toBe('any-path');
    expect((await expectProblem(res, res.status)).instance).toBe('any-path');
    const lines = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.requestId === 'any-path');
    expect(lines).toEqual([expect.objectContaining({ msg: 'request', status: res.status })]);
  });

  it('logs a redirect that fails on the database as a 500 request, with its cause', async () => {
    await t.request('/v1/links', { method: 'POST', json: { url: 'https://example.com/', slug: 'fails' } });
    t.db.client.close();
    const res = await t.request('/fails', { key: null, headers: { 'x-request-id': 'broken-click' } });
    await expectProblem(res, 500, 'internal');
    const lines = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.requestId === 'broken-click');
    expect(lines.map((l) => l.msg).sort()).toEqual(['request', 'request failed']);
  });

  it('samples request logs but always logs server errors, without leaking them to the client', async () => {
    const sampled = await createTestApp({ HOP_LOG_LEVEL: 'info', HOP_LOG_SAMPLE_RATE: '0' });
    try {
      await sampled.request('/livez', { key: null });
      expect(sampled.logs).toHaveLength(0);
      sampled.db.client.close();
      const res = await sampled.request('/v1/workspace', { headers: { 'x-request-id': 'boom' } });
      const problem = await expectProblem(res, 500, 'internal');
      expect(problem.detail).not.toMatch(/closed|sql|libsql/i);
      const errors = sampled.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 'error');
      expect(errors.some((l) => l.requestId === 'boom' && typeof l.stack === 'string')).toBe(true);
      expect(errors.some((l) => l.msg === 'request' && l.status === 500)).toBe(true);
    } finally {
      sampled.close();
    }
  });

  it('answers unknown paths and methods with problem+json 404', async () => {
    await expectProblem(await t.request('/no/such/path', { key: null }), 404, 'not-found');
    await expectProblem(await t.request('/v1/nothing-here'), 404, 'not-found');
  });

  it.each([
    ['PUT', '/v1/links', 'GET, HEAD, POST'],
    ['POST', '/v1/links/lnk_x', 'DELETE, GET, HEAD, PATCH'],
    ['GET', '/v1/workspaces', 'POST'],
    ['POST', '/launch', 'GET, HEAD'],
    ['DELETE', '/readyz', 'GET, HEAD'],
  ])('answers %s %s with 405 and Allow: %s, changing nothing', async (method, path, allow) => {
    const body = method === 'GET' ? {} : { json: { url: 'https://example.com/' } };
    const res = await t.request(path, { method, ...body });
    await expectProblem(res, 405, 'method-not-allowed');
    expect(res.headers.get('allow')).toBe(allow);
    expect(await t.count('links')).toBe(0);
  });
});

describe('no input from outside yields a 500', () => {
  const bodies = ['null', '[]', '"text"', '42', '{"url":null}', '{"url":["https://a.example"]}', '{"url":{"$gt":""}}',
    `{"url":"https://example.com/","tags":${'['.repeat(500)}${']'.repeat(500)}}`, '{"__proto__":{"admin":true},"url":"https://example.com/"}',
    '{"url":"https://example.com/","expiresAt":"2999-99-99T00:00:00Z"}', '{"url":"https://exa mple.com"}',
    '{"url":"https://example.com/","maxClicks":1e400}', '{"url":"https://example.com/","geo":{"constructor":"x"}}',
    '\u0000'];

  it.each(bodies)('POST /v1/links with %s', async (body) => {
    const res = await t.request('/v1/links', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    await expectProblem(res, res.status);
    expect(await t.count('links')).toBe(0);
  });

  it.each([
    '/%E0%A4%A', '/%00', '/a%2F..%2F..%2Fetc', `/${'x'.repeat(5000)}`, '/v1/links/%ZZ', '/v1/links?limit=1e999',
    '/v1/links?limit=-1', '/v1/links?cursor=%00', '/v1/links?createdAfter=yesterday', `/v1/links?q=${'%25'.repeat(300)}`,
    '/v1/links/lnk_%27%20or%201=1--', '/v1/keys/..%2F..%2F', '/😀', '/v1/links?tag=',
  ])('GET %s', async (path) => {
    const res = await t.request(path);
    expect(res.status, await res.clone().text()).toBeLessThan(500);
  });
});

describe('bodies and queries that look almost right', () => {
  const postRaw = (body: BodyInit) =>
    t.request('/v1/links', { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  it('refuses invalid UTF-8 instead of storing replacement characters', async () => {
    const bytes = new Uint8Array([...new TextEncoder().encode('{"url":"https://a.example/'), 0xff, ...new TextEncoder().encode('"}')]);
    const problem = await expectProblem(await postRaw(bytes), 400, 'malformed-json');
    expect(problem.detail).toContain('UTF-8');
    expect(await t.count('links')).toBe(0);
  });

  it.each([
    ['title', '{"url":"https://a.example/","title":"\\ud800"}'],
    ['url', '{"url":"https://a.example/\\udc00"}'],
  ])('refuses a lone surrogate in %s', async (field, body) => {
    const problem = await expectProblem(await postRaw(body), 400, 'validation');
    expect(problem.errors?.map((e) => e.field)).toEqual([field]);
    expect(await t.count('links')).toBe(0);
  });

  it('caps the field errors of a huge bad body, so the answer stays small', async () => {
    const body = JSON.stringify(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`f${i}`, 1])));
    const res = await postRaw(body);
    const text = await res.clone().text();
    const problem = await expectProblem(res, 400, 'validation');
    expect(problem.errors).toHaveLength(20);
    expect(problem.detail).toMatch(/and \d+ more$/);
    expect(text.length).toBeLessThan(4000);
  });

  it.each(['0x5', '1e1', ' 1', '1.0', '-1', '0', '101'])('refuses ?limit=%s', async (limit) => {
    const problem = await expectProblem(await t.request(`/v1/links?limit=${encodeURIComponent(limit)}`), 400, 'validation');
    expect(problem.errors?.[0]).toMatchObject({ in: 'query', field: 'limit' });
  });
});

describe('keys and values a lenient parser would change', () => {
  it.each([
    '{"url":"https://e.example/","geo":{"__proto__":"javascript:alert(1)"}}',
    '{"url":"https://e.example/","geo":{"\\u005f_proto__":"https://x.example/"}}',
    '{"__proto__":{"admin":true},"url":"https://e.example/"}',
  ])('refuses a __proto__ key: %s', async (body) => {
    const res = await t.request('/v1/links', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const problem = await expectProblem(res, 400, 'validation');
    expect(problem.errors?.[0]?.field).toBe('__proto__');
    expect(await t.count('links')).toBe(0);
  });

  it('reads no body before its sender is known: a stranger and an address refused 429 get 401 and 429, not a body check', async () => {
    const limited = await createTestApp({ HOP_RATE_LIMIT_UNAUTHENTICATED: '1/60s' });
    try {
      // 0.7 MB of objects with a __proto__ key: checking it is the expensive part, and nobody is owed it unauthenticated.
      const body = `[${Array.from({ length: 20_000 }, () => '{"__proto__":{"a":1}}').join(',')}]`;
      const post = (key: string | null) => limited.request('/v1/links', { method: 'POST', key, headers: { 'content-type': 'application/json' }, body });
      await expectProblem(await post(null), 401, 'unauthorized');
      await expectProblem(await post(null), 429, 'rate-limited');
      const operator = await limited.request('/v1/workspaces', { method: 'POST', key: 'wrong-operator-token', headers: { 'content-type': 'application/json' }, body });
      await expectProblem(operator, 429, 'rate-limited');
    } finally {
      limited.close();
    }
    // Known senders get the check, the operator too.
    await expectProblem(await t.request('/v1/workspaces', { method: 'POST', key: ADMIN_TOKEN, headers: { 'content-type': 'application/json' }, body: '{"__proto__":{},"name":"x"}' }), 400, 'validation');
  });

  it('refuses an expiry past the year 9999, which could not be echoed back in ISO-8601', async () => {
    const res = await t.request('/v1/links', {
      method: 'POST',
      json: { url: 'https://e.example/', expiresAt: '9999-12-31T23:59:59.999-23:59' },
    });
    const problem = await expectProblem(res, 400, 'validation');
    expect(problem.errors?.[0]?.field).toBe('expiresAt');
  });
});
