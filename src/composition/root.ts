/**
 * The composition root of every process and isolate: from the validated configuration and what the
 * runtime provides (a database handle, a native redirect read, Workers KV and rate-limit bindings, a click
 * producer), it builds the services, the link cache's tiers, the rate-limit store and, last, the app. The click
 * pipeline has its own half (clicks.ts) so that the redirect Worker's bundle leaves the click consumer out; a
 * Node or Bun process puts both together in process.ts. Nothing else in src/ constructs a service, store or queue.
 */
import { createApp, type App, type AppRole } from '../app.ts';
import type { Config } from '../config.ts';
import type { ClickEvent } from '../modules/clicks/clicks.schemas.ts';
import { createIdempotencyRepository } from '../modules/idempotency/idempotency.repository.ts';
import { createIdempotencyService } from '../modules/idempotency/idempotency.service.ts';
import { createLinksRepository } from '../modules/links/links.repository.ts';
import { createLinksService } from '../modules/links/links.service.ts';
import { createShardedLinksRepository } from '../modules/links/links.sharded.ts';
import { createShardedStatsRepository } from '../modules/stats/stats.sharded.ts';
import { createShardedWorkspacesRepository } from '../modules/workspaces/workspaces.sharded.ts';
import { deriveShardSet, type ShardSet } from '../platform/db/shards.ts';
import { createReplicaReader } from '../platform/db/replicas.ts';
import { createCachedLookup, type LinkRef } from '../modules/redirect/redirect.cache.ts';
import type { RedirectLookup } from '../modules/redirect/redirect.lookup.ts';
import { createRedirectService } from '../modules/redirect/redirect.service.ts';
import { createStatsRepository } from '../modules/stats/stats.repository.ts';
import { createStatsService } from '../modules/stats/stats.service.ts';
import { createWorkspacesRepository } from '../modules/workspaces/workspaces.repository.ts';
import { createWorkspacesService } from '../modules/workspaces/workspaces.service.ts';
import { guardShared, kvStore, observeShared, redisStore, type KvNamespaceLike, type SharedStore } from '../platform/cache/shared.ts';
import type { Database } from '../platform/db/client.ts';
import { createLogger, type Logger } from '../platform/logger.ts';
import { createMetrics, type Metrics } from '../platform/metrics.ts';
import { createTokenVerifier } from '../platform/oidc.ts';
import { createCloudflareQueueProducer, type QueueBinding } from '../platform/queue/cloudflare.ts';
import type { QueueProducer } from '../platform/queue/queue.ts';
import { createCloudflareRateLimitStore, type RateLimitBinding } from '../platform/ratelimit/cloudflare.ts';
import { guardRateLimitStore } from '../platform/ratelimit/guard.ts';
import { createMemoryRateLimitStore } from '../platform/ratelimit/memory.ts';
import { createRateLimiter, type RateLimiter } from '../platform/ratelimit/policies.ts';
import type { RateLimitStore } from '../platform/ratelimit/ratelimit.ts';
import { createRedisRest } from '../platform/redis-rest.ts';
import { observeDatabase } from '../platform/db/client.ts';
import { dbCallMeter, meterDatabase, type DbCallMeter } from '../platform/db/metrics.ts';
import { tracedProducer } from '../platform/queue/tracing.ts';
import { createTracer, propagatingFetch, type ScopeStore, type Tracer } from '../platform/tracing.ts';
import { tracedLookup } from '../modules/redirect/redirect.lookup.ts';

