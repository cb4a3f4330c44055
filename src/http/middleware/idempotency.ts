/**
 * `Idempotency-Key` for POST routes: runs the first request, replays its stored success to retries with the same
 * body, and leaves nothing behind when the request is refused or fails.
 */
import type { MiddlewareHandler } from 'hono';
import {
  IDEMPOTENCY_KEY_PATTERN,
  type IdempotencyService,
} from '../../modules/idempotency/idempotency.service.ts';
import type { AppEnv } from '../env.ts';
import { invalidInput } from '../problem.ts';

export function idempotency(service: IdempotencyService, now: () => Date): MiddlewareHandler<AppEnv> {
  return async function idempotency(c, next) {
    const key = c.req.header('idempotency-key');
    if (key === undefined) return next();
    if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
      throw invalidInput('header', [{ field: 'Idempotency-Key', message: 'must be 1-255 visible ASCII characters' }]);
    }
    const { workspaceId } = c.get('principal');
    const request = `${c.req.method} ${c.req.path}\n${await c.req.text()}`;
    const begun = await service.begin(workspaceId, key, request, now());
    if (begun.kind === 'replay') {
      const { status, contentType, location, body } = begun.response;
      // no-store: a replay may repeat a secret shown once (a new API key), and is never a fresh representation.
      const headers = new Headers({ 'idempotent-replayed': 'true', 'x-request-id': c.get('requestId'), 'cache-control': 'no-store' });
      if (contentType) headers.set('content-type', contentType);
      if (location) headers.set('location', location);
      return new Response(body, { status, headers });
    }
    try {
      await next();
    } catch (err) {
      await service.abandon(workspaceId, key);
      throw err;
    }
    const res = c.res;
    if (res.status >= 200 && res.status < 300 && !c.error) {
      await service.complete(workspaceId, key, {
        status: res.status,
        contentType: res.headers.get('content-type'),
        location: res.headers.get('location'),
        body: await res.clone().text(),
      });
    } else {
      await service.abandon(workspaceId, key);
    }
  };
}
