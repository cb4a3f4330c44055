/**
 * The in-process queue: messages gather in memory and go to the consumer in batches, on size (`maxBatch`), on
 * time (`maxWaitMs` after the first message) and on close (shutdown). A batch whose handler fails (the database
 * busy or unreachable) is kept and retried with backoff, so a click is lost only if the process dies first; the
 * buffer is bounded, and what would overflow it is dropped and counted rather than growing without end.
 *
 * Messages are kept as a list of batches, so taking a batch never copies the backlog behind it (under load the
 * backlog is what grows). Batches go one at a time and in order by default; a producer to a remote queue, where
 * order does not matter and each batch waits for a round trip, sends several at once (`maxInFlight`).
 */
import type { Logger } from '../logger.ts';
import { createBackoff } from '../resilience.ts';
import type { BatchHandler, QueueProducer } from './queue.ts';

export interface MemoryQueueOptions<T> {
  handle: BatchHandler<T>;
  logger: Logger;
  maxBatch?: number;
  maxWaitMs?: number;
  /** Messages held at most while the consumer fails or lags; beyond it new messages are dropped (and counted). */
  maxBuffered?: number;
  /** Batches handed to `handle` at once (default 1: one after another, in order). */
  maxInFlight?: number;
}

export interface MemoryQueue<T> extends QueueProducer<T> {
  /** Sends what is buffered now and resolves when it is stored (or has failed and stays buffered). */
  flush(): Promise<void>;
  /** Flushes, retrying for up to `deadlineMs`, then stops the timers. */
  close(deadlineMs?: number): Promise<void>;
  stats(): { buffered: number; dropped: number; delivered: number; rejected: number; failures: number };
}

export function createMemoryQueue<T>(options: MemoryQueueOptions<T>): MemoryQueue<T> {
  const { handle, logger } = options;
  const maxBatch = options.maxBatch ?? 100;
  const maxWaitMs = options.maxWaitMs ?? 1000;
  const maxBuffered = options.maxBuffered ?? 100_000;
  const maxInFlight = options.maxInFlight ?? 1;
  // Batches not yet handed out, oldest first, from `head` on; the last one may still be filling.
  let batches: T[][] = [];
  let head = 0;
  // Messages not yet stored: waiting in `batches` or handed out.
  let buffered = 0;
  let inFlight = 0;
  // Set once the oldest waiting message has waited maxWaitMs (or on flush): batches go out before they are full.
  let due = false;
  const backoff = createBackoff({ firstMs: 100, maxMs: 30_000 });
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let waitTimer: ReturnType<typeof setTimeout> | undefined;
  const idle: Array<() => void> = [];
  let closed = false;
  const counts = { dropped: 0, delivered: 0, rejected: 0, failures: 0 };

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

  /** The oldest batch, if it may go: full, or its wait is over. */
  function take(): T[] | undefined {
    const next = batches[head];
    if (!next || (!due && next.length < maxBatch)) return undefined;
    batches[head++] = [];
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
    try {
      const { rejected } = await handle(batch);
      buffered -= batch.length;
      counts.delivered += batch.length - rejected.length;
      counts.rejected += rejected.length;
      for (const r of rejected) logger.log('warn', 'click event rejected', { reason: r.reason });
      backoff.reset();
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
        counts.dropped += 1;
        return;
      }
      buffered += 1;
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
  };
}