/** What a runtime hands the composition root: handles and bindings only it can make. */
export interface Provided {
  db: Database;
  /** HOP_DATABASE_SHARDS: the shards over `db`, the control database (runtimes/database.ts, openShards). */
  shards?: ShardSet | undefined;
  logger?: Logger | undefined;
  /** This process's counters, served at /metrics; a fresh registry when not given. */
  metrics?: Metrics | undefined;
  /** The clock; tests move it. */
  now?: (() => Date) | undefined;
  /** A runtime's faster read for the redirect over the same database (the embedded prepared statement). */
  redirectLookup?: RedirectLookup | undefined;
  /** HOP_CACHE=kv: the Workers KV namespace bound as CACHE (Redis is built here from the configuration). */
  kv?: KvNamespaceLike | undefined;
  /** Whether concurrent cache misses share one read; off on Workers (see TieredCacheOptions). Default on. */
  singleFlight?: boolean | undefined;
  /** HOP_RATE_LIMIT=cloudflare: the `ratelimits` bindings by policy (api, unauthenticated, redirect, not-found). */
  rateLimitBindings?: Record<string, RateLimitBinding> | undefined;
  /**
   * HOP_RATE_LIMIT=redis: the Redis store, built by process.ts for Node and Bun only (its client, @upstash/redis, is
   * kept out of the Workers' bundles, and Workers refuse that mode).
   */
  redisRateLimitStore?: RateLimitStore | undefined;
  /**
   * HOP_RATE_LIMIT=memory in a worker of several (HOP_WORKERS): the host's counters, kept by the supervisor, in
   * place of this process's own.
   */
  hostRateLimitStore?: RateLimitStore | undefined;
  /** The other workers of this host (HOP_WORKERS), whose memory tier must drop what this one changes. */
  cachePeers?: CachePeers | undefined;
  /** The runtime's scope store (src/runtimes/scopes.ts): current span, Server-Timing. None: neither. */
  scopes?: ScopeStore | undefined;
  /** Whether spans are exported on a timer (Node, Bun); Workers export in waitUntil instead. Default on. */
  exportOnTimer?: boolean | undefined;
}

/** What one process changed that the others' memory tiers hold. */
export type CacheChange = { links: LinkRef[] } | { host: string };

/** The other processes of a host (cluster workers), told of each change through their supervisor. */
export interface CachePeers {
  /** Tells the others; resolves once every one of them has dropped the entries. */
  publish(change: CacheChange): Promise<void>;
  /** Where the others' changes arrive. */
  subscribe(apply: (change: CacheChange) => void): void;
}

/** Everything of a process or isolate but its HTTP app and its click pipeline. */
export interface Composed {
  config: Config;
  db: Database;
  /** The shards, when HOP_DATABASE_SHARDS lists them; `db` is then the control database. */
  shards: ShardSet | undefined;
  logger: Logger;
  metrics: Metrics;
  now: () => Date;
  services: Services;
  /** The rate limits (store and policies); undefined with HOP_RATE_LIMIT=off. */
  rateLimiter: RateLimiter | undefined;
  /** Traces (OTEL_*); undefined when off. */
  tracer: Tracer | undefined;
  scopes: ScopeStore | undefined;
  /** /readyz's checks beyond the database's: the shared cache when it is Redis. */
  readiness: Record<string, () => Promise<void>>;
}

/** The shared tier the configuration asks for: Redis (REST over fetch), or KV when a Worker binds it. */
function sharedTier(config: Config, kv: KvNamespaceLike | undefined, scopes: ScopeStore | undefined): SharedStore | undefined {
  if (config.cache.mode === 'redis') {
    return redisStore(createRedisRest({ ...config.redis!, timeoutMs: config.cache.timeoutMs, fetch: propagatingFetch(scopes) }));
  }
  return config.cache.mode === 'kv' && kv ? kvStore(kv) : undefined;
}

/** The store of HOP_RATE_LIMIT: in process, or a remote one behind its deadline and breaker (guard.ts). */
function rateLimitStore(config: Config, provided: Provided, logger: Logger, metrics: Metrics) {
  const settings = config.rateLimit;
  if (settings.mode === 'off') return undefined;
  if (settings.mode === 'memory') return provided.hostRateLimitStore ?? createMemoryRateLimitStore();
  let remote;
  if (settings.mode === 'redis') {
    if (!provided.redisRateLimitStore) throw new Error('HOP_RATE_LIMIT=redis: compose through composeForProcess (process.ts)');
    remote = provided.redisRateLimitStore;
  } else {
    if (!provided.rateLimitBindings) throw new Error('HOP_RATE_LIMIT=cloudflare: the runtime provided no ratelimits bindings');
    remote = createCloudflareRateLimitStore(provided.rateLimitBindings);
  }
  return guardRateLimitStore(remote, { timeoutMs: settings.timeoutMs, onError: settings.onError, logger, metrics });
}

