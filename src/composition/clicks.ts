/**
 * The composition root's click half: the clicks service over a database (or the SQL runner a runtime provides, the
 * embedded writer), and the click pipeline as configured: the in-process queue consumed in this process (the
 * embedded default), or the Redis Streams producer plus, unless HOP_CLICK_CONSUMER=off, one consumer of the group
 * that every process shares; and, where clicks are consumed, the hourly purge of raw clicks past their retention.
 * Kept apart from app.ts so that the redirect Worker's bundle leaves the consumer (user-agent parsing) out.
 */
import { ConfigError, type Config, type ServerConfig } from '../config.ts';
import { createClicksRepository, type SqlRunner } from '../modules/clicks/clicks.repository.ts';
import { createShardedClicksRepository } from '../modules/clicks/clicks.sharded.ts';
import type { ShardSet } from '../platform/db/shards.ts';
import type { ClickEvent } from '../modules/clicks/clicks.schemas.ts';
import { createClicksService, type ClicksService } from '../modules/clicks/clicks.service.ts';
import type { Database } from '../platform/db/client.ts';
import { linkCacheKey, tombstoneTtlS } from '../modules/redirect/redirect.cache.ts';
import { kvStore, redisStore, type KvNamespaceLike } from '../platform/cache/shared.ts';
import { describeError, type Logger } from '../platform/logger.ts';
import { createRedisRest } from '../platform/redis-rest.ts';
import type { Metrics } from '../platform/metrics.ts';
import { createMemoryQueue, type MemoryQueue } from '../platform/queue/memory.ts';
import {
  createRedisStreamsConsumer,
  createRedisStreamsProducer,
  redriveDeadLetters,
  type RedisStreamsConsumer,
} from '../platform/queue/redis-streams.ts';
import { createRedisRestClient } from '../platform/redis.ts';
import { tracedIngest } from '../platform/queue/tracing.ts';
import { streamBacklog } from '../platform/queue/redis-streams/backlog.ts';
import type { Tracer } from '../platform/tracing.ts';

const PURGE_EVERY_MS = 3_600_000;
// The consumer's batch under load: ~4x the clicks per second of batches of 100 (docs/benchmarks.md), and still
// well inside SQLite's bound-parameter limit for the repository's multi-row statements.
const CONSUMER_BATCH_UNDER_LOAD = 1000;

/**
 * The clicks service over a database, its SQL run by `runner` when a runtime has a faster one (embedded-writer.ts);
 * over the shards when HOP_DATABASE_SHARDS lists them (each batch split by shard).
 */
export function composeClicksService(db: Database, runner?: SqlRunner, shards?: ShardSet): ClicksService {
  return createClicksService(shards ? createShardedClicksRepository(shards) : createClicksRepository(db.orm, runner));
}

/** Where batches are stored: the clicks service, or anything with its `ingest` and `purge` (a worker thread's). */
export type ClickStore = Pick<ClicksService, 'ingest' | 'purge'>;

export interface ClickPipeline {
  /** Where redirects send click events (with the queue's flush and counts); undefined for a consumer alone. */
  queue: MemoryQueue<ClickEvent> | undefined;
  /** For the start-up log line. */
  description: string;
  /** Sends what is buffered, finishes the batch in hand, stops the timers. */
  close(): Promise<void>;
}

export interface PipelineOptions {
  produce: boolean;
  consume: boolean;
  /** Where batches are stored: the clicks service, or a runtime's stand-in with its `ingest` and `purge` (a thread). */
  store: ClickStore;
  /** What a committed batch makes stale (the composed services' `invalidation`). */
  invalidation: ClickInvalidation;
  logger: Logger;
  /** Where the producer's counts are shown (`/metrics`): buffered and its high-water mark, delivered, refused, failed. */
  metrics?: Metrics | undefined;
  /** The Redis Streams consumer's name, unique per process (the runtime knows its host and process id). */
  consumerName?: string | undefined;
  /** The in-process queue's batch sizes and bound, when not the configured ones (the ingestion benchmark's). */
  memoryQueue?: { maxBatch?: number; maxBatchUnderLoad?: number; maxBuffered?: number } | undefined;
  /** Traces: each batch a consumer span linked to its clicks' redirects. */
  tracer?: Tracer | undefined;
}

