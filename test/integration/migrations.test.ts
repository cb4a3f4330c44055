// Migration 0004 (rollups by 15-minute slot, slot totals and daily rollups) over a database holding hourly rollups
// made by 0003: every count is kept, each hour's rows in that hour's first slot, the totals and the days summed
// from them, and the tables stay WITHOUT ROWID. Migration 0005 (daily rollups filled once a day has closed) starts its
// watermark at the day it runs in and moves no count.
import { createClient, type Client } from '@libsql/client';
import { drizzle } from 'drizzle-orm/libsql';
import { migrate } from 'drizzle-orm/libsql/migrator';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS_FOLDER } from '../../src/runtimes/database.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

let dir: string;
let client: Client;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hop-migrations-'));
  client = createClient({ url: `file:${join(dir, 'hop.db')}` });
});
afterEach(() => {
  client.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The migrations folder as it was up to (and including) `last`. */
function migrationsUpTo(last: string): string {
  const folder = join(dir, 'migrations');
  mkdirSync(join(folder, 'meta'), { recursive: true });
  const journal = JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, 'meta/_journal.json'), 'utf8')) as { entries: Array<{ tag: string }> };
  const end = journal.entries.findIndex((e) => e.tag === last);
  expect(end).toBeGreaterThanOrEqual(0);
  journal.entries = journal.entries.slice(0, end + 1);
  for (const e of journal.entries) copyFileSync(join(MIGRATIONS_FOLDER, `${e.tag}.sql`), join(folder, `${e.tag}.sql`));
  writeFileSync(join(folder, 'meta/_journal.json'), JSON.stringify(journal));
  return folder;
}

/** Rows as arrays, numbers as numbers. */
const rows = async (sql: string) =>
  (await client.execute(sql)).rows.map((r) => Array.from(r).map((v) => (typeof v === 'string' ? v : Number(v))));

