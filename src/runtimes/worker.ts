/**
 * The Cloudflare Workers entry of the redirect and the API: configuration from the Worker's bindings through the
 * same zod schema, libSQL over HTTP with a deadline on every call (worker-bindings.ts), and the app built once per
 * isolate and reused by every request it serves, its link cache included (per isolate, then KV or Redis). Click
 * events go to the Cloudflare Queue bound as CLICKS; the consumer is its own Worker (worker-consumer.ts).
 */
import type { ExecutionContext } from 'hono';
// Imported before the app so that esbuild puts the libSQL client's modules first in the bundle: the same code
// compresses about 0.6 KiB smaller there than after the app's (the size budget, test/e2e/bundle.test.ts).
import { perBindings, tryWorkerConfig, workerDatabase, type WorkerEnv } from './worker-bindings.ts';
import { createApp } from '../app.ts';
import { ConfigError, type Config } from '../config.ts';
import { kvStore, type KvNamespaceLike } from '../platform/cache/shared.ts';
import { AppError } from '../errors.ts';
import { problemResponse } from '../http/problem.ts';
import { createLogger } from '../platform/logger.ts';
import type { QueueProducer } from '../platform/queue/queue.ts';
import { createCloudflareRateLimitStore, type RateLimitBinding } from '../platform/ratelimit/cloudflare.ts';
import type { ClickEvent } from '../modules/clicks/clicks.schemas.ts';

export { configFromBindings, type WorkerEnv } from './worker-bindings.ts';

type Built = { app: ReturnType<typeof createApp> } | { error: ConfigError };

/** The producer side of a Cloudflare Queue binding, as much of it as the redirect uses. */
interface QueueBinding {
  send(body: unknown, options?: { contentType?: 'json' }): Promise<unknown>;
}

/** The `ratelimits` bindings (wrangler.toml) of each rate-limit policy, for HOP_RATE_LIMIT=cloudflare. */
export const RATE_LIMIT_BINDINGS = {
  api: 'RATE_LIMIT_API',
  unauthenticated: 'RATE_LIMIT_UNAUTHENTICATED',
  redirect: 'RATE_LIMIT_REDIRECT',
  'not-found': 'RATE_LIMIT_NOT_FOUND',
} as const;

function rateLimitStore(config: Config, env: WorkerEnv) {
  if (config.rateLimit.mode !== 'cloudflare') return undefined;
  const bindings: Record<string, RateLimitBinding> = {};
  const missing: string[] = [];
  for (const [policy, name] of Object.entries(RATE_LIMIT_BINDINGS)) {
    const binding = env[name] as RateLimitBinding | undefined;
    if (typeof binding?.limit === 'function') bindings[policy] = binding;
    else missing.push(name);
  }
  if (!missing.length) return createCloudflareRateLimitStore(bindings);
  const error = new ConfigError([{ variable: 'HOP_RATE_LIMIT', message: `cloudflare needs the ratelimits bindings ${missing.join(', ')} (wrangler.toml [[ratelimits]])` }]);
  console.error(JSON.stringify({ level: 'error', time: new Date().toISOString(), msg: error.message }));
  return error;
}

/** Builds the app for one set of bindings; a configuration error is kept and answered, not thrown per request. */
export function buildWorkerApp(env: WorkerEnv): Built {
  const config = tryWorkerConfig(env);
  if (config instanceof Error) return { error: config };
  const limiter = rateLimitStore(config, env);
  if (limiter instanceof Error) return { error: limiter };
  const logger = createLogger({ level: config.logLevel });
  // The link cache's shared tier: KV bound as CACHE with HOP_CACHE=kv, or Upstash Redis (HOP_CACHE=redis, built
  // from HOP_REDIS_URL/TOKEN by the services).
  const kv = env.CACHE as KvNamespaceLike | undefined;
  if (config.cache.mode === 'kv' && !kv) {
    const error = new ConfigError([{ variable: 'HOP_CACHE', message: 'kv needs a KV namespace bound as CACHE ([[kv_namespaces]] in wrangler.toml)' }]);
    console.error(JSON.stringify({ level: 'error', time: new Date().toISOString(), msg: error.message }));
    return { error };
  }
  const db = workerDatabase(config);
  // Clicks go to the Cloudflare Queue bound as CLICKS; the consumer (user-agent parsing, storage) is not part of
  // this Worker, which keeps the redirect's bundle small. Without the binding, clicks are not recorded.
  // As JSON rather than the default structured clone: an event is plain JSON by its schema, and JSON messages can
  // be read by any consumer, including HTTP pull and the dashboard's message browser (the dead-letter queue's).
  const queue = env.CLICKS as QueueBinding | undefined;
  const clickQueue: QueueProducer<ClickEvent> | undefined =
    config.clicks && queue
      ? {
          send: (event) =>
            queue.send(event, { contentType: 'json' }).then(
              () => undefined,
              (err: unknown) =>
                logger.log('error', 'click not queued', { error: err instanceof Error ? err.message : String(err) }),
            ),
        }
      : undefined;
  return {
    app: createApp({
      config,
      db,
      logger,
      clickQueue,
      sharedCache: config.cache.mode === 'kv' ? kvStore(kv!) : undefined,
      // workerd cancels a request's I/O when it ends: one request must not wait on another's database read.
      singleFlight: false,
      rateLimitStore: limiter,
      // Cloudflare sets cf-connecting-ip to the visitor's address; a client cannot forge it.
      clientIp: (request) => request.headers.get('cf-connecting-ip') ?? undefined,
    }),
  };
}

/** One app per isolate (see perBindings). */
export const appFor: (env: WorkerEnv) => Built = perBindings(buildWorkerApp);

const misconfigured = new AppError('internal', 'hop is misconfigured; the operator finds the reason in the Worker logs.');

export default {
  fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Response | Promise<Response> {
    const entry = appFor(env);
    if ('error' in entry) return problemResponse(misconfigured, crypto.randomUUID(), request.method);
    return entry.app.fetch(request, env, ctx);
  },
};
