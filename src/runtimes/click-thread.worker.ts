/**
 * The worker thread of click-thread.ts: opens its own connection to hop's database and runs the clicks service on
 * the batches the main thread posts, answering each with its result or the error's message. On an embedded file the
 * writes go through embedded-writer.ts (statements prepared once); on a remote primary (sqld, Turso) through this
 * thread's own libSQL client over HTTP.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadServerConfig } from '../config.ts';
import { composeClicksService } from '../composition/clicks.ts';
import { createLogger } from '../platform/logger.ts';
import type { ThreadReply, ThreadRequest } from './click-thread.ts';
import { embeddedPath, openDatabase } from './database.ts';
import { createEmbeddedWriter } from './embedded-writer.ts';
import { releaseLoadingGarbage } from './heap.ts';

const config = loadServerConfig((workerData as { env: Record<string, string | undefined> }).env);
const logger = createLogger({ level: config.logLevel });
const db = await openDatabase(config, logger);
// This thread exists for a plain embedded file, and for a supervisor's remote primary (server.ts, cluster.ts).
const writer =
  db.mode === 'embedded'
    ? createEmbeddedWriter(embeddedPath(config.databaseUrl), {
        busyTimeoutMs: config.databaseBusyTimeoutMs,
        syncEachCommit: config.queue !== 'memory',
      })
    : undefined;
const clicks = composeClicksService(db, writer);
const port = parentPort!;
releaseLoadingGarbage();

// One request at a time, in order: batches must not race each other for the write lock.
let queue = Promise.resolve();
port.on('message', (request: ThreadRequest) => {
  queue = queue.then(async () => {
    let reply: ThreadReply;
    try {
      if (request.op === 'ingest') reply = { id: request.id, ok: await clicks.ingest(request.messages) };
      else if (request.op === 'purge') reply = { id: request.id, ok: await clicks.purge(new Date(request.now), request.retentionDays) };
      else {
        writer?.close();
        db.close();
        port.postMessage({ id: request.id, ok: true } satisfies ThreadReply);
        port.close();
        return;
      }
    } catch (err) {
      reply = { id: request.id, error: err instanceof Error ? err.message : String(err) };
    }
    port.postMessage(reply);
  });
});
