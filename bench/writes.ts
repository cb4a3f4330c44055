/**
 * `npm run bench:writes`: hop's write path under bursts, on the embedded file and on one sqld primary, beside
 * `@libsql/client` alone on the same database as the ceiling. hop runs as `npm start` runs it (rate limits off).
 * Each round sends C concurrent `POST /v1/links` (two tags each), then C/2 `PATCH` (url and tags) and C/2
 * `DELETE` of that round's links at once; C is 50 and 200. Printed per target and concurrency: writes/s, p50 and
 * p99 of each write's answer, refusals (any answer but 201/200/204, or a failed fetch), hop's peak RSS, and the
 * raw client's writes/s and refusals for the same shapes (a batch of a row and its two tags; an update with its
 * tags replaced; a delete). The raw client is the ceiling: the writes a primary takes from a client that does
 * nothing else, with no deadline, four batches in flight on sqld.
 *
 * Exits non-zero when the harness fails or hop refused a write, never because a ratio is missed.
 * Environment: BENCH_WRITES_TARGETS (`file,sqld`), BENCH_WRITES_ROUNDS (rounds per concurrency, default 5),
 * BENCH_WRITES_CONCURRENCY (`50,200`), HOP_DATABASE_WRITERS (passed to hop, to compare gates).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type Client } from '@libsql/client';
import { startSqld, type Sqld } from '../src/cli/sqld.ts';
import { hopProcesses } from './hop-process.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const ADMIN = 'w'.repeat(40);
const TARGETS = (process.env.BENCH_WRITES_TARGETS ?? 'file,sqld').split(',').map((s) => s.trim());
const ROUNDS = Number(process.env.BENCH_WRITES_ROUNDS ?? 5);
const CONCURRENCY = (process.env.BENCH_WRITES_CONCURRENCY ?? '50,200').split(',').map(Number);

const { startHop, stopHop, peakMb, HarnessError } = hopProcesses(ROOT, ADMIN, {
  ...(process.env.HOP_DATABASE_WRITERS ? { HOP_DATABASE_WRITERS: process.env.HOP_DATABASE_WRITERS } : {}),
});

interface Tally {
  writes: number;
  refused: number;
  reasons: Map<string, number>;
  latencies: number[];
  elapsedMs: number;
}

const tally = (): Tally => ({ writes: 0, refused: 0, reasons: new Map(), latencies: [], elapsedMs: 0 });

/** Runs one write, timing it and counting it as done when `ok` accepts its outcome. */
async function timed(t: Tally, write: () => Promise<string | undefined>): Promise<boolean> {
  const start = performance.now();
  let refusal: string | undefined;
  try {
    refusal = await write();
  } catch (err) {
    refusal = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }
  t.latencies.push(performance.now() - start);
  t.writes++;
  if (refusal === undefined) return true;
  t.refused++;
  const reason = refusal.slice(0, 140);
  t.reasons.set(reason, (t.reasons.get(reason) ?? 0) + 1);
  return false;
}

async function rounds(t: Tally, concurrency: number, round: (r: number) => Promise<void>) {
  const start = performance.now();
  for (let r = 0; r < ROUNDS; r++) await round(r);
  t.elapsedMs = performance.now() - start;
}

async function hopWrites(url: string, concurrency: number, label: string): Promise<Tally> {
  const made = await fetch(`${url}/v1/workspaces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: `writes-${label}` }),
  });
  if (made.status !== 201) throw new HarnessError(`workspace: ${made.status} ${await made.text()}`);
  const key = ((await made.json()) as { apiKey: { key: string } }).apiKey.key;
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const answer = async (res: Response, ok: number) => (res.status === ok ? undefined : `${res.status} ${await res.text()}`);
  const t = tally();
  await rounds(t, concurrency, async (r) => {
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: concurrency }, (_, i) =>
        timed(t, async () => {
          const res = await fetch(`${url}/v1/links`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ url: `https://example.com/${label}/${r}/${i}`, tags: ['bench', `t${i % 7}`] }),
          });
          if (res.status === 201) ids.push(((await res.json()) as { id: string }).id);
          return answer(res, 201);
        }),
      ),
    );
    const half = Math.floor(ids.length / 2);
    await Promise.all([
      ...ids.slice(0, half).map((id) =>
        timed(t, async () =>
          answer(await fetch(`${url}/v1/links/${id}`, { method: 'PATCH', headers, body: JSON.stringify({ url: `https://example.com/p/${id}`, tags: ['moved'] }) }), 200),
        ),
      ),
      ...ids.slice(half).map((id) => timed(t, async () => answer(await fetch(`${url}/v1/links/${id}`, { method: 'DELETE', headers }), 204))),
    ]);
  });
  return t;
}

const RAW_SCHEMA = [
  'create table if not exists raw_links (id text primary key, url text not null, created_at integer not null)',
  'create table if not exists raw_tags (link_id text not null, tag text not null, primary key (link_id, tag))',
];

