/**
 * Per-request bookkeeping: a request id (a well-formed incoming `X-Request-Id`, else a UUID) set on the context and
 * the response, and one JSON log line per request. Server errors are always logged; other requests only when the
 * level allows and the sample (HOP_LOG_SAMPLE_RATE) picks them, so logging never dominates a redirect's cost.
 *
 * The redirect keeps its books with `requestId`/`record` instead of going through this middleware: it is answered
 * before Hono's router (see src/modules/redirect/redirect.routes.ts), on the hottest path. The error handler opens
 * and closes the books for any request that reached it without them (an unusual method or path).
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
  /** The same without a Hono context (the redirect, which runs before the router): the request's id. */
  requestId(request: Request): string;
  /** Logs a request answered without a Hono context, if the level and the sample say so. */
  record(requestId: string, method: string, path: string, status: number, startedAt: number): void;
}

export function requestBookkeeping(logger: Logger, sampleRate: number): RequestBookkeeping {
  const infoOn = logger.enabled('info');
  const requestId = (request: Request) => {
    const incoming = request.headers.get('x-request-id');
    return incoming && REQUEST_ID_PATTERN.test(incoming) ? incoming : crypto.randomUUID();
  };
  const record = (id: string, method: string, path: string, status: number, startedAt: number) => {
    if (status < 500 && (!infoOn || (sampleRate < 1 && Math.random() >= sampleRate))) return;
    logger.log(status >= 500 ? 'error' : 'info', 'request', {
      requestId: id,
      method,
      path,
      status,
      durationMs: Math.round((performance.now() - startedAt) * 100) / 100,
    });
  };
  return {
    requestId,
    record,
    begin(c) {
      c.set('requestId', requestId(c.req.raw));
      c.set('requestStart', performance.now());
    },
    finish(c, status) {
      record(c.get('requestId'), c.req.method, c.req.path, status, c.get('requestStart'));
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
