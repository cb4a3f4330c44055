/**
 * The click pipeline of a Node or Bun process, as configured: the in-process queue consumed in this process (the
 * embedded default), or the Redis Streams producer plus, unless HOP_CLICK_CONSUMER=off, one consumer of the group
 * that every process shares; and, where clicks are consumed, the hourly purge of raw clicks past their retention.
 * `hop consume` runs the consuming half alone.
 */
import { hostname } from 'node:os';
import { ConfigError, type ServerConfig } from '../config.ts';
import { createRedisRestClient } from '../platform/redis.ts';
import type { ClickEvent } from '../modules/clicks/clicks.schemas.ts';
import type { ClicksService } from '../modules/clicks/clicks.service.ts';
import type { Logger } from '../platform/logger.ts';
import type { Metrics } from '../platform/metrics.ts';
import { createMemoryQueue, type MemoryQueue } from '../platform/queue/memory.ts';
import type { QueueProducer } from '../platform/queue/queue.ts';
import {
  createRedisStreamsConsumer,
  createRedisStreamsProducer,
  type RedisStreamsConsumer,
} from '../platform/queue/redis-streams.ts';

const PURGE_EVERY_MS = 3_600_000;

export interface ClickPipeline {
  /** Where redirects send click events; undefined for a consumer alone. */
  queue: QueueProducer<ClickEvent> | undefined;
  /** For the start-up log line. */
  description: string;
  /** Sends what is buffered, finishes the batch in hand, stops the timers. */
  close(): Promise<void>;
}

export interface PipelineRoles {
  produce: boolean;
  consume: boolean;
  /** Where the producer's counts are shown (`/metrics`): buffered, delivered, dropped, failed. */
  metrics?: Metrics;
}

/** The producer's counts, read when /metrics is rendered. */
function queueMetrics(metrics: Metrics, queue: MemoryQueue<unknown>, kind: string) {
  const labels = { queue: kind };
  metrics.collect('hop_click_queue_buffered', 'Click events held by this process, not yet handed on.', 'gauge', () => [
    [labels, queue.stats().buffered],
  ]);
  metrics.collect('hop_click_queue_events_total', 'Click events by what became of them in this process.', 'counter', () => {
    const s = queue.stats();
    return [
      [{ ...labels, result: 'delivered' }, s.delivered],
      [{ ...labels, result: 'rejected' }, s.rejected],
      [{ ...labels, result: 'dropped' }, s.dropped],
    ];
  });
  metrics.collect('hop_click_queue_failures_total', 'Batches that could not be handed on (retried).', 'counter', () => [
    [labels, queue.stats().failures],
  ]);
}

/** Where batches are stored: the clicks service, or anything with its `ingest` and `purge` (a worker thread's). */
export type ClickStore = Pick<ClicksService, 'ingest' | 'purge'>;

/** What a committed batch makes stale (src/services.ts `invalidation`). */
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

export async function startClickPipeline(
  config: ServerConfig,
  logger: Logger,
  clicks: ClickStore,
  roles: PipelineRoles = { produce: true, consume: true },
): Promise<ClickPipeline> {
  const stopPurge = roles.consume ? startPurge(config, logger, clicks) : () => {};
  if (config.queue === 'memory') {
    const queue = createMemoryQueue<ClickEvent>({ logger, handle: (batch) => clicks.ingest(batch) });
    if (roles.metrics) queueMetrics(roles.metrics, queue, 'memory');
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
  const producer = roles.produce ? createRedisStreamsProducer<ClickEvent>({ redis, stream: key, logger }) : undefined;
  if (producer && roles.metrics) queueMetrics(roles.metrics, producer, 'redis');
  let consumer: RedisStreamsConsumer | undefined;
  if (roles.consume) {
    consumer = createRedisStreamsConsumer({
      redis,
      stream: key,
      group,
      deadLetter: deadLetterKey,
      handle: (batch) => clicks.ingest(batch),
      logger,
      // Unique per process, and readable in XINFO CONSUMERS: which host and process holds an entry.
      consumer: `${hostname()}-${process.pid}-${crypto.randomUUID().slice(0, 6)}`,
      maxDeliveries,
      claimIdleMs,
    });
    consumer.start();
  }
  return {
    queue: producer,
    description: `redis streams (${[producer && 'producer', consumer && `consumer ${consumer.name}`].filter(Boolean).join(', ')})`,
    async close() {
      stopPurge();
      // The producer first: what it still holds goes to the stream, for this consumer or another.
      await producer?.close();
      await consumer?.stop();
      logger.log('info', 'click queue closed', { stream: key, producer: producer?.stats(), consumer: consumer?.stats() });
    },
  };
}

/**
 * A refused token is a configuration error and stops the start; an unreachable Redis does not (the producer
 * buffers and the consumer retries, so the process serves redirects meanwhile).
 */
async function checkRedis(redis: ReturnType<typeof createRedisRestClient>, config: ServerConfig, logger: Logger) {
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
  timer.unref();
  return () => clearInterval(timer);
}
