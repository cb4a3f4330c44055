/**
 * `Idempotency-Key` for POST routes: runs the first request, replays its stored success to retries with the same
 * body, leaves nothing behind when the request is refused, and lets a retry of a failed one run as the same attempt.
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
    c.set('idempotencySeed', begun.seed);
    // A refusal (4xx) changed nothing: the key is free for a corrected request. A failure (5xx) may have stored its
    // write (a database that did not answer in time can still commit it): the retry must run as the same attempt.
    // Releasing is itself a write and may fail too; the record then counts as pending until PENDING_TIMEOUT_MS.
    const settle = (status: number) =>
      status < 500 ? service.abandon(workspaceId, key) : service.release(workspaceId, key).catch(() => undefined);
    try {
      await next();
    } catch (err) {
      await settle(500);
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
      await settle(res.status);
    }
  };
}
