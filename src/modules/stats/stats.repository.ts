/**
 * drizzle reads behind statistics. Counts come from the hourly rollups only (click_rollups for a link,
 * workspace_rollups for a workspace, orphan_rollups for a domain), each read as one range of its primary key, or
 * for a series as one lookup of it per hour; raw rows are read only to export a link's clicks (keyset pages on the
 * (link_id, at, id) index) and for the top slugs of orphan visits. Every read of a workspace's data is bound to that
 * workspace; a link's rollups are read by its id once `linkExists` found it in the workspace.
 */
import { and, asc, eq, gte, lt, ne, sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import { clickRollups, clicks, links, orphanRollups, orphanVisits, workspaceRollups } from '../../db/schema.ts';
import type { Orm } from '../../platform/db/client.ts';
import type { Dimension } from './stats.schemas.ts';
import { HOUR_MS } from './stats.time.ts';

/** Whose rollups: one link of a workspace, or the whole workspace. */
export type StatsTarget = { workspaceId: string; linkId: string } | { workspaceId: string; linkId?: undefined };

export interface HourCount {
  /** Epoch ms of the UTC hour. */
  hour: number;
  humans: number;
  bots: number;
}

export interface ValueCount {
  /** '' is the rollups' spelling of unknown or absent. */
  value: string;
  humans: number;
  bots: number;
}

export interface RawClick {
  id: string;
  at: Date;
  country: string | null;
  device: string;
  browser: string;
  os: string;
  referrer: string | null;
  bot: boolean;
}

export interface ClickPage {
  from: Date | undefined;
  to: Date | undefined;
  /** The (at, id) of the last click of the previous page. */
  after: { at: Date; id: string } | undefined;
  limit: number;
}

/** `sum(column)` as a number (SQLite answers null for no rows; GROUP BY never makes an empty group). */
const sum = (column: SQLWrapper) => sql<number>`sum(${column})`.mapWith(Number);

/** One value's clicks in one dimension: what top lists are made of. */
export interface DimensionCount extends ValueCount {
  dimension: Dimension;
}

/**
 * Which rollups: a link's (its workspace was checked by the caller, `linkExists`) or a whole workspace's. Both tables
 * are keyed (owner, hour, dimension, value), so a range of hours is one range of the key, every dimension in it.
 */
function rollupSource(target: StatsTarget) {
  if (target.linkId !== undefined) return { t: clickRollups, owner: eq(clickRollups.linkId, target.linkId) };
  return { t: workspaceRollups, owner: eq(workspaceRollups.workspaceId, target.workspaceId) };
}

export function createStatsRepository(orm: Orm) {
  /** The rows top lists sum: every dimension's values (not the totals) over the hours [start, end). */
  function perValue(target: StatsTarget, start: number, end: number) {
    const { t, owner } = rollupSource(target);
    return { t, where: and(owner, gte(t.hour, start), lt(t.hour, end), ne(t.dimension, 'all')) };
  }

  return {
    async linkExists(workspaceId: string, linkId: string): Promise<boolean> {
      const [row] = await orm
        .select({ id: links.id })
        .from(links)
        .where(and(eq(links.id, linkId), eq(links.workspaceId, workspaceId)))
        .limit(1);
      return row !== undefined;
    },

    /**
     * Hourly totals (dimension `all`) of the whole hours [start, end), oldest first; hours without clicks have no
     * row. One key lookup per hour rather than a scan of the range: the range holds every dimension's rows (a
     * hundred an hour for a busy link), the totals one of them.
     */
    async series(target: StatsTarget, start: number, end: number): Promise<HourCount[]> {
      const { t, owner } = rollupSource(target);
      const first = Math.ceil(start / HOUR_MS) * HOUR_MS;
      if (first >= end) return [];
      // `cross join` keeps the hours as the outer loop, so each is one lookup of the full primary key.
      const rows = await orm.all<{ hour: number; humans: number; bots: number }>(sql`
        with recursive hours(hour) as (select ${first} union all select hour + ${HOUR_MS} from hours where hour + ${HOUR_MS} < ${end})
        select ${t.hour} as hour, ${t.humans} as humans, ${t.bots} as bots
        from hours cross join ${t}
        where ${owner} and ${t.hour} = hours.hour and ${t.dimension} = 'all' and ${t.value} = ''
        order by hours.hour`);
      return rows.map((r) => ({ hour: Number(r.hour), humans: Number(r.humans), bots: Number(r.bots) }));
    },

    /** Every value of every dimension with its clicks over [start, end), in no order: one pass over the range. */
    async sums(target: StatsTarget, start: number, end: number): Promise<DimensionCount[]> {
      const { t, where } = perValue(target, start, end);
      const rows = await orm
        .select({ dimension: t.dimension, value: t.value, humans: sum(t.humans), bots: sum(t.bots) })
        .from(t)
        .where(where)
        .groupBy(t.dimension, t.value);
      return rows as DimensionCount[];
    },

    /**
     * The same per UTC day (`day`: epoch ms of its midnight) over whole days [start, end), each day's values as one
     * JSON array: a day has up to a few hundred values, and one row per day reads ~10x faster than one per value.
     */
    async sumsByDay(target: StatsTarget, start: number, end: number): Promise<Array<{ day: number; values: DimensionCount[] }>> {
      const { t, where } = perValue(target, start, end);
      const day = sql<number>`${t.hour} / 86400000 * 86400000`;
      const summed = orm
        .select({ day: day.as('day'), dimension: t.dimension, value: t.value, humans: sum(t.humans).as('humans'), bots: sum(t.bots).as('bots') })
        .from(t)
        .where(where)
        .groupBy(day, t.dimension, t.value)
        .as('summed');
      const rows = await orm
        .select({
          day: sql<number>`${summed.day}`.mapWith(Number),
          values: sql<string>`json_group_array(json_array(${summed.dimension}, ${summed.value}, ${summed.humans}, ${summed.bots}))`,
        })
        .from(summed)
        .groupBy(sql`${summed.day}`);
      return rows.map((r) => ({
        day: r.day,
        values: (JSON.parse(r.values) as Array<[Dimension, string, number, number]>).map(([dimension, value, humans, bots]) => ({
          dimension,
          value,
          humans,
          bots,
        })),
      }));
    },

    /** Hourly orphan visits of a domain over [start, end), oldest first. */
    async orphanSeries(domain: string, start: number, end: number): Promise<HourCount[]> {
      const t = orphanRollups;
      return orm
        .select({ hour: t.hour, humans: t.humans, bots: t.bots })
        .from(t)
        .where(and(eq(t.domain, domain), gte(t.hour, start), lt(t.hour, end)))
        .orderBy(asc(t.hour));
    },

    /** The most requested unknown slugs of a domain over [start, end), from the raw visits still kept. */
    async orphanTopSlugs(domain: string, start: number, end: number, limit: number): Promise<ValueCount[]> {
      const t = orphanVisits;
      const bots = sql<number>`sum(${t.bot})`.mapWith(Number);
      const humans = sql<number>`count(*) - sum(${t.bot})`.mapWith(Number);
      return orm
        .select({ value: t.slug, humans, bots })
        .from(t)
        .where(and(eq(t.domain, domain), gte(t.at, new Date(start)), lt(t.at, new Date(end))))
        .groupBy(t.slug)
        .orderBy(sql`count(*) desc`, asc(t.slug))
        .limit(limit);
    },

    /** One page of a link's raw clicks in (at, id) order, after `page.after`: a range of the (link_id, at, id) index. */
    async clicksPage(workspaceId: string, linkId: string, page: ClickPage): Promise<RawClick[]> {
      const where: SQL[] = [eq(clicks.linkId, linkId), eq(clicks.workspaceId, workspaceId)];
      if (page.from) where.push(gte(clicks.at, page.from));
      if (page.to) where.push(lt(clicks.at, page.to));
      if (page.after) where.push(sql`(${clicks.at}, ${clicks.id}) > (${page.after.at.getTime()}, ${page.after.id})`);
      return orm
        .select({
          id: clicks.id,
          at: clicks.at,
          country: clicks.country,
          device: clicks.device,
          browser: clicks.browser,
          os: clicks.os,
          referrer: clicks.referrer,
          bot: clicks.bot,
        })
        .from(clicks)
        .where(and(...where))
        .orderBy(asc(clicks.at), asc(clicks.id))
        .limit(page.limit);
    },
  };
}

export type StatsRepository = ReturnType<typeof createStatsRepository>;
