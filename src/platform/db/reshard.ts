/**
 * Online resharding (`hop reshard --to <urls>`): moves buckets of the bucket map, with their links' rows, between
 * shards while hop serves. Per wave of buckets: copy live (idempotent upserts), freeze the wave (processes see it
 * within the grace), copy what changed since, verify source against target (counts and checksums per bucket), flip
 * the map and unfreeze in one control write. The sources keep their copies until every process surely follows the
 * flip, then lose them. Shards leaving the list have their workspace and orphan rollups added once to a remaining
 * shard. Every step is recorded on the control database, so a rerun after a crash continues where it stopped.
 * The protocol and what can race: docs/architecture.md, "Shards".
 */
import type { InStatement, Row } from '@libsql/client';
import { AppError, isBusy } from '../../errors.ts';
import type { Database } from './client.ts';
import { BUCKETS, bucketOf, fnv1a32, loadBucketMap } from './shards.ts';
import { readLayout } from './shard-layout.ts';

/** A link's own rows beside it on its shard, keyed by link id; how each is copied. */
const LINK_TABLES = [
  { table: 'click_rollups', key: ['link_id', 'slot', 'dimension', 'value'] },
  { table: 'click_totals', key: ['link_id', 'slot'] },
  { table: 'click_days', key: ['link_id', 'day', 'dimension', 'value'] },
] as const;

/** Rollups kept per workspace or domain where they were counted: added into a remaining shard when theirs leaves. */
const OWNER_ROLLUPS = [
  { table: 'workspace_rollups', key: ['workspace_id', 'slot', 'dimension', 'value'] },
  { table: 'workspace_totals', key: ['workspace_id', 'slot'] },
  { table: 'workspace_days', key: ['workspace_id', 'day', 'dimension', 'value'] },
  { table: 'orphan_rollups', key: ['domain', 'slot'] },
] as const;

export interface ReshardProgress {
  step: string;
  bucketsDone: number;
  buckets: number;
  links: number;
  linksTotal: number;
  clicks: number;
  /** Clicks parked by consumers during a freeze, stored on their new shard since. */
  parked: number;
  etaS: number | undefined;
}

export interface ReshardOptions {
  control: Database;
  /** HOP_DATABASE_SHARDS: the list before the first resharding. */
  listed: readonly string[];
  to: readonly string[];
  /** Opens (and migrates) a shard; each URL once. */
  open: (url: string) => Promise<Database>;
  /** Wait after a freeze and before deleting a source's copy: longer than a process's layout poll plus a write's deadline. */
  graceMs: number;
  /** Buckets frozen together. */
  waveBuckets?: number;
  /** Link ids per copy statement group. */
  chunk?: number;
  /** Copy chunks in flight at once. */
  parallel?: number;
  /** Stores parked clicks (rows as the clicks repository stores them) on a shard, deduplicated by id. */
  store: (shard: Database, rows: unknown[]) => Promise<void>;
  progress?: (p: ReshardProgress) => void;
  log?: (message: string) => void;
  sleep?: (ms: number) => Promise<void>;
}

export interface ReshardReport {
  source: string[];
  target: string[];
  bucketsMoved: number;
  links: number;
  clicks: number;
  seconds: number;
  /** Per bucket verified at the end: links on its shard equal the directory's, and no copy left elsewhere. */
  verified: { buckets: number; links: number; clicks: number };
  merged: string[];
  parked: number;
  /** Of `seconds`, spent waiting for running processes (graces): the part that does not grow with the links. */
  waitedS: number;
  resumed: boolean;
}

/**
 * The same database, its client's execute and batch tried again (5 times, backing off) when the database did not
 * answer or was busy: a move makes thousands of calls, and each is idempotent (upserts, replaces, deletes, a bumped
 * epoch) or guarded (the merge's mark), so one hiccup of a loaded server need not stop it.
 */
