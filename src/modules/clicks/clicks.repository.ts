/**
 * Click storage: one transaction per ingested batch inserts the raw rows once (`on conflict (id) do nothing`) and
 * advances the rollups and the links' counts for exactly the rows it inserted, marked by the batch's token.
 * A redelivered batch inserts nothing, so it counts nothing. Also the retention purge.
 */
import { sql } from 'drizzle-orm';
import { clicks, orphanVisits } from '../../db/schema.ts';
import type { Orm } from '../../platform/db/client.ts';

export type ClickRow = typeof clicks.$inferInsert;
export type OrphanRow = typeof orphanVisits.$inferInsert;

const HOUR_MS = 3_600_000;
// A literal, not a bound parameter: a JavaScript number is bound as a real, and `at / ?` would stop being an
// integer division.
const hourOf = (column: string) => sql.raw(`(${column} - ${column} % ${HOUR_MS})`);
/** SQLite caps bound parameters per statement; rows are inserted in chunks below it. */
const ROWS_PER_INSERT = 80;

function chunks<T>(rows: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

export function createClicksRepository(orm: Orm) {
  return {
    /**
     * Stores one batch atomically; `batch` must be unique to this call. Returns how many clicks and orphan visits
     * were new (the rest had been stored by an earlier delivery).
     */
    async ingest(batch: string, clickRows: ClickRow[], orphanRows: OrphanRow[]): Promise<{ clicks: number; orphans: number }> {
      const statements = [];
      for (const part of chunks(clickRows, ROWS_PER_INSERT)) {
        statements.push(orm.insert(clicks).values(part).onConflictDoNothing());
      }
      for (const part of chunks(orphanRows, ROWS_PER_INSERT)) {
        statements.push(orm.insert(orphanVisits).values(part).onConflictDoNothing());
      }
      if (clickRows.length) {
        statements.push(
          orm.run(sql`
            insert into click_rollups (workspace_id, link_id, dimension, hour, value, humans, bots)
            select c.workspace_id, c.link_id, d.dimension, ${hourOf('c.at')},
              case d.dimension
                when 'country' then coalesce(c.country, '')
                when 'device' then c.device
                when 'browser' then c.browser
                when 'os' then c.os
                when 'referrer' then coalesce(c.referrer, '')
                else '' end,
              sum(c.bot = 0), sum(c.bot)
            from clicks c
            cross join (select 'all' as dimension union all select 'country' union all select 'device'
              union all select 'browser' union all select 'os' union all select 'referrer') d
            where c.batch = ${batch}
            group by 1, 2, 3, 4, 5
            on conflict (link_id, dimension, hour, value)
            do update set humans = humans + excluded.humans, bots = bots + excluded.bots`),
          // The link's count is of humans: link previews and crawlers must not use up a link's maxClicks.
          orm.run(sql`
            update links set clicks = clicks + n.humans
            from (select link_id, sum(bot = 0) as humans from clicks where batch = ${batch} group by link_id) n
            where links.id = n.link_id and n.humans > 0`),
        );
      }
      if (orphanRows.length) {
        statements.push(
          orm.run(sql`
            insert into orphan_rollups (domain, hour, humans, bots)
            select domain, ${hourOf('at')}, sum(bot = 0), sum(bot)
            from orphan_visits where batch = ${batch}
            group by 1, 2
            on conflict (domain, hour) do update set humans = humans + excluded.humans, bots = bots + excluded.bots`),
        );
      }
      const counted = orm.all<{ clicks: number; orphans: number }>(sql`
        select (select count(*) from clicks where batch = ${batch}) as clicks,
               (select count(*) from orphan_visits where batch = ${batch}) as orphans`);
      const results = await orm.batch([...statements, counted] as unknown as Parameters<Orm['batch']>[0]);
      const [row] = results[results.length - 1] as Array<{ clicks: number; orphans: number }>;
      return { clicks: Number(row?.clicks ?? 0), orphans: Number(row?.orphans ?? 0) };
    },

    /** Deletes raw clicks and orphan visits older than `before`, at most `limit` of each; rollups stay. */
    async purge(before: Date, limit: number): Promise<number> {
      const ms = before.getTime();
      const [a, b] = await orm.batch([
        orm.run(sql`delete from clicks where id in (select id from clicks where at < ${ms} limit ${limit})`),
        orm.run(sql`delete from orphan_visits where id in (select id from orphan_visits where at < ${ms} limit ${limit})`),
      ]);
      return Number(a.rowsAffected) + Number(b.rowsAffected);
    },
  };
}

export type ClicksRepository = ReturnType<typeof createClicksRepository>;
