/**
 * Refuses request bodies that a lenient reading would quietly change: bytes that are not valid UTF-8 (a lenient
 * decoder stores U+FFFD instead) and objects with a `__proto__` key anywhere (zod drops such a key without an
 * issue, so `{"geo":{"__proto__":...}}` would be accepted as `{}`). The body is read once; Hono caches it for the
 * validators that follow.
 */
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../../errors.ts';
import type { AppEnv } from '../env.ts';
import { invalidInput } from '../problem.ts';

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
const PROTO = '__proto__';

class ProtoKey extends Error {}

/** Throws ProtoKey when any object in the JSON text has a `__proto__` key (escaped spellings included). */
function assertNoProtoKey(text: string): void {
  if (!text.includes('proto') && !text.includes('\\u')) return;
  try {
    JSON.parse(text, function reviver(key, value: unknown) {
      if (key === PROTO) throw new ProtoKey(PROTO);
      return value;
    });
  } catch (err) {
    if (err instanceof ProtoKey) throw err;
    // Not JSON: the validator answers that, with its own message.
  }
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
      try {
        assertNoProtoKey(text);
      } catch {
        throw invalidInput('body', [{ field: PROTO, message: 'is not an allowed key' }]);
      }
    }
    await next();
  };
}
