/**
 * One JSON log line per request. Server errors are always logged; other requests only when the level allows
 * and the sample (HOP_LOG_SAMPLE_RATE) picks them, so logging never dominates the redirect's cost.
 */
import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../../platform/logger.ts';
import type { AppEnv } from '../env.ts';

export function requestLog(logger: Logger, sampleRate: number): MiddlewareHandler<AppEnv> {
  const infoOn = logger.enabled('info');
  return async function requestLog(c, next) {
    const start = performance.now();
    await next();
    const status = c.res.status;
    if (status < 500 && (!infoOn || (sampleRate < 1 && Math.random() >= sampleRate))) return;
    logger.log(status >= 500 ? 'error' : 'info', 'request', {
      requestId: c.get('requestId'),
      method: c.req.method,
      path: c.req.path,
      status,
      durationMs: Math.round((performance.now() - start) * 100) / 100,
    });
  };
}