function buildServices(config: Config, provided: Provided & { dbMeter?: DbCallMeter }, logger: Logger, metrics: Metrics, now: () => Date, tracer: Tracer | undefined) {
  const { orm } = provided.db;
  const { scopes, shards } = provided;
  const sharded = shards && createShardedLinksRepository(shards, config.databaseTimeoutMs);
  const linksRepository = sharded ?? createLinksRepository(orm);
  // A runtime's own read is of the one database: with shards the redirect reads the shard of the address.
  const read = shards ? undefined : provided.redirectLookup && meterLookup(provided.redirectLookup, provided.dbMeter);
  const native = read && tracer ? tracedLookup(read, tracer) : read;
  const lookup = native ?? linksRepository;
  const tier = sharedTier(config, provided.kv, scopes);
  const store = tier && observeShared(tier, tracer, scopes);
  const linkCache =
    config.cache.mode === 'off'
      ? undefined
      : createCachedLookup(lookup, {
          config: config.cache,
          shared: store && guardShared(store, { timeoutMs: config.cache.timeoutMs, logger, metrics }),
          singleFlight: provided.singleFlight ?? true,
          databaseTimeoutMs: config.databaseTimeoutMs,
          logger,
          metrics,
        });
  const tokens =
    config.oidc &&
    createTokenVerifier({ config: config.oidc, now, logger, shareFetches: provided.singleFlight ?? true, fetch: propagatingFetch(scopes) });
  const peers = linkCache && provided.cachePeers;
  if (linkCache && peers) {
    peers.subscribe((change) => {
      if ('host' in change) return linkCache.invalidateHost(change.host);
      // Before the cache forgets them: the next read must not fill it from a replica that lags the change.
      sharded?.changed(change.links);
      linkCache.forget(change.links);
    });
  }
  const workspaces: ReturnType<typeof createWorkspacesService> = createWorkspacesService(
    shards ? createShardedWorkspacesRepository(shards, config.databaseTimeoutMs) : createWorkspacesRepository(orm),
    config,
    {
      host(host) {
        linkCache?.invalidateHost(host);
        // Hosts are remembered in memory only; the other workers' entries are dropped without the answer waiting.
        peers?.publish({ host }).catch(() => undefined);
      },
    },
    tokens,
  );
  const stats = createStatsService(
    shards ? createShardedStatsRepository(shards, config.databaseTimeoutMs) : createStatsRepository(orm),
    workspaces,
    config,
  );
  const invalidation = {
    links(refs: LinkRef[]) {
      sharded?.changed(refs);
      return linkCache
        ? Promise.all([linkCache.invalidate(refs), peers?.publish({ links: refs })]).then(() => undefined)
        : Promise.resolve();
    },
    /** Clicks were stored by this process: kept statistics no longer hold. */
    clicksStored: () => stats.clicksStored(),
  };
  return {
    workspaces,
    links: createLinksService(linksRepository, workspaces, config, invalidation),
    /** The redirect's read: the link cache over the lookup, or the lookup alone with HOP_CACHE=off. */
    redirectLookup: linkCache ?? lookup,
    /** Drops changed links from the cache (the click consumer's maxClicks, a CLI change); a no-op without cache. */
    invalidation,
    idempotency: createIdempotencyService(createIdempotencyRepository(orm)),
    stats,
  };
}

export type Services = ReturnType<typeof buildServices>;

/** A runtime's own redirect read (the embedded prepared statement), counted with the database calls. */
function meterLookup(lookup: RedirectLookup, meter: DbCallMeter | undefined): RedirectLookup {
  if (!meter) return lookup;
  return {
    findLink: (domain, slug, defer) => meter.read('select', () => lookup.findLink(domain, slug, defer)),
    domainOwner: (host) => meter.read('select', () => lookup.domainOwner(host)),
  };
}

/**
 * The shards as the services use them: every primary and replica observed and metered like the control database,
 * and each shard with replicas given its reader (replicas.ts), whose skips and answers are counted:
 * `hop_database_replica_skipped_total{shard,replica,reason}` and `hop_database_replica_reads_total{shard,served_by}`
 * (shard and replica numbered from 1, in HOP_DATABASE_SHARDS order).
 */
function watchShards(set: ShardSet, control: Database, watch: (d: Database) => Database, config: Config, metrics: Metrics): ShardSet {
  return deriveShardSet(set, control, watch, (primary, replicas, shardNumber) => {
    const shard = String(shardNumber);
    const served = {
      replica: metrics.counter('hop_database_replica_reads_total', 'Reads a shard could serve from a replica, by who answered (replica, primary).', { shard, served_by: 'replica' }),
      primary: metrics.counter('hop_database_replica_reads_total', 'Reads a shard could serve from a replica, by who answered (replica, primary).', { shard, served_by: 'primary' }),
    };
    return createReplicaReader(primary, replicas, {
      timeoutMs: config.databaseReplicaTimeoutMs,
      onSkip: (replica, reason) =>
        metrics.increment(
          'hop_database_replica_skipped_total',
          'Reads that passed a shard replica by for the next one or the primary, by reason (open breaker, timeout, error).',
          { shard, replica: String(replica + 1), reason },
        ),
      onServed: (by) => served[by].add(),
    });
  });
}

