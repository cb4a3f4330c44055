/**
 * Per-request bookkeeping: a request id (a well-formed incoming `X-Request-Id`, else a UUID) set on the context and
 * the response, and one JSON log line per request. Server errors are always logged; other requests only when the
 * level allows and the sample (HOP_LOG_SAMPLE_RATE) picks them, so logging never dominates a redirect's cost.
 *
 * The redirect route calls `begin`/`finish` itself instead of going through this middleware: any middleware makes
 * Hono compose the request asynchronously, and on the hottest path that costs measurable throughput. The error
 * handler opens and closes the books for any request that reached it without them (an unusual method or path).
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { Logger } from '../../platform/logger.ts';
import type { AppEnv } from '../env.ts';

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export interface RequestBookkeeping {
  /** Sets the request id and the start time on the context. */
  begin(c: Context<AppEnv>): void;
  /** Logs the request if the level and the sample say so. */
  finish(c: Context<AppEnv>, status: number): void;
}

export function requestBookkeeping(logger: Logger, sampleRate: number): RequestBookkeeping {
  const infoOn = logger.enabled('info');
  return {
    begin(c) {
      const incoming = c.req.raw.headers.get('x-request-id');
      c.set('requestId', incoming && REQUEST_ID_PATTERN.test(incoming) ? incoming : crypto.randomUUID());
      c.set('requestStart', performance.now());
    },
    finish(c, status) {
      if (status < 500 && (!infoOn || (sampleRate < 1 && Math.random() >= sampleRate))) return;
      logger.log(status >= 500 ? 'error' : 'info', 'request', {
        requestId: c.get('requestId'),
        method: c.req.method,
        path: c.req.path,
        status,
        durationMs: Math.round((performance.now() - c.get('requestStart')) * 100) / 100,
      });
    },
  };
}

export function requestContext(bookkeeping: RequestBookkeeping): MiddlewareHandler<AppEnv> {
  return async function requestContext(c, next) {
    bookkeeping.begin(c);
    c.set('requestLoggedAfter', true);
    c.header('x-request-id', c.get('requestId'));
    await next();
    bookkeeping.finish(c, c.res.status);
  };
}
