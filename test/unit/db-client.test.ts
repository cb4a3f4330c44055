// The guarded database client: a deadline on every call, 503 for a server that cannot be reached, statement errors
// passed through, the embedded client replaced after SQLITE_BUSY, a remote primary's writes gated and retried while it
// answers busy, and read-only refusal of writes.
import type { Client, Transaction } from '@libsql/client';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { REMOTE_READERS, guardedClient, isUnreachable } from '../../src/platform/db/client.ts';

/** A client whose every call runs `behave` (one module under test: the guard, not libSQL). */
function fakeClient(behave: (sql: string) => Promise<unknown>) {
  const opened: Array<{ closed: boolean }> = [];
  const open = () => {
    const state = { closed: false };
    opened.push(state);
    const run = (stmt: string | { sql: string }) => behave(typeof stmt === 'string' ? stmt : stmt.sql);
    const tx = {
      execute: run,
      batch: async (stmts: string[]) => Promise.all(stmts.map(run)),
      commit: async () => behave('commit'),
      rollback: async () => behave('rollback'),
      close() {},
    } as unknown as Transaction;
    return {
      execute: run,
      batch: async (stmts: string[]) => Promise.all(stmts.map(run)),
      transaction: async () => tx,
      close: () => void (state.closed = true),
      closed: false,
    } as unknown as Client;
  };
  return { open, opened };
}