/** /readyz's check of the shared cache when it is Redis (KV is Cloudflare's own): a PING within the probe's deadline. */
function readinessChecks(config: Config): Record<string, () => Promise<void>> {
  if (config.cache.mode !== 'redis' || !config.redis) return {};
  const redis = createRedisRest({ ...config.redis, timeoutMs: config.readyTimeoutMs });
  return { cache: () => redis.command(['PING']).then(() => undefined) };
}

/** Services, cache tiers and rate limits of one process or isolate (the CLI stops here; servers go on to the app). */
export function compose(config: Config, provided: Provided): Composed {
  const logger = provided.logger ?? createLogger({ level: 'silent' });
  const metrics = provided.metrics ?? createMetrics();
  const now = provided.now ?? (() => new Date());
  const store = rateLimitStore(config, provided, logger, metrics);
  const { scopes } = provided;
  const tracer =
    config.tracing &&
    createTracer(config.tracing, { scopes, timer: provided.exportOnTimer ?? true, warn: (msg, fields) => logger.log('warn', msg, fields) });
  // Every call of the database client observed (spans, Server-Timing) where the runtime keeps scopes, and counted.
  const dbMeter = config.metrics.enabled ? dbCallMeter(metrics, config.databaseTimeoutMs) : undefined;
  const watch = (d: Database) => {
    const observed = observeDatabase(d, tracer, scopes);
    return dbMeter ? meterDatabase(observed, dbMeter) : observed;
  };
  const db = watch(provided.db);
  const shards = provided.shards && watchShards(provided.shards, db, watch, config, metrics);
  return {
    config,
    db,
    shards,
    logger,
    metrics,
    now,
    services: buildServices(config, { ...provided, db, shards, dbMeter }, logger, metrics, now, tracer),
    rateLimiter: store && createRateLimiter(config.rateLimit, store, now),
    tracer,
    scopes,
    readiness: readinessChecks(config),
  };
}

/** What the HTTP app needs beyond the composed services: where clicks go, the peer address, the drain flag. */
export interface AppProvided {
  /** The click queue's producer; none: clicks are not recorded. */
  clicks?: QueueProducer<ClickEvent> | undefined;
  /** A Cloudflare Queue binding (Workers) to send clicks to, when no producer is given. */
  clickQueueBinding?: QueueBinding | undefined;
  /** The client's address as the runtime sees it (the connection's peer; Workers: cf-connecting-ip). */
  clientIp?: ((request: Request, env: unknown) => string | undefined) | undefined;
  /** True once the process is shutting down: /readyz answers 503 so traffic moves elsewhere. */
  draining?: (() => boolean) | undefined;
  /** /metrics of the whole host (HOP_WORKERS): every worker's counters, gathered by the supervisor. */
  hostMetrics?: (() => Promise<string>) | undefined;
  /** What the app serves (HOP_ROLE on Node and Bun); `all` by default. */
  role?: AppRole | undefined;
  /** /readyz's checks of what the process added (a remote queue). */
  readiness?: Record<string, () => Promise<void>> | undefined;
}

/** The app over a composition: the redirect service is made here, where the click producer is known. */
export function composeApp(composed: Composed, provided: AppProvided = {}): App {
  const { config, services, rateLimiter, logger } = composed;
  const binding = config.clicks ? provided.clickQueueBinding : undefined;
  const producer = provided.clicks ?? (binding && createCloudflareQueueProducer<ClickEvent>(binding, logger));
  const redirect = createRedirectService({
    lookup: services.redirectLookup,
    defaultDomain: config.defaultDomain,
    clicks: producer && composed.tracer ? tracedProducer(producer, composed.tracer, binding ? 'cloudflare_queues' : 'hop') : producer,
    limits: rateLimiter,
  });
  const lookup = services.redirectLookup;
  return createApp({
    ...composed,
    redirect,
    clientIp: provided.clientIp,
    draining: provided.draining,
    hostMetrics: provided.hostMetrics,
    role: provided.role,
    readiness: { ...composed.readiness, ...provided.readiness },
    domainOwner: (host) => lookup.domainOwner(host),
  });
}