/** The same shapes of write through `@libsql/client` alone: the most this database takes from one client. */
async function rawWrites(client: Client, concurrency: number, label: string): Promise<Tally> {
  for (const sql of RAW_SCHEMA) await client.execute(sql);
  const t = tally();
  await rounds(t, concurrency, async (r) => {
    const ids = Array.from({ length: concurrency }, (_, i) => `${label}-${r}-${i}`);
    const created: string[] = [];
    await Promise.all(
      ids.map((id, i) =>
        timed(t, async () => {
          await client.batch(
            [
              { sql: 'insert into raw_links (id, url, created_at) values (?, ?, ?)', args: [id, `https://example.com/${id}`, Date.now()] },
              { sql: 'insert into raw_tags (link_id, tag) values (?, ?), (?, ?)', args: [id, 'bench', id, `t${i % 7}`] },
            ],
            'write',
          );
          created.push(id);
          return undefined;
        }),
      ),
    );
    const half = Math.floor(created.length / 2);
    await Promise.all([
      ...created.slice(0, half).map((id) =>
        timed(t, async () => {
          await client.batch(
            [
              { sql: 'update raw_links set url = ? where id = ?', args: [`https://example.com/p/${id}`, id] },
              { sql: 'delete from raw_tags where link_id = ?', args: [id] },
              { sql: 'insert into raw_tags (link_id, tag) values (?, ?)', args: [id, 'moved'] },
            ],
            'write',
          );
          return undefined;
        }),
      ),
      ...created.slice(half).map((id) =>
        timed(t, async () => {
          await client.batch([{ sql: 'delete from raw_tags where link_id = ?', args: [id] }, { sql: 'delete from raw_links where id = ?', args: [id] }], 'write');
          return undefined;
        }),
      ),
    ]);
  });
  return t;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

interface Row {
  target: string;
  concurrency: number;
  hop: Tally;
  raw: Tally;
  peakMb: number;
}

function summary(t: Tally) {
  const sorted = [...t.latencies].sort((a, b) => a - b);
  return { perSecond: (t.writes - t.refused) / (t.elapsedMs / 1000), p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
}

async function benchTarget(target: string): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), `hop-bench-writes-${target}-`));
  let sqld: Sqld | undefined;
  try {
    if (target === 'sqld') sqld = await startSqld({ dir: join(dir, 'sqld') });
    else if (target !== 'file') throw new HarnessError(`unknown target ${target} (file, sqld)`);
    const dbUrl = sqld ? sqld.url : `file:${join(dir, 'hop.db')}`;
    const rows: Row[] = [];
    const hop = await startHop(dbUrl);
    try {
      for (const c of CONCURRENCY) {
        const t = await hopWrites(hop.url, c, `c${c}`);
        console.error(`${target} C=${c}: hop ${t.writes} writes in ${f(t.elapsedMs)} ms, ${t.refused} refused`);
        rows.push({ target, concurrency: c, hop: t, raw: tally(), peakMb: peakMb(hop.child.pid!) });
      }
      if (/manually closed/i.test(hop.log())) throw new HarnessError(`hop's log shows a closed client:\n${hop.log()}`);
    } finally {
      await stopHop(hop.child);
    }
    // The ceiling after hop has stopped, so that the two never share the primary or the machine.
    // Four batches in flight on sqld: its best measured rate; at the client's default 20 it answers some busy, and at
    // 200 it wedged (docs/architecture.md, "A remote primary under a burst of writes").
    const raw = createClient(sqld ? { url: sqld.url, concurrency: 4 } : { url: dbUrl });
    try {
      for (const row of rows) {
        row.raw = await rawWrites(raw, row.concurrency, `c${row.concurrency}`);
        console.error(`${target} C=${row.concurrency}: raw ${row.raw.writes} writes in ${f(row.raw.elapsedMs)} ms, ${row.raw.refused} refused`);
      }
    } finally {
      raw.close();
    }
    return rows;
  } finally {
    await sqld?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const f = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const rows: Row[] = [];
for (const target of TARGETS) rows.push(...(await benchTarget(target)));

console.log(`\nbench:writes: ${ROUNDS} rounds of C creates, then C/2 patches and C/2 deletes (${new Date().toISOString()})`);
console.log('target  C    hop writes/s  p50 ms  p99 ms  refused  peak MB | raw writes/s  p50 ms  p99 ms  refused | hop/raw');
for (const row of rows) {
  const h = summary(row.hop);
  const r = summary(row.raw);
  console.log(
    `${row.target.padEnd(6)}  ${String(row.concurrency).padEnd(3)}  ${f(h.perSecond).padStart(12)}  ${f(h.p50, 1).padStart(6)}  ${f(h.p99, 1).padStart(6)}  ` +
      `${String(row.hop.refused).padStart(7)}  ${f(row.peakMb).padStart(7)} | ${f(r.perSecond).padStart(12)}  ${f(r.p50, 1).padStart(6)}  ${f(r.p99, 1).padStart(6)}  ` +
      `${String(row.raw.refused).padStart(7)} | ${f((h.perSecond / r.perSecond) * 100)}%`,
  );
  for (const [reason, n] of row.hop.reasons) console.log(`  hop refused ${n}: ${reason}`);
  for (const [reason, n] of row.raw.reasons) console.log(`  raw refused ${n}: ${reason}`);
}
const refused = rows.reduce((n, row) => n + row.hop.refused, 0);
if (refused > 0) {
  console.error(`\nhop refused ${refused} writes`);
  process.exit(1);
}