const sqliteError = (code: string) => Object.assign(new Error(code), { code });

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('guardedClient', () => {
  it('passes results through', async () => {
    const { open } = fakeClient(async () => ({ rows: [1] }));
    expect(await guardedClient(open, { timeoutMs: 100 }).execute('select 1')).toEqual({ rows: [1] });
  });

  it('rejects a call that outlives the deadline with 503 and Retry-After', async () => {
    const { open } = fakeClient(() => new Promise(() => {}));
    const started = Date.now();
    const err = await rejection(guardedClient(open, { timeoutMs: 50, remote: true }).execute('select 1'));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'unavailable', retryAfterS: 1 });
    expect((err as Error).message).toMatch(/did not answer within 50 ms/);
  });

  it('bounds every step of a transaction, not only its start', async () => {
    const { open } = fakeClient((sql) => (sql === 'commit' ? new Promise(() => {}) : Promise.resolve({})));
    const tx = await guardedClient(open, { timeoutMs: 50 }).transaction('write');
    await tx.execute('insert into t values (1)');
    expect(await rejection(tx.commit())).toMatchObject({ code: 'unavailable' });
  });

  it.each([
    ['a refused connection (Node)', Object.assign(new TypeError('fetch failed'), { cause: sqliteLess('ECONNREFUSED') })],
    ['a lost connection (workerd)', new Error('Network connection lost.')],
    ['a 5xx from sqld', Object.assign(new Error('Server returned HTTP status 502'), { code: 'SERVER_ERROR' })],
  ])('answers 503 for %s on a remote database', async (_, failure) => {
    const { open } = fakeClient(() => Promise.reject(failure));
    const err = await rejection(guardedClient(open, { timeoutMs: 1000, remote: true }).execute('select 1'));
    expect(err).toMatchObject({ code: 'unavailable', cause: failure });
  });

  it('passes statement errors through unchanged, remote or not', async () => {
    const failure = sqliteError('SQLITE_CONSTRAINT_UNIQUE');
    const { open } = fakeClient(() => Promise.reject(failure));
    expect(await rejection(guardedClient(open, { timeoutMs: 1000, remote: true }).execute('insert'))).toBe(failure);
    expect(await rejection(guardedClient(open, { timeoutMs: 1000 }).execute('insert'))).toBe(failure);
  });

  it('leaves other failures of an embedded database as they are (a 500, not a 503)', async () => {
    const failure = new TypeError('a bug');
    const { open } = fakeClient(() => Promise.reject(failure));
    expect(await rejection(guardedClient(open, { timeoutMs: 1000 }).execute('select 1'))).toBe(failure);
  });

  it('replaces the client after SQLITE_BUSY and closes the wedged one', async () => {
    let busy = true;
    const { open, opened } = fakeClient(() => (busy ? Promise.reject(sqliteError('SQLITE_BUSY')) : Promise.resolve({})));
    const client = guardedClient(open, { timeoutMs: 1000 });
    expect(await rejection(client.execute('insert'))).toMatchObject({ code: 'SQLITE_BUSY' });
    expect(opened.map((o) => o.closed)).toEqual([true, false]);
    busy = false;
    await client.execute('insert');
    expect(opened).toHaveLength(2);
  });

  it('retries a write a remote primary refused as busy, within the deadline, without replacing the client', async () => {
    let refusals = 3;
    const { open, opened } = fakeClient(async () => {
      if (refusals-- > 0) throw sqliteError('SQLITE_BUSY');
      return { rows: [] };
    });
    const client = guardedClient(open, { timeoutMs: 1000, remote: true });
    expect(await client.batch(['insert into links values (1)'], 'write')).toEqual([{ rows: [] }]);
    expect(refusals).toBe(-1);
    expect(opened).toHaveLength(1);
    expect(opened[0]!.closed).toBe(false);
  });

  it('gives up on a busy remote primary when its wait runs out, with 503, and never retries a read', async () => {
    let calls = 0;
    const { open } = fakeClient(async () => {
      calls++;
      throw sqliteError('SQLITE_BUSY');
    });
    const client = guardedClient(open, { timeoutMs: 1000, queueTimeoutMs: 100, remote: true });
    expect(await rejection(client.execute('insert into links values (1)'))).toMatchObject({ code: 'unavailable' });
    expect(calls).toBeGreaterThan(1);
    calls = 0;
    expect(await rejection(client.execute('select 1'))).toMatchObject({ code: 'SQLITE_BUSY' });
    expect(calls).toBe(1);
  });

  it('sends a remote primary at most `writers` writes at once; the deadline starts when sent, the wait is bounded', async () => {
    let running = 0;
    let most = 0;
    const seen: string[] = [];
    const { open } = fakeClient(async (sql) => {
      seen.push(sql);
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 60));
      running--;
      return {};
    });
    const client = guardedClient(open, { timeoutMs: 100, queueTimeoutMs: 100, remote: true, writers: 2 });
    const started = Date.now();
    const writes = Array.from({ length: 6 }, (_, i) => client.execute(`insert into t values (${i})`).then(() => 'ok', (e: Error) => e.message));
    const reads = client.execute('select 1');
    // 0-60 ms: writes 0 and 1; 60-120 ms: writes 2 and 3, 120 ms after they were asked for but only 60 ms after they
    // were sent; 4 and 5 would be sent at 120 ms, past their 100 ms wait, so they are refused at 100 ms, unsent.
    const outcomes = await Promise.all(writes);
    expect(outcomes.slice(0, 4)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(outcomes.slice(4)).toEqual([expect.stringMatching(/busy: no turn within 100 ms/), expect.stringMatching(/busy/)]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
    await reads;
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(most).toBe(3); // two writes and the read, which waits in its own gate
    expect(seen.filter((sql) => sql.startsWith('insert'))).toHaveLength(4);
  });

  it('sends a remote database at most REMOTE_READERS reads at once', async () => {
    let running = 0;
    let most = 0;
    const { open } = fakeClient(async () => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 20));
      running--;
      return { rows: [] };
    });
    const client = guardedClient(open, { timeoutMs: 1000, remote: true });
    await Promise.all(Array.from({ length: REMOTE_READERS * 2 + 1 }, () => client.execute('select 1')));
    expect(most).toBe(REMOTE_READERS);
  });

  it('refuses writes when read-only, and still reads', async () => {
    const seen: string[] = [];
    const { open } = fakeClient(async (sql) => void seen.push(sql));
    const client = guardedClient(open, { timeoutMs: 1000, readOnly: true });
    await client.execute('select 1');
    await client.execute({ sql: '  WITH x AS (select 1) select * from x', args: [] });
    for (const write of [
      () => client.execute('insert into links values (1)'),
      () => client.execute({ sql: 'update links set url = ?', args: ['x'] }),
      () => client.batch(['select 1', 'delete from links']),
      () => client.transaction('write'),
    ]) {
      expect(await rejection(write())).toMatchObject({ code: 'unavailable' });
    }
    expect(seen).toEqual(['select 1', '  WITH x AS (select 1) select * from x']);
  });
});

describe('isUnreachable', () => {
  it('is false for anything carrying an SQLITE_ code, at any depth', () => {
    expect(isUnreachable(sqliteError('SQLITE_ERROR'))).toBe(false);
    expect(isUnreachable(new Error('Failed query', { cause: sqliteError('SQLITE_BUSY') }))).toBe(false);
    expect(isUnreachable(new Error('Network connection lost.'))).toBe(true);
  });
});

function sqliteLess(code: string) {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:9`), { code });
}
