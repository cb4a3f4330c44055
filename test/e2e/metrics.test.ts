// Operator metrics of a real hop on Node and on Bun: after redirects, API calls and stored clicks, the separate
// listener of HOP_METRICS_ADDR serves Prometheus text that `promtool check metrics` accepts, with the request,
// database, click and process families; the main port then answers /metrics 404. HOP_METRICS_TOKEN and the default
// (this machine only) decide who reads it on the main port, and a workspace's short-link domain never does; with
// HOP_WORKERS=2 the supervisor serves every worker's series, labelled.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createClickLink, type ClickLink } from '../support/click-link.ts';
import { freePort, startProcess, type Running } from '../support/process.ts';
import { checkMetrics, promtoolAvailable } from '../support/promtool.ts';
import { GENEROUS_RATE_LIMITS } from '../support/rate-limits.ts';

const ADMIN = 'c'.repeat(40);
const TOKEN = 'm'.repeat(40);
const DOMAIN = 'go.metrics.example';
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const runtimes = [
  { name: 'Node', command: process.execPath, args: ['src/runtimes/node.ts'] },
  { name: 'Bun', command: 'node_modules/.bin/bun', args: ['src/runtimes/bun.ts'] },
];

/** The value of one sample (labels as rendered, sorted by name); undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function startHop(command: string, args: string[], env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hop-metrics-'));
  dirs.push(dir);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const hop = await startProcess(
    command,
    args,
    {
      PORT: String(port),
      HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`,
      HOP_ADMIN_TOKEN: ADMIN,
      HOP_LOG_LEVEL: 'warn',
      HOP_SHUTDOWN_DELAY_MS: '0',
      ...GENEROUS_RATE_LIMITS,
      ...env,
    },
    base,
    30_000,
  );
  return { hop, base };
}

/** Redirects, API calls (a 2xx, a 4xx) and a domain of the workspace; waits until the clicks are stored. */
async function exercise(base: string, slug: string, redirects: number): Promise<ClickLink> {
  const link = await createClickLink(base, ADMIN, slug);
  expect(await link.visit(redirects)).toEqual(Array(redirects).fill(302));
  expect((await fetch(`${base}/v1/links/${link.id}`, { headers: link.auth })).status).toBe(200);
  expect((await fetch(`${base}/v1/links/lnk_nope`, { headers: link.auth })).status).toBe(404);
  const domain = await fetch(`${base}/v1/domains`, { method: 'POST', headers: link.auth, body: JSON.stringify({ hostname: DOMAIN }) });
  expect(domain.status, await domain.clone().text()).toBe(201);
  for (let i = 0; i < 40 && (await link.clicks()) < redirects; i++) await sleep(100);
  expect(await link.clicks()).toBe(redirects);
  return link;
}

