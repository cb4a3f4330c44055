/**
 * drizzle reads behind statistics. Counts come from the hourly rollups only (click_rollups for a link,
 * workspace_rollups for a workspace, orphan_rollups for a domain), each read as one range of its primary key;
 * raw rows are read only to export a link's clicks (keyset pages on the (link_id, at, id) index) and for the top
 * slugs of orphan visits. Every read of a workspace's data is bound to that workspace.
 */
import { and, asc, eq, gte, lt, sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import { clickRollups, clicks, links, orphanRollups, orphanVisits, workspaceRollups } from '../../db/schema.ts';
import type { Orm } from '../../platform/db/client.ts';
import type { Dimension } from './stats.schemas.ts';

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

/** Rows are tiny and the series at most a few thousand: summing happens in SQL, bucketing in the service. */
function rollupSource(target: StatsTarget) {
  if (target.linkId !== undefined) {
    const t = clickRollups;
    // The link id leads the primary key; the workspace filter costs nothing and keeps a foreign link out.
    return { t, where: [eq(t.linkId, target.linkId), eq(t.workspaceId, target.workspaceId)] };
  }
  const t = workspaceRollups;
  return { t, where: [eq(t.workspaceId, target.workspaceId)] };
}

export function createStatsRepository(orm: Orm) {
  return {
    async linkExists(workspaceId: string, linkId: string): Promise<boolean> {
      const [row] = await orm
        .select({ id: links.id })
        .from(links)
        .where(and(eq(links.id, linkId), eq(links.workspaceId, workspaceId)))
        .limit(1);
      return row !== undefined;
    },

    /** Hourly totals (dimension `all`) of [start, end), oldest first; hours without clicks have no row. */
    async series(target: StatsTarget, start: number, end: number): Promise<HourCount[]> {
      const { t, where } = rollupSource(target);
      return orm
        .select({ hour: t.hour, humans: t.humans, bots: t.bots })
        .from(t)
        .where(and(...where, eq(t.dimension, 'all'), gte(t.hour, start), lt(t.hour, end)))
        .orderBy(asc(t.hour));
    },

    /** The `limit` values of a dimension with the most clicks (humans + bots) over [start, end); ties by value, unknown last. */
    async top(target: StatsTarget, dimension: Dimension, start: number, end: number, limit: number): Promise<ValueCount[]> {
      const { t, where } = rollupSource(target);
      return orm
        .select({ value: t.value, humans: sum(t.humans), bots: sum(t.bots) })
        .from(t)
        .where(and(...where, eq(t.dimension, dimension), gte(t.hour, start), lt(t.hour, end)))
        .groupBy(t.value)
        .orderBy(sql`sum(${t.humans}) + sum(${t.bots}) desc`, sql`${t.value} = ''`, asc(t.value))
        .limit(limit);
    },

    /** Every value of a dimension with its clicks over [start, end), in no order. */
    async sums(target: StatsTarget, dimension: Dimension, start: number, end: number): Promise<ValueCount[]> {
      const { t, where } = rollupSource(target);
      return orm
        .select({ value: t.value, humans: sum(t.humans), bots: sum(t.bots) })
        .from(t)
        .where(and(...where, eq(t.dimension, dimension), gte(t.hour, start), lt(t.hour, end)))
        .groupBy(t.value);
    },

    /**
     * The same per UTC day (`day`: epoch ms of its midnight) over whole days [start, end), each day's values as one
     * JSON array: a day has up to a few hundred values, and one row per day reads ~10x faster than one per value.
     */
    async sumsByDay(target: StatsTarget, dimension: Dimension, start: number, end: number): Promise<Array<{ day: number; values: ValueCount[] }>> {
      const { t, where } = rollupSource(target);
      const day = sql<number>`${t.hour} / 86400000 * 86400000`;
      const perValue = orm
        .select({ day: day.as('day'), value: t.value, humans: sum(t.humans).as('humans'), bots: sum(t.bots).as('bots') })
        .from(t)
        .where(and(...where, eq(t.dimension, dimension), gte(t.hour, start), lt(t.hour, end)))
        .groupBy(day, t.value)
        .as('per_value');
      const rows = await orm
        .select({
          day: sql<number>`${perValue.day}`.mapWith(Number),
          values: sql<string>`json_group_array(json_array(${perValue.value}, ${perValue.humans}, ${perValue.bots}))`,
        })
        .from(perValue)
        .groupBy(sql`${perValue.day}`);
      return rows.map((r) => ({
        day: r.day,
        values: (JSON.parse(r.values) as Array<[string, number, number]>).map(([value, humans, bots]) => ({ value, humans, bots })),
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
