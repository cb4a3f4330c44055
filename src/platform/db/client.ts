/**
 * The database port: a drizzle instance over a libSQL client, plus a readiness ping with a deadline.
 * The client itself is created by the runtime entry (file, sqld or Turso) and handed in here.
 */
import type { Client } from '@libsql/client';
import { drizzle, type LibSQLDatabase } from 'drizzle-orm/libsql';
import * as schema from '../../db/schema.ts';
import { isBusy } from '../../errors.ts';

export type Orm = LibSQLDatabase<typeof schema>;

export interface Database {
  orm: Orm;
  client: Client;
  /** Resolves when the database answers a read of hop's schema within `timeoutMs`; rejects otherwise. */
  ping(timeoutMs: number): Promise<void>;
  close(): void;
}

export function createDatabase(client: Client): Database {
  return {
    orm: drizzle(client, { schema }),
    client,
    async ping(timeoutMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`database did not answer within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        // A table of hop's, not `select 1`: a database without the schema (not migrated, wrong file) is not ready.
        await Promise.race([client.execute('select 1 from workspaces limit 1'), deadline]);
      } finally {
        clearTimeout(timer);
      }
    },
    close: () => client.close(),
  };
}


/**
 * A client that replaces itself after a SQLITE_BUSY. The embedded driver leaves the failed statement unreset,
 * so the connection stays inside an implicit transaction that never commits: every later write on it would
 * answer success and vanish at close (libsql-client-ts issue 352). A fresh client drops that connection.
 */
export function reopeningClient(open: () => Client): Client {
  let inner = open();
  const guard = <T>(run: () => Promise<T>): Promise<T> =>
    run().catch((err: unknown) => {
      if (isBusy(err)) {
        const stale = inner;
        inner = open();
        stale.close();
      }
      throw err;
    });
  return new Proxy(inner, {
    get(_target, prop) {
      if (prop === 'execute') return (...args: Parameters<Client['execute']>) => guard(() => inner.execute(...args));
      if (prop === 'batch') return (...args: Parameters<Client['batch']>) => guard(() => inner.batch(...args));
      const value = Reflect.get(inner, prop, inner) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(inner) : value;
    },
  });
}

/** True when a libSQL error is a unique-constraint violation (a duplicate slug, hostname, key...). */
export function isUniqueViolation(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    const message = (e as { message?: unknown }).message;
    if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return true;
    if (typeof message === 'string' && /UNIQUE constraint failed/.test(message)) return true;
  }
  return false;
}
