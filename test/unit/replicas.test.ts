// A shard's reader (src/platform/db/replicas.ts) over fake clients: reads go round robin to the replicas, writes and
// transactions to the primary; a replica that fails or misses its deadline passes that read to the primary, and
// after three failures in a row its breaker keeps reads off it until the cooldown lets one probe it again.
import type { Client, InStatement } from '@libsql/client';
import { describe, expect, it } from 'vitest';
import type { Database } from '../../src/platform/db/client.ts';
import { createReplicaReader, type ReplicaSkip } from '../../src/platform/db/replicas.ts';
import { createShardSet, defaultBucketMap, deriveShardSet } from '../../src/platform/db/shards.ts';

type Behaviour = 'ok' | 'fail' | 'slow';

/** A database whose client answers `{ from: name }`, fails, or fails late, as `behaviour()` says at each call. */
function fakeDatabase(name: string, behaviour: () => Behaviour = () => 'ok') {
  const calls: string[] = [];
  const answer = async (sql: string) => {
    calls.push(sql);
    const b = behaviour();
    if (b === 'slow') await new Promise((r) => setTimeout(r, 60));
    if (b !== 'ok') throw new Error(`${name} failed`);
    return { rows: [{ from: name }], columns: ['from'] };
  };
  const client = {
    execute: (stmt: InStatement) => answer(typeof stmt === 'string' ? stmt : stmt.sql),
    batch: (stmts: InStatement[]) => Promise.all(stmts.map((s) => answer(typeof s === 'string' ? s : s.sql))),
    transaction: () => Promise.resolve({ name }),
    close: () => undefined,
  } as unknown as Client;
  const db = { client, orm: undefined, ping: () => Promise.resolve(), close: () => undefined } as unknown as Database;
  return { db, calls };
}

const from = async (p: Promise<unknown>) => ((await p) as { rows: Array<{ from: string }> }).rows[0]!.from;