function retrying(db: Database, pause: (ms: number) => Promise<void>): Database {
  const again = async <T>(run: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (err) {
        if (attempt >= 5 || !((err instanceof AppError && err.code === 'unavailable') || isBusy(err))) throw err;
        await pause(250 * 2 ** attempt);
      }
    }
  };
  const client = new Proxy(db.client, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (prop === 'execute' || prop === 'batch') {
        return (...args: unknown[]) => again(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { ...db, client };
}

export class ReshardError extends Error {
  override name = 'ReshardError';
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((u, i) => u === b[i]);
const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(',');
const chunks = <T>(list: readonly T[], size: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
};

/** Runs `work` over `items` with at most `n` at once. */
async function pool<T>(items: readonly T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** Multi-row inserts of `rows`, at most ~8,000 parameters per statement. */
function inserts(table: string, columns: readonly string[], rows: readonly Row[], verb: string, suffix = ''): InStatement[] {
  const per = Math.max(1, Math.floor(8000 / columns.length));
  return chunks(rows, per).map((part) => ({
    sql: `${verb} into ${table} (${columns.join(',')}) values ${part.map(() => `(${placeholders(columns.length)})`).join(',')}${suffix}`,
    args: part.flatMap((row) => columns.map((c) => row[c] as never)),
  }));
}

/**
 * The new map: each target shard gets its share of the buckets (⌊B/n⌋, the first B mod n one more), keeping every
 * bucket that already lies on a shard of the new list while its shard has room, so that as few buckets move as can.
 * Indices are of `union` (the old list, then the new shards).
 */
export function planMap(map: readonly number[], union: readonly string[], to: readonly string[]): number[] {
  const targetIdx = to.map((u) => union.indexOf(u));
  const quota = new Map(targetIdx.map((idx, i) => [idx, Math.floor(BUCKETS / to.length) + (i < BUCKETS % to.length ? 1 : 0)]));
  const next = new Array<number>(BUCKETS).fill(-1);
  for (let b = 0; b < BUCKETS; b++) {
    const left = quota.get(map[b]!);
    if (left) {
      next[b] = map[b]!;
      quota.set(map[b]!, left - 1);
    }
  }
  for (let b = 0; b < BUCKETS; b++) {
    if (next[b] !== -1) continue;
    const [idx] = [...quota].find(([, left]) => left > 0)!;
    next[b] = idx;
    quota.set(idx, quota.get(idx)! - 1);
  }
  return next;
}

export async function reshard(options: ReshardOptions): Promise<ReshardReport> {
  const { to, graceMs } = options;
  const waveBuckets = options.waveBuckets ?? 256;
  const chunk = options.chunk ?? 500;
  const parallel = options.parallel ?? 4;
  const log = options.log ?? (() => {});
  const pause = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const control = retrying(options.control, pause);
  let waitedMs = 0;
  const sleep = (ms: number) => {
    waitedMs += ms;
    return pause(ms);
  };
  const started = Date.now();

  if (!to.length) throw new ReshardError('--to names no shard');
  if (new Set(to).size !== to.length) throw new ReshardError('--to names a shard twice');

  const opened = new Map<string, Database>();
  const db = async (url: string) => opened.get(url) ?? opened.set(url, retrying(await options.open(url), pause)).get(url)!;

  let layout = await readLayout(control);
  const current = layout.urls ?? [...options.listed];
  let resumed = false;
  if (layout.reshard && layout.reshard.phase !== 'done') {
    if (!sameList(layout.reshard.target, to)) {
      throw new ReshardError(`a resharding to ${layout.reshard.target.join(',')} is not finished; rerun hop reshard --to with that list`);
    }
    resumed = true;
  } else if (sameList(current, to)) {
    throw new ReshardError(`the shards are already ${to.join(',')}: nothing to move`);
  }
  // Every shard reachable (and migrated) before anything changes.
  const union = resumed ? layout.urls! : [...current, ...to.filter((u) => !current.includes(u))];
  for (const url of new Set([...union, ...to])) {
    try {
      await (await db(url)).client.execute('select 1');
    } catch (err) {
      throw new ReshardError(`shard ${url.replace(/\?.*$/, '')} cannot be reached: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  if (!resumed) {
    const map = layout.urls ? layout.map : await loadBucketMap(control, current.length);
    const next = planMap(map, union, to);
    const moves = next.flatMap((t, b) => (t === map[b] ? [] : [[b, map[b]!, t] as const]));
    await control.client.batch(
      [
        {
          sql: 'insert into shard_layout (id, epoch, shards) values (1, 1, ?) on conflict (id) do update set epoch = epoch + 1, shards = excluded.shards',
          args: [JSON.stringify(union)],
        },
        {
          sql:
            "insert into reshard_state (id, source, target, phase, started_at, finished_at) values (1, ?, ?, 'moving', ?, null) " +
            'on conflict (id) do update set source = excluded.source, target = excluded.target, phase = excluded.phase, started_at = excluded.started_at, finished_at = null',
          args: [JSON.stringify(current), JSON.stringify(to), started],
        },
        'delete from reshard_buckets',
        ...chunks(moves, 300).map((part) => ({
          sql: `insert into reshard_buckets (bucket, from_shard, to_shard, phase) values ${part.map(() => "(?, ?, ?, 'pending')").join(',')}`,
          args: part.flat(),
        })),
      ],
      'write',
    );
    log(`moving ${moves.length} of ${BUCKETS} buckets from ${current.length} to ${to.length} shards`);
    layout = await readLayout(control);
  }
  const state = (await control.client.execute('select source, target, phase, started_at from reshard_state where id = 1')).rows[0]!;
  const source = JSON.parse(String(state.source)) as string[];
  const reshardId = Number(state.started_at);
  const shardDb = (idx: number) => db(layout.urls![idx]!);

  const all = (await control.client.execute('select bucket, from_shard, to_shard, phase from reshard_buckets order by bucket')).rows.map((r) => ({
    bucket: Number(r.bucket),
    from: Number(r.from_shard),
    to: Number(r.to_shard),
    phase: String(r.phase),
  }));
  const linksOf = async (buckets: readonly number[]) => {
    const out: { id: string; bucket: number }[] = [];
    for (const part of chunks(buckets, 500)) {
      const { rows } = await control.client.execute({ sql: `select link_id, bucket from link_buckets where bucket in (${placeholders(part.length)})`, args: part });
      for (const r of rows) out.push({ id: String(r.link_id), bucket: Number(r.bucket) });
    }
    return out;
  };

  // Progress: links to move (the directory's count for the buckets not yet flipped) and an ETA from the rate so far.
  const todo = all.filter((m) => m.phase === 'pending' || m.phase === 'frozen');
  const counted = await control.client.execute({
    sql: `select count(*) as n from link_buckets where bucket in (select bucket from reshard_buckets where phase in ('pending', 'frozen'))`,
  });
  const progress: ReshardProgress = { step: 'copying', bucketsDone: all.length - todo.length, buckets: all.length, links: 0, linksTotal: Number(counted.rows[0]!.n), clicks: 0, parked: 0, etaS: undefined };
  const report = (step: string) => {
    progress.step = step;
    const elapsed = (Date.now() - started) / 1000;
    const rate = progress.links / elapsed;
    progress.etaS = progress.links > 0 && rate > 0 ? Math.max(0, (progress.linksTotal - progress.links) / rate) : undefined;
    options.progress?.({ ...progress });
  };
  report('copying');

  /** Copies links (and their own rows) from one shard to another; upserts, so a rerun copies again harmlessly. */
  // Each table's columns, read once from the source.
  const columnCache = new Map<string, Promise<string[]>>();
  const columnsOf = (on: Database, table: string) =>
    columnCache.get(table) ?? columnCache.set(table, on.client.execute(`select * from ${table} limit 0`).then((r) => r.columns)).get(table)!;

  /**
   * Copies links with their own rows from one shard to another; upserts, so a rerun copies again harmlessly. Rows
   * travel as one JSON array per table, made by the source (json_group_array) and read by the target (json_each):
   * this process passes strings along instead of making an object of every row, which was most of its CPU.
   */
  async function copyLinks(from: Database, target: Database, ids: readonly string[], { recount = true } = {}) {
    const tables = [
      { table: 'links', key: 'id', write: 'upsert' },
      { table: 'link_tags', key: 'link_id', write: 'insert or ignore' },
      { table: 'clicks', key: 'link_id', write: 'insert or ignore' },
      // Rollups replaced by the source's rows, never added to: copying twice cannot count twice.
      ...LINK_TABLES.map(({ table }) => ({ table, key: 'link_id', write: 'insert or replace' })),
    ];
    const columns = await Promise.all(tables.map((t) => columnsOf(from, t.table)));
    await pool(chunks(ids, chunk), parallel, async (part) => {
      const inList = placeholders(part.length);
      const read = await from.client.batch(
        [
          { sql: `select json_group_array(distinct workspace_id) as j, count(*) as n from links where id in (${inList})`, args: part },
          ...tables.map((t, i) => ({
            sql: `select json_group_array(json_array(${columns[i]!.join(',')})) as j, count(*) as n from ${t.table} where ${t.key} in (${inList})`,
            args: part,
          })),
        ],
        'read',
      );
      const json = read.map((r) => String(r.rows[0]!.j));
      const count = read.map((r) => Number(r.rows[0]!.n));
      const statements: InStatement[] = [
        { sql: "insert or ignore into workspaces (id, name, created_at) select value, '', 0 from json_each(?)", args: [json[0]!] },
        { sql: `delete from link_tags where link_id in (${inList})`, args: part },
        ...tables.map((t, i) => {
          const cols = columns[i]!;
          const values = cols.map((_, c) => `value ->> ${c}`).join(', ');
          // An upsert, not a replace, for links: replacing would delete the row and, with it, its tags (on delete cascade).
          const upsert = ` on conflict (id) do update set ${cols.filter((c) => c !== 'id').map((c) => `${c} = excluded.${c}`).join(', ')}`;
          const verb = t.write === 'upsert' ? 'insert' : t.write;
          return { sql: `${verb} into ${t.table} (${cols.join(',')}) select ${values} from json_each(?) where true${t.write === 'upsert' ? upsert : ''}`, args: [json[i + 1]!] };
        }),
      ];
      await target.client.batch(statements, 'write');
      if (recount) {
        progress.links += count[1]!;
        progress.clicks += count[3]!;
      }
      report(progress.step);
    });
  }

  /** Rows of these links the target must not keep (they left the wave's buckets while it was copied). */
  async function dropLinks(target: Database, ids: readonly string[]) {
    for (const part of chunks(ids, chunk)) {
      const inList = placeholders(part.length);
      await target.client.batch(
        [
          ...['link_tags', 'clicks', ...LINK_TABLES.map((t) => t.table)].map((t) => ({ sql: `delete from ${t} where link_id in (${inList})`, args: part })),
          { sql: `delete from links where id in (${inList})`, args: part },
        ],
        'write',
      );
    }
  }

  /**
   * Per link: a checksum of its row, its tags, its clicks and its rollups as one database holds them (aggregated in
   * SQL: a link's clicks are read as count, sum and max over the (link_id, at, id) index), and its clicks count.
   */
  async function fingerprint(on: Database, ids: readonly string[]) {
    const per = new Map<string, { sum: number; clicks: number }>();
    // One JSON object per table and chunk (link id → its signature), made by the database.
    const signatures = [
      // Every change of a link row moves updated_at (an edit) or clicks (a click): no need to read it whole.
      { table: 'links', key: 'id', sig: "updated_at || ':' || clicks || ':' || domain || '/' || slug" },
      { table: 'link_tags', key: 'link_id', sig: "count(*) || ':' || sum(length(tag))" },
      { table: 'clicks', key: 'link_id', sig: "count(*) || ':' || sum(at) || ':' || max(id)" },
      ...LINK_TABLES.map(({ table }) => ({ table, key: 'link_id', sig: "count(*) || ':' || sum(humans) || ':' || sum(bots)" })),
    ];
    await pool(chunks(ids, chunk), parallel, async (part) => {
      const inList = placeholders(part.length);
      const results = await on.client.batch(
        signatures.map(({ table, key, sig }) => ({
          sql: `select json_group_object(k, s) as j from (select ${key} as k, ${sig} as s from ${table} where ${key} in (${inList})${key === 'id' ? '' : ` group by ${key}`})`,
          args: part,
        })),
        'read',
      );
      results.forEach((result, i) => {
        for (const [id, sig] of Object.entries(JSON.parse(String(result.rows[0]!.j)) as Record<string, string>)) {
          const entry = per.get(id) ?? per.set(id, { sum: 0, clicks: 0 }).get(id)!;
          if (i === 2) entry.clicks = Number(sig.split(':')[0]);
          entry.sum = (entry.sum + fnv1a32(`${i}:${sig}`)) >>> 0;
        }
      });
    });
    return per;
  }

  /**
   * Clicks the consumers parked while their bucket was frozen, stored on the bucket's shard now (a click stored twice
   * is skipped by id) and then deleted here. Run after each flip and once every process surely saw the last one.
   */
  async function drainParked() {
    for (;;) {
      const now = await readLayout(control);
      const frozen = now.frozen;
      const { rows } = await control.client.execute({
        sql: `select id, bucket, row from parked_clicks where bucket not in (${placeholders(frozen.length)}) order by id limit 2000`,
        args: frozen,
      });
      if (!rows.length) return;
      const byShard = new Map<number, Row[]>();
      for (const r of rows) {
        const idx = now.map[Number(r.bucket)]!;
        byShard.set(idx, [...(byShard.get(idx) ?? []), r]);
      }
      for (const [idx, part] of byShard) await options.store(await db(now.urls![idx]!), part.map((r) => JSON.parse(String(r.row)) as unknown));
      await control.client.execute({ sql: `delete from parked_clicks where id in (${placeholders(rows.length)})`, args: rows.map((r) => String(r.id)) });
      progress.parked += rows.length;
      if (rows.length < 2000) return;
    }
  }

  // Waves: buckets moving between the same two shards, frozen together; the frozen ones of an interrupted run first.
  const groups = new Map<string, typeof all>();
  for (const m of todo.sort((a, b) => Number(b.phase === 'frozen') - Number(a.phase === 'frozen'))) {
    const key = `${m.from}>${m.to}`;
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  // Each pair of shards is a lane of waves; lanes run at once (their buckets, sources or targets differ).
  const lanes = [...groups.values()].map((group) => chunks(group, waveBuckets));

  // A rerun does not know when the last run flipped: it waits a whole grace before deleting.
  let lastFlip = resumed ? Date.now() : 0;
  async function moveWave(wave: typeof all) {
    const current = await readLayout(control);
    const buckets = wave.map((m) => m.bucket);
    const from = await shardDb(wave[0]!.from);
    const target = await shardDb(wave[0]!.to);
    const toIdx = wave[0]!.to;
    const before = await linksOf(buckets);
    await copyLinks(from, target, before.map((l) => l.id));

    await control.client.batch(
      [
        { sql: `update reshard_buckets set phase = 'frozen' where bucket in (${placeholders(buckets.length)})`, args: buckets },
        'update shard_layout set epoch = epoch + 1 where id = 1',
      ],
      'write',
    );
    report('freezing');
    await sleep(graceMs);

    // Under the freeze nothing of these buckets changes on the source.
    const after = await linksOf(buckets);
    const afterIds = new Set(after.map((l) => l.id));
    const gone = before.filter((l) => !afterIds.has(l.id)).map((l) => l.id);
    if (gone.length) {
      // Left the wave (deleted, or moved by a new address): dropped from the target unless its bucket is the target's now.
      const { rows } = await control.client.execute({ sql: `select link_id, bucket from link_buckets where link_id in (${placeholders(gone.length)})`, args: gone });
      const stays = new Set(rows.filter((r) => current.map[Number(r.bucket)] === toIdx).map((r) => String(r.link_id)));
      await dropLinks(target, gone.filter((id) => !stays.has(id)));
    }
    // What changed since the first copy (links created, edited or clicked meanwhile, a day closed) is found by
    // comparing each link's fingerprint on both sides, and copied again whole: the target's rows of it deleted,
    // the source's written. Reading aggregates costs far less than copying every link twice.
    report('verifying');
    const ids = after.map((l) => l.id);
    let [src, dst] = await Promise.all([fingerprint(from, ids), fingerprint(target, ids)]);
    const differ = ids.filter((id) => src.get(id)?.sum !== dst.get(id)?.sum);
    if (differ.length) {
      await dropLinks(target, differ);
      await copyLinks(from, target, differ, { recount: false });
      [src, dst] = await Promise.all([fingerprint(from, ids), fingerprint(target, ids)]);
    }
    const perBucket = new Map<number, { links: number; clicks: number; sum: number }>();
    for (const l of after) {
      const s1 = src.get(l.id);
      const d1 = dst.get(l.id);
      const entry = perBucket.get(l.bucket) ?? perBucket.set(l.bucket, { links: 0, clicks: 0, sum: 0 }).get(l.bucket)!;
      if (!s1) continue; // in the directory, not yet on its shard (a create in flight when the freeze began): nothing to move
      if (s1.sum !== d1?.sum) {
        throw new ReshardError(`bucket ${l.bucket}: link ${l.id} differs between source and target after the copy; it stays frozen: rerun hop reshard`);
      }
      entry.links++;
      entry.clicks += s1.clicks;
      entry.sum = (entry.sum + s1.sum) >>> 0;
    }
    // The flip and the unfreeze in one write: a process sees the bucket frozen or on its new shard, never open on the old.
    await control.client.batch(
      [
        ...buckets.map((b) => {
          const s = perBucket.get(b) ?? { links: 0, clicks: 0, sum: 0 };
          return { sql: "update reshard_buckets set phase = 'flipped', links = ?, clicks = ?, checksum = ? where bucket = ?", args: [s.links, s.clicks, s.sum.toString(16), b] };
        }),
        { sql: `update shard_buckets set shard = ? where bucket in (${placeholders(buckets.length)})`, args: [toIdx, ...buckets] },
        'update shard_layout set epoch = epoch + 1 where id = 1',
      ],
      'write',
    );
    lastFlip = Date.now();
    for (const m of wave) m.phase = 'flipped';
    await drainParked();
    progress.bucketsDone += wave.length;
    report('copying');
  }
  await Promise.all(
    lanes.map(async (lane) => {
      for (const wave of lane) await moveWave(wave);
    }),
  );

  // The sources lose their copies once every process surely reads the new map.
  const flipped = all.filter((m) => m.phase === 'flipped');
  if (flipped.length) {
    report('cleaning');
    await sleep(Math.max(0, lastFlip + graceMs - Date.now()));
    layout = await readLayout(control);
    const bySource = new Map<number, number[]>();
    for (const m of flipped) bySource.set(m.from, [...(bySource.get(m.from) ?? []), m.bucket]);
    for (const [fromIdx, buckets] of bySource) {
      const from = await shardDb(fromIdx);
      const moved = new Set(buckets);
      const ids = (await linksOf(buckets)).map((l) => l.id);
      await pool(chunks(ids, chunk), parallel, async (part) => {
        // Only rows whose address still hashes into a moved bucket, and whose bucket is not the source's again.
        const { rows } = await from.client.execute({ sql: `select id, domain, slug from links where id in (${placeholders(part.length)})`, args: part });
        const drop = rows
          .filter((r) => {
            const b = bucketOf(String(r.domain), String(r.slug));
            return moved.has(b) && layout.map[b] !== fromIdx;
          })
          .map((r) => String(r.id));
        if (drop.length) await dropLinks(from, drop);
      });
      await control.client.execute({ sql: `update reshard_buckets set phase = 'cleaned' where bucket in (${placeholders(buckets.length)})`, args: buckets });
    }
  }

  await drainParked();

  // The final list: the map renumbered to it, in one write with the phase that says the merge comes next.
  const removed = source.filter((u) => !to.includes(u));
  layout = await readLayout(control);
  if (layout.reshard?.phase === 'moving') {
    const renumber = layout.urls!.map((u) => to.indexOf(u));
    const statements: InStatement[] = [];
    for (const [oldIdx, newIdx] of renumber.entries()) {
      if (oldIdx === newIdx || newIdx < 0) continue;
      statements.push({ sql: 'update shard_buckets set shard = ? where shard = ?', args: [newIdx + 10_000, oldIdx] });
    }
    statements.push('update shard_buckets set shard = shard - 10000 where shard >= 10000');
    await control.client.batch(
      [
        ...statements,
        { sql: 'update shard_layout set epoch = epoch + 1, shards = ? where id = 1', args: [JSON.stringify(to)] },
        "update reshard_state set phase = 'merging' where id = 1",
      ],
      'write',
    );
    layout = await readLayout(control);
  }

  // A removed shard's workspace and orphan rollups, and its orphan visits, added once into the first new shard.
  const merged: string[] = [];
  if (removed.length) {
    report('merging');
    await sleep(graceMs);
    const into = await db(to[0]!);
    for (const url of removed) {
      const mark = `merge:${reshardId}:${url}`;
      if ((await into.client.execute({ sql: 'select 1 from reshard_marks where name = ?', args: [mark] })).rows.length) continue;
      const from = await db(url);
      const statements: InStatement[] = [{ sql: 'insert into reshard_marks (name, at) values (?, ?)', args: [mark, Date.now()] }];
      const workspaces = (await from.client.execute('select distinct workspace_id as id from workspace_totals')).rows.map((r) => String(r.id));
      statements.push(...workspaces.map((id) => ({ sql: "insert or ignore into workspaces (id, name, created_at) values (?, '', 0)", args: [id] })));
      for (const { table, key } of OWNER_ROLLUPS) {
        const { rows, columns } = await from.client.execute(`select * from ${table}`);
        statements.push(...inserts(table, columns, rows, 'insert', ` on conflict (${key.join(',')}) do update set humans = humans + excluded.humans, bots = bots + excluded.bots`));
      }
      const visits = await from.client.execute('select * from orphan_visits');
      statements.push(...inserts('orphan_visits', visits.columns, visits.rows, 'insert or ignore'));
      // One transaction with its mark: added once, whatever interrupts the run.
      await into.client.batch(statements, 'write');
      merged.push(url);
    }
  }
  await control.client.execute({ sql: "update reshard_state set phase = 'done', finished_at = ? where id = 1", args: [Date.now()] });

  report('verifying');
  // Links created meanwhile can be in the directory and not yet on their shard: a difference is looked at again.
  let verified: Awaited<ReturnType<typeof verifyLayout>> | undefined;
  for (let attempt = 1; !verified; attempt++) {
    try {
      verified = await verifyLayout(control, to, db);
    } catch (err) {
      if (attempt >= 3) throw err;
      await sleep(500);
    }
  }
  const seconds = (Date.now() - started) / 1000;
  progress.bucketsDone = progress.buckets;
  report('done');
  return { source, target: [...to], bucketsMoved: all.length, links: progress.links, clicks: progress.clicks, seconds, verified, merged, parked: progress.parked, waitedS: waitedMs / 1000, resumed };
}

/**
 * The end check, per bucket: the links its shard holds are the directory's (count and ids' checksum), and no other
 * shard holds a link of it. Throws on the first difference.
 */
export async function verifyLayout(control: Database, to: readonly string[], db: (url: string) => Promise<Database>) {
  const layout = await readLayout(control);
  const expected = new Map<number, { n: number; sum: number }>();
  const { rows } = await control.client.execute('select link_id, bucket from link_buckets');
  for (const r of rows) {
    const e = expected.get(Number(r.bucket)) ?? expected.set(Number(r.bucket), { n: 0, sum: 0 }).get(Number(r.bucket))!;
    e.n++;
    e.sum = (e.sum + fnv1a32(String(r.link_id))) >>> 0;
  }
  const found = new Map<number, { n: number; sum: number }>();
  let clicks = 0;
  for (const [idx, url] of to.entries()) {
    const shard = await db(url);
    const { rows: links } = await shard.client.execute('select id, domain, slug from links');
    for (const r of links) {
      const b = bucketOf(String(r.domain), String(r.slug));
      if (layout.map[b] !== idx) throw new ReshardError(`shard ${url.replace(/\?.*$/, '')} holds link ${String(r.id)} of bucket ${b}, which is not its`);
      const f = found.get(b) ?? found.set(b, { n: 0, sum: 0 }).get(b)!;
      f.n++;
      f.sum = (f.sum + fnv1a32(String(r.id))) >>> 0;
    }
    clicks += Number((await shard.client.execute('select coalesce(sum(humans + bots), 0) as n from click_totals')).rows[0]!.n);
  }
  let links = 0;
  for (let b = 0; b < BUCKETS; b++) {
    const e = expected.get(b) ?? { n: 0, sum: 0 };
    const f = found.get(b) ?? { n: 0, sum: 0 };
    if (e.n !== f.n || e.sum !== f.sum) throw new ReshardError(`bucket ${b}: the directory names ${e.n} links, its shard holds ${f.n}`);
    links += f.n;
  }
  return { buckets: BUCKETS, links, clicks };
}
