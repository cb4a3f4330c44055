/**
 * The queue port between the redirect (producer) and the click consumer. Adapters: the in-process batcher
 * (memory.ts, the embedded default), Redis Streams (redis-streams.ts) and Cloudflare Queues (the Worker entry).
 * Every adapter delivers at least once; the consumer makes storage exactly once.
 */

export interface QueueProducer<T> {
  /**
   * Hands one message over without making the caller wait for storage. A returned promise is work the platform
   * must let finish after the response (`waitUntil` on Workers); in-process adapters return nothing. Throws only an
   * `overloaded` AppError, when the adapter's buffer is full: the message was not taken, and the caller must not
   * answer as if it had been (the redirect answers 503 with Retry-After rather than lose its click).
   */
  send(message: T): void | Promise<void>;
}

/** What a consumer does with a batch: which messages it refused for good (dead-letter), by index. */
export type BatchHandler<T> = (messages: T[]) => Promise<{ rejected: Array<{ index: number; reason: string }> }>;
