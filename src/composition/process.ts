/**
 * A Node or Bun process, composed: the services (app.ts), the click pipeline its configuration asks for (clicks.ts)
 * and, for a server, the app over both. The server entry and `hop consume` call it with what their runtime
 * provides (the database, the embedded redirect read, the click thread, the consumer's name, the peer address).
 */
import type { App } from '../app.ts';
import type { Config, ServerConfig } from '../config.ts';
import { createMemoryRateLimitStore } from '../platform/ratelimit/memory.ts';
import { createRedisRateLimitStore } from '../platform/ratelimit/redis.ts';
import { createRedisRestClient } from '../platform/redis.ts';
import { createRedisRest } from '../platform/redis-rest.ts';
import { compose, composeApp, type AppProvided, type Composed, type Provided } from './root.ts';
import { composeClicksService, startClickPipeline, type ClickPipeline, type ClickStore } from './clicks.ts';

/**
 * compose() with what only a Node or Bun process builds: the Redis rate-limit store of HOP_RATE_LIMIT=redis. The
 * CLI, the servers and the tests that stand in for them compose through here.
 */
export function composeForProcess(config: Config, provided: Provided): Composed {
  const { rateLimit, redis } = config;
  const redisRateLimitStore =
    rateLimit.mode === 'redis' && redis && rateLimit.salt
      ? createRedisRateLimitStore({
          // Retries would only delay the request past its deadline; a failing store is degraded by the guard.
          redis: createRedisRestClient({ ...redis, timeoutMs: rateLimit.timeoutMs, retries: 0 }),
          salt: rateLimit.salt,
        })
      : undefined;
  return compose(config, { ...provided, redisRateLimitStore });
}

export interface ProcessProvided extends Provided, Pick<AppProvided, 'clientIp' | 'draining' | 'hostMetrics'> {
  /** Where this process stores click batches when not through the clicks service here (a worker thread's). */
  clickStore?: ClickStore | undefined;
  /** The Redis Streams consumer's name: host and process, readable in XINFO CONSUMERS. */
  consumerName?: string | undefined;
}

export interface ComposedProcess extends Composed {
  /** The HTTP app; undefined for a consumer alone. */
  app: App | undefined;
  clicks: ClickPipeline | undefined;
}

/**
 * `serve`: the app, producing clicks and, as configured (HOP_CLICK_CONSUMER), consuming them; `consume`: the click
 * consumer alone. With HOP_CLICKS=off a server records no clicks.
 */
export async function composeProcess(
  config: ServerConfig,
  provided: ProcessProvided,
  role: 'serve' | 'consume',
): Promise<ComposedProcess> {
  const composed = composeForProcess(config, provided);
  const serve = role === 'serve';
  // The API role serves no redirect: it neither produces clicks nor consumes them.
  const clicks =
    (config.clicks && config.role !== 'api') || !serve
      ? await startClickPipeline(config, {
          produce: serve,
          consume: serve ? config.clickConsumer : true,
          store: provided.clickStore ?? composeClicksService(composed.db, undefined, composed.shards),
          invalidation: composed.services.invalidation,
          logger: composed.logger,
          metrics: composed.metrics,
          consumerName: provided.consumerName,
          tracer: composed.tracer,
        })
      : undefined;
  const app = serve
    ? composeApp(composed, {
        clicks: clicks?.queue,
        clientIp: provided.clientIp,
        draining: provided.draining,
        hostMetrics: provided.hostMetrics,
        role: config.role,
        readiness: clicks ? queueReadiness(config) : undefined,
      })
    : undefined;
  return { ...composed, app, clicks };
}

/** /readyz's check of a remote click queue (Redis Streams): a PING of its Redis within the probe's deadline. */
function queueReadiness(config: ServerConfig): Record<string, () => Promise<void>> | undefined {
  if (config.queue !== 'redis' || !config.redis) return undefined;
  const redis = createRedisRest({ ...config.redis, timeoutMs: config.readyTimeoutMs });
  return { queue: () => redis.command(['PING']).then(() => undefined) };
}

/**
 * The supervisor of several workers (src/runtimes/cluster.ts, HOP_WORKERS): the host's rate-limit counters, kept in
 * its memory and consulted by every worker, so that a quota counts for the host.
 */
export const composeHostRateLimits = () => createMemoryRateLimitStore();