/** The producer's counts, read when /metrics is rendered. */
function queueMetrics(metrics: Metrics, queue: MemoryQueue<unknown>, kind: string) {
  const labels = { queue: kind };
  metrics.collect('hop_click_queue_buffered', 'Click events held by this process, not yet handed on.', 'gauge', () => [
    [labels, queue.stats().buffered],
  ]);
  metrics.collect('hop_click_queue_buffered_max', 'The most click events this process has held at once.', 'gauge', () => [
    [labels, queue.stats().highWater],
  ]);
  metrics.collect('hop_click_queue_events_total', 'Click events by what became of them in this process.', 'counter', () => {
    const s = queue.stats();
    return [
      [{ ...labels, result: 'delivered' }, s.delivered],
      [{ ...labels, result: 'rejected' }, s.rejected],
      // Refused at the door, the buffer full: their redirects were answered 503, so no click was lost.
      [{ ...labels, result: 'refused' }, s.refused],
    ];
  });
  metrics.collect('hop_click_queue_batch_max', 'The largest batch handed on by this process.', 'gauge', () => [
    [labels, queue.stats().largestBatch],
  ]);
  metrics.collect('hop_click_queue_failures_total', 'Batches that could not be handed on (retried).', 'counter', () => [
    [labels, queue.stats().failures],
  ]);
  metrics.collect('hop_click_queue_depth', DEPTH_HELP, 'gauge', () => [[labels, queue.stats().buffered]]);
  metrics.collect('hop_click_queue_oldest_age_seconds', AGE_HELP, 'gauge', () => {
    const at = (queue.oldest() as { at?: unknown } | undefined)?.at;
    return [[labels, typeof at === 'number' ? Math.max(0, Date.now() - at) / 1000 : 0]];
  });
}

const DEPTH_HELP =
  'Clicks waiting to be stored: held by this process (queue="memory", or "redis" for the producer\'s buffer), or entries of the stream not yet acknowledged by the consumer group (queue="redis_stream", each a batch).';
const AGE_HELP = 'Age of the oldest click waiting to be stored (queue labels as hop_click_queue_depth); 0 when none waits.';
const BACKLOG_EVERY_MS = 5000;

/** The stream's backlog, read by a consumer every few seconds into the depth and age gauges (queue="redis_stream"). */
function watchBacklog(metrics: Metrics, config: ServerConfig, logger: Logger) {
  const redis = createRedisRest({ ...config.redis!, timeoutMs: 2000 });
  const { key, group } = config.clickStream;
  const labels = { queue: 'redis_stream' };
  let failed = false;
  const read = () =>
    streamBacklog(redis, key, group).then(
      (b) => {
        failed = false;
        metrics.set('hop_click_queue_depth', DEPTH_HELP, labels, b.entries);
        metrics.set('hop_click_queue_oldest_age_seconds', AGE_HELP, labels, b.oldestAgeMs / 1000);
      },
      (err: unknown) => {
        if (!failed) logger.log('warn', 'click stream backlog not read; its gauges keep their last value', describeError(err));
        failed = true;
      },
    );
  void read();
  const timer = setInterval(() => void read(), BACKLOG_EVERY_MS);
  (timer as { unref?: () => void }).unref?.();
  return () => clearInterval(timer);
}

/**
 * The store counted: clicks ingested by what became of them (`hop_clicks_ingested_total{result}`: stored, duplicate,
 * rejected) and the consumer's lag (`hop_click_consumer_lag_seconds`: from the oldest click of the last batch
 * stored to its commit).
 */
