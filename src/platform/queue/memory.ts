/**
 * The in-process queue: messages gather in memory and go to the consumer in batches, on size (`maxBatch`), on
 * time (`maxWaitMs` after the first message) and on close (shutdown). A batch whose handler fails (the database
 * busy or unreachable) is kept and retried with backoff, so a message is lost only if the process dies first.
 *
 * Batches grow with the backlog: while one is being handled the next ones gather, and the next hand-out takes
 * everything waiting up to `maxBatchUnderLoad` (one write of 1,000 clicks costs far less per click than ten of 100).
 * The buffer is bounded: at `maxBuffered` the queue refuses the message (`send` throws an `overloaded` AppError),
 * so the caller answers 503 with Retry-After instead of losing what it was asked to record; nothing is dropped.
 *
 * Messages are kept as a list of batches, so taking a batch never copies the backlog behind it (under load the
 * backlog is what grows). Batches go one at a time and in order by default; a producer to a remote queue, where
 * order does not matter and each batch waits for a round trip, sends several at once (`maxInFlight`).
 */
import { AppError } from '../../errors.ts';
import type { Logger } from '../logger.ts';
import { createBackoff } from '../resilience.ts';
import type { BatchHandler, QueueProducer } from './queue.ts';

export interface MemoryQueueOptions<T> {
  handle: BatchHandler<T>;
  logger: Logger;
  /** A batch this full goes at once, without waiting for `maxWaitMs`. */
  maxBatch?: number;
  /** The largest batch handed out when a backlog waits (default `maxBatch`: batches do not grow). */
  maxBatchUnderLoad?: number;
  maxWaitMs?: number;
  /** Messages held at most while the consumer fails or lags; at the bound `send` refuses (and counts) new ones. */
  maxBuffered?: number;
  /** Seconds a refused caller is told to wait (Retry-After). */
  retryAfterS?: number;
  /** Batches handed to `handle` at once (default 1: one after another, in order). */
  maxInFlight?: number;
}

export interface MemoryQueue<T> extends QueueProducer<T> {
  /** Sends what is buffered now and resolves when it is stored (or has failed and stays buffered). */
  flush(): Promise<void>;
  /** Flushes, retrying for up to `deadlineMs`, then stops the timers. */
  close(deadlineMs?: number): Promise<void>;
  stats(): MemoryQueueStats;
  /** The oldest message still held (handed out or waiting), for the age of the backlog; undefined when none is. */
  oldest(): T | undefined;
}

export interface MemoryQueueStats {
  /** Messages held now: waiting or being handled. */
  buffered: number;
  /** The most ever held at once (the backlog's high-water mark). */
  highWater: number;
  /** Messages `send` refused because the buffer was full (their callers were told to retry). */
  refused: number;
  /** Handled and accepted by the consumer. */
  delivered: number;
  /** Handled and refused for good by the consumer (dead letters). */
  rejected: number;
  /** Batches whose handling failed (kept and retried). */
  failures: number;
  /** Batches handed out, and the largest of them. */
  batches: number;
  largestBatch: number;
}

/** Refused with this when the buffer is full; the HTTP layer answers 503 with Retry-After. */
function queueFull(retryAfterS: number): AppError {
  return new AppError('overloaded', 'Too many visits to record right now; retry shortly.', { retryAfterS });
}

