/**
 * The producer of the Redis Streams click queue: messages gather in memory (the in-process queue as a bounded
 * buffer, with its batching, backoff and flush on close) and go to the stream one entry per batch (a JSON array of
 * up to 100 messages, wire.ts), up to ten entries per request (a pipeline) and a few requests in flight at once;
 * `send` never waits. One JSON string per entry and one request per ten, instead of a command per message:
 * producing was the largest cost clicks added to a redirect (docs/perf-history.md).
 */
import type { Redis } from '@upstash/redis';
import type { Logger } from '../../logger.ts';
import { createMemoryQueue, type MemoryQueue } from '../memory.ts';
import { batchEntry } from './wire.ts';

export interface RedisStreamsProducerOptions {
  redis: Redis;
  stream: string;
  logger: Logger;
  /** Messages per stream entry. */
  maxBatch?: number;
  /** Entries sent in one request (an Upstash pipeline of XADDs) when that many are waiting. */
  entriesPerRequest?: number;
  /** Requests in flight at once. */
  maxInFlight?: number;
  /** How long the first buffered message waits for others before its batch is sent. */
  maxWaitMs?: number;
  /** Messages held at most while Redis is unreachable; at the bound `send` refuses new ones (counted). */
  maxBuffered?: number;
}

/** The producer: `send` buffers, each batch goes out as one entry, failures are retried with backoff. */
export function createRedisStreamsProducer<T>(options: RedisStreamsProducerOptions): MemoryQueue<T> {
  const { redis, stream } = options;
  const perEntry = options.maxBatch ?? 100;
  const perRequest = options.entriesPerRequest ?? 10;
  return createMemoryQueue<T>({
    logger: options.logger,
    maxBatch: perEntry * perRequest,
    maxWaitMs: options.maxWaitMs ?? 250,
    maxBuffered: options.maxBuffered ?? 100_000,
    // Each request waits a round trip to Redis; in order or not makes no difference to the consumer.
    maxInFlight: options.maxInFlight ?? 4,
    // A failed request is sent again whole: an entry added twice (an answer was lost, or a pipeline failed half
    // way) is counted once downstream.
    async handle(batch) {
      if (batch.length <= perEntry) {
        await redis.xadd(stream, '*', batchEntry(batch));
        return { rejected: [] };
      }
      // Under load, several entries per HTTP request: the request, not the bytes, was most of what producing cost.
      const pipeline = redis.pipeline();
      for (let i = 0; i < batch.length; i += perEntry) pipeline.xadd(stream, '*', batchEntry(batch.slice(i, i + perEntry)));
      await pipeline.exec();
      return { rejected: [] };
    },
  });
}
