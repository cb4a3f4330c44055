/** Health probes: `/livez` (the process answers) and `/readyz` (the database answers within a deadline, not draining). */
import { Hono } from 'hono';
import { AppError } from '../../errors.ts';
import type { AppEnv } from '../../http/env.ts';

export interface Readiness {
  /** Rejects when the dependency does not answer in time. */
  checks: Record<string, () => Promise<void>>;
  draining: () => boolean;
}

export function healthRoutes(readiness: Readiness) {
  return new Hono<AppEnv>()
    .get('/livez', (c) => c.json({ status: 'ok' }, 200, { 'cache-control': 'no-store' }))
    .get('/readyz', async (c) => {
      if (readiness.draining()) throw new AppError('unavailable', 'Shutting down.');
      const names = Object.keys(readiness.checks);
      const results = await Promise.allSettled(names.map((n) => readiness.checks[n]!()));
      const failed = names.filter((_, i) => results[i]!.status === 'rejected');
      if (failed.length) throw new AppError('unavailable', `Not ready: ${failed.join(', ')} did not answer in time.`);
      return c.json({ status: 'ready', checks: Object.fromEntries(names.map((n) => [n, 'ok'])) }, 200, {
        'cache-control': 'no-store',
      });
    });
}