export function createMemoryQueue<T>(options: MemoryQueueOptions<T>): MemoryQueue<T> {
  const { handle, logger } = options;
  const maxBatch = options.maxBatch ?? 100;
  const maxBatchUnderLoad = Math.max(maxBatch, options.maxBatchUnderLoad ?? maxBatch);
  const retryAfterS = options.retryAfterS ?? 1;
  const maxWaitMs = options.maxWaitMs ?? 1000;
  const maxBuffered = options.maxBuffered ?? 100_000;
  const maxInFlight = options.maxInFlight ?? 1;
  // Batches not yet handed out, oldest first, from `head` on; the last one may still be filling.
  let batches: T[][] = [];
  let head = 0;
  // Messages not yet stored: waiting in `batches` or handed out.
  let buffered = 0;
  let inFlight = 0;
  // The batches handed out and not yet settled, oldest first (Set keeps insertion order).
  const handedOut = new Set<T[]>();
  // Set once the oldest waiting message has waited maxWaitMs (or on flush): batches go out before they are full.
  let due = false;
  const backoff = createBackoff({ firstMs: 100, maxMs: 30_000 });
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let waitTimer: ReturnType<typeof setTimeout> | undefined;
  const idle: Array<() => void> = [];
  let closed = false;
  const counts = { highWater: 0, refused: 0, delivered: 0, rejected: 0, failures: 0, batches: 0, largestBatch: 0 };
  // Refusals of the current episode: logged when it starts and when the backlog is down to half again.
  let refusing = 0;

  const waiting = () => batches.length - head;
  const unref = (t: ReturnType<typeof setTimeout>) => (t as { unref?: () => void }).unref?.();

  function startWait() {
    if (waitTimer || closed) return;
    waitTimer = setTimeout(() => {
      waitTimer = undefined;
      due = true;
      pump();
    }, maxWaitMs);
    unref(waitTimer);
  }

  /** The oldest batch, if it may go (full, or its wait is over), with the batches behind it up to maxBatchUnderLoad. */
  function take(): T[] | undefined {
    const first = batches[head];
    if (!first || (!due && first.length < maxBatch)) return undefined;
    const parts = [first];
    let size = first.length;
    batches[head++] = [];
    while (head < batches.length && size + batches[head]!.length <= maxBatchUnderLoad) {
      size += batches[head]!.length;
      parts.push(batches[head]!);
      batches[head++] = [];
    }
    const next = parts.length === 1 ? first : parts.flat();
    counts.batches += 1;
    if (next.length > counts.largestBatch) counts.largestBatch = next.length;
    // Drop the handed-out slots now and then rather than shifting the array on every batch.
    if (head > 1024 && head * 2 > batches.length) {
      batches = batches.slice(head);
      head = 0;
    }
    return next;
  }

  /** Hands batches to the handler, up to `maxInFlight` at once; none while waiting to retry a failure. */
  function pump() {
    while (inFlight < maxInFlight && !retryTimer) {
      const batch = take();
      if (!batch) break;
      inFlight += 1;
      void deliver(batch);
    }
    if (!waiting()) due = false;
    else if (!due) startWait();
    if (!inFlight) for (const resolve of idle.splice(0)) resolve();
  }

  async function deliver(batch: T[]) {
    handedOut.add(batch);
    try {
      const { rejected } = await handle(batch);
      buffered -= batch.length;
      counts.delivered += batch.length - rejected.length;
      counts.rejected += rejected.length;
      for (const r of rejected) logger.log('warn', 'click event rejected', { reason: r.reason });
      backoff.reset();
      if (refusing && buffered * 2 <= maxBuffered) {
        logger.log('info', 'queue accepting again', { refused: refusing, buffered });
        refusing = 0;
      }
    } catch (err) {
      counts.failures += 1;
      // Back at the front: it goes first once the consumer answers again.
      if (head > 0) batches[--head] = batch;
      else batches.unshift(batch);
      if (!retryTimer && !closed) {
        retryTimer = setTimeout(() => {
          retryTimer = undefined;
          due = true;
          pump();
        }, backoff.fail());
        unref(retryTimer);
      }
      logger.log('warn', 'click batch not stored; will retry', {
        size: batch.length,
        retryInMs: backoff.ms,
        error: err instanceof Error ? err.message : String(err),
      });
    }
    handedOut.delete(batch);
    inFlight -= 1;
    pump();
  }

  /** Hands out everything waiting (a failed batch included, its backoff cut short) and waits until none is out. */
  async function flush() {
    clearTimeout(retryTimer);
    retryTimer = undefined;
    due = true;
    pump();
    while (inFlight) await new Promise<void>((resolve) => idle.push(resolve));
  }

  return {
    send(message) {
      if (buffered >= maxBuffered) {
        counts.refused += 1;
        if (!refusing++) logger.log('warn', 'queue full; refusing new messages until it drains', { buffered, maxBuffered });
        throw queueFull(retryAfterS);
      }
      buffered += 1;
      if (buffered > counts.highWater) counts.highWater = buffered;
      const last = waiting() ? batches[batches.length - 1]! : undefined;
      if (last && last.length < maxBatch) last.push(message);
      else batches.push([message]);
      if (batches[head]!.length >= maxBatch || due) pump();
      else startWait();
    },
    flush,
    async close(deadlineMs = 5000) {
      const deadline = Date.now() + deadlineMs;
      clearTimeout(waitTimer);
      waitTimer = undefined;
      await flush();
      while (buffered && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, deadline - Date.now()))));
        await flush();
      }
      closed = true;
      clearTimeout(waitTimer);
      clearTimeout(retryTimer);
      if (buffered) logger.log('error', 'click events lost at shutdown', { count: buffered });
    },
    stats: () => ({ buffered, ...counts }),
    oldest() {
      for (const batch of handedOut) if (batch.length) return batch[0];
      for (let i = head; i < batches.length; i++) if (batches[i]!.length) return batches[i]![0];
      return undefined;
    },
  };
}
