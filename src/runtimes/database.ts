/**
 * Opens hop's database on Node and Bun: a libSQL client for `file:` (embedded), `http(s)://` or `libsql://`
 * (sqld, Turso), or an embedded replica (`file:` plus HOP_DATABASE_SYNC_URL), each behind the guarded client
 * (deadlines, 503 when unreachable); and drizzle's migrator over the SQL files in migrations/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type Client } from '@libsql/client';
import { migrate } from 'drizzle-orm/libsql/migrator';
import type { Config } from '../config.ts';
import { createDatabase, deadlineFetch, guardedClient, type Database } from '../platform/db/client.ts';
import type { ShardSet } from '../platform/db/shards.ts';
import { LayoutMismatchError, openShardLayout, type WatchedShards } from '../platform/db/shard-layout.ts';
import type { ScopeStore } from '../platform/tracing.ts';
import type { Logger } from '../platform/logger.ts';
import { withDeadline } from '../platform/resilience.ts';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations', import.meta.url));

/**
 * Frames the write-ahead log may hold before a committing connection copies them back into the database file. The
 * click writer rewrites the same pages batch after batch (a link's rollups, its count, its index page): copied back
 * every 1,000 frames (SQLite's default) each was written back many times over; at 10,000 (about 40 MB of log) far
 * fewer (docs/perf-history.md).
 */
export const WAL_AUTOCHECKPOINT_FRAMES = 10_000;

export const isEmbedded = (url: string) => url.startsWith('file:');

/** The file of a `file:` URL (`file:./data/hop.db`, `file:///var/hop.db`), without its query. */
export function embeddedPath(url: string): string {
  const rest = url.slice('file:'.length).split('?')[0]!;
  return rest.startsWith('//') ? fileURLToPath(`file:${rest}`) : rest;
}

export type DatabaseConfig = Pick<
  Config,
  'databaseUrl' | 'databaseAuthToken' | 'databaseBusyTimeoutMs' | 'databaseTimeoutMs' | 'databaseWriters' | 'databaseQueueTimeoutMs' | 'databaseSyncUrl' | 'databaseSyncIntervalS'
>;

/** What kind of database a configuration names; the runtime entries decide migrations and the redirect read by it. */
export type DatabaseMode = 'embedded' | 'remote' | 'replica' | 'replica-offline';

export interface OpenedDatabase extends Database {
  mode: DatabaseMode;
}

export class DatabaseOpenError extends Error {
  override name = 'DatabaseOpenError';
}

/** `scopes`: the process's scope store, whose current span a remote database's requests carry (traceparent). */
export async function openDatabase(config: DatabaseConfig, logger?: Logger, scopes?: ScopeStore): Promise<OpenedDatabase> {
  const url = config.databaseUrl;
  const timeoutMs = config.databaseTimeoutMs;
  const authToken = config.databaseAuthToken;
  if (!isEmbedded(url)) {
    const client = guardedClient(
      // hop's gates bound the calls in flight and their wait (guardedClient); the client's own limit would queue
      // calls unseen, against their deadline. (0 does not lift it: the client reads it as "use the default".)
      () => createClient({ url, authToken, fetch: deadlineFetch(timeoutMs, scopes), concurrency: Number.MAX_SAFE_INTEGER }),
      { timeoutMs, queueTimeoutMs: config.databaseQueueTimeoutMs, remote: true, writers: config.databaseWriters },
    );
    return { ...createDatabase(client), mode: 'remote' };
  }

  const path = embeddedPath(url);
  if (path && path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true });
  if (config.databaseSyncUrl) return openReplica(config, path, logger);

  const client = guardedClient(() => createClient({ url, timeout: config.databaseBusyTimeoutMs }), { timeoutMs });
  // WAL lets readers proceed while a write commits; the setting is stored in the file.
  await client.execute('pragma journal_mode = wal');
  // Per connection: this one checkpoints as seldom as the click writer does, or each API write would copy back the
  // log the writer lets grow.
  await client.execute(`pragma wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_FRAMES}`);
  return { ...createDatabase(client), mode: 'embedded' };
}

/**
 * An embedded replica: reads from the local file, writes forwarded to the primary, changes pulled every
 * HOP_DATABASE_SYNC_INTERVAL_S. When the primary cannot be reached at start, a replica that has synced before
 * serves its local copy read-only (writes answer 503) and says so; one that never synced cannot start.
 */
