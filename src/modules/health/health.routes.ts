/**
 * Operations: `/livez` (the process answers), `/readyz` (the database answers within a deadline, not draining) and
 * `/metrics` (this process's counters, or every worker's of the host, in the Prometheus text format).
 */
import { createRoute } from '@hono/zod-openapi';
import * as z from '../../platform/zod.ts';
import { AppError } from '../../errors.ts';
import { createRouter, jsonResponse, problem, publicSecurity } from '../../http/router.ts';
import type { Metrics } from '../../platform/metrics.ts';

export interface Readiness {
  /** Rejects when the dependency does not answer in time. */
  checks: Record<string, () => Promise<void>>;
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
  summary: 'Readiness: the database answers within the deadline and the process is not draining',
  responses: {
    200: jsonResponse(ReadySchema, 'Ready for traffic.'),
    503: problem('Not ready: a dependency did not answer in time, or the process is draining.'),
  },
});

const metrics = createRoute({
  method: 'get',
  path: '/metrics',
  operationId: 'getMetrics',
  tags: ['Operations'],
  security: publicSecurity,
  summary: "This process's counters, or with several workers every worker's labelled by worker (cache hits and misses, degraded cache and rate limiting), Prometheus text format",
  responses: { 200: { description: 'Prometheus text exposition format 0.0.4.', content: { 'text/plain': { schema: z.string() } } } },
});

export function healthRoutes(readiness: Readiness) {
  return createRouter()
    .openapi(live, (c) => c.json({ status: 'ok' as const }, 200, { 'cache-control': 'no-store' }))
    .openapi(ready, async (c) => {
      if (readiness.draining()) throw new AppError('unavailable', 'Shutting down.');
      const names = Object.keys(readiness.checks);
      const results = await Promise.allSettled(names.map((n) => readiness.checks[n]!()));
      const failed = names.filter((_, i) => results[i]!.status === 'rejected');
      if (failed.length) throw new AppError('unavailable', `Not ready: ${failed.join(', ')} did not answer in time.`);
      const checks = Object.fromEntries(names.map((n) => [n, 'ok' as const]));
      return c.json({ status: 'ready' as const, checks }, 200, {
        'cache-control': 'no-store',
      });
    })
    .openapi(metrics, async (c) =>
      c.text(readiness.hostMetrics ? await readiness.hostMetrics() : readiness.metrics.render(), 200, {
        'content-type': 'text/plain; version=0.0.4; charset=utf-8',
        'cache-control': 'no-store',
      }),
    );
}
