/**
 * The click consumer in a worker thread on Node and Bun: for an embedded database, and for the supervisor of
 * `--workers` (the host's one writer, to a file or a remote primary). The embedded driver is synchronous: storing a
 * batch on the main thread would stall every redirect behind it, and ingestion could never use a second core. (One
 * process over a remote primary consumes on its main thread instead: over the network the wait is asynchronous,
 * and a second isolate cost more memory than it saved; server.ts.) The main thread only hands batches over
 * (structured clone) and the thread stores them through its own connection (on a file, WAL: one writer at a time,
 * readers never wait). Same interface as the clicks service, so the queue cannot tell the difference. A thread that
 * dies fails its pending batches (the queue keeps and retries them) and is replaced on the next call.
 */
import { Worker } from 'node:worker_threads';
import type { IngestResult } from '../modules/clicks/clicks.service.ts';
import type { Logger } from '../platform/logger.ts';

export type ThreadRequest =
  | { id: number; op: 'ingest'; messages: unknown[] }
  | { id: number; op: 'purge'; now: number; retentionDays: number }
  | { id: number; op: 'close' };
type Call = ThreadRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;
export type ThreadReply = { id: number; ok: unknown } | { id: number; error: string };

const ENTRY = new URL('./click-thread.worker.ts', import.meta.url);
/**
 * The thread's heap. V8 would size its young generation by the machine's memory (up to 128 MB, as much again as the
 * main thread); a batch of 1,000 clicks needs a few MB. Past the old generation's bound the thread dies, its batch is
 * failed back to the queue and retried by a new thread: memory stays bounded, no click is lost.
 */
const THREAD_LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 128 };

export function createThreadedClicks(env: Record<string, string | undefined>, logger: Logger) {
  let worker: Worker | undefined;
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  function start(): Worker {
    const w = new Worker(ENTRY, { workerData: { env }, resourceLimits: THREAD_LIMITS });
    // An idle thread must not keep the process alive, but one with work in flight must (a shutdown's last flush).
    w.unref();
    w.on('message', (reply: ThreadReply) => {
      const call = pending.get(reply.id);
      if (!call) return;
      pending.delete(reply.id);
      if (!pending.size) w.unref();
      if ('error' in reply) call.reject(new Error(reply.error));
      else call.resolve(reply.ok);
    });
    w.on('error', (err) => logger.log('error', 'click thread failed', { error: err.message }));
    w.on('exit', (code) => {
      if (worker === w) worker = undefined;
      for (const [id, call] of pending) {
        pending.delete(id);
        call.reject(new Error(`click thread exited with code ${code}`));
      }
    });
    return w;
  }

  function call<T>(request: Call): Promise<T> {
    worker ??= start();
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker!.ref();
      worker!.postMessage({ ...request, id });
    });
  }

  return {
    ingest: (messages: readonly unknown[]) => call<IngestResult>({ op: 'ingest', messages: [...messages] }),
    purge: (now: Date, retentionDays: number) => call<number>({ op: 'purge', now: now.getTime(), retentionDays }),
    /** Closes the thread's database and ends the thread; call after the queue has flushed. */
    async close() {
      if (!worker) return;
      const w = worker;
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      await call({ op: 'close' }).catch(() => undefined);
      w.ref();
      await exited;
    },
  };
}
