/**
 * The click consumer Worker (wrangler.consumer.toml): takes the batches of click events that the redirect Worker
 * sends to the Cloudflare Queue, stores each batch once through the clicks service, and purges raw clicks past
 * their retention on a cron. A Worker of its own, so user-agent parsing (bowser, isbot) stays out of the redirect's
 * bundle, and a slow or failing database holds back click storage, never a redirect.
 *
 * Per message of a batch:
 * - stored, or already stored by an earlier delivery: acknowledged;
 * - not a click event (poison): sent to the dead-letter queue (CLICKS_DEAD) wrapped with the reason, then
 *   acknowledged, so it neither blocks nor is retried; if that send fails it is retried instead, and Queues moves
 *   it to the same dead-letter queue once its retries are spent;
 * - the database failing (unreachable, past the deadline, or anything else before the commit): the whole batch is
 *   retried with a backoff that grows with the attempts. Nothing is acknowledged before its batch is committed,
 *   and a redelivered batch stores only what is missing (the service's per-batch transaction), so counts stay exact.
 */
import { composeClickConsumer, type ClickStore } from '../composition/clicks.ts';
import type { ConfigError } from '../config.ts';
import type { KvNamespaceLike } from '../platform/cache/shared.ts';
import { backoffDelay } from '../platform/resilience.ts';
import { createLogger, describeError, type Logger } from '../platform/logger.ts';
import { perBindings, tryWorkerConfig, workerDatabase, workerShards, type WorkerEnv } from './worker-bindings.ts';
import { createScopes } from './scopes.ts';
import { observeDatabase } from '../platform/db/client.ts';
import { createTracer, type Tracer } from '../platform/tracing.ts';

/** One delivered message, as much of the Workers `Message` as the consumer uses. */
export interface QueueMessage {
  readonly id: string;
  readonly body: unknown;
  readonly attempts: number;
  ack(): void;
  retry(options?: { delaySeconds?: number }): void;
}

/** A delivered batch, as much of the Workers `MessageBatch` as the consumer uses. */
export interface QueueBatch {
  readonly queue: string;
  readonly messages: readonly QueueMessage[];
  retryAll(options?: { delaySeconds?: number }): void;
}

/** The producer side of the dead-letter queue binding. */
interface DeadLetterQueue {
  send(body: unknown, options?: { contentType?: 'json' }): Promise<unknown>;
}

/** What the consumer sends to the dead-letter queue for a message that is not a click event. */
export interface DeadLetter {
  deadLetter: { reason: string; queue: string; messageId: string; attempts: number; at: string };
  /** The message as it was delivered. */
  body: unknown;
}

/** A cron run's result, for the logs. */
export interface PurgeResult {
  removed: number;
  rounds: number;
}

type Built = { clicks: ClickStore; logger: Logger; retentionDays: number; tracer: Tracer | undefined } | { error: ConfigError };

function buildConsumer(env: WorkerEnv): Built {
  const config = tryWorkerConfig(env);
  if (config instanceof Error) return { error: config };
  // AsyncLocalStorage (nodejs_als): each batch's span is current for its database calls and log lines.
  const scopes = createScopes();
  const logger = createLogger({ level: config.logLevel, span: () => scopes.get()?.span });
  // Sent at the end of each batch, in its waitUntil: an idle isolate runs no timers.
  const tracer = config.tracing && createTracer(config.tracing, { scopes, warn: (msg, fields) => logger.log('warn', msg, fields) });
  const db = observeDatabase(workerDatabase(config, scopes), tracer, scopes);
  const kv = env.CACHE as KvNamespaceLike | undefined;
  const shards = workerShards(config, db, scopes);
  let sharded: ClickStore | undefined;
  // With shards, the store is made once the bucket map is read (a batch that cannot read it is retried).
  const store = async () => {
    const set = await shards!();
    return (sharded ??= composeClickConsumer(config, { db, shards: set, kv, logger, tracer }));
  };
  return {
    // Stores each batch, then drops links whose maxClicks count moved from the redirect Worker's shared cache.
    clicks: shards
      ? { ingest: async (events) => (await store()).ingest(events), purge: async (...args) => (await store()).purge(...args) }
      : composeClickConsumer(config, { db, kv, logger, tracer }),
    logger,
    tracer,
    retentionDays: config.clickRetentionDays,
  };
}

/** One consumer per isolate: every batch and cron run of an isolate shares its database client. */
export const consumerFor: (env: WorkerEnv) => Built = perBindings(buildConsumer);

