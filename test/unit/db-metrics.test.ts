// Database call metrics: each call counted by operation and outcome (ok, busy, timeout, error) and timed, through
// the guarded client as the runtimes build it, so that its deadline and its busy and unreachable errors are what the
// meter sees.
import type { Client, Transaction } from '@libsql/client';
import { describe, expect, it } from 'vitest';
import { guardedClient, type Database } from '../../src/platform/db/client.ts';
import { dbCallMeter, meterDatabase, operationOf } from '../../src/platform/db/metrics.ts';
import { createMetrics } from '../../src/platform/metrics.ts';

const sqliteError = (code: string) => Object.assign(new Error(code), { code });

/** A client whose every statement runs `behave` (the module under test is the meter, not libSQL). */
function fakeClient(behave: (sql: string) => Promise<unknown>): Client {
  const run = (stmt: string | { sql: string }) => behave(typeof stmt === 'string' ? stmt : stmt.sql);
  const tx = { execute: run, batch: async (s: string[]) => Promise.all(s.map(run)), commit: async () => behave('commit'), rollback: async () => behave('rollback'), close() {} };
  return { execute: run, batch: async (s: string[]) => Promise.all(s.map(run)), transaction: async () => tx as unknown as Transaction, close() {} } as unknown as Client;
}

const TIMEOUT_MS = 50;

function setup(behave: (sql: string) => Promise<unknown>) {
  const metrics = createMetrics();
  const client = guardedClient(() => fakeClient(behave), { timeoutMs: TIMEOUT_MS, remote: true });
  const db = meterDatabase({ client, orm: undefined, ping: async () => {}, close() {} } as unknown as Database, dbCallMeter(metrics, TIMEOUT_MS));
  const calls = (operation: string, outcome: string) => metrics.value('hop_db_calls_total', { operation, outcome });
  return { metrics, db, calls };
}

const settle = (p: Promise<unknown>) => p.then(() => undefined, () => undefined);

describe('database call metrics', () => {
  it('names the operation by the first keyword, among a bounded few', () => {
    expect(operationOf('  SELECT 1')).toBe('select');
    expect(operationOf({ sql: 'insert into x values (?)', args: [1] })).toBe('insert');
    expect(operationOf('with t as (select 1) select * from t')).toBe('with');
    expect(operationOf('vacuum')).toBe('other');
    expect(operationOf('-- comment\nselect 1')).toBe('other');
  });

  it('counts ok, busy, timeout and error outcomes, and times every call', async () => {
    const { metrics, db, calls } = setup(async (sql) => {
      if (sql.includes('busy')) throw sqliteError('SQLITE_BUSY');
      if (sql.includes('hang')) return new Promise(() => {});
      if (sql.includes('gone')) throw new TypeError('fetch failed');
      if (sql.includes('bad')) throw sqliteError('SQLITE_ERROR');
      return { rows: [] };
    });
    await db.client.execute('select 1');
    await db.client.execute({ sql: 'update x set a = 1', args: [] });
    await settle(db.client.execute('select busy'));
    await settle(db.client.execute('select hang'));
    await settle(db.client.execute('select gone'));
    await settle(db.client.execute('delete bad'));
    await db.client.batch(['insert 1', 'insert 2'], 'write');
    const tx = await db.client.transaction('write');
    await tx.execute('insert 3');
    await tx.commit();

    expect(calls('select', 'ok')).toBe(1);
    expect(calls('update', 'ok')).toBe(1);
    expect(calls('select', 'busy')).toBe(1);
    // The guard's 503 at its deadline is a timeout; its 503 for an unreachable server, at once, an error.
    expect(calls('select', 'timeout')).toBe(1);
    expect(calls('select', 'error')).toBe(1);
    expect(calls('delete', 'error')).toBe(1);
    expect(calls('batch', 'ok')).toBe(1);
    expect(calls('begin', 'ok')).toBe(1);
    expect(calls('insert', 'ok')).toBe(1);
    expect(calls('commit', 'ok')).toBe(1);
    const text = metrics.render();
    expect(text).toContain('hop_db_call_duration_seconds_count{operation="select"} 4');
    // The timed-out call took the deadline: it is in no bucket below it.
    expect(text).toContain('hop_db_call_duration_seconds_bucket{operation="select",le="0.025"} 3');
  });

  it('keeps a synchronous read synchronous, counting it and its failure', () => {
    const metrics = createMetrics();
    const meter = dbCallMeter(metrics, TIMEOUT_MS);
    expect(meter.read('select', () => 42)).toBe(42);
    expect(() =>
      meter.read('select', () => {
        throw sqliteError('SQLITE_BUSY');
      }),
    ).toThrow('SQLITE_BUSY');
    expect(metrics.value('hop_db_calls_total', { operation: 'select', outcome: 'ok' })).toBe(1);
    expect(metrics.value('hop_db_calls_total', { operation: 'select', outcome: 'busy' })).toBe(1);
  });
});
