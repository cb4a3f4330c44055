// hop's API contract, judged on a real Node process (test/blackbox/targets.ts): the served /openapi.json passes
// Redocly's recommended rules with no error, and every answer the black-box suite receives over fetch has a status,
// media type, body and headers that the document declares for the operation it reached.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blackBoxSuite, expectProblem, rawRequest } from '../blackbox/suite.ts';
import { describeTarget } from '../blackbox/targets.ts';
import { contractChecker, type Exchange, type OpenApiDocument } from '../support/openapi-contract.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REDOCLY = join(ROOT, 'node_modules/@redocly/cli/bin/cli.js');

describeTarget({ runtime: 'node', storage: 'file' }, (target) => {
  const fetched = async (path: string) => {
    const res = await fetch(`${target().baseUrl}${path}`);
    expect(res.status).toBe(200);
    return res;
  };

  describe('the served OpenAPI document', () => {
    it("passes Redocly's recommended rules without an error", async () => {
      const dir = mkdtempSync(join(tmpdir(), 'hop-redocly-'));
      try {
        const file = join(dir, 'openapi.json');
        writeFileSync(file, await (await fetched('/openapi.json')).text());
        // Exit code 1 when there are errors: the report on stdout is what counts.
        const report = await promisify(execFile)(process.execPath, [REDOCLY, 'lint', file, '--format=json'], {
          cwd: dir,
          env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
        }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
        const { totals, problems } = JSON.parse(report.stdout) as {
          totals: { errors: number; warnings: number };
          problems: Array<{ ruleId: string; severity: string; message: string }>;
        };
        const errors = problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId}: ${p.message}`);
        expect(errors).toEqual([]);
        expect(totals.errors).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 60_000);

    it('names every operation, declares security on each, and documents HEAD beside every GET', async () => {
      const doc = (await (await fetched('/openapi.json')).json()) as {
        paths: Record<string, Record<string, { operationId?: string; security?: unknown[] }>>;
      };
      const ids = new Set<string>();
      for (const [path, item] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(item)) {
          expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z]+$/);
          expect(ids.has(op.operationId!), `${op.operationId} twice`).toBe(false);
          ids.add(op.operationId!);
          expect(Array.isArray(op.security), `${method} ${path} security`).toBe(true);
        }
        if (item.get) expect(item.head?.operationId, `head ${path}`).toBe(`${item.get.operationId}Head`);
      }
      for (const path of ['/', '/openapi.json', '/docs', '/livez', '/{slug}']) expect(doc.paths[path]?.get?.security).toEqual([]);
    });
  });

  describe('a malformed Host header', () => {
    it.each(['exa mple.com', 'a@b.example', 'b/c', '[::1'])('%s is answered with a 400 problem+json', async (host) => {
      for (const path of ['/v1/links', '/some-slug', '/livez']) {
        const raw = await rawRequest(target().baseUrl, path, { headers: { host } });
        const headers = new Headers(Object.entries(raw.headers).map(([k, v]) => [k, String(v)] as [string, string]));
        await expectProblem(new Response(raw.body, { status: raw.status, headers }), 400, 'bad-request');
      }
    });
  });

  // Every fetch of the black-box suite, recorded as the client received it. The suite's own beforeAll hooks are
  // registered after this one, so their requests are recorded too.
  const exchanges: Array<Promise<Exchange>> = [];
  const original = globalThis.fetch;
  beforeAll(() => {
    const origins = new Set([new URL(target().baseUrl).origin, new URL(target().publicUrl).origin]);
    const recording = async (input: RequestInfo | URL, init?: RequestInit) => {
      const res = await original(input, init);
      const request = new Request(input, init);
      if (origins.has(new URL(request.url).origin)) {
        const copy = res.clone();
        exchanges.push(
          copy.text().then((body) => ({ method: request.method, url: request.url, status: copy.status, headers: copy.headers, body })),
        );
      }
      return res;
    };
    globalThis.fetch = recording as typeof fetch;
  });
  afterAll(() => {
    globalThis.fetch = original;
  });

  describe('the black-box suite, recorded', () => {
    blackBoxSuite(target);
  });

  describe('the recorded answers', () => {
    it('include the documents, the probes and the orphan statistics, which the suite does not ask for', async () => {
      const browser = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
      const get = (path: string, init: RequestInit = {}) => fetch(`${target().baseUrl}${path}`, init);
      for (const path of ['/', '/docs', '/docs/init.js', '/docs/swagger-ui.css', '/docs/swagger-ui-bundle.js']) {
        expect((await get(path, { headers: browser })).status).toBe(200);
        expect((await get(path, { method: 'HEAD', headers: browser })).status).toBe(200);
      }
      await expectProblem(await get('/'), 404, 'not-found');
      await expectProblem(await get('/docs/swagger-ui.js'), 404, 'not-found');
      for (const path of ['/livez', '/readyz', '/metrics', '/openapi.json']) expect((await get(path, { method: 'HEAD' })).status).toBe(200);
      expect((await get('/metrics')).status).toBe(200);
      const operator = { authorization: `Bearer ${target().adminToken}` };
      expect((await get('/v1/operator/orphans?domain=LocalHost', { headers: operator })).status).toBe(200);
      await expectProblem(await get('/v1/operator/orphans?domain=a%20b', { headers: operator }), 400, 'validation');
      await expectProblem(await get('/v1/orphans?domain=go.example.com'), 401, 'unauthorized');
    });

    it('are judged by a checker that does find an undeclared status, a wrong body and a missing header', async () => {
      const document = (await (await original(`${target().baseUrl}/openapi.json`)).json()) as OpenApiDocument;
      const { check } = contractChecker(document);
      const json = new Headers({ 'content-type': 'application/json', 'x-request-id': 'r' });
      const url = `${target().baseUrl}/v1/links/lnk_x`;
      expect(check({ method: 'GET', url, status: 418, headers: json, body: '{}' }).problems).toEqual([
        expect.stringContaining('status not declared'),
      ]);
      expect(check({ method: 'GET', url, status: 200, headers: json, body: '{"id":1}' }).problems).toEqual([
        expect.stringContaining('does not match its schema'),
      ]);
      const redirect = check({ method: 'GET', url: `${target().baseUrl}/launch`, status: 302, headers: new Headers(), body: '' });
      expect(redirect.problems).toEqual(expect.arrayContaining([expect.stringContaining('required header Location missing')]));
    });

    it('each match the document: a declared status, media type, headers and a body valid against its schema', async () => {
      const recorded = await Promise.all(exchanges);
      const document = (await (await original(`${target().baseUrl}/openapi.json`)).json()) as OpenApiDocument;
      const checker = contractChecker(document);
      const problems: string[] = [];
      const reached = new Set<string>();
      for (const exchange of recorded) {
        const verdict = checker.check(exchange);
        if (verdict.operation) reached.add(verdict.operation);
        problems.push(...verdict.problems);
      }
      expect(recorded.length).toBeGreaterThan(300);
      expect([...new Set(problems)]).toEqual([]);
      const unreached = checker.operations().filter((op) => !reached.has(op));
      console.log(`[contract] ${recorded.length} answers checked over ${reached.size} operations; not exercised: ${unreached.join(', ')}`);
      // The management API's operations are all exercised by the suite (the documents and HEAD twins need not be).
      expect(unreached.filter((op) => op.includes('/v1/') && !op.startsWith('head '))).toEqual([]);
    }, 60_000);
  });
});