describe('the replica reader', () => {
  it('sends reads round robin to the replicas, and writes, write batches and transactions to the primary', async () => {
    const primary = fakeDatabase('primary');
    const r1 = fakeDatabase('r1');
    const r2 = fakeDatabase('r2');
    const served: string[] = [];
    const reader = createReplicaReader(primary.db, [r1.db, r2.db], { timeoutMs: 50, onServed: (by) => served.push(by) });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await from(reader.client.execute('select 1')));
    expect(answers).toEqual(['r1', 'r2', 'r1', 'r2']);
    expect(await from(reader.client.execute({ sql: 'with x as (select 1) select * from x', args: [] }))).toBe('r1');
    expect(await from(reader.client.execute({ sql: 'insert into t values (?)', args: [1] }))).toBe('primary');
    expect(await from(reader.client.execute('update t set a = 1'))).toBe('primary');
    const batch = (await reader.client.batch(['select 1', 'delete from t'], 'write')) as unknown as Array<{ rows: Array<{ from: string }> }>;
    expect(batch.map((r) => r.rows[0]!.from)).toEqual(['primary', 'primary']);
    const reads = (await reader.client.batch(['select 1', 'select 2'], 'read')) as unknown as Array<{ rows: Array<{ from: string }> }>;
    expect(reads.map((r) => r.rows[0]!.from)).toEqual(['r2', 'r2']);
    expect(await reader.client.transaction('write')).toEqual({ name: 'primary' });
    expect(served).toEqual(['replica', 'replica', 'replica', 'replica', 'replica', 'replica']);
    expect(primary.calls).toEqual(['insert into t values (?)', 'update t set a = 1', 'select 1', 'delete from t']);
  });

  it('passes a failed or late read to the primary, counted, and opens the breaker after three failures in a row', async () => {
    let clock = 0;
    let replica: Behaviour = 'fail';
    const primary = fakeDatabase('primary');
    const r1 = fakeDatabase('r1', () => replica);
    const skips: Array<[number, ReplicaSkip]> = [];
    const served: string[] = [];
    const reader = createReplicaReader(primary.db, [r1.db], {
      timeoutMs: 50,
      cooldownMs: 1000,
      now: () => clock,
      onSkip: (i, reason) => skips.push([i, reason]),
      onServed: (by) => served.push(by),
    });
    expect(await from(reader.client.execute('select 1'))).toBe('primary');
    expect(skips).toEqual([[0, 'error']]);

    // A late failure (the guarded client's deadline) is a timeout; the clock jumps past the deadline meanwhile.
    replica = 'slow';
    const late = reader.client.execute('select 1');
    clock += 60;
    expect(await from(late)).toBe('primary');
    expect(skips.at(-1)).toEqual([0, 'timeout']);
    expect(await from(reader.client.execute('select 1'))).toBe('primary');
    expect(reader.breakers[0]!.state).toBe('open');

    // Open: the replica is not asked at all.
    const asked = r1.calls.length;
    replica = 'ok';
    expect(await from(reader.client.execute('select 1'))).toBe('primary');
    expect(r1.calls.length).toBe(asked);
    expect(skips.at(-1)).toEqual([0, 'open']);

    // After the cooldown one read probes it; its success closes the breaker.
    clock += 1000;
    expect(await from(reader.client.execute('select 1'))).toBe('r1');
    expect(reader.breakers[0]!.state).toBe('closed');
    expect(served).toEqual(['primary', 'primary', 'primary', 'primary', 'replica']);
  });

  it('passes an open replica by for the next healthy one, at no cost', async () => {
    const primary = fakeDatabase('primary');
    const dead = fakeDatabase('dead', () => 'fail');
    const live = fakeDatabase('live');
    const skips: Array<[number, ReplicaSkip]> = [];
    const reader = createReplicaReader(primary.db, [dead.db, live.db], { timeoutMs: 50, onSkip: (i, r) => skips.push([i, r]) });
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await from(reader.client.execute('select 1')));
    // dead fails 3 times (each such read going to the primary), then is skipped for live.
    expect(answers.filter((a) => a === 'primary')).toHaveLength(3);
    expect(answers.filter((a) => a === 'live')).toHaveLength(7);
    expect(dead.calls).toHaveLength(3);
    expect(skips.filter(([, r]) => r === 'error')).toHaveLength(3);
    expect(skips.filter(([i, r]) => i === 0 && r === 'open').length).toBeGreaterThan(0);
  });
});

describe('ShardSet readers', () => {
  it('are the primaries themselves without replicas, and one replica reader per primary that has replicas', () => {
    const dbs = [0, 1].map((i) => fakeDatabase(`s${i}`).db);
    const plain = createShardSet(dbs[0]!, dbs, defaultBucketMap(2));
    expect(dbs.map((db) => plain.readerOf(db))).toEqual(dbs);
    expect(plain.replicas.size).toBe(0);
    const replica = fakeDatabase('r').db;
    const base = createShardSet(dbs[0]!, dbs, defaultBucketMap(2), { replicas: new Map([[dbs[1]!, [replica]]]) });
    const made: Array<{ primary: Database; replicas: readonly Database[]; shard: number }> = [];
    // The composition root's view: every database wrapped once (metering), the reader made once per primary.
    const wrapped = new Map<Database, Database>();
    const set = deriveShardSet(base, dbs[0]!, (db) => wrapped.get(db) ?? wrapped.set(db, { ...db }).get(db)!, (primary, replicas, shard) => {
      made.push({ primary, replicas, shard });
      return createReplicaReader(primary, replicas, { timeoutMs: 50 });
    });
    const [first, second] = set.shards as [Database, Database];
    expect(set.readerOf(first)).toBe(first);
    const reader = set.readerOf(second);
    expect(reader).not.toBe(second);
    expect(set.readerOf(second)).toBe(reader);
    expect(made).toEqual([{ primary: second, replicas: [wrapped.get(replica)], shard: 2 }]);
    // Writes route through `of`: always a primary, never a reader.
    for (let i = 0; i < 50; i++) expect(set.shards).toContain(set.of('x.example', `s${i}`));
  });
});
