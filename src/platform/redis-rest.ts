/**
 * A small client of the Upstash Redis REST protocol for what runs on a request's path (the shared cache tier, rate
 * limits): `POST /` with one command as a JSON array, `POST /pipeline` with several, `Authorization: Bearer`, a
 * `{ result }` or `{ error }` per command. Works against Upstash and any server speaking the protocol (SRH).
 *
 * Hand-written rather than @upstash/redis (which the queue uses on Node and Bun): that client's Redis class carries
 * every command, 78 KiB minified (about 20 KiB gzip) that the Worker's 120 KiB budget cannot hold; this needs three.
 */

export type RedisArg = string | number;

export interface RedisRest {
  /** One command; its reply as the server sends it (bulk strings as UTF-8 text, no JSON guessing). */
  command<T = unknown>(args: RedisArg[]): Promise<T>;
  /** Several commands in one request (not a transaction); rejects if any of them failed. */
  pipeline(commands: RedisArg[][]): Promise<unknown[]>;
}

export class RedisRestError extends Error {
  override name = 'RedisRestError';
}

export interface RedisRestOptions {
  url: string;
  token: string;
  /** Deadline of each request. */
  timeoutMs: number;
  fetch?: typeof fetch;
}

type Reply = { result?: unknown; error?: string };

export function createRedisRest({ url, token, timeoutMs, fetch: send = fetch }: RedisRestOptions): RedisRest {
  const base = url.replace(/\/+$/, '');
  async function post(path: string, body: unknown): Promise<unknown> {
    const res = await send(base + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok && res.status !== 400) {
      await res.body?.cancel();
      throw new RedisRestError(`Redis REST answered ${res.status}`);
    }
    return res.json();
  }
  const unwrap = (reply: Reply) => {
    if (reply.error !== undefined) throw new RedisRestError(reply.error);
    return reply.result;
  };
  return {
    async command<T>(args: RedisArg[]) {
      return unwrap((await post('/', args)) as Reply) as T;
    },
    async pipeline(commands) {
      const replies = await post('/pipeline', commands);
      if (!Array.isArray(replies)) return [unwrap(replies as Reply)];
      return (replies as Reply[]).map(unwrap);
    },
  };
}
