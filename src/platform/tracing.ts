/**
 * Traces: a small tracer with W3C Trace Context propagation and an OTLP/HTTP JSON exporter, web-standard so that
 * Node, Bun and both Workers share it (the dependency rationale in docs/architecture.md says why not the
 * OpenTelemetry SDK). The composition root makes one only when an OTLP endpoint is configured: off, no tracer exists
 * and nothing on the redirect path creates a span.
 *
 * Which span is current is kept by a ScopeStore that a runtime provides (AsyncLocalStorage, src/runtimes/scopes.ts);
 * the core only reads it and runs work inside new scopes. A scope also adds up a request's database and cache time
 * for the API's Server-Timing header, traced or not.
 */
import type { TracingConfig } from '../config.ts';

export interface SpanContext {
  traceId: string;
  spanId: string;
  sampled: boolean;
  /** The incoming `tracestate`, passed on unchanged. */
  state?: string | undefined;
}

/** What one request or batch carries through its asynchronous work. */
export interface Scope {
  span?: SpanContext | undefined;
  /** Milliseconds spent waiting on the database and the shared cache (Server-Timing). */
  timing?: { db: number; cache: number } | undefined;
}

export interface ScopeStore {
  get(): Scope | undefined;
  run<T>(scope: Scope, work: () => T): T;
}

export const SpanKind = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;
type Attribute = string | number | boolean;

export interface Span {
  readonly context: SpanContext;
  set(key: string, value: Attribute | undefined): void;
  /** Marks the span failed (OTLP status ERROR). */
  fail(message?: string): void;
  end(): void;
}

export interface SpanOptions {
  kind?: number;
  /** The parent; undefined: a root span (a new trace). */
  parent?: SpanContext | undefined;
  attributes?: Record<string, Attribute | undefined>;
  links?: SpanContext[];
}

