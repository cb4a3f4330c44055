/**
 * What the Node and Bun entries share: configuration from the environment, the database (migrated and
 * bootstrapped when embedded) with the native fast paths a runtime provides for it (the redirect's prepared read,
 * the click thread), the composed process (src/composition/process.ts), and the drain on SIGTERM/SIGINT. Each
 * entry adds only its own HTTP server.
 */
import { hostname } from 'node:os';
import type { App } from '../app.ts';
import { composeProcess, type ProcessProvided } from '../composition/process.ts';
import { ConfigError, loadServerConfig, type Config, type ServerConfig } from '../config.ts';
import { createLogger, type Logger } from '../platform/logger.ts';
import { createThreadedClicks } from './click-thread.ts';
import { closeShards, DatabaseOpenError, embeddedPath, migrateDatabase, openDatabase, openShards, type OpenedDatabase } from './database.ts';
import type { SupervisorHooks } from './cluster-worker.ts';
import { createEmbeddedLookup } from './embedded-lookup.ts';
import { releaseLoadingGarbage } from './heap.ts';
import { createScopes } from './scopes.ts';
import { createMetrics } from '../platform/metrics.ts';
import { listenForMetrics } from './metrics-listener.ts';
import { collectProcessMetrics } from './process-metrics.ts';
import type { ScopeStore } from '../platform/tracing.ts';

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
  app: App;
  /** The port of the HOP_METRICS_ADDR listener, when this process has one. */
  metricsPort: number | undefined;
  /** Turns /readyz to 503 (the drain's first step). */
  drain(): void;
  isDraining(): boolean;
  /** Stores the buffered clicks, then closes the database connections. */
  close(): Promise<void>;
}

/** What an entry knows of its server: the client's address of a request (the connection's peer). */
export interface ServerOptions extends Pick<ProcessProvided, 'clientIp'> {
  /** A worker of several (cluster-worker.ts): the supervisor migrated and bootstrapped, and keeps what is the host's. */
  host?: SupervisorHooks['provided'] | undefined;
}

/** The database of a Node or Bun process, migrated when embedded, with a server's native fast paths. */
export async function openProcessDatabase(
  config: ServerConfig,
  logger: Logger,
  env: Record<string, string | undefined>,
  role: 'serve' | 'consume',
  host?: ServerOptions['host'],
  scopes?: ScopeStore,
) {
  const db = await openDatabase(config, logger, scopes);
  // A worker's supervisor migrated before forking it.
  if (db.mode === 'embedded' && !host) await migrateDatabase(db);
  const shards = await openShards(config, db, { logger, scopes });
  // The API role reads no redirect and handles no click. With shards, neither native path applies: both are of
  // one database, and links and clicks are on the shards.
  const embedded = !shards && db.mode === 'embedded' && role === 'serve' && config.role !== 'api';
  const remote = !shards && db.mode === 'remote' && role === 'serve' && config.role !== 'api';
  return {
    db,
    shards,
    // A plain embedded file gets the prepared-once read; a replica's file is managed by its sync, so it keeps the
    // portable read through the client.
    redirectLookup: embedded ? createEmbeddedLookup(embeddedPath(config.databaseUrl)) : undefined,
    // On an embedded file the consumer runs in a worker thread, off the redirects' event loop: the file is written
    // synchronously. Over the network (sqld, Turso) the wait is asynchronous and it runs on the main thread: a second
    // isolate cost 30 MB at idle and more at peak for no more redirects served (docs/architecture.md, "The consumer").
    // A worker's clicks go to its supervisor's thread: one writer for the whole host.
    clickStore: config.clicks && (embedded || (remote && host)) ? (host?.clickStore ?? createThreadedClicks(env, logger)) : undefined,
    // Unique per process, and readable in XINFO CONSUMERS: which host and process holds an entry.
    consumerName: `${hostname()}-${process.pid}-${crypto.randomUUID().slice(0, 6)}`,
  };
}

export async function prepare(env: Record<string, string | undefined>, runtime: string, options: ServerOptions = {}): Promise<Prepared> {
  const config = loadServerConfig(env);
  // Which span is current (traces, log lines' trace ids) and a request's database and cache time (Server-Timing).
  const scopes = createScopes();
  const logger = createLogger({ level: config.logLevel, span: () => scopes.get()?.span });
  const { host } = options;
  const { db, shards, redirectLookup, clickStore, consumerName } = await openProcessDatabase(config, logger, env, 'serve', host, scopes);
  let draining = false;
  const metrics = host?.metrics ?? createMetrics();
  const stopSampling = config.metrics.enabled ? await collectProcessMetrics(metrics) : () => {};
  const hop = await composeProcess(
    config,
    { ...host, metrics, db, shards, logger, redirectLookup, clickStore, consumerName, scopes, clientIp: options.clientIp, draining: () => draining },
    'serve',
  );
  // HOP_METRICS_ADDR: a listener of its own; a worker of several leaves it to its supervisor, which serves the host's.
  const metricsListener = config.metrics.listen && !host ? await listenForMetrics(config.metrics.listen, () => metrics.render(), logger) : undefined;
  if (db.mode === 'embedded' && !host) {
    const created = await hop.services.workspaces.bootstrapDefaultWorkspace(new Date());
    if (created) announceKey(config, created);
  }
  logger.log('debug', 'prepared', { runtime, role: config.role, database: db.mode, clicks: hop.clicks?.description ?? 'off', cache: config.cache.mode });
  releaseLoadingGarbage();
  return {
    config,
    logger,
    db,
    app: hop.app!,
    metricsPort: metricsListener?.port,
    drain: () => void (draining = true),
    isDraining: () => draining,
    async close() {
      // Clicks still buffered are stored before the database closes.
      await metricsListener?.close();
      stopSampling();
      await hop.clicks?.close();
      await clickStore?.close();
      redirectLookup?.close();
      closeShards(shards);
      db.close();
      await hop.tracer?.flush();
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
  let stopping: Promise<void> | undefined;
  // Asked again (a second signal), it answers the drain already under way.
  const shutdown = (signal: string) => (stopping ??= drain(signal));
  async function drain(signal: string) {
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
