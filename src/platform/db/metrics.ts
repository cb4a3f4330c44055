/**
 * Database call metrics, kept apart from the client (client.ts) as a wrapper over whatever client the runtime
 * handed in: `hop_db_calls_total{operation,outcome}` and `hop_db_call_duration_seconds{operation}` for every execute,
 * batch and transaction step. `operation` is the statement's first keyword (`select`, `insert`, `update`, `delete`),
 * `batch`, `begin` (opening a transaction), `commit`, `rollback`, or `other`; `outcome` is `ok`, `busy` (SQLITE_BUSY:
 * another writer held the lock), `timeout` (no answer within HOP_DATABASE_TIMEOUT_MS: the guarded client's 503 after
 * its deadline) or `error` (anything else: unreachable, a constraint, a syntax error).
 * The embedded redirect read (a prepared statement outside the client) is counted by the same series through
 * `read` (the composition root wraps it).
 */
import type { Client, InStatement, ResultSet, Transaction, TransactionMode } from '@libsql/client';
// eslint-disable-next-line no-restricted-imports -- drizzle's HTTP driver, not src/http/ (the rule's `**/http`), as in client.ts
import { drizzle } from 'drizzle-orm/libsql/http';
import * as schema from '../../db/schema.ts';
import { AppError, isBusy } from '../../errors.ts';
import { LATENCY_BUCKETS, type CounterSeries, type HistogramSeries, type Metrics } from '../metrics.ts';
import type { Database } from './client.ts';

const OPERATIONS = new Set(['select', 'insert', 'update', 'delete', 'with', 'replace', 'pragma']);
const OUTCOMES = ['ok', 'error', 'timeout', 'busy'] as const;
type Outcome = (typeof OUTCOMES)[number];

const sqlOf = (stmt: InStatement) => (typeof stmt === 'string' ? stmt : stmt.sql);

/** The statement's first keyword, lower case, among a known few (bounded label values); `other` else. */
export function operationOf(stmt: InStatement): string {
  const word = /^\s*([A-Za-z]+)/.exec(sqlOf(stmt))?.[1]?.toLowerCase();
  return word && OPERATIONS.has(word) ? word : 'other';
}

export interface DbCallMeter {
  /** Runs `call`, counting it under `operation` with its outcome and duration. */
  <T>(operation: string, call: () => Promise<T>): Promise<T>;
  /** The same for a read that may answer synchronously (the embedded prepared statement): it stays synchronous. */
  read<T>(operation: string, call: () => T | Promise<T>): T | Promise<T>;
}

/** The metered runner of database calls: series bound per operation, once. */
export function dbCallMeter(metrics: Metrics, timeoutMs: number): DbCallMeter {
  const bound = new Map<string, { calls: Record<Outcome, CounterSeries>; duration: HistogramSeries }>();
  const series = (operation: string) => {
    let s = bound.get(operation);
    if (!s) {
      const calls = Object.fromEntries(
        OUTCOMES.map((outcome) => [
          outcome,
          metrics.counter('hop_db_calls_total', 'Database calls by operation and outcome (ok, error, timeout, busy).', { operation, outcome }),
        ]),
      ) as Record<Outcome, CounterSeries>;
      const duration = metrics.histogram('hop_db_call_duration_seconds', 'Time of database calls, by operation.', LATENCY_BUCKETS, { operation });
      bound.set(operation, (s = { calls, duration }));
    }
    return s;
  };
  const outcomeOf = (err: unknown, ms: number): Outcome => {
    if (isBusy(err)) return 'busy';
    // The guarded client answers a call past its deadline with a 503 (client.ts); a fast 503 is an unreachable server.
    if (err instanceof AppError && err.code === 'unavailable' && ms >= timeoutMs - 1) return 'timeout';
    return 'error';
  };
  const ok = (s: ReturnType<typeof series>, started: number) => {
    s.calls.ok.add();
    s.duration.observe((performance.now() - started) / 1000);
  };
  const failed = (s: ReturnType<typeof series>, started: number, err: unknown) => {
    const ms = performance.now() - started;
    s.calls[outcomeOf(err, ms)].add();
    s.duration.observe(ms / 1000);
    return err;
  };
  const metered = async function metered<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const s = series(operation);
    const started = performance.now();
    try {
      const result = await call();
      ok(s, started);
      return result;
    } catch (err) {
      throw failed(s, started, err);
    }
  } as DbCallMeter;
  metered.read = <T>(operation: string, call: () => T | Promise<T>): T | Promise<T> => {
    const s = series(operation);
    const started = performance.now();
    let answer: T | Promise<T>;
    try {
      answer = call();
    } catch (err) {
      throw failed(s, started, err);
    }
    if (!(answer instanceof Promise)) return ok(s, started), answer;
    return answer.then(
      (value) => (ok(s, started), value),
      (err: unknown) => {
        throw failed(s, started, err);
      },
    );
  };
  return metered;
}

/** The database with every call of its client metered (the drizzle instance rebuilt over the metered client). */
export function meterDatabase<D extends Database>(db: D, meter: DbCallMeter): D {
  const inner = db.client;
  const meterTransaction = (tx: Transaction): Transaction =>
    new Proxy(tx, {
      get(target, prop) {
        if (prop === 'execute') return (stmt: InStatement) => meter(operationOf(stmt), () => target.execute(stmt));
        if (prop === 'batch') return (stmts: InStatement[]) => meter('batch', () => target.batch(stmts));
        if (prop === 'commit' || prop === 'rollback') return () => meter(prop, () => target[prop]());
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  const client = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'execute') {
        return (...args: Parameters<Client['execute']>) =>
          meter(operationOf(typeof args[0] === 'string' ? args[0] : (args[0] as InStatement)), () =>
            (target.execute as (...a: unknown[]) => Promise<ResultSet>)(...args),
          );
      }
      if (prop === 'batch') return (stmts: InStatement[], mode?: TransactionMode) => meter('batch', () => target.batch(stmts, mode));
      if (prop === 'transaction') return (mode?: TransactionMode) => meter('begin', () => target.transaction(mode)).then(meterTransaction);
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { ...db, client, orm: drizzle(client, { schema }) };
}