export interface Tracer {
  start(name: string, options?: SpanOptions): Span;
  /** The current span of the runtime's scope, if any. */
  current(): SpanContext | undefined;
  readonly scopes: ScopeStore | undefined;
  /** Sends what is buffered (Workers: inside waitUntil; Node and Bun: also on a timer and at shutdown). */
  flush(): Promise<void>;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZEROS = /^0+$/;

/** A `traceparent` header (version 00) and its `tracestate`; undefined when absent or malformed. */
export function parseTraceparent(value: unknown, state?: string | null): SpanContext | undefined {
  const m = typeof value === 'string' ? TRACEPARENT.exec(value.trim()) : null;
  if (!m || ZEROS.test(m[1]!) || ZEROS.test(m[2]!)) return undefined;
  return { traceId: m[1]!, spanId: m[2]!, sampled: (parseInt(m[3]!, 16) & 1) === 1, state: state || undefined };
}

export const formatTraceparent = (c: SpanContext) => `00-${c.traceId}-${c.spanId}-${c.sampled ? '01' : '00'}`;

/** The headers that carry `context` to the next service. */
export function traceHeaders(context: SpanContext | undefined): Record<string, string> | undefined {
  if (!context) return undefined;
  const headers: Record<string, string> = { traceparent: formatTraceparent(context) };
  if (context.state) headers.tracestate = context.state;
  return headers;
}

/** A fetch that adds the current span's `traceparent` to every request it sends. */
export function propagatingFetch(scopes: ScopeStore | undefined, send: Fetch = (i, o) => fetch(i, o)): typeof fetch {
  if (!scopes) return send as typeof fetch;
  return ((input: RequestInfo | URL, init?: RequestInit) => {
    const headers = traceHeaders(scopes.get()?.span);
    if (!headers) return send(input, init);
    const merged = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    for (const [k, v] of Object.entries(headers)) merged.set(k, v);
    return send(input, { ...init, headers: merged });
  }) as typeof fetch;
}

type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/**
 * Random hex ids from Math.random, as the OpenTelemetry SDK makes them: ids need to be unique, not secret, and
 * crypto.getRandomValues took ~8 µs a call here (a syscall each), more than a whole cached redirect.
 */
const hex = (bytes: number) => {
  let s = '';
  for (let i = 0; i < bytes; i += 4) s += ((Math.random() * 0x1_0000_0000) >>> 0).toString(16).padStart(8, '0');
  return s;
};

/** Whether a new span is sampled, per OTEL_TRACES_SAMPLER (the parent's flag first for parentbased_*). */
function sampler(config: TracingConfig): (traceId: string, parent: SpanContext | undefined) => boolean {
  const { sampler: name, ratio } = config;
  const root =
    name.endsWith('always_off') ? () => false
    : name.endsWith('traceidratio') ? (traceId: string) => parseInt(traceId.slice(-8), 16) / 0x1_0000_0000 < ratio
    : () => true;
  if (!name.startsWith('parentbased_')) return (traceId) => root(traceId);
  return (traceId, parent) => (parent ? parent.sampled : root(traceId));
}

const nanos = (ms: number) => String(Math.round(ms * 1e6));
const now = () => performance.timeOrigin + performance.now();

function attributeList(attributes: Record<string, Attribute | undefined>) {
  const out = [];
  for (const key in attributes) {
    const v = attributes[key];
    if (v === undefined) continue;
    const value =
      typeof v === 'string' ? { stringValue: v }
      : typeof v === 'boolean' ? { boolValue: v }
      : Number.isInteger(v) ? { intValue: String(v) }
      : { doubleValue: v };
    out.push({ key, value });
  }
  return out;
}

/** Spans held before a send is forced; beyond MAX_BUFFERED (an endpoint that does not answer) new ones are dropped. */
const BATCH = 512;
const MAX_BUFFERED = 4096;

export interface TracerOptions {
  scopes?: ScopeStore | undefined;
  /** Where export failures are told (once per failing streak, not per span). */
  warn?: (message: string, fields: Record<string, unknown>) => void;
  /** Flush on a timer (Node, Bun); Workers flush in waitUntil at the end of each request instead. */
  timer?: boolean;
}

/** The tracer of one process or isolate over OTLP/HTTP JSON. */
export function createTracer(config: TracingConfig, options: TracerOptions = {}): Tracer {
  const { scopes } = options;
  const sample = sampler(config);
  let buffer: unknown[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failing = false;
  const resource = { attributes: attributeList({ 'service.name': config.serviceName, ...config.resource }) };

  async function flush() {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (!buffer.length) return;
    const spans = buffer;
    buffer = [];
    const body = JSON.stringify({ resourceSpans: [{ resource, scopeSpans: [{ scope: { name: 'hop' }, spans }] }] });
    try {
      const res = await fetch(config.endpoint, {
        method: 'POST',
        headers: { ...config.headers, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(config.timeoutMs),
      });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`the collector answered ${res.status}`);
      failing = false;
    } catch (err) {
      if (!failing) options.warn?.('traces not exported', { endpoint: config.endpoint, spans: spans.length, error: String(err) });
      failing = true;
    }
  }

  function record(span: unknown) {
    if (buffer.length >= MAX_BUFFERED) return;
    buffer.push(span);
    if (buffer.length >= BATCH) void flush();
    else if (options.timer && !timer) {
      timer = setTimeout(() => void flush(), config.delayMs);
      (timer as { unref?: () => void }).unref?.();
    }
  }

  return {
    scopes,
    current: () => scopes?.get()?.span,
    flush,
    start(name, o = {}) {
      const parent = o.parent;
      const traceId = parent?.traceId ?? hex(16);
      const context: SpanContext = { traceId, spanId: hex(8), sampled: sample(traceId, parent), state: parent?.state };
      const attributes = { ...o.attributes };
      let status: { code: number; message?: string } | undefined;
      const start = now();
      let ended = false;
      return {
        context,
        set(key, value) {
          attributes[key] = value;
        },
        fail(message) {
          status = { code: 2, ...(message ? { message } : {}) };
        },
        end() {
          if (ended || !context.sampled) return;
          ended = true;
          record({
            traceId,
            spanId: context.spanId,
            ...(parent ? { parentSpanId: parent.spanId } : {}),
            ...(context.state ? { traceState: context.state } : {}),
            name,
            kind: o.kind ?? SpanKind.internal,
            startTimeUnixNano: nanos(start),
            endTimeUnixNano: nanos(now()),
            attributes: attributeList(attributes),
            ...(o.links?.length ? { links: o.links.map((l) => ({ traceId: l.traceId, spanId: l.spanId })) } : {}),
            status: status ?? { code: 0 },
          });
        },
      };
    },
  };
}

/**
 * Runs `work` as a child span of the current one (none current: no span, the work runs as is), adding its duration
 * to the scope's `timing[kind]`. Used at the database and cache choke points.
 */
export function observed<T>(
  tracer: Tracer | undefined,
  scopes: ScopeStore | undefined,
  kind: 'db' | 'cache',
  name: string,
  attributes: Record<string, Attribute | undefined>,
  work: () => Promise<T>,
): Promise<T> {
  const scope = scopes?.get();
  if (!scope) return work();
  const parent = scope.span;
  const span = tracer && parent ? tracer.start(name, { kind: SpanKind.client, parent, attributes }) : undefined;
  const started = performance.now();
  const done = () => {
    if (scope.timing) scope.timing[kind] += performance.now() - started;
    span?.end();
  };
  const run = span ? () => scopes!.run({ ...scope, span: span.context }, work) : work;
  return run().then(
    (value) => (done(), value),
    (err: unknown) => {
      span?.fail(err instanceof Error ? err.name : 'error');
      done();
      throw err;
    },
  );
}
