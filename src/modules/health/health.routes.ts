/**
 * Operations: `/livez` (the process answers), `/readyz` (the database, the shared cache and the queue, where they
 * are remote, each answer within a deadline; not draining; a 503 names what failed) and `/metrics` (this process's
 * metrics, or every worker's of the host, in the Prometheus text format) for whom src/http/metrics-access.ts lets in.
 */
import { createRoute } from '@hono/zod-openapi';
import * as z from '../../platform/zod.ts';
import { AppError } from '../../errors.ts';
import { createRouter, jsonResponse, problem, publicSecurity } from '../../http/router.ts';
import type { Metrics } from '../../platform/metrics.ts';
import type { MetricsAccess } from '../../http/metrics-access.ts';
import { DeadlineError, withDeadline } from '../../platform/resilience.ts';

export interface Readiness {
  /** Each dependency's check by name (`database`, `cache`, `queue`): rejects when it fails. */
  checks: Record<string, () => Promise<void>>;
  /** The deadline of each check (HOP_READY_TIMEOUT_MS). */
  timeoutMs: number;
  /** Whether this request may read /metrics here; refused, it is the 404 of an unknown path. */
  metricsAccess: MetricsAccess;
  draining: () => boolean;
  metrics: Metrics;
  /** Every worker's counters (HOP_WORKERS), gathered by the supervisor; `metrics` alone when not given. */
  hostMetrics?: (() => Promise<string>) | undefined;
}

const LiveSchema = z.object({ status: z.literal('ok') }).openapi('Live');
const ReadySchema = z
  .object({ status: z.literal('ready'), checks: z.record(z.string(), z.literal('ok')) })
  .openapi('Ready');

const live = createRoute({
  method: 'get',
  path: '/livez',
  operationId: 'getLiveness',
  tags: ['Operations'],
  security: publicSecurity,
  summary: 'Liveness: the process answers',
  responses: { 200: jsonResponse(LiveSchema, 'Alive.') },
});

const ready = createRoute({
  method: 'get',
  path: '/readyz',
  operationId: 'getReadiness',
  tags: ['Operations'],
  security: publicSecurity,
  summary: 'Readiness: the database, the shared cache and the queue (where remote) answer within the deadline, and the process is not draining',
  responses: {
    200: jsonResponse(ReadySchema, 'Ready for traffic.'),
    503: problem('Not ready: the detail names the dependency that failed or did not answer in time, or the process is draining.'),
  },
});

const metrics = createRoute({
  method: 'get',
  path: '/metrics',
  operationId: 'getMetrics',
  tags: ['Operations'],
  security: publicSecurity,
  summary:
    "This process's metrics (requests, latency, errors, database calls, cache, click queue, rate limits, process), or with several workers every worker's labelled by worker, Prometheus text format. " +
    'Operators only: on the separate listener of HOP_METRICS_ADDR, or here with `Authorization: Bearer $HOP_METRICS_TOKEN`, or from this machine when neither is set; never on a workspace\'s domain.',
  responses: {
    200: { description: 'Prometheus text exposition format 0.0.4.', content: { 'text/plain': { schema: z.string() } } },
    404: problem('Not served here (the same answer as any unknown path).'),
  },
});

export function healthRoutes(readiness: Readiness) {
  return createRouter()
    .openapi(live, (c) => c.json({ status: 'ok' as const }, 200, { 'cache-control': 'no-store' }))
    .openapi(ready, async (c) => {
      if (readiness.draining()) throw new AppError('unavailable', 'Shutting down.');
      const { timeoutMs } = readiness;
      const names = Object.keys(readiness.checks);
      const results = await Promise.allSettled(names.map((n) => withDeadline(readiness.checks[n]!(), timeoutMs, n)));
      const failed = names.flatMap((n, i) => {
        const r = results[i]!;
        if (r.status === 'fulfilled') return [];
        return [r.reason instanceof DeadlineError ? `${n} did not answer within ${timeoutMs} ms` : `${n} failed`];
      });
      if (failed.length) throw new AppError('unavailable', `Not ready: ${failed.join('; ')}.`);
      const checks = Object.fromEntries(names.map((n) => [n, 'ok' as const]));
      return c.json({ status: 'ready' as const, checks }, 200, {
        'cache-control': 'no-store',
      });
    })
    .openapi(metrics, async (c) => {
      if (!(await readiness.metricsAccess(c.req.raw, c.env))) throw new AppError('not_found', `Nothing at ${c.req.method} ${c.req.path}.`);
      return c.text(readiness.hostMetrics ? await readiness.hostMetrics() : readiness.metrics.render(), 200, {
        'content-type': 'text/plain; version=0.0.4; charset=utf-8',
        'cache-control': 'no-store',
      });
    });
}
