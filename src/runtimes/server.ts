/**
 * What the Node and Bun entries share: configuration from the environment, the database (migrated and
 * bootstrapped when embedded), the redirect's fastest read for that database, the app, and the drain on
 * SIGTERM/SIGINT. Each entry adds only its own HTTP server.
 */
import { createApp, type AppDeps } from '../app.ts';
import { ConfigError, loadServerConfig, type Config, type ServerConfig } from '../config.ts';
import { createLogger, type Logger } from '../platform/logger.ts';
import { createClicksRepository } from '../modules/clicks/clicks.repository.ts';
import { createClicksService } from '../modules/clicks/clicks.service.ts';
import { createRedisRateLimitStore } from '../platform/ratelimit/redis.ts';
import { createRedisRestClient } from '../platform/redis.ts';
import { createServices } from '../services.ts';
import { createMetrics } from '../platform/metrics.ts';
import { invalidatingStore, startClickPipeline } from './click-pipeline.ts';
import { createThreadedClicks } from './click-thread.ts';
import { DatabaseOpenError, embeddedPath, migrateDatabase, openDatabase, type OpenedDatabase } from './database.ts';
import { createEmbeddedLookup } from './embedded-lookup.ts';

/** Prints the one-time admin key of a freshly created default workspace. */
export function announceKey(config: Config, created: { id: string; apiKey: { key: string } }, write = console.log) {
  const key = created.apiKey.key;
  write(
    [
      '',
      '  ┌───────────────────────────────────────────────────────────────────────────┐',
      '  │ hop created the "default" workspace. Its admin API key is shown ONCE:     │',
      '  └───────────────────────────────────────────────────────────────────────────┘',
      '',
      `    export HOP_KEY=${key}`,
      '',
      `    workspace: ${created.id}`,
      `    try:       curl -H "Authorization: Bearer $HOP_KEY" ${config.baseUrl}/v1/workspace`,
      '',
      '  Store it now (a password manager, a secret store); hop keeps only its hash.',
      '',
    ].join('\n'),
  );
}

/** A start-up failure with a message meant for the operator (no stack). */
export class StartError extends Error {
  override name = 'StartError';
}

export interface Prepared {
  config: ServerConfig;
  logger: Logger;
  db: OpenedDatabase;
  app: ReturnType<typeof createApp>;
  /** Turns /readyz to 503 (the drain's first step). */
  drain(): void;
  isDraining(): boolean;
  /** Stores the buffered clicks, then closes the database connections. */
  close(): Promise<void>;
}

/** What an entry knows of its server: the client's address of a request (the connection's peer). */
export type ServerOptions = Pick<AppDeps, 'clientIp'>;

export async function prepare(env: Record<string, string | undefined>, runtime: string, options: ServerOptions = {}): Promise<Prepared> {
  const config = loadServerConfig(env);
  const logger = createLogger({ level: config.logLevel });
  const db = await openDatabase(config, logger);
  if (db.mode === 'embedded') await migrateDatabase(db);
  // A plain embedded file gets the prepared-once read; a replica's file is managed by its sync, so it keeps the
  // portable read through the client.
  const redirectLookup = db.mode === 'embedded' ? createEmbeddedLookup(embeddedPath(config.databaseUrl)) : undefined;
  const metrics = createMetrics();
  const services = createServices(db.orm, config, { redirectLookup, logger, metrics });
  if (db.mode === 'embedded') {
    const created = await services.workspaces.bootstrapDefaultWorkspace(new Date());
    if (created) announceKey(config, created);
  }
  let draining = false;
  // An embedded file is written synchronously: its consumer runs in a worker thread, off the redirects' event loop.
  const thread = config.clicks && db.mode === 'embedded' ? createThreadedClicks(env, logger) : undefined;
  const stored = thread ?? (config.clicks ? createClicksService(createClicksRepository(db.orm)) : undefined);
  const store = stored && invalidatingStore(stored, services.invalidation);
  const clicks = store
    ? await startClickPipeline(config, logger, store, {
        produce: true,
        consume: config.clickConsumer,
        metrics,
      })
    : undefined;
  // Retries would only delay the request past its deadline; a failing store is degraded by the app (guard.ts).
  const rateLimitStore =
    config.rateLimit.mode === 'redis' && config.redis && config.rateLimit.salt
      ? createRedisRateLimitStore({
          redis: createRedisRestClient({ ...config.redis, timeoutMs: config.rateLimit.timeoutMs, retries: 0 }),
          salt: config.rateLimit.salt,
        })
      : undefined;
  const app = createApp({
    config,
    db,
    logger,
    metrics,
    services,
    draining: () => draining,
    clickQueue: clicks?.queue,
    rateLimitStore,
    clientIp: options.clientIp,
  });
  logger.log('debug', 'prepared', { runtime, database: db.mode, clicks: clicks?.description ?? 'off', cache: config.cache.mode });
  return {
    config,
    logger,
    db,
    app,
    drain: () => void (draining = true),
    isDraining: () => draining,
    async close() {
      // Clicks still buffered are stored before the database closes.
      await clicks?.close();
      await thread?.close();
      redirectLookup?.close();
      db.close();
    },
  };
}

const SHUTDOWN_DEADLINE_MS = 10_000;
export interface Stoppable {
  /** Stops accepting connections and resolves when in-flight requests have finished. */
  stop(): Promise<void>;
  /** Drops every open connection (after the deadline). */
  stopNow(): void;
}

/**
 * SIGTERM (an orchestrator): /readyz turns 503 for HOP_SHUTDOWN_DELAY_MS while requests are still served, so
 * load balancers stop sending traffic, then the server stops accepting and finishes what is in flight.
 * SIGINT (Ctrl-C at a terminal) skips the delay. Returns the shutdown function for tests and embedders.
 */
export function drainOnSignals(prepared: Prepared, server: Stoppable) {
  const { config, logger } = prepared;
  async function shutdown(signal: string) {
    if (prepared.isDraining()) return;
    prepared.drain();
    const delayMs = signal === 'SIGTERM' ? config.shutdownDelayMs : 0;
    logger.log('info', 'shutting down', { signal, delayMs });
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    const timer = setTimeout(() => {
      logger.log('warn', 'shutdown deadline passed; closing open connections');
      server.stopNow();
    }, SHUTDOWN_DEADLINE_MS);
    (timer as { unref?: () => void }).unref?.();
    await server.stop();
    clearTimeout(timer);
    await prepared.close();
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  return shutdown;
}

/** Runs an entry's start, printing operator errors (bad configuration, busy port, unreachable primary) without a stack. */
export async function runEntry(start: () => Promise<unknown>) {
  try {
    await start();
  } catch (err) {
    if (err instanceof ConfigError || err instanceof StartError || err instanceof DatabaseOpenError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
}
