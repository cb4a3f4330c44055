/** Composition of repositories and services over one database: shared by createApp and the CLI. */
import type { Config } from './config.ts';
import { createIdempotencyRepository } from './modules/idempotency/idempotency.repository.ts';
import { createIdempotencyService } from './modules/idempotency/idempotency.service.ts';
import { createLinksRepository } from './modules/links/links.repository.ts';
import { createLinksService } from './modules/links/links.service.ts';
import { createCachedLookup, type LinkRef } from './modules/redirect/redirect.cache.ts';
import type { RedirectLookup } from './modules/redirect/redirect.lookup.ts';
import { createRedirectService } from './modules/redirect/redirect.service.ts';
import { createStatsRepository } from './modules/stats/stats.repository.ts';
import { createStatsService } from './modules/stats/stats.service.ts';
import { createWorkspacesRepository } from './modules/workspaces/workspaces.repository.ts';
import { createWorkspacesService } from './modules/workspaces/workspaces.service.ts';
import { guardShared, redisStore, type SharedStore } from './platform/cache/shared.ts';
import type { Orm } from './platform/db/client.ts';
import { createLogger, type Logger } from './platform/logger.ts';
import { createMetrics, type Metrics } from './platform/metrics.ts';
import { createRedisRest } from './platform/redis-rest.ts';

export interface ServiceAdapters {
  /** A runtime's faster read for the redirect over the same database (see RedirectLookup). */
  redirectLookup?: RedirectLookup | undefined;
  /** The shared cache tier when the runtime provides it (Workers KV); Redis is built here from the configuration. */
  sharedCache?: SharedStore | undefined;
  /** Whether concurrent cache misses share one read; off on Workers (see TieredCacheOptions). Default on. */
  singleFlight?: boolean;
  logger?: Logger;
  metrics?: Metrics;
}

/** The shared tier the configuration asks for: Redis is built here (REST over fetch); KV only comes from a Worker. */
function sharedTier(config: Config, given: SharedStore | undefined): SharedStore | undefined {
  if (config.cache.mode === 'redis' && !given) {
    return redisStore(createRedisRest({ ...config.redis!, timeoutMs: config.cache.timeoutMs }));
  }
  return config.cache.mode === 'redis' || config.cache.mode === 'kv' ? given : undefined;
}

export function createServices(orm: Orm, config: Config, adapters: ServiceAdapters = {}) {
  const logger = adapters.logger ?? createLogger({ level: 'silent' });
  const metrics = adapters.metrics ?? createMetrics();
  const linksRepository = createLinksRepository(orm);
  const lookup = adapters.redirectLookup ?? linksRepository;
  const store = sharedTier(config, adapters.sharedCache);
  const linkCache =
    config.cache.mode === 'off'
      ? undefined
      : createCachedLookup(lookup, {
          config: config.cache,
          shared: store && guardShared(store, { timeoutMs: config.cache.timeoutMs, logger, metrics }),
          singleFlight: adapters.singleFlight ?? true,
          databaseTimeoutMs: config.databaseTimeoutMs,
          logger,
          metrics,
        });
  const workspaces: ReturnType<typeof createWorkspacesService> = createWorkspacesService(createWorkspacesRepository(orm), config, {
    host: (host) => linkCache?.invalidateHost(host),
  });
  const stats = createStatsService(createStatsRepository(orm), workspaces, config);
  const invalidation = {
    links: (refs: LinkRef[]) => linkCache?.invalidate(refs) ?? Promise.resolve(),
    /** Clicks were stored by this process: kept statistics no longer hold. */
    clicksStored: () => stats.clicksStored(),
  };
  return {
    workspaces,
    links: createLinksService(linksRepository, workspaces, config, invalidation),
    redirect: createRedirectService(linkCache ?? lookup, config.defaultDomain),
    /** Drops changed links from the cache (the click consumer's maxClicks, a CLI change); a no-op without cache. */
    invalidation,
    idempotency: createIdempotencyService(createIdempotencyRepository(orm)),
    stats,
  };
}

export type Services = ReturnType<typeof createServices>;
