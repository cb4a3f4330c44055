// Traces on Node and Bun (embedded file, in-process queue, click thread): a redirect sent with a W3C traceparent
// yields at a real OTLP/HTTP receiver its server span (same trace, parent = the sent span) with a database child,
// the queue send under it, and the consumer's batch span linked to it; its log line carries the trace and span ids;
// API answers carry Server-Timing.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickLink } from '../support/click-link.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.ts';
import { freePort, startProcess } from '../support/process.ts';
import { redisAvailable, startRedis, type RedisServer } from '../support/redis.ts';
import { startUpstashRest, type UpstashRest } from '../support/upstash-rest.ts';
import { missingPrerequisite, startTarget, type Target } from '../blackbox/targets.ts';

const ADMIN = 'c'.repeat(40);
const dirs: string[] = [];
let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(async () => {
  await receiver.close();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

const runtimes = [
  { name: 'Node', command: 'node', args: ['src/runtimes/node.ts'] },
  { name: 'Bun', command: 'node_modules/.bin/bun', args: ['src/runtimes/bun.ts'] },
];

/** The server span of the redirect sent with `traceId`/`parentId`, its children, and the batch span linked to it. */
export function redirectTrace(spans: ReceivedSpan[], traceId: string, parentId: string) {
  const request = spans.find((s) => s.traceId === traceId && s.parentSpanId === parentId && s.kind === 2);
  const children = request ? spans.filter((s) => s.parentSpanId === request.spanId) : [];
  const batch = request && spans.find((s) => s.kind === 5 && s.links.some((l) => l.traceId === traceId && l.spanId === request.spanId));
  return { request, children, batch };
}

describe.each(runtimes)('traces on $name', ({ name, command, args }) => {
  it('continues a traceparent through the redirect, the database, the queue and the consumer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-traces-'));
    dirs.push(dir);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const hop = await startProcess(command, args, {
      PORT: String(port),
      HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`,
      HOP_ADMIN_TOKEN: ADMIN,
      HOP_LOG_LEVEL: 'info',
      HOP_SHUTDOWN_DELAY_MS: '0',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=s%20ecret',
      OTEL_SERVICE_NAME: `hop-${name.toLowerCase()}`,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    }, base);
    try {
      const link = await createClickLink(base, ADMIN, 'traced');
      // An API answer carries the database and cache time it waited on.
      const api = await fetch(`${base}/v1/links/${link.id}`, { headers: link.auth });
      expect(api.status).toBe(200);
      expect(api.headers.get('server-timing')).toMatch(/^db;dur=\d+(\.\d+)?, cache;dur=\d+(\.\d+)?$/);
      expect(Number(/db;dur=([\d.]+)/.exec(api.headers.get('server-timing')!)![1])).toBeGreaterThan(0);

      const traceId = randomBytes(16).toString('hex');
      const parentId = randomBytes(8).toString('hex');
      const res = await fetch(`${base}/traced`, {
        redirect: 'manual',
        headers: { traceparent: `00-${traceId}-${parentId}-01`, tracestate: 'vendor=1' },
      });
      expect(res.status).toBe(302);
      // A redirect is not an API answer: no Server-Timing there.
      expect(res.headers.get('server-timing')).toBeNull();

      const spans = await receiver.waitFor((all) => redirectTrace(all, traceId, parentId).batch !== undefined);
      const { request, children, batch } = redirectTrace(spans, traceId, parentId);
      expect(request).toMatchObject({ name: 'GET /:slug', attributes: { 'http.request.method': 'GET', 'http.route': '/:slug', 'http.response.status_code': 302 } });
      expect(request!.resource['service.name']).toBe(`hop-${name.toLowerCase()}`);
      expect((request as unknown as { traceState?: string }).traceState).toBe('vendor=1');
      expect(children.some((s) => s.kind === 3 && s.attributes['db.system'] === 'libsql' && s.name.startsWith('SELECT'))).toBe(true);
      expect(children.find((s) => s.name === 'send clicks')).toMatchObject({ kind: 4 });
      expect(batch).toMatchObject({ name: 'process clicks', attributes: { 'hop.clicks.stored': 1 } });
      // The exporter sent the configured headers.
      expect(receiver.lastHeaders['x-collector-key']).toBe('s ecret');

      // The redirect's log line carries its trace and span ids.
      const lines = hop.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.msg === 'request' && l.path === '/traced')).toMatchObject({ trace_id: traceId, span_id: request!.spanId });
      // Lines written outside any span carry none.
      expect(lines.find((l) => l.msg === 'listening')).not.toHaveProperty('trace_id');

      // A route's span is named by its template, never by the id in the path.
      await receiver.waitFor((all) => all.some((s) => s.name === 'GET /v1/links/:id'));
    } finally {
      await hop.stop();
    }
  });
});

// Both Workers in workerd (wrangler dev over a local sqld, as the black-box target starts them): the redirect
// Worker's spans go out in its waitUntil, the consumer Worker's batch span after each batch.
const workerd = { runtime: 'workerd', storage: 'sqld' } as const;
const workerdMissing = missingPrerequisite(workerd);
if (workerdMissing && process.env.CI === 'true') throw new Error(workerdMissing);
if (workerdMissing) console.warn(`[traces] workerd skipped: ${workerdMissing}`);
describe.skipIf(workerdMissing !== undefined)('traces on workerd', () => {
  let target: Target | undefined;
  beforeAll(async () => {
    target = await startTarget({ ...workerd, env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'hop-workerd', HOP_LOG_LEVEL: 'info' } });
  }, 90_000);
  afterAll(async () => {
    await target?.stop();
  }, 30_000);

  it('continues a traceparent through the redirect Worker, the queue and the consumer Worker', async () => {
    const { baseUrl, adminToken } = target!;
    const link = await createClickLink(baseUrl, adminToken, 'traced');
    const api = await fetch(`${baseUrl}/v1/links/${link.id}`, { headers: link.auth });
    expect(api.headers.get('server-timing')).toMatch(/^db;dur=\d+(\.\d+)?, cache;dur=\d+(\.\d+)?$/);

    const traceId = randomBytes(16).toString('hex');
    const parentId = randomBytes(8).toString('hex');
    const res = await fetch(`${baseUrl}/traced`, { redirect: 'manual', headers: { traceparent: `00-${traceId}-${parentId}-01` } });
    expect(res.status).toBe(302);
    const spans = await receiver.waitFor((all) => redirectTrace(all, traceId, parentId).batch !== undefined, 30_000);
    const { request, children, batch } = redirectTrace(spans, traceId, parentId);
    expect(request).toMatchObject({ name: 'GET /:slug', attributes: { 'http.response.status_code': 302 } });
    expect(request!.resource['service.name']).toBe('hop-workerd');
    expect(children.some((s) => s.kind === 3 && (s.attributes['db.system'] === 'libsql' || s.name.startsWith('cache')))).toBe(true);
    expect(children.find((s) => s.name === 'send clicks')).toMatchObject({ kind: 4 });
    expect(batch).toMatchObject({ name: 'process clicks' });
    // The batch's database calls are its children.
    expect(spans.some((s) => s.parentSpanId === batch!.spanId && s.attributes['db.system'] === 'libsql')).toBe(true);

    const lines = target!.output().split('\n').map((l) => l.slice(l.indexOf('{'))).filter((l) => l.startsWith('{"level"'));
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'request' && l.path === '/traced');
    expect(logged).toMatchObject({ trace_id: traceId, span_id: request!.spanId });
  }, 60_000);
});

// Redis Streams: the server produces to a real redis-server (behind the Upstash REST stand-in) with Redis as the
// shared cache tier, and `hop consume`, a process of its own, stores the click under a batch span linked to the redirect.
describe.runIf(redisAvailable())('traces through Redis Streams and hop consume (Node)', () => {
  let redis: RedisServer;
  let rest: UpstashRest;
  beforeAll(async () => {
    redis = await startRedis();
    rest = await startUpstashRest({ redisPort: redis.port });
  });
  afterAll(async () => {
    await rest?.close();
    await redis?.stop();
  });

  it('links the consumer process batch span to the redirect, whose cache calls are its children', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hop-traces-redis-'));
    dirs.push(dir);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const common = {
      HOP_DATABASE_URL: `file:${join(dir, 'hop.db')}`,
      HOP_ADMIN_TOKEN: ADMIN,
      HOP_QUEUE: 'redis',
      HOP_CACHE: 'redis',
      HOP_REDIS_URL: rest.url,
      HOP_REDIS_TOKEN: rest.token,
      HOP_QUEUE_STREAM: 'traces:clicks',
      HOP_QUEUE_DEAD_LETTER: 'traces:clicks:dead',
      HOP_LOG_LEVEL: 'info',
      HOP_SHUTDOWN_DELAY_MS: '0',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    const hop = await startProcess('node', ['src/runtimes/node.ts'], { ...common, PORT: String(port), HOP_CLICK_CONSUMER: 'off', OTEL_SERVICE_NAME: 'hop-server' }, base);
    const consumer = spawn('node', ['src/cli/hop.ts', 'consume'], { env: { ...process.env, ...common, OTEL_SERVICE_NAME: 'hop-consume' }, stdio: 'ignore' });
    try {
      await createClickLink(base, ADMIN, 'streamed');
      const traceId = randomBytes(16).toString('hex');
      const parentId = randomBytes(8).toString('hex');
      const res = await fetch(`${base}/streamed`, { redirect: 'manual', headers: { traceparent: `00-${traceId}-${parentId}-01` } });
      expect(res.status).toBe(302);
      const spans = await receiver.waitFor((all) => redirectTrace(all, traceId, parentId).batch !== undefined, 30_000);
      const { request, children, batch } = redirectTrace(spans, traceId, parentId);
      expect(request!.resource['service.name']).toBe('hop-server');
      expect(children.find((s) => s.name === 'cache get')).toMatchObject({ kind: 3, attributes: { 'db.system': 'redis' } });
      expect(batch).toMatchObject({ name: 'process clicks', resource: { 'service.name': 'hop-consume' }, attributes: { 'messaging.system': 'redis' } });
    } finally {
      consumer.kill('SIGTERM');
      await hop.stop();
    }
  }, 60_000);
});