function meterIngest<S extends ClickStore>(store: S, metrics: Metrics | undefined): S {
  if (!metrics) return store;
  const help = 'Clicks handed to this process\'s consumer, by what became of them: stored, duplicate (stored by an earlier delivery), rejected (invalid).';
  const stored = metrics.counter('hop_clicks_ingested_total', help, { result: 'stored' });
  const duplicate = metrics.counter('hop_clicks_ingested_total', help, { result: 'duplicate' });
  const rejected = metrics.counter('hop_clicks_ingested_total', help, { result: 'rejected' });
  metrics.set('hop_click_consumer_lag_seconds', LAG_HELP, {}, 0);
  return {
    ...store,
    async ingest(messages) {
      const result = await store.ingest(messages);
      stored.add(result.stored);
      duplicate.add(result.duplicates);
      rejected.add(result.rejected.length);
      let oldest = Infinity;
      for (const m of messages) {
        const at = (m as { at?: unknown } | null)?.at;
        if (typeof at === 'number' && at < oldest) oldest = at;
      }
      if (oldest !== Infinity) metrics.set('hop_click_consumer_lag_seconds', LAG_HELP, {}, Math.max(0, Date.now() - oldest) / 1000);
      return result;
    },
  };
}

const LAG_HELP = 'Time from the oldest click of the last batch this process stored to its commit.';

/** What a committed batch makes stale (the composed services' `invalidation`). */
export interface ClickInvalidation {
  links(links: Array<{ domain: string; slug: string }>): Promise<void>;
  clicksStored(): void;
}

/**
 * A store that, once a batch is committed, drops from the link cache the links with a maxClicks whose count moved
 * (cached copies hold the old count, and an exhausted link must stop redirecting) and this process's kept statistics.
 */
export function invalidatingStore(store: ClickStore, invalidation: ClickInvalidation): ClickStore {
  return {
    purge: (now, days, limit) => store.purge(now, days, limit),
    async ingest(messages) {
      const result = await store.ingest(messages);
      if (result.stored) invalidation.clicksStored();
      if (result.limited.length) await invalidation.links(result.limited);
      return result;
    },
  };
}

export async function startClickPipeline(config: ServerConfig, options: PipelineOptions): Promise<ClickPipeline> {
  const { logger, metrics } = options;
  const traced = tracedIngest(invalidatingStore(options.store, options.invalidation), options.tracer, config.queue === 'memory' ? 'hop' : 'redis');
  const clicks = options.consume ? meterIngest(traced, metrics) : traced;
  const stopPurge = options.consume ? startPurge(config, logger, clicks) : () => {};
  if (config.queue === 'memory') {
    const queue = createMemoryQueue<ClickEvent>({
      logger,
      maxBuffered: config.queueMaxBuffered,
      maxBatchUnderLoad: CONSUMER_BATCH_UNDER_LOAD,
      ...options.memoryQueue,
      handle: (batch) => clicks.ingest(batch),
    });
    if (metrics) queueMetrics(metrics, queue, 'memory');
    return {
      queue,
      description: 'in-process queue',
      async close() {
        stopPurge();
        await queue.close();
      },
    };
  }

  const redis = createRedisRestClient(config.redis!);
  await checkRedis(redis, config, logger);
  const { key, group, deadLetterKey, maxDeliveries, claimIdleMs } = config.clickStream;
  const producer = options.produce
    ? createRedisStreamsProducer<ClickEvent>({ redis, stream: key, logger, maxBuffered: config.queueMaxBuffered })
    : undefined;
  if (producer && metrics) queueMetrics(metrics, producer, 'redis');
  let consumer: RedisStreamsConsumer | undefined;
  if (options.consume) {
    consumer = createRedisStreamsConsumer({
      redis,
      stream: key,
      group,
      deadLetter: deadLetterKey,
      handle: (batch) => clicks.ingest(batch),
      logger,
      consumer: options.consumerName ?? `hop-${crypto.randomUUID().slice(0, 8)}`,
      maxDeliveries,
      claimIdleMs,
    });
    consumer.start();
  }
  const stopWatch = consumer && metrics ? watchBacklog(metrics, config, logger) : () => {};
  return {
    queue: producer,
    description: `redis streams (${[producer && 'producer', consumer && `consumer ${consumer.name}`].filter(Boolean).join(', ')})`,
    async close() {
      stopPurge();
      stopWatch();
      // The producer first: what it still holds goes to the stream, for this consumer or another.
      await producer?.close();
      await consumer?.stop();
      logger.log('info', 'click queue closed', { stream: key, producer: producer?.stats(), consumer: consumer?.stats() });
    },
  };
}

