/**
 * The database port: a drizzle instance over a libSQL client, plus a readiness ping with a deadline.
 * The client itself is created by the runtime entry (file, sqld or Turso) and handed in here.
 */
import type { Client, InStatement, ResultSet, Transaction, TransactionMode } from '@libsql/client';
import type { LibSQLDatabase } from 'drizzle-orm/libsql';
// drizzle() from the HTTP entry: the same driver over the client handed in. The default entry can also open a
// client from a URL, so it imports @libsql/client, whose Workers build carries the WebSocket client; hop always
// hands a client in (the runtime entries create it), and on a Worker that client is @libsql/client/http.
// eslint-disable-next-line no-restricted-imports -- drizzle's HTTP driver, not src/http/ (the rule's `**/http`)
import { drizzle } from 'drizzle-orm/libsql/http';
import * as schema from '../../db/schema.ts';
import { AppError, errorCode, findCause, isBusy } from '../../errors.ts';
import { backoffDelay, withDeadline } from '../resilience.ts';
import { observed, traceHeaders, type ScopeStore, type Tracer } from '../tracing.ts';

export type Orm = LibSQLDatabase<typeof schema> & { $client: Client };

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
      // A table of hop's, not `select 1`: a database without the schema (not migrated, wrong file) is not ready.
      await withDeadline(client.execute('select 1 from workspaces limit 1'), timeoutMs, () => {
        throw new Error(`database did not answer within ${timeoutMs} ms`);
      });
    },
    close: () => client.close(),
  };
}


export interface GuardOptions {
  /**
   * The deadline of each call once it is sent (execute, batch, a transaction's steps); past it the call rejects as
   * unavailable. Time spent waiting for a turn at a remote database (below) does not count against it.
   */
  timeoutMs: number;
  /**
   * How long a call to a remote database may wait for its turn (the gates below) before it is refused as busy: the
   * queue a burst waits in, bounded, so that a burst is served at the rate the primary commits instead of failing.
   */
  queueTimeoutMs?: number;
  /** A server reached over the network (sqld, Turso): its transport failures answer 503, not 500. */
  remote?: boolean;
  /** Refuse writes with 503 (an embedded replica whose primary could not be reached). */
  readOnly?: boolean;
  /**
   * Writes a remote primary is sent at once; the others wait their turn. A primary takes one write transaction at a
   * time, so more in flight only queue behind its lock, where sqld spins on it (docs/architecture.md).
   */
  writers?: number;
}

/** Writes on a remote primary in flight at once, unless told otherwise (measured: docs/architecture.md). */
export const REMOTE_WRITERS = 1;
/** Reads on a remote database in flight at once: @libsql/client's own default, now hop's gate with a bounded wait. */
export const REMOTE_READERS = 20;
/** How long a remote call may wait for its turn, unless told otherwise. */
export const REMOTE_QUEUE_TIMEOUT_MS = 10_000;

const unavailable = (detail: string, cause?: unknown) =>
  new AppError('unavailable', detail, { retryAfterS: 1, cause });

/** A statement's SQL, whatever form it was handed in. */
const sqlOf = (stmt: InStatement): string => (typeof stmt === 'string' ? stmt : stmt.sql);
const READ_ONLY_SQL = /^\s*(select|with|pragma|explain)\b/i;
const isWrite = (stmts: InStatement[]) => !stmts.every((s) => READ_ONLY_SQL.test(sqlOf(s)));

/** Waits of a write the primary refused as busy: short, since its lock is usually held for milliseconds. */
const BUSY_BACKOFF = { firstMs: 5, maxMs: 100 };

/**
 * Runs a write again while a remote primary answers busy (its lock held by another process's write), until it
 * succeeds, fails otherwise, or `until` (a time) has passed. A refused write changed nothing: a statement or a batch
 * is one transaction, rolled back whole. Jittered, so writers refused together do not come back together.
 */
async function retryWhileBusy<T>(run: () => Promise<T>, until: number): Promise<T> {
  for (let failures = 1; ; failures++) {
    try {
      return await run();
    } catch (err) {
      if (!isBusy(err) || Date.now() >= until) throw err;
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(failures, BUSY_BACKOFF) * (0.5 + Math.random())));
    }
  }
}

/**
 * At most `limit` calls running; the others wait in order until `until` (a time). One whose wait ran out is
 * refused at once and never runs; its place in the queue is skipped when its turn comes.
 */
