/**
 * The Cloudflare Workers entry: configuration from the Worker's bindings through the same zod schema, libSQL over
 * HTTP (Turso `libsql://`, sqld `http(s)://`) with a deadline on every call, and the app built once per isolate
 * and reused by every request it serves. Queue and scheduled handlers arrive with their issues.
 */
import { createClient } from '@libsql/client/web';
import type { ExecutionContext } from 'hono';
import { createApp } from '../app.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { AppError } from '../errors.ts';
import { problemResponse } from '../http/problem.ts';
import { createDatabase, deadlineFetch, guardedClient } from '../platform/db/client.ts';
import { createLogger } from '../platform/logger.ts';
import type { QueueProducer } from '../platform/queue/queue.ts';
import type { ClickEvent } from '../modules/clicks/clicks.schemas.ts';

/** Bindings: plain-text vars and secrets (strings), plus, with later issues, KV namespaces, queues and limiters. */
export type WorkerEnv = Record<string, unknown>;

type Built = { app: ReturnType<typeof createApp> } | { error: ConfigError };

/** Configuration as strings: wrangler `vars` may be JSON numbers or booleans, which the schema reads as text. */
export function configFromBindings(env: WorkerEnv): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(env)) {
    if (typeof value === 'string') out[key] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') out[key] = String(value);
  }
  return out;
}

/** Builds the app for one set of bindings; a configuration error is kept and answered, not thrown per request. */
export function buildWorkerApp(env: WorkerEnv): Built {
  let config;
  try {
    const vars = configFromBindings(env);
    if (vars.HOP_DATABASE_URL === undefined || vars.HOP_DATABASE_URL === '') {
      throw new ConfigError(
        'Invalid configuration:\n  HOP_DATABASE_URL: is required on Workers (libsql:// for Turso, http(s):// for sqld)',
      );
    }
    config = loadConfig(vars);
    if (config.databaseUrl.startsWith('file:') || config.databaseSyncUrl) {
      throw new ConfigError(
        'Invalid configuration:\n  HOP_DATABASE_URL: a Worker has no file system; use libsql:// (Turso) or http(s):// (sqld)',
      );
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(JSON.stringify({ level: 'error', time: new Date().toISOString(), msg: err.message }));
      return { error: err };
    }
    throw err;
  }
  const timeoutMs = config.databaseTimeoutMs;
  const client = guardedClient(
    () =>
      createClient({
        url: config.databaseUrl,
        authToken: config.databaseAuthToken,
        fetch: deadlineFetch(timeoutMs),
        // The client is shared by every request of the isolate, and its default limit of 20 calls in flight queues
        // the 21st behind another request's fetch; workerd does not carry I/O across requests, so that call never
        // ran and the isolate stopped answering (docs/benchmarks.md). Each call has its deadline instead. (0 does
        // not lift the limit: the client reads it as "use the default".)
        concurrency: Number.MAX_SAFE_INTEGER,
      }),
    { timeoutMs, remote: true },
  );
  const logger = createLogger({ level: config.logLevel });
  const db = createDatabase(client);
  // Clicks go to the Cloudflare Queue bound as CLICKS; the consumer (user-agent parsing, storage) is not part of
  // this Worker, which keeps the redirect's bundle small. Without the binding, clicks are not recorded.
  const queue = env.CLICKS as { send(body: unknown): Promise<void> } | undefined;
  const clickQueue: QueueProducer<ClickEvent> | undefined =
    config.clicks && queue
      ? {
          send: (event) =>
            queue.send(event).catch((err: unknown) =>
              logger.log('error', 'click not queued', { error: err instanceof Error ? err.message : String(err) }),
            ),
        }
      : undefined;
  return { app: createApp({ config, db, logger, clickQueue }) };
}

// One app per isolate: the bindings object is the same for every request an isolate serves (a new deployment or
// a changed secret starts new isolates), so keying by it builds once and still follows a change.
const built = new WeakMap<WorkerEnv, Built>();

export function appFor(env: WorkerEnv): Built {
  let entry = built.get(env);
  if (!entry) {
    entry = buildWorkerApp(env);
    built.set(env, entry);
  }
  return entry;
}

const misconfigured = new AppError('internal', 'hop is misconfigured; the operator finds the reason in the Worker logs.');

export default {
  fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Response | Promise<Response> {
    const entry = appFor(env);
    if ('error' in entry) return problemResponse(misconfigured, crypto.randomUUID(), request.method);
    return entry.app.fetch(request, env, ctx);
  },
};
