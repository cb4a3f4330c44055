/**
 * The click queue on Redis Streams, spoken over the Upstash REST protocol (a client from src/platform/redis.ts), in
 * four parts: the wire format of stream and dead-letter entries (redis-streams/wire.ts), the producer that batches
 * clicks into entries (producer.ts), the consumer group member that stores them at least once and dead-letters what
 * cannot be stored (consumer.ts), and the redrive that puts dead letters back (redrive.ts).
 */
export { createRedisStreamsProducer, type RedisStreamsProducerOptions } from './redis-streams/producer.ts';
export {
  createRedisStreamsConsumer,
  type ConsumerStats,
  type RedisStreamsConsumer,
  type RedisStreamsConsumerOptions,
} from './redis-streams/consumer.ts';
export { redriveDeadLetters, type RedriveOptions } from './redis-streams/redrive.ts';