export function createGate(limit: number) {
  let running = 0;
  const waiting: Array<{ admit: () => void; gone: boolean }> = [];
  const release = () => {
    // The slot passes straight to the next live waiter (running unchanged), or is freed.
    for (let next = waiting.shift(); next; next = waiting.shift()) {
      if (!next.gone) return next.admit();
    }
    running--;
  };
  return {
    async run<T>(work: () => Promise<T>, until: number, refuse: () => Error): Promise<T> {
      if (running < limit) running++;
      else {
        const entry = { admit: () => {}, gone: false };
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          await new Promise<void>((resolve, reject) => {
            entry.admit = resolve;
            waiting.push(entry);
            timer = setTimeout(() => {
              entry.gone = true;
              reject(refuse());
            }, Math.max(0, until - Date.now()));
          });
        } finally {
          clearTimeout(timer);
        }
      }
      try {
        return await work();
      } finally {
        release();
      }
    },
  };
}

/**
 * True when a remote client's failure means the database could not be reached or did not answer: anything but a
 * refusal of the statement itself, which libSQL reports with an SQLITE_* code (constraint, syntax, busy). What a
 * lost connection looks like differs by runtime (Node: TypeError "fetch failed" with ECONNREFUSED; Bun: a
 * ConnectionRefused TypeError; workerd: Error "Network connection lost"; sqld: a 5xx), so it is told apart by
 * what it is not.
 */
export function isUnreachable(err: unknown): boolean {
  return findCause(err, (e) => errorCode(e)?.startsWith('SQLITE_') === true) === undefined;
}

/**
 * The client every runtime hands to createDatabase. Each call gets a deadline and a clear failure mode:
 * - past `timeoutMs` once sent, or when the server cannot be reached, it rejects with a 503 AppError (Retry-After)
 *   instead of hanging (a remote client's default timeout is minutes) or surfacing as a 500;
 * - after SQLITE_BUSY the embedded client is replaced: the driver leaves the failed statement unreset, so the
 *   connection stays inside an implicit transaction that never commits, and every later write on it would answer
 *   success and vanish at close (libsql-client-ts issue 352). A fresh client drops that connection;
 * - a remote database gets at most `writers` writes and REMOTE_READERS reads at once; the others wait their turn
 *   for up to `queueTimeoutMs` (then 503 "busy"), and a write it refuses as busy is run again within that wait
 *   (docs/architecture.md, "A remote primary under a burst of writes"). Calls inside a transaction are not gated.
 * A remote client should also abort its fetches at the deadline (`deadlineFetch`) so that no socket lingers, and
 * lift its own limit of calls in flight (`concurrency`), which would count its queue against the call's deadline.
 */
export function guardedClient(open: () => Client, options: GuardOptions): Client {
  let inner = open();
  const { timeoutMs } = options;
  const queueTimeoutMs = options.queueTimeoutMs ?? REMOTE_QUEUE_TIMEOUT_MS;
  const writes = options.remote ? createGate(options.writers ?? REMOTE_WRITERS) : undefined;
  const reads = options.remote ? createGate(REMOTE_READERS) : undefined;

  async function attempt<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof AppError) throw err;
      // Only an embedded client is replaced (see above); closing a remote one would fail every call in flight on it.
      if (isBusy(err) && !options.remote) {
        const stale = inner;
        inner = open();
        stale.close();
      }
      if (options.remote && isUnreachable(err)) throw unavailable('The database cannot be reached; retry shortly.', err);
      throw err;
    }
  }

  const sent = <T>(run: () => Promise<T>) =>
    withDeadline(attempt(run), timeoutMs, () => {
      throw unavailable(`The database did not answer within ${timeoutMs} ms; retry shortly.`);
    });
  const busy = () => unavailable(`The database is busy: no turn within ${queueTimeoutMs} ms; retry shortly.`);

  function guard<T>(run: () => Promise<T>, write = false): Promise<T> {
    if (!writes || !reads) return sent(run);
    const until = Date.now() + queueTimeoutMs;
    if (!write) return reads.run(() => sent(run), until, busy);
    return retryWhileBusy(() => writes.run(() => sent(run), until, busy), until).catch((err: unknown) => {
      throw isBusy(err) ? busy() : err;
    });
  }

  function refuseWrite(stmts: InStatement[]) {
    if (options.readOnly && isWrite(stmts)) {
      throw unavailable('The database is read-only while its primary cannot be reached; retry shortly.');
    }
  }

  const wrapTransaction = (tx: Transaction): Transaction =>
    new Proxy(tx, {
      get(target, prop) {
        if (prop === 'execute') {
          return (stmt: InStatement) => sent(async () => (refuseWrite([stmt]), target.execute(stmt)));
        }
        if (prop === 'batch') {
          return (stmts: InStatement[]) => sent(async () => (refuseWrite(stmts), target.batch(stmts)));
        }
        if (prop === 'commit' || prop === 'rollback') return () => sent(() => target[prop]());
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });

  return new Proxy(inner, {
    get(_target, prop) {
      if (prop === 'execute') {
        return (...args: Parameters<Client['execute']>) => {
          const [first] = args;
          const stmt = typeof first === 'string' ? first : (first as InStatement);
          return guard(async () => {
            refuseWrite([stmt]);
            return (inner.execute as (...a: unknown[]) => Promise<ResultSet>)(...args);
          }, isWrite([stmt]));
        };
      }
      if (prop === 'batch') {
        return (stmts: InStatement[], mode?: TransactionMode) =>
          guard(async () => (refuseWrite(stmts), inner.batch(stmts, mode)), mode !== 'read' && isWrite(stmts));
      }
      if (prop === 'transaction') {
        return (mode?: TransactionMode) =>
          sent(async () => {
            if (options.readOnly && mode !== 'read') refuseWrite(['begin immediate']);
            return wrapTransaction(await inner.transaction(mode));
          });
      }
      const value = Reflect.get(inner, prop, inner) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(inner) : value;
    },
  });
}

