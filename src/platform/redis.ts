/**
 * The one way hop makes an @upstash/redis client (REST over fetch; a local redis-server needs a REST front such as
 * Upstash's SRH), for what runs on Node and Bun only: the Redis Streams queue and the rate-limit store, each with its
 * own deadline and retries. The link cache, which Workers carry too, uses the smaller client in redis-rest.ts.
 */
import { Redis } from '@upstash/redis';
import { backoffDelay } from './resilience.ts';

export interface RedisRestConnection {
  /** Upstash REST URL (or any server speaking that protocol) and its token. */
  url: string;
  token: string;
  /** Deadline of each HTTP request (the queue's must exceed its blocking read). */
  timeoutMs?: number;
  /**
   * Retries of a network error (an HTTP error answer is never retried by the client). The queue retries a little;
   * callers on a request's path (cache, limits) do not: they have a deadline of tens of milliseconds.
   */
  retries?: number;
}

/** Raw replies (no JSON guessing), one request per command, no telemetry headers, a deadline on every request. */
export function createRedisRestClient({ url, token, timeoutMs = 5000, retries = 2 }: RedisRestConnection): Redis {
  return new Redis({
    url,
    token,
    automaticDeserialization: false,
    enableTelemetry: false,
    // Its default batches commands issued in the same tick into one request: a blocking read would hold the others.
    enableAutoPipelining: false,
    retry: retries > 0 ? { retries, backoff: (n) => backoffDelay(n + 1, { firstMs: 50, maxMs: Infinity }) } : false,
    signal: () => AbortSignal.timeout(timeoutMs),
  });
}
