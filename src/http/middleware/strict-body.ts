/**
 * Refuses request bodies that a lenient reading would quietly change: bytes that are not valid UTF-8 (a lenient
 * decoder stores U+FFFD instead) and objects with a `__proto__` key anywhere (zod drops such a key without an
 * issue, so `{"geo":{"__proto__":...}}` would be accepted as `{}`). The body is read once; Hono caches it for the
 * validators that follow. Mounted after authentication (src/app.ts): a body costs nothing until its sender is known.
 */
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../../errors.ts';
import type { AppEnv } from '../env.ts';
import { invalidInput } from '../problem.ts';

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
const PROTO = '__proto__';

/**
 * True when any object in the JSON text has a `__proto__` key (escaped spellings included: JSON.parse has decoded
 * them). JSON.parse keeps such a key as an own property: one plain parse and a walk took 14 ms for 0.84 MB of small
 * objects, where a reviver (a call per value) took 128 ms (same machine, same text).
 */
function hasProtoKey(text: string): boolean {
  if (!text.includes('proto') && !text.includes('\\u')) return false;
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch {
    return false; // Not JSON: the validator answers that, with its own message.
  }
  const pending: unknown[] = [root];
  while (pending.length) {
    const value = pending.pop();
    if (typeof value !== 'object' || value === null) continue;
    if (Array.isArray(value)) {
      for (const item of value) if (typeof item === 'object' && item !== null) pending.push(item);
      continue;
    }
    if (Object.hasOwn(value, PROTO)) return true;
    for (const key in value) {
      const item = (value as Record<string, unknown>)[key];
      if (typeof item === 'object' && item !== null) pending.push(item);
    }
  }
  return false;
}

export function strictBody(): MiddlewareHandler<AppEnv> {
  return async function strictBody(c, next) {
    if (c.req.raw.body !== null) {
      let text: string;
      try {
        text = strict.decode(await c.req.arrayBuffer());
      } catch (err) {
        if (err instanceof AppError) throw err;
        throw new AppError('malformed_json', 'The request body is not valid UTF-8.');
      }
      if (hasProtoKey(text)) throw invalidInput('body', [{ field: PROTO, message: 'is not an allowed key' }]);
      // The validators read the text: decoded once, here.
      (c.req.bodyCache as Record<string, Promise<unknown>>).text = Promise.resolve(text);
    }
    await next();
  };
}
