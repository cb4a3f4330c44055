/**
 * Refuses request bodies that are not valid UTF-8. A lenient decoder would replace bad bytes with U+FFFD and store
 * text the client never sent; this reads the body once (Hono caches it for the validators) and decodes it strictly.
 */
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../../errors.ts';
import type { AppEnv } from '../env.ts';

const strict = new TextDecoder('utf-8', { fatal: true });

export function utf8Body(): MiddlewareHandler<AppEnv> {
  return async function utf8Body(c, next) {
    if (c.req.raw.body !== null) {
      try {
        strict.decode(await c.req.arrayBuffer());
      } catch (err) {
        if (err instanceof AppError) throw err;
        throw new AppError('malformed_json', 'The request body is not valid UTF-8.');
      }
    }
    await next();
  };
}
