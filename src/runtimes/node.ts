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
    s.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  logger.log('info', 'listening', { url: `http://${config.host}:${address.port}`, baseUrl: config.baseUrl });

  async function shutdown(signal: string) {
    if (draining) return;
    draining = true;
    logger.log('info', 'shutting down', { signal });
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

export async function main(env: Record<string, string | undefined> = process.env) {
  try {
    await startNode(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