/** The click consumer Worker's parts (worker-consumer.ts): the clicks service, and the shared cache to tell of moved counts. */
export function composeClickConsumer(
  config: Config,
  provided: { db: Database; shards?: ShardSet | undefined; kv?: KvNamespaceLike | undefined; logger: Logger; tracer?: Tracer | undefined },
) {
  const { logger } = provided;
  // The redirect Worker's shared tier, if it has one; each of its isolates' memory tier expires on its own. A
  // consumer is not on a visitor's path, so it waits longer for the store than a redirect does.
  const cache =
    config.cache.mode === 'redis'
      ? redisStore(createRedisRest({ ...config.redis!, timeoutMs: 2000 }))
      : config.cache.mode === 'kv' && provided.kv
        ? kvStore(provided.kv)
        : undefined;
  const invalidation: ClickInvalidation = {
    async links(refs) {
      if (!cache || !refs.length) return;
      const keys = refs.map((l) => linkCacheKey(l.domain, l.slug));
      await cache.invalidate(keys, tombstoneTtlS(config.databaseTimeoutMs)).catch((err: unknown) =>
        logger.log('warn', 'link cache not told of moved click counts; entries expire on their own', { keys: keys.length, ...describeError(err) }),
      );
    },
    // No statistics are kept in a consumer Worker.
    clicksStored: () => {},
  };
  return tracedIngest(invalidatingStore(composeClicksService(provided.db, undefined, provided.shards), invalidation), provided.tracer, 'cloudflare_queues');
}

/** `hop redrive`: the Redis click queue's dead letters back on the stream (see redriveDeadLetters). */
export function redriveClicks(config: ServerConfig, options: { limit: number; all: boolean }) {
  const { key, deadLetterKey } = config.clickStream;
  return redriveDeadLetters({ redis: createRedisRestClient(config.redis!), stream: key, deadLetter: deadLetterKey, ...options });
}

/**
 * A refused token is a configuration error and stops the start; an unreachable Redis does not (the producer
 * buffers and the consumer retries, so the process serves redirects meanwhile).
 */
async function checkRedis(redis: ReturnType<typeof createRedisRestClient>, config: Config, logger: Logger) {
  try {
    await redis.ping();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (/unauthori[sz]ed|WRONGPASS|NOAUTH|invalid.*token/i.test(reason)) {
      throw new ConfigError([{ variable: 'HOP_REDIS_TOKEN', message: `refused by ${config.redis!.url} (unauthorized)` }]);
    }
    logger.log('warn', 'click queue unreachable at start; clicks are buffered and sent once it answers', {
      url: config.redis!.url,
      error: reason,
    });
  }
}

function startPurge(config: ServerConfig, logger: Logger, clicks: ClickStore) {
  const purge = async () => {
    try {
      const removed = await clicks.purge(new Date(), config.clickRetentionDays);
      if (removed) logger.log('info', 'raw clicks purged', { removed, retentionDays: config.clickRetentionDays });
    } catch (err) {
      logger.log('warn', 'click purge failed', { error: err instanceof Error ? err.message : String(err) });
    }
  };
  const timer = setInterval(() => void purge(), PURGE_EVERY_MS);
  // A timer of its own must not keep a Node or Bun process alive.
  (timer as { unref?: () => void }).unref?.();
  return () => clearInterval(timer);
}