async function openReplica(config: DatabaseConfig, path: string, logger?: Logger): Promise<OpenedDatabase> {
  const { databaseUrl: url, databaseSyncUrl: syncUrl, databaseTimeoutMs: timeoutMs } = config;
  const open = (): Client =>
    createClient({
      url,
      syncUrl,
      authToken: config.databaseAuthToken,
      syncInterval: config.databaseSyncIntervalS,
      timeout: config.databaseBusyTimeoutMs,
    });
  let first: Client;
  try {
    first = open();
    // The first sync is what proves the primary answers; its own wait is bounded like every other call.
    await withDeadline(first.sync(), timeoutMs, () => {
      throw new Error(`no answer within ${timeoutMs} ms`);
    });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (!existsSync(path)) {
      throw new DatabaseOpenError(
        `The primary at ${syncUrl} cannot be reached (${reason}) and ${path} holds no earlier replica to serve; ` +
          'start again once the primary is up.',
      );
    }
    logger?.log('warn', 'replica primary unreachable at start; serving the local replica read-only', {
      syncUrl,
      path,
      reason,
      hint: 'writes answer 503 until hop is restarted with the primary reachable',
    });
    const client = guardedClient(() => createClient({ url, timeout: config.databaseBusyTimeoutMs }), {
      timeoutMs,
      readOnly: true,
    });
    return { ...createDatabase(client), mode: 'replica-offline' };
  }
  let reuse: Client | undefined = first;
  const client = guardedClient(() => {
    const next = reuse ?? open();
    reuse = undefined;
    return next;
  }, { timeoutMs, queueTimeoutMs: config.databaseQueueTimeoutMs, remote: true, writers: config.databaseWriters });
  return { ...createDatabase(client), mode: 'replica' };
}

export async function migrateDatabase(db: Database): Promise<void> {
  await migrate(db.orm, { migrationsFolder: MIGRATIONS_FOLDER });
}

/**
 * The shards of HOP_DATABASE_SHARDS over an open (and migrated) control database, each opened like HOP_DATABASE_URL
 * would be (same token, deadlines and writer gate), migrated when embedded or when `migrate` asks, and the bucket map
 * read from the control database (written on first use). A shard's read replicas are opened beside it with the
 * replica deadline (HOP_DATABASE_REPLICA_TIMEOUT_MS) as both their call deadline and their queue wait, so that a
 * slow replica passes its reads to the primary soon; they are never migrated (they follow their primary).
 * Undefined without HOP_DATABASE_SHARDS: one database.
 */
export async function openShards(
  config: DatabaseConfig & Pick<Config, 'databaseShards' | 'databaseShardReplicas' | 'databaseReplicaTimeoutMs'>,
  control: Database,
  { logger, scopes, migrate = false }: { logger?: Logger; scopes?: ScopeStore; migrate?: boolean } = {},
): Promise<ShardSet | undefined> {
  if (!config.databaseShards) return undefined;
  // Links already on the control database (a single database turned sharded) would be out of every shard's sight.
  if ((await control.client.execute('select 1 from links limit 1')).rows.length) {
    throw new DatabaseOpenError(
      `${config.databaseUrl.replace(/\?.*$/, '')} holds links of a single-database deployment; HOP_DATABASE_SHARDS would leave ` +
        'them out of sight. Unset HOP_DATABASE_SHARDS (moving links onto shards is resharding, not built yet).',
    );
  }
  // The list and map a resharding left (src/platform/db/shard-layout.ts), followed while the process runs.
  const watched = await openShardLayout(
    control,
    config.databaseShards,
    async (url) => {
      const shard = await openDatabase({ ...config, databaseUrl: url, databaseSyncUrl: undefined }, logger, scopes);
      try {
        if (migrate || shard.mode === 'embedded') await migrateDatabase(shard);
      } catch (err) {
        shard.close();
        throw err;
      }
      return shard;
    },
    {
      onError: (err) => logger?.log('warn', 'shard layout not read; link writes wait until it is', { reason: err instanceof Error ? err.message : String(err) }),
      // A replica's deadline is short: past it a read goes to the next replica or the primary (replicas.ts).
      async openReplicas(url) {
        const index = config.databaseShards!.indexOf(url);
        const timeoutMs = config.databaseReplicaTimeoutMs;
        const own: OpenedDatabase[] = [];
        try {
          for (const replica of config.databaseShardReplicas[index] ?? []) {
            const settings = { databaseUrl: replica, databaseSyncUrl: undefined, databaseTimeoutMs: timeoutMs, databaseQueueTimeoutMs: timeoutMs };
            own.push(await openDatabase({ ...config, ...settings }, logger, scopes));
          }
        } catch (err) {
          for (const db of own) db.close();
          throw err;
        }
        return own;
      },
    },
  ).catch((err: unknown) => {
    throw err instanceof LayoutMismatchError ? new DatabaseOpenError(err.message) : err;
  });
  watchedShards.set(watched.set, watched);
  return watched.set;
}

const watchedShards = new WeakMap<ShardSet, WatchedShards>();

/** Closes every shard and replica (the control database is its owner's to close). */
export function closeShards(set: ShardSet | undefined): void {
  const watched = set && watchedShards.get(set);
  watched?.stop();
  for (const shard of watched ? watched.opened.values() : (set?.shards ?? [])) shard.close();
  for (const replica of [...(set?.replicas.values() ?? [])].flat()) replica.close();
}