/**
 * A fetch for remote libSQL clients that aborts each request at the deadline, so a hung server frees the socket,
 * asks for uncompressed answers, and carries the current span's `traceparent` to sqld or Turso when a scope store
 * is given.
 */
export function deadlineFetch(timeoutMs: number, scopes?: ScopeStore) {
  return (input: RequestInfo | URL, init?: RequestInit) => {
    const trace = scopes && traceHeaders(scopes.get()?.span);
    const headers = new Headers(init?.headers);
    // Uncompressed answers: hop's are small (a row, a page), compressing them costs sqld and hop CPU on every
    // call, and Bun fetching sqld's compressed answers under a burst wedged sqld at full CPU (docs/architecture.md).
    headers.set('accept-encoding', 'identity');
    if (trace) for (const [k, v] of Object.entries(trace)) headers.set(k, v);
    return fetch(input, { ...init, headers, signal: AbortSignal.timeout(timeoutMs) });
  };
}

/** The statement's operation (SELECT, INSERT...), its first keyword: the span's name, never its values. */
const operationOf = (stmt: InStatement) => /^\s*([A-Za-z]+)/.exec(sqlOf(stmt))?.[1]?.toUpperCase() ?? 'SQL';

/**
 * The database with every execute and batch of its client observed: a client span (db.system libsql,
 * db.operation, no SQL text or values) under the current span, and its time added to the request's Server-Timing.
 * Without a scope store the database is returned as it is.
 */
export function observeDatabase<D extends Database>(db: D, tracer: Tracer | undefined, scopes: ScopeStore | undefined): D {
  if (!scopes) return db;
  const inner = db.client;
  const attributes = (operation: string, count?: number) => ({ 'db.system': 'libsql', 'db.operation': operation, 'db.operation.batch.size': count });
  const client = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'execute') {
        return (...args: Parameters<Client['execute']>) => {
          const op = operationOf(typeof args[0] === 'string' ? args[0] : (args[0] as InStatement));
          return observed(tracer, scopes, 'db', op, attributes(op), () => (target.execute as (...a: unknown[]) => Promise<ResultSet>)(...args));
        };
      }
      if (prop === 'batch') {
        return (stmts: InStatement[], mode?: TransactionMode) =>
          observed(tracer, scopes, 'db', 'BATCH', attributes('BATCH', stmts.length), () => target.batch(stmts, mode));
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { ...db, client, orm: drizzle(client, { schema }) };
}

/** True when a libSQL error is a unique-constraint violation (a duplicate slug, hostname, key...). */
export function isUniqueViolation(err: unknown): boolean {
  return (
    findCause(err, (e) => {
      const code = errorCode(e);
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return true;
      const message = (e as { message?: unknown }).message;
      return typeof message === 'string' && /UNIQUE constraint failed/.test(message);
    }) !== undefined
  );
}
