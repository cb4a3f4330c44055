/**
 * The worker thread of click-thread.ts: opens its own connection to the embedded database and runs the clicks
 * service on the batches the main thread posts, answering each with its result or the error's message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfig } from '../config.ts';
import { createClicksRepository } from '../modules/clicks/clicks.repository.ts';
import { createClicksService } from '../modules/clicks/clicks.service.ts';
import { createLogger } from '../platform/logger.ts';
import type { ThreadReply, ThreadRequest } from './click-thread.ts';
import { openDatabase } from './database.ts';

const config = loadConfig((workerData as { env: Record<string, string | undefined> }).env);
const logger = createLogger({ level: config.logLevel });
const db = await openDatabase(config, logger);
const clicks = createClicksService(createClicksRepository(db.orm));
const port = parentPort!;

// One request at a time, in order: batches must not race each other for the write lock.
let queue = Promise.resolve();
port.on('message', (request: ThreadRequest) => {
  queue = queue.then(async () => {
    let reply: ThreadReply;
    try {
      if (request.op === 'ingest') reply = { id: request.id, ok: await clicks.ingest(request.messages) };
      else if (request.op === 'purge') reply = { id: request.id, ok: await clicks.purge(new Date(request.now), request.retentionDays) };
      else {
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