describe('migration 0004: rollups by slot', () => {
  it('keeps every hourly count, in the first slot of its hour, with totals and daily sums made from them', async () => {
    await migrate(drizzle(client), { migrationsFolder: migrationsUpTo('0003_rollups_by_hour') });
    // Hourly rollups as 0003 kept them: two links of one workspace over 60 hours across three UTC days.
    const start = Date.UTC(2026, 2, 1, 6);
    const old: Array<[string, number, string, string, number, number]> = [];
    const perWorkspace = new Map<string, [number, number]>();
    for (let h = 0; h < 60; h++) {
      for (const link of ['lnk_a', 'lnk_b']) {
        if ((h + link.length) % 3 === 0) continue;
        const hour = start + h * HOUR_MS;
        const humans = (h * 7) % 5;
        const bots = h % 2;
        const rowsOfHour: Array<[string, string, number, number]> = [
          ['all', '', humans, bots],
          ['country', h % 2 ? 'DE' : 'IN', humans, bots],
          ['device', 'mobile', humans, bots],
        ];
        for (const [dimension, value, hu, bo] of rowsOfHour) {
          old.push([link, hour, dimension, value, hu, bo]);
          const key = `${hour}/${dimension}/${value}`;
          const w = perWorkspace.get(key) ?? [0, 0];
          perWorkspace.set(key, [w[0] + hu, w[1] + bo]);
        }
      }
    }
    for (const [link, hour, dimension, value, humans, bots] of old) {
      await client.execute({
        sql: 'insert into click_rollups (link_id, hour, dimension, value, humans, bots) values (?, ?, ?, ?, ?, ?)',
        args: [link, hour, dimension, value, humans, bots],
      });
    }
    for (const [key, [humans, bots]] of perWorkspace) {
      const [hour, dimension, value] = key.split('/');
      await client.execute({
        sql: 'insert into workspace_rollups (workspace_id, hour, dimension, value, humans, bots) values (?, ?, ?, ?, ?, ?)',
        args: ['wsp_a', Number(hour), dimension!, value!, humans, bots],
      });
    }
    await client.execute({ sql: 'insert into orphan_rollups (domain, hour, humans, bots) values (?, ?, 3, 1)', args: ['go.example', start] });

    await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER });

    const sumOld = (pred: (r: (typeof old)[number]) => boolean) =>
      old.filter(pred).reduce<[number, number]>((n, r) => [n[0] + r[4], n[1] + r[5]], [0, 0]);
    // Totals: the `all` rows, each at its hour's start, which is a slot's start.
    const totals = await rows('select link_id, slot, humans, bots from click_totals order by link_id, slot');
    // `old` is in hour order, per link within each hour: sorted by link, it is in key order.
    const allRows = old.filter((r) => r[2] === 'all').map(([link, hour, , , humans, bots]) => [link, hour, humans, bots]);
    expect(totals).toEqual([...allRows.filter((r) => r[0] === 'lnk_a'), ...allRows.filter((r) => r[0] === 'lnk_b')]);
    expect(totals.every((r) => Number(r[1]) % 900_000 === 0)).toBe(true);
    // Per slot and value: the other rows, unchanged but for the column's name.
    const slots = await rows("select count(*), sum(humans), sum(bots) from click_rollups where dimension <> 'all'");
    expect(slots).toEqual([[old.filter((r) => r[2] !== 'all').length, ...sumOld((r) => r[2] !== 'all')]]);
    expect(await rows("select count(*) from click_rollups where dimension = 'all'")).toEqual([[0]]);
    // Days: the sums of each UTC day's hours, every dimension, the totals as `all`.
    const days = await rows('select link_id, day, dimension, value, humans, bots from click_days order by link_id, day, dimension, value');
    const expectedDays = new Map<string, [number, number]>();
    for (const [link, hour, dimension, value, humans, bots] of old) {
      const key = [link, Math.floor(hour / DAY_MS) * DAY_MS, dimension, value].join('|');
      const d = expectedDays.get(key) ?? [0, 0];
      expectedDays.set(key, [d[0] + humans, d[1] + bots]);
    }
    expect(days).toHaveLength(expectedDays.size);
    for (const [link, day, dimension, value, humans, bots] of days) {
      expect(expectedDays.get([link, day, dimension, value].join('|'))).toEqual([humans, bots]);
    }
    expect(new Set(days.map((d) => d[1]))).toEqual(new Set([0, 1, 2].map((i) => Date.UTC(2026, 2, 1 + i))));
    // The workspace's tables alike; the orphans' rollups keep their rows.
    const all = sumOld((r) => r[2] === 'all');
    expect(await rows('select sum(humans), sum(bots) from workspace_totals')).toEqual([all]);
    expect(await rows("select sum(humans), sum(bots) from workspace_days where dimension = 'all'")).toEqual([all]);
    expect(await rows("select sum(humans), sum(bots) from workspace_days where dimension = 'country'")).toEqual([all]);
    expect(await rows("select sum(humans), sum(bots) from workspace_rollups where dimension = 'device'")).toEqual([all]);
    expect(await rows("select count(*) from workspace_rollups where dimension = 'all'")).toEqual([[0]]);
    expect(await rows('select slot, humans, bots from orphan_rollups')).toEqual([[start, 3, 1]]);
    // Still stored WITHOUT ROWID, clustered by the key.
    const tables = await rows("select name, sql from sqlite_master where type = 'table' and name like '%\\_%' escape '\\' and (name like '%rollups' or name like '%totals' or name like '%days')");
    expect(tables.length).toBe(7);
    for (const [name, sql] of tables) if (name !== 'orphan_rollups') expect(String(sql)).toMatch(/WITHOUT ROWID/);
  });
});

describe('migration 0005: daily rollups filled once a day has closed', () => {
  it('starts the watermark at the UTC midnight of the day it runs and moves no count', async () => {
    await migrate(drizzle(client), { migrationsFolder: migrationsUpTo('0004_rollups_by_slot') });
    const today = Date.now() - (Date.now() % DAY_MS);
    await client.execute({
      sql: "insert into click_days values ('lnk_a', ?1, 'all', '', 3, 1), ('lnk_a', ?2, 'all', '', 2, 0), ('lnk_a', ?2, 'country', 'DE', 2, 0)",
      args: [today - DAY_MS, today],
    });
    const before = await rows('select * from click_days order by day, dimension');
    await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER });
    const [[until]] = (await rows('select days_until from rollup_watermark where id = 1')) as [[number]];
    // The day the migration ran in (a run across midnight may see the next one).
    expect([today, today + DAY_MS]).toContain(until);
    expect(await rows('select * from click_days order by day, dimension')).toEqual(before);
  });
});
