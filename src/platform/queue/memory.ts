/**
 * The in-process queue: messages gather in memory and go to the consumer in batches, on size (`maxBatch`), on
 * time (`maxWaitMs` after the first message) and on close (shutdown). A batch whose handler fails (the database
 * busy or unreachable) is kept and retried with backoff, so a click is lost only if the process dies first; the
 * buffer is bounded, and what would overflow it is dropped and counted rather than growing without end.
 */
import type { Logger } from '../logger.ts';
import type { BatchHandler, QueueProducer } from './queue.ts';

export interface MemoryQueueOptions<T> {
  handle: BatchHandler<T>;
  logger: Logger;
  maxBatch?: number;
  maxWaitMs?: number;
  /** Messages held at most while the consumer fails; beyond it new messages are dropped (and counted). */
  maxBuffered?: number;
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
  let buffer: T[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  let backoffMs = 0;
  let closed = false;
  const counts = { dropped: 0, delivered: 0, rejected: 0, failures: 0 };

  function schedule(delayMs: number) {
    if (timer || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      void drain();
    }, delayMs);
    (timer as { unref?: () => void }).unref?.();
  }

  /** Sends batches until the buffer is empty or a batch fails; one drain at a time, in order. */
  function drain(): Promise<void> {
    if (running) return running;
    // Nothing to send: returning here also keeps `running` from holding a promise that already settled.
    if (!buffer.length) return Promise.resolve();
    running = (async () => {
      try {
        while (buffer.length) {
          const batch = buffer.slice(0, maxBatch);
          try {
            const { rejected } = await handle(batch);
            buffer = buffer.slice(batch.length);
            counts.delivered += batch.length - rejected.length;
            counts.rejected += rejected.length;
            for (const r of rejected) logger.log('warn', 'click event rejected', { reason: r.reason });
            backoffMs = 0;
          } catch (err) {
            counts.failures += 1;
            backoffMs = Math.min(backoffMs ? backoffMs * 2 : 100, 30_000);
            logger.log('warn', 'click batch not stored; will retry', {
              size: batch.length,
              retryInMs: backoffMs,
              error: err instanceof Error ? err.message : String(err),
            });
            schedule(backoffMs);
            return;
          }
        }
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  return {
    send(message) {
      if (buffer.length >= maxBuffered) {
        counts.dropped += 1;
        return;
      }
      buffer.push(message);
      if (buffer.length >= maxBatch && !backoffMs) void drain();
      else schedule(backoffMs || maxWaitMs);
    },
    async flush() {
      if (running) await running;
      await drain();
    },
    async close(deadlineMs = 5000) {
      const deadline = Date.now() + deadlineMs;
      clearTimeout(timer);
      timer = undefined;
      while (buffer.length && Date.now() < deadline) {
        await this.flush();
        if (buffer.length) await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, deadline - Date.now()))));
      }
      closed = true;
      clearTimeout(timer);
      if (buffer.length) logger.log('error', 'click events lost at shutdown', { count: buffer.length });
    },
    stats: () => ({ buffered: buffer.length, ...counts }),
  };
}
