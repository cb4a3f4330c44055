/**
 * An OTLP/HTTP receiver for the trace tests: a node:http server on 127.0.0.1 that keeps every POST /v1/traces JSON
 * body and answers 200, with the spans flattened for assertions.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  links: Array<{ traceId: string; spanId: string }>;
  status?: { code: number };
  resource: Record<string, unknown>;
}

interface AnyValue {
  stringValue?: string;
  intValue?: string;
  doubleValue?: number;
  boolValue?: boolean;
}
type KeyValue = { key: string; value: AnyValue };
const flat = (list: KeyValue[] = []) =>
  Object.fromEntries(list.map(({ key, value }) => [key, value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.doubleValue ?? value.boolValue))]));

export interface OtlpReceiver {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  url: string;
  bodies: unknown[];
  /** Requests that were not POST /v1/traces with a JSON body. */
  refused: number;
  /** Headers of the last export. */
  lastHeaders: Record<string, string | string[] | undefined>;
  spans(): ReceivedSpan[];
  /** Waits until `predicate` holds over the spans received (or fails after `timeoutMs`). */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const bodies: unknown[] = [];
  const receiver = { refused: 0, lastHeaders: {} as OtlpReceiver['lastHeaders'] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !req.headers['content-type']?.startsWith('application/json')) {
        receiver.refused++;
        res.writeHead(404).end();
        return;
      }
      try {
        bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        receiver.lastHeaders = req.headers;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch {
        receiver.refused++;
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const spans = (): ReceivedSpan[] =>
    bodies.flatMap((b) =>
      (b as { resourceSpans: Array<{ resource: { attributes: KeyValue[] }; scopeSpans: Array<{ spans: Array<Record<string, unknown>> }> }> }).resourceSpans.flatMap((rs) =>
        rs.scopeSpans.flatMap((ss) =>
          ss.spans.map((s) => ({
            ...(s as unknown as ReceivedSpan),
            attributes: flat(s.attributes as KeyValue[]),
            links: (s.links as ReceivedSpan['links'] | undefined) ?? [],
            resource: flat(rs.resource.attributes),
          })),
        ),
      ),
    );
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    get refused() {
      return receiver.refused;
    },
    get lastHeaders() {
      return receiver.lastHeaders;
    },
    spans,
    async waitFor(predicate, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const now = spans();
        if (predicate(now)) return now;
        if (Date.now() > deadline) throw new Error(`the expected spans did not arrive; received: ${JSON.stringify(now.map((s) => s.name))}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
