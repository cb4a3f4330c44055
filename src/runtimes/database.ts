/**
 * Opens hop's database on Node and Bun: a libSQL client for `file:` (embedded), `http(s)://` or `libsql://`
 * (sqld, Turso), and drizzle's migrator over the SQL files in migrations/.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@libsql/client';
import { migrate } from 'drizzle-orm/libsql/migrator';
import type { Config } from '../config.ts';
import { createDatabase, reopeningClient, type Database } from '../platform/db/client.ts';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations', import.meta.url));

export const isEmbedded = (url: string) => url.startsWith('file:');

/** The file of a `file:` URL (`file:./data/hop.db`, `file:///var/hop.db`), without its query. */
export function embeddedPath(url: string): string {
  const rest = url.slice('file:'.length).split('?')[0]!;
  return rest.startsWith('//') ? fileURLToPath(`file:${rest}`) : rest;
}

export async function openDatabase(
  config: Pick<Config, 'databaseUrl' | 'databaseAuthToken' | 'databaseBusyTimeoutMs'>,
): Promise<Database> {
  const url = config.databaseUrl;
  if (isEmbedded(url)) {
    const path = embeddedPath(url);
    if (path && path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true });
  }
  const client = reopeningClient(() =>
    createClient({ url, authToken: config.databaseAuthToken, timeout: config.databaseBusyTimeoutMs }),
  );
  // WAL lets readers proceed while a write commits; the setting is stored in the file.
  if (isEmbedded(url)) await client.execute('pragma journal_mode = wal');
  return createDatabase(client);
}

export async function migrateDatabase(db: Database): Promise<void> {
  await migrate(db.orm, { migrationsFolder: MIGRATIONS_FOLDER });
}
