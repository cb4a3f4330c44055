/**
 * Substituted for `@libsql/client/web` (wrangler `--alias`) in the "hop workerd, no client limit (diag)" build:
 * the same HTTP client with its in-flight limit (`concurrency`, 20 by default) raised out of reach. The Worker
 * keeps one client per isolate; past 20 concurrent requests the limit queues a call behind another request's
 * fetch, workerd does not carry that I/O across requests, and the isolate stops answering. This build shows
 * what hop on workerd measures without that limit; the unmodified build is the "hop workerd" row.
 */
import { createClient as createHttpClient, type Config } from '@libsql/client/http';

export * from '@libsql/client/http';
export const createClient = (config: Config) => createHttpClient({ ...config, concurrency: 1_000_000 });
