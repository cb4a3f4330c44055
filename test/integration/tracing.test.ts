// The tracer against a real OTLP/HTTP receiver: the JSON it exports, sampling by OTEL_TRACES_SAMPLER (always_off
// exports nothing; a sampled parent is followed by parentbased_traceidratio at ratio 0), W3C traceparent parsing,
// the click event's optional trace field, and the clear errors of bad OTEL_* values.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadlineFetch } from '../../src/platform/db/client.ts';
import { ConfigError, loadConfig, type TracingConfig } from '../../src/config.ts';
import { ClickEventSchema } from '../../src/modules/clicks/clicks.schemas.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { createTracer, formatTraceparent, parseTraceparent, propagatingFetch, SpanKind } from '../../src/platform/tracing.ts';
import { createScopes } from '../../src/runtimes/scopes.ts';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.ts';

let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(() => receiver.close());

const tracing = (env: Record<string, string>): TracingConfig => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, ...env }).tracing!;
const TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT = 'b7ad6b7169203331';

describe('the tracer', () => {
  it('exports a finished span as OTLP JSON with its parent, attributes, links and status', async () => {
    const tracer = createTracer(tracing({ OTEL_SERVICE_NAME: 'unit' }));
    const before = receiver.bodies.length;
    const span = tracer.start('GET /:slug', {
      kind: SpanKind.server,
      parent: parseTraceparent(`00-${TRACE}-${PARENT}-01`, 'k=v'),
      attributes: { 'http.response.status_code': 302, ratio: 0.5, ok: true, route: '/:slug', none: undefined },
      links: [{ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), sampled: true }],
    });
    span.fail('boom');
    span.end();
    span.end(); // a second end exports nothing more
    await tracer.flush();
    expect(receiver.bodies.length).toBe(before + 1);
    const body = receiver.bodies.at(-1) as { resourceSpans: Array<{ resource: unknown; scopeSpans: Array<{ spans: unknown[] }> }> };
    expect(body.resourceSpans[0]!.resource).toEqual({ attributes: [{ key: 'service.name', value: { stringValue: 'unit' } }] });
    const [exported] = body.resourceSpans[0]!.scopeSpans[0]!.spans as Array<Record<string, unknown>>;
    expect(exported).toMatchObject({
      traceId: TRACE,
      parentSpanId: PARENT,
      traceState: 'k=v',
      name: 'GET /:slug',
      kind: 2,
      attributes: [
        { key: 'http.response.status_code', value: { intValue: '302' } },
        { key: 'ratio', value: { doubleValue: 0.5 } },
        { key: 'ok', value: { boolValue: true } },
        { key: 'route', value: { stringValue: '/:slug' } },
      ],
      links: [{ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) }],
      status: { code: 2, message: 'boom' },
    });
    expect(exported!.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(BigInt(exported!.endTimeUnixNano as string)).toBeGreaterThanOrEqual(BigInt(exported!.startTimeUnixNano as string));
  });

  it('exports nothing with OTEL_TRACES_SAMPLER=always_off, even under a sampled parent', async () => {
    const tracer = createTracer(tracing({ OTEL_TRACES_SAMPLER: 'always_off' }));
    const before = receiver.bodies.length;
    tracer.start('root').end();
    const child = tracer.start('child', { parent: parseTraceparent(`00-${TRACE}-${PARENT}-01`) });
    expect(child.context.sampled).toBe(false);
    child.end();
    await tracer.flush();
    expect(receiver.bodies.length).toBe(before);
  });

  it('follows a sampled parent with parentbased_traceidratio at ratio 0, and samples no new trace', async () => {
    const tracer = createTracer(tracing({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }));
    const before = receiver.spans().length;
    tracer.start('new trace').end();
    tracer.start('unsampled parent', { parent: parseTraceparent(`00-${TRACE}-${PARENT}-00`) }).end();
    tracer.start('sampled parent', { parent: parseTraceparent(`00-${TRACE}-${PARENT}-01`) }).end();
    await tracer.flush();
    expect(receiver.spans().slice(before).map((s) => s.name)).toEqual(['sampled parent']);
  });

  it('samples about the ratio of new traces with traceidratio', () => {
    const tracer = createTracer(tracing({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }));
    let sampled = 0;
    for (let i = 0; i < 4000; i++) if (tracer.start('x').context.sampled) sampled++;
    expect(sampled).toBeGreaterThan(800);
    expect(sampled).toBeLessThan(1200);
  });

  it('tells a failing collector once per failing streak and keeps going', async () => {
    const warnings: string[] = [];
    const tracer = createTracer(tracing({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/elsewhere` }), { warn: (msg) => warnings.push(msg) });
    tracer.start('a').end();
    await tracer.flush();
    tracer.start('b').end();
    await tracer.flush();
    expect(warnings).toEqual(['traces not exported']);
  });

  it('carries the current span to outgoing requests and into log lines', async () => {
    const scopes = createScopes();
    const seen: Array<string | null> = [];
    const send = propagatingFetch(scopes, async (_input, init) => {
      seen.push(new Headers(init?.headers).get('traceparent'));
      return new Response('ok');
    });
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', write: (l) => lines.push(l), span: () => scopes.get()?.span });
    const context = parseTraceparent(`00-${TRACE}-${PARENT}-01`)!;
    await send('http://127.0.0.1/', {});
    await scopes.run({ span: context }, async () => {
      await Promise.resolve();
      logger.log('info', 'inside');
      await send('http://127.0.0.1/', { headers: { a: 'b' } });
    });
    logger.log('info', 'outside');
    expect(seen).toEqual([null, formatTraceparent(context)]);
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'inside', trace_id: TRACE, span_id: PARENT });
    expect(JSON.parse(lines[1]!)).not.toHaveProperty('trace_id');
  });
});

describe("libSQL's fetch", () => {
  it('carries the current span to sqld or Turso', async () => {
    const server = createServer((req, res) => res.end(String(req.headers.traceparent ?? '')));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const scopes = createScopes();
      const send = deadlineFetch(1000, scopes);
      const context = parseTraceparent(`00-${TRACE}-${PARENT}-01`)!;
      expect(await (await send(url)).text()).toBe('');
      expect(await scopes.run({ span: context }, async () => (await send(url, { method: 'GET' })).text())).toBe(formatTraceparent(context));
    } finally {
      server.close();
    }
  });
});

describe('traceparent', () => {
  it('reads version 00 and refuses anything else', () => {
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-01`)).toEqual({ traceId: TRACE, spanId: PARENT, sampled: true, state: undefined });
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-00`)?.sampled).toBe(false);
    for (const bad of [null, '', 'garbage', `00-${'0'.repeat(32)}-${PARENT}-01`, `00-${TRACE}-${'0'.repeat(16)}-01`, `00-${TRACE.toUpperCase()}-${PARENT}-01`, `01-${TRACE}-${PARENT}-01-extra`]) {
      expect(parseTraceparent(bad)).toBeUndefined();
    }
  });
});

describe('the click event trace field', () => {
  const event = { v: 1, kind: 'click', id: `clk_${'a'.repeat(32)}`, at: 1, workspaceId: 'w', linkId: 'l', country: null, userAgent: null, referrer: null, head: false };
  it('is optional: events without it stay valid', () => {
    expect(ClickEventSchema.safeParse(event).success).toBe(true);
    expect(ClickEventSchema.safeParse({ ...event, trace: `00-${TRACE}-${PARENT}-01` }).success).toBe(true);
  });
  it('must be a traceparent when present', () => {
    expect(ClickEventSchema.safeParse({ ...event, trace: 'not a traceparent' }).success).toBe(false);
  });
});

describe('OTEL_* configuration', () => {
  it('is off by default, and off when disabled', () => {
    expect(loadConfig({}).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' }).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_EXPORTER: 'none' }).tracing).toBeUndefined();
  });

  it('reads the endpoint, headers and sampler', () => {
    expect(
      loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector.example/',
        OTEL_EXPORTER_OTLP_HEADERS: 'api-key=a%2Cb, x-tenant=hop',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.1',
      }).tracing,
    ).toMatchObject({
      endpoint: 'https://collector.example/v1/traces',
      headers: { 'api-key': 'a,b', 'x-tenant': 'hop' },
      sampler: 'parentbased_traceidratio',
      ratio: 0.1,
      serviceName: 'hop',
    });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/custom' }).tracing?.endpoint).toBe('http://127.0.0.1:4318/custom');
  });

  it('names each bad value', () => {
    let error: unknown;
    try {
      loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://collector',
        OTEL_EXPORTER_OTLP_HEADERS: 'no-equals-sign',
        OTEL_TRACES_SAMPLER: 'sometimes',
        OTEL_TRACES_SAMPLER_ARG: '2',
        OTEL_SDK_DISABLED: 'yes',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    for (const variable of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG', 'OTEL_SDK_DISABLED', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
      expect(message).toContain(variable);
    }
    expect(message).toContain('must be an http:// or https:// URL');
    expect(message).toContain('must be http/json');
  });
});