/** GET over node:http, which sends a Host header as given (fetch replaces it with the URL's). */
function get(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve(new Response(Buffer.concat(chunks), { status: res.statusCode!, headers: res.headers as Record<string, string> })),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

async function expectNotFound(res: Response) {
  expect(res.status).toBe(404);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const body = (await res.json()) as { detail: string };
  expect(body.detail).not.toMatch(/hop_/);
}

describe.each(runtimes)('operator metrics on $name', ({ name, command, args }) => {
  let running: Running | undefined;
  afterAll(() => running?.stop());

  it.runIf(promtoolAvailable())('serves promtool-valid metrics on HOP_METRICS_ADDR after redirects, API calls and clicks; 404 on the main port', async () => {
    const metricsPort = await freePort();
    const { hop, base } = await startHop(command, args, { HOP_METRICS_ADDR: `127.0.0.1:${metricsPort}` });
    running = hop;
    try {
      await exercise(base, 'm', 20);
      const res = await get(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const text = await res.text();
      const check = checkMetrics(text);
      expect(check.output).toBe('');
      expect(check.status).toBe(0);

      // Requests by route template, method and status class, with their latency histogram.
      expect(sample(text, 'hop_http_requests_total{method="GET",route="/:slug",status_class="3xx"}')).toBe(20);
      expect(sample(text, 'hop_http_request_duration_seconds_count{method="GET",route="/:slug"}')).toBe(20);
      expect(sample(text, 'hop_http_request_duration_seconds_bucket{method="GET",route="/:slug",le="+Inf"}')).toBe(20);
      expect(sample(text, 'hop_http_request_duration_seconds_bucket{method="GET",route="/:slug",le="2.5"}')).toBe(20);
      expect(sample(text, 'hop_http_requests_total{method="GET",route="/v1/links/:id",status_class="2xx"}')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'hop_http_requests_total{method="GET",route="/v1/links/:id",status_class="4xx"}')).toBe(1);
      expect(sample(text, 'hop_http_requests_total{method="POST",route="/v1/domains",status_class="2xx"}')).toBe(1);
      // Database calls by operation and outcome, clicks ingested, the queue empty again.
      expect(sample(text, 'hop_db_calls_total{operation="insert",outcome="ok"}')).toBeGreaterThan(0);
      expect(sample(text, 'hop_db_call_duration_seconds_count{operation="select"}')).toBeGreaterThan(0);
      expect(sample(text, 'hop_clicks_ingested_total{result="stored"}')).toBe(20);
      expect(sample(text, 'hop_click_queue_depth{queue="memory"}')).toBe(0);
      expect(sample(text, 'hop_click_queue_oldest_age_seconds{queue="memory"}')).toBe(0);
      expect(sample(text, 'hop_click_consumer_lag_seconds')).toBeGreaterThan(0);
      // The process.
      expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
      expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(1e6);
      expect(sample(text, 'process_heap_bytes')).toBeGreaterThan(0);
      expect(sample(text, 'process_open_fds')).toBeGreaterThan(3);
      expect(sample(text, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
      expect(text).toContain('# TYPE nodejs_gc_duration_seconds histogram');
      if (name === 'Node') expect(sample(text, 'nodejs_gc_duration_seconds_count{kind="minor"}')).toBeGreaterThan(0);

      // The main port does not answer metrics, however asked; the metrics listener serves nothing else.
      await expectNotFound(await get(`${base}/metrics`));
      await expectNotFound(await get(`${base}/metrics`, { authorization: `Bearer ${TOKEN}` }));
      await expectNotFound(await get(`http://127.0.0.1:${metricsPort}/v1/links`));
    } finally {
      await hop.stop();
      running = undefined;
    }
  });

  it('answers /metrics on the main port only with HOP_METRICS_TOKEN, and never on a workspace domain', async () => {
    const { hop, base } = await startHop(command, args, { HOP_METRICS_TOKEN: TOKEN });
    running = hop;
    try {
      await exercise(base, 't', 2);
      await expectNotFound(await get(`${base}/metrics`));
      await expectNotFound(await get(`${base}/metrics`, { authorization: `Bearer ${'x'.repeat(40)}` }));
      await expectNotFound(await get(`${base}/metrics`, { authorization: `Bearer ${TOKEN}x` }));
      await expectNotFound(await get(`${base}/metrics`, { authorization: TOKEN }));
      const ok = await get(`${base}/metrics`, { authorization: `Bearer ${TOKEN}` });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('hop_http_requests_total{method="GET",route="/:slug",status_class="3xx"} 2');
      // The right token on a workspace's short-link domain: still nothing.
      await expectNotFound(await get(`${base}/metrics`, { authorization: `Bearer ${TOKEN}`, host: DOMAIN }));
      await expectNotFound(await get(`${base}/metrics`, { authorization: `Bearer ${TOKEN}`, host: `${DOMAIN.toUpperCase()}.:80` }));
    } finally {
      await hop.stop();
      running = undefined;
    }
  });

  it('by default answers /metrics only to this machine, not through a proxy and not on a workspace domain', async () => {
    const { hop, base } = await startHop(command, args);
    running = hop;
    try {
      await exercise(base, 'd', 2);
      expect((await get(`${base}/metrics`)).status).toBe(200);
      expect((await get(`${base}/metrics`, { host: 'localhost' })).status).toBe(200);
      // `curl http://<host>/metrics -H 'Host: <a workspace domain>'`
      await expectNotFound(await get(`${base}/metrics`, { host: DOMAIN }));
      for (const header of ['x-forwarded-for', 'forwarded', 'x-real-ip']) {
        await expectNotFound(await get(`${base}/metrics`, { [header]: header === 'forwarded' ? 'for=203.0.113.9' : '203.0.113.9' }));
      }
      // The short links of that domain are still served there.
      expect((await get(`${base}/nothing-here`, { host: DOMAIN })).status).toBe(404);
    } finally {
      await hop.stop();
      running = undefined;
    }
  });
});

describe('operator metrics of a host of two workers (Node)', () => {
  it.runIf(promtoolAvailable())('serves every worker\'s series, labelled, from the supervisor on HOP_METRICS_ADDR', async () => {
    const metricsPort = await freePort();
    const { hop, base } = await startHop(process.execPath, ['src/runtimes/node.ts'], { HOP_WORKERS: '2', HOP_METRICS_ADDR: `127.0.0.1:${metricsPort}` });
    try {
      await exercise(base, 'w', 40);
      const text = await (await get(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const check = checkMetrics(text);
      expect(check.output).toBe('');
      expect(check.status).toBe(0);
      const perWorker = (worker: string) =>
        sample(text, `hop_http_request_duration_seconds_count{worker="${worker}",method="GET",route="/:slug"}`) ?? 0;
      // Connections are spread over the workers; each worker's histogram is whole and they add up.
      expect(perWorker('1') + perWorker('2')).toBe(40);
      for (const worker of ['1', '2', 'supervisor']) expect(sample(text, `process_cpu_seconds_total{worker="${worker}"}`)).toBeGreaterThan(0);
      expect(sample(text, 'hop_workers{worker="supervisor"}')).toBe(2);
      await expectNotFound(await get(`${base}/metrics`));
    } finally {
      await hop.stop();
    }
  });
});
