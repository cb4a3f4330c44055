/**
 * The Node entry: reads configuration from process.env, opens the database (migrating and bootstrapping the
 * embedded one), serves createApp with @hono/node-server, and drains on SIGTERM/SIGINT.
 * Run directly (`node src/runtimes/node.ts`) or through `hop serve` / `npm start`.
 */
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createApp } from '../app.ts';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { createLogger } from '../platform/logger.ts';
import { createServices } from '../services.ts';
import { embeddedPath, isEmbedded, migrateDatabase, openDatabase } from './database.ts';
import { createEmbeddedLookup } from './embedded-lookup.ts';

const SHUTDOWN_DEADLINE_MS = 10_000;

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

export async function startNode(env: Record<string, string | undefined>) {
  const config = loadConfig(env);
  const logger = createLogger({ level: config.logLevel });
  const db = await openDatabase(config);
  if (isEmbedded(config.databaseUrl)) {
    await migrateDatabase(db);
    const created = await createServices(db.orm, config).workspaces.bootstrapDefaultWorkspace(new Date());
    if (created) announceKey(config, created);
  }

  const redirectLookup = isEmbedded(config.databaseUrl) ? createEmbeddedLookup(embeddedPath(config.databaseUrl)) : undefined;
  let draining = false;
  const app = createApp({ config, db, logger, redirectLookup, draining: () => draining });
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new StartError(`${config.host}:${config.port} is already in use; set PORT to another port.`)
          : err,
      ),
    );
  });
  const address = server.address() as AddressInfo;
  logger.log('info', 'listening', { url: `http://${config.host}:${address.port}`, baseUrl: config.baseUrl });

  /**
   * SIGTERM (an orchestrator): /readyz turns 503 for HOP_SHUTDOWN_DELAY_MS while requests are still served, so
   * load balancers stop sending traffic, then the server stops accepting and finishes what is in flight.
   * SIGINT (Ctrl-C at a terminal) skips the delay.
   */
  async function shutdown(signal: string) {
    if (draining) return;
    draining = true;
    const delayMs = signal === 'SIGTERM' ? config.shutdownDelayMs : 0;
    logger.log('info', 'shutting down', { signal, delayMs });
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    const timer = setTimeout(() => {
      logger.log('warn', 'shutdown deadline passed; closing open connections');
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    }, SHUTDOWN_DEADLINE_MS);
    timer.unref();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    clearTimeout(timer);
    redirectLookup?.close();
    db.close();
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  return { server, port: address.port, shutdown };
}

/** A start-up failure with a message meant for the operator (no stack). */
export class StartError extends Error {
  override name = 'StartError';
}

export async function main(env: Record<string, string | undefined> = process.env) {
  try {
    await startNode(env);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof StartError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
