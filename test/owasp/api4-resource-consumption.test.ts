// OWASP API4:2023 Unrestricted Resource Consumption, against hop on Node over a file with short timeouts and a
// small per-key quota: bodies over the limit (413, and the connection after it), bodies from strangers never read,
// page sizes and arrays bounded, the quota answered 429, and slow clients cut off. The full set (chunked uploads,
// connection caps, Bun's bounds) is test/e2e/hostile-clients.test.ts and test/blackbox/suite.ts.
import { connect } from 'node:net';
import { beforeAll, expect, it } from 'vitest';
import { expectProblem, rawRequest, sameConnection, type Workspace } from '../blackbox/suite.ts';
import { describeTarget } from '../blackbox/targets.ts';
import { owaspClient } from './client.ts';

const API_QUOTA = 100;
const env = { HOP_RATE_LIMIT_API: `${API_QUOTA}/60s`, HOP_HEADERS_TIMEOUT_MS: '1000', HOP_REQUEST_TIMEOUT_MS: '2000' };
const LIMIT = 1024 * 1024;

/** Opens a connection, sends `data`, and resolves with what came back and when the server closed it. */
function slowClient(baseUrl: string, data: string) {
  const url = new URL(baseUrl);
  return new Promise<{ afterMs: number; received: string }>((resolve, reject) => {
    const started = Date.now();
    let received = '';
    const socket = connect(Number(url.port), url.hostname, () => socket.write(data));
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => resolve({ afterMs: Date.now() - started, received }));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
    setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept a slow connection open for 8 s: ${received}`));
    }, 8000);
  });
}

describeTarget({ runtime: 'node', storage: 'file', env }, (target) => {
  const { api, createWorkspace, snapshot } = owaspClient(target);
  let ws: Workspace;
  let statsWs: Workspace | undefined;
  const oversized = () => new TextEncoder().encode(JSON.stringify({ url: 'https://example.com/', title: 'x'.repeat(LIMIT) }));

  beforeAll(async () => {
    ws = await createWorkspace('api4');
  });

  it('answers a body over 1 MiB with 413, then serves the next request on the connection or says it closes', async () => {
    const body = oversized();
    const host = new URL(target().baseUrl).host;
    const head =
      `POST /v1/links HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${ws.key}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const { first, second } = await sameConnection(target().baseUrl, Buffer.concat([Buffer.from(head, 'latin1'), body]), `GET /livez HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    expect(first).toMatch(/^HTTP\/1\.1 413 /);
    expect(first).toContain('urn:hop:problem:payload-too-large');
    if (!/\r\nconnection: *close/i.test(first)) expect(second).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('never reads a large body from a stranger: 401 before parsing, quickly, even with __proto__ in it', async () => {
    const body = `{"url":"https://example.com/","x":"${'proto '.repeat(120_000)}","__proto__":{}}`;
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 5 }, () =>
        rawRequest(target().baseUrl, '/v1/links', { method: 'POST', headers: { authorization: 'Bearer hop_nobody', 'content-type': 'application/json' }, body }),
      ),
    );
    for (const res of answers) expect(res.status).toBe(401);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it.each([
    ['limit=1000', 'limit'],
    ['limit=0', 'limit'],
    ['limit=-1', 'limit'],
    [`cursor=${'x'.repeat(300)}`, 'cursor'],
  ])('refuses a page of %s (400 naming %s)', async (query, field) => {
    const problem = await expectProblem(await api(`/v1/links?${query}`, { key: ws.key }), 400, 'validation');
    expect(problem.errors?.map((e) => e.field)).toContain(field);
  });

  it.each([
    ['/v1/stats?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&interval=hour', 'from'],
    ['/v1/stats?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&interval=day', 'from'],
    ['/v1/stats?top=1000', 'top'],
  ])('refuses statistics over a range or a top list past their bounds: %s', async (path, field) => {
    // Another workspace: each key has API_QUOTA requests a minute, and the snapshots of `ws` use many.
    statsWs ??= await createWorkspace('api4-stats');
    const problem = await expectProblem(await api(path, { key: statsWs.key }), 400, 'validation');
    expect(problem.errors?.map((e) => e.field).join(' ')).toContain(field);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['21 tags', { tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, 'tags'],
    ['100,000 tags', { tags: Array.from({ length: 100_000 }, () => 't') }, 'tags'],
    ['51 countries', { geo: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`A${String.fromCharCode(65 + (i % 26))}${i}`.slice(0, 2) + i, 'https://x.example/'])) }, 'geo'],
    ['a 3,000-character URL', { url: `https://example.com/${'a'.repeat(3000)}` }, 'url'],
  ])('refuses a link with %s (400), storing nothing', async (_what, extra, field) => {
    const before = await snapshot(ws);
    const res = await api('/v1/links', { method: 'POST', key: ws.key, json: { url: 'https://example.com/', ...extra } });
    const problem = await expectProblem(res, 400, 'validation');
    expect(problem.errors?.[0]?.field).toMatch(new RegExp(`^${field}`));
    expect(problem.errors!.length).toBeLessThanOrEqual(20);
    expect(await snapshot(ws)).toBe(before);
  });

  it('closes a connection whose request head never ends (slowloris) within the headers timeout', async () => {
    const { afterMs, received } = await slowClient(target().baseUrl, 'GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(afterMs).toBeLessThan(4000);
  });

  it('closes a connection whose body stalls within the request timeout', async () => {
    const slow = await createWorkspace('api4-slow');
    const head = `POST /v1/links HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${slow.key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"url":`;
    const { afterMs, received } = await slowClient(target().baseUrl, head);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(afterMs).toBeGreaterThanOrEqual(1500);
    expect(afterMs).toBeLessThan(5000);
  });

  it(`answers 429 with Retry-After once a key has used its ${API_QUOTA} requests a minute`, async () => {
    const burst = await createWorkspace('api4-burst');
    const answers = await Promise.all(Array.from({ length: API_QUOTA + 10 }, () => api('/v1/workspace', { key: burst.key })));
    const statuses = answers.map((r) => r.status);
    await Promise.all(answers.map((r) => r.body?.cancel()));
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(API_QUOTA);
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    const refused = await api('/v1/workspace', { key: burst.key });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await expectProblem(refused, 429, 'rate-limited');
    // Another workspace's key has its own quota.
    const other = await createWorkspace('api4-other');
    expect((await api('/v1/workspace', { key: other.key })).status).toBe(200);
  });
});
