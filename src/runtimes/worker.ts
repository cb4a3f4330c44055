/**
 * The Cloudflare Workers entry of the redirect and the API: configuration from the Worker's bindings through the
 * same zod schema, libSQL over HTTP with a deadline on every call (worker-bindings.ts), and the app built once per
 * isolate and reused by every request it serves, its link cache included (per isolate, then KV or Redis). Click
 * events go to the Cloudflare Queue bound as CLICKS; the consumer is its own Worker (worker-consumer.ts).
 */
import type { ExecutionContext } from 'hono';
// Imported before the app so that esbuild puts the libSQL client's modules first in the bundle: the same code
// compresses about 0.6 KiB smaller there than after the app's (the size budget, test/e2e/bundle.test.ts).
import { perBindings, tryWorkerConfig, workerDatabase, workerShards, type WorkerEnv } from './worker-bindings.ts';
import type { App } from '../app.ts';
import { compose, composeApp } from '../composition/root.ts';
import { ConfigError, type Config } from '../config.ts';
import type { KvNamespaceLike } from '../platform/cache/shared.ts';
import { AppError } from '../errors.ts';
import { problemResponse } from '../http/problem.ts';
import { createLogger } from '../platform/logger.ts';
import type { QueueBinding } from '../platform/queue/cloudflare.ts';
import type { RateLimitBinding } from '../platform/ratelimit/cloudflare.ts';
import { createScopes } from './scopes.ts';
import type { Database } from '../platform/db/client.ts';
import type { ShardSet } from '../platform/db/shards.ts';
import type { ScopeStore } from '../platform/tracing.ts';

export { configFromBindings, type WorkerEnv } from './worker-bindings.ts';

/** With HOP_DATABASE_SHARDS, `sharded`: the app once the bucket map is read (workerShards). */
type Built = { app: App } | { error: ConfigError } | { sharded: () => Promise<App> };

/** The `ratelimits` bindings (wrangler.toml) of each rate-limit policy, for HOP_RATE_LIMIT=cloudflare. */
export const RATE_LIMIT_BINDINGS = {
  api: 'RATE_LIMIT_API',
  unauthenticated: 'RATE_LIMIT_UNAUTHENTICATED',
  redirect: 'RATE_LIMIT_REDIRECT',
  'not-found': 'RATE_LIMIT_NOT_FOUND',
} as const;

/** The `ratelimits` bindings HOP_RATE_LIMIT=cloudflare needs, or the error naming those missing. */
function rateLimitBindings(config: Config, env: WorkerEnv) {
  if (config.rateLimit.mode !== 'cloudflare') return undefined;
  const bindings: Record<string, RateLimitBinding> = {};
  const missing: string[] = [];
  for (const [policy, name] of Object.entries(RATE_LIMIT_BINDINGS)) {
    const binding = env[name] as RateLimitBinding | undefined;
    if (typeof binding?.limit === 'function') bindings[policy] = binding;
    else missing.push(name);
  }
  if (!missing.length) return bindings;
  const error = new ConfigError([{ variable: 'HOP_RATE_LIMIT', message: `cloudflare needs the ratelimits bindings ${missing.join(', ')} (wrangler.toml [[ratelimits]])` }]);
  console.error(JSON.stringify({ level: 'error', time: new Date().toISOString(), msg: error.message }));
  return error;
}

/** Builds the app for one set of bindings; a configuration error is kept and answered, not thrown per request. */
export function buildWorkerApp(env: WorkerEnv): Built {
  const config = tryWorkerConfig(env);
  if (config instanceof Error) return { error: config };
  const limits = rateLimitBindings(config, env);
  if (limits instanceof Error) return { error: limits };
  // The link cache's shared tier: KV bound as CACHE with HOP_CACHE=kv, or Upstash Redis (HOP_CACHE=redis, built
  // from HOP_REDIS_URL/TOKEN by the composition root).
  const kv = env.CACHE as KvNamespaceLike | undefined;
  if (config.cache.mode === 'kv' && !kv) {
    const error = new ConfigError([{ variable: 'HOP_CACHE', message: 'kv needs a KV namespace bound as CACHE ([[kv_namespaces]] in wrangler.toml)' }]);
    console.error(JSON.stringify({ level: 'error', time: new Date().toISOString(), msg: error.message }));
    return { error };
  }
  // AsyncLocalStorage (the nodejs_als flag in wrangler.toml): the current span and Server-Timing's tally.
  const scopes = createScopes();
  const db = workerDatabase(config, scopes);
  const shards = workerShards(config, db, scopes);
  const build = (set?: ShardSet) => buildApp(config, env, { db, shards: set, scopes, kv, limits });
  if (!shards) return { app: build() };
  let app: App | undefined;
  return {
    async sharded() {
      const set = await shards();
      return (app ??= build(set));
    },
  };
}

function buildApp(
  config: Config,
  env: WorkerEnv,
  { db, shards, scopes, kv, limits }: { db: Database; shards: ShardSet | undefined; scopes: ScopeStore; kv: KvNamespaceLike | undefined; limits: Record<string, RateLimitBinding> | undefined },
): App {
  const composed = compose(config, {
    db,
    shards,
    logger: createLogger({ level: config.logLevel, span: () => scopes.get()?.span }),
    scopes,
    // An isolate may be frozen once a response is out: spans are sent in each request's waitUntil (observe.ts).
    exportOnTimer: false,
    kv,
    // workerd cancels a request's I/O when it ends: one request must not wait on another's database read.
    singleFlight: false,
    rateLimitBindings: limits,
  });
  return composeApp(composed, {
    // Clicks go to the Cloudflare Queue bound as CLICKS; the consumer (user-agent parsing, storage) is not part of
    // this Worker, which keeps the redirect's bundle small. Without the binding, clicks are not recorded.
    clickQueueBinding: env.CLICKS as QueueBinding | undefined,
    // Cloudflare sets cf-connecting-ip to the visitor's address; a client cannot forge it.
    clientIp: (request) => request.headers.get('cf-connecting-ip') ?? undefined,
  });
}

/** One app per isolate (see perBindings). */
export const appFor: (env: WorkerEnv) => Built = perBindings(buildWorkerApp);

const misconfigured = new AppError('internal', 'hop is misconfigured; the operator finds the reason in the Worker logs.');
const unavailable = new AppError('unavailable', 'The database cannot be reached; retry shortly.', { retryAfterS: 1 });

export default {
  fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Response | Promise<Response> {
    const entry = appFor(env);
    if ('error' in entry) return problemResponse(misconfigured, crypto.randomUUID(), request.method);
    if ('app' in entry) return entry.app.fetch(request, env, ctx);
    return entry.sharded().then(
      (app) => app.fetch(request, env, ctx),
      // The control database did not give the bucket map: nothing can be served yet; the next request asks again.
      () => problemResponse(unavailable, crypto.randomUUID(), request.method),
    );
  },
};