/**
 * Seconds before a failed batch is delivered again: 2, 4, 8... up to 5 minutes. With max_retries = 20
 * (wrangler.consumer.toml) a batch rides out about an hour of database outage before Queues dead-letters it.
 */
export function retryDelaySeconds(attempts: number): number {
  return backoffDelay(attempts, { firstMs: 2, maxMs: 300 });
}

/** The dead-letter reason is for a person reading it; a message can fail many fields, the reason stays short. */
const MAX_REASON = 1000;

async function consume(batch: QueueBatch, env: WorkerEnv): Promise<void> {
  const messages = batch.messages;
  if (!messages.length) return;
  const attempts = Math.max(...messages.map((m) => m.attempts));
  const entry = consumerFor(env);
  if ('error' in entry) {
    // Nothing can be stored until the configuration is fixed (a redeploy); keep the messages meanwhile.
    batch.retryAll({ delaySeconds: retryDelaySeconds(attempts) });
    return;
  }
  const { clicks, logger } = entry;
  let result;
  try {
    result = await clicks.ingest(messages.map((m) => m.body));
  } catch (err) {
    const delaySeconds = retryDelaySeconds(attempts);
    logger.log('warn', 'click batch not stored; Queues will deliver it again', {
      queue: batch.queue,
      size: messages.length,
      attempts,
      retryInS: delaySeconds,
      ...describeError(err),
    });
    batch.retryAll({ delaySeconds });
    return;
  }

  const deadQueue = env.CLICKS_DEAD as DeadLetterQueue | undefined;
  const poison = new Set<number>();
  await Promise.all(
    result.rejected.map(async ({ index, reason }) => {
      poison.add(index);
      const message = messages[index]!;
      const letter: DeadLetter = {
        deadLetter: {
          reason: reason.length > MAX_REASON ? `${reason.slice(0, MAX_REASON - 1)}…` : reason,
          queue: batch.queue,
          messageId: message.id,
          attempts: message.attempts,
          at: new Date().toISOString(),
        },
        body: message.body,
      };
      let error: string | undefined = deadQueue ? undefined : 'no CLICKS_DEAD binding';
      if (deadQueue) {
        try {
          await deadQueue.send(letter, { contentType: 'json' });
        } catch (err) {
          error = err instanceof Error ? err.message : String(err);
        }
      }
      if (error === undefined) message.ack();
      else message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
      logger.log('warn', error === undefined ? 'click event dead-lettered' : 'click event refused; retried until Queues dead-letters it', {
        queue: batch.queue,
        messageId: message.id,
        reason: letter.deadLetter.reason,
        ...(error === undefined ? {} : { error }),
      });
    }),
  );
  messages.forEach((message, index) => {
    if (!poison.has(index)) message.ack();
  });
  logger.log('debug', 'click batch stored', {
    queue: batch.queue,
    size: messages.length,
    stored: result.stored,
    duplicates: result.duplicates,
    rejected: result.rejected.length,
    attempts,
  });
}

/** A purge round removes at most this many rows per table; a run goes on while rounds come back full. */
const PURGE_ROUND = 5000;
const PURGE_MAX_ROUNDS = 40;

/** Deletes raw clicks older than the retention (rollups stay); throws if the database fails, so the run shows as failed. */
export async function purgeExpired(env: WorkerEnv, now = new Date()): Promise<PurgeResult> {
  const entry = consumerFor(env);
  if ('error' in entry) throw new Error('hop is misconfigured; see the error logged at start');
  const { clicks, logger, retentionDays } = entry;
  let removed = 0;
  let rounds = 0;
  try {
    for (let n = PURGE_ROUND; n >= PURGE_ROUND && rounds < PURGE_MAX_ROUNDS; rounds++) {
      n = await clicks.purge(now, retentionDays, PURGE_ROUND);
      removed += n;
    }
  } catch (err) {
    logger.log('error', 'click purge failed', { removed, rounds, retentionDays, ...describeError(err) });
    throw err;
  }
  logger.log(removed ? 'info' : 'debug', 'raw clicks purged', { removed, rounds, retentionDays });
  return { removed, rounds };
}

export default {
  async queue(batch: QueueBatch, env: WorkerEnv, ctx?: { waitUntil(work: Promise<unknown>): void }): Promise<void> {
    await consume(batch, env);
    const entry = consumerFor(env);
    const flushed = 'error' in entry ? undefined : entry.tracer?.flush();
    if (flushed) {
      if (ctx) ctx.waitUntil(flushed);
      else await flushed;
    }
  },

  async scheduled(controller: { scheduledTime: number }, env: WorkerEnv): Promise<void> {
    await purgeExpired(env, new Date(controller.scheduledTime));
  },
};
