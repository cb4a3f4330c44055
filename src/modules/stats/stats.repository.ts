/**
 * drizzle reads behind statistics. Counts come from the rollups only: per 15-minute slot (click_rollups per value,
 * click_totals for the totals; workspace_* for a workspace; orphan_rollups for a domain) and per UTC day
 * (click_days, workspace_days), each read as ranges of its primary key or lookups of it; raw rows are read only to
 * export a link's clicks (keyset pages on the (link_id, at, id) index) and for the top slugs of orphan visits. Every
 * read of a workspace's data is bound to that workspace; a link's rollups are read by its id once `linkExists`
 * found it in the workspace.
 */
import { and, asc, eq, gte, lt, ne, sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import {
  clickDays,
  clickRollups,
  clicks,
  clickTotals,
  links,
  orphanRollups,
  orphanVisits,
  rollupWatermark,
  workspaceDays,
  workspaceRollups,
  workspaceTotals,
} from '../../db/schema.ts';
import type { Orm } from '../../platform/db/client.ts';
import type { Dimension } from './stats.schemas.ts';
import { DAY_MS } from './stats.time.ts';

/** Whose rollups: one link of a workspace, or the whole workspace. */
export type StatsTarget = { workspaceId: string; linkId: string } | { workspaceId: string; linkId?: undefined };

export interface SlotCount {
  /** Epoch ms of the 15-minute slot (or of the UTC day, for days). */
  slot: number;
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
 * Which rollups: a link's (its workspace was checked by the caller, `linkExists`) or a whole workspace's. The tables
 * of values are keyed (owner, slot or day, dimension, value), so a range of slots or days is one range of the key,
 * every dimension in it; the totals are keyed (owner, slot).
 */
function rollupSource(target: StatsTarget) {
  if (target.linkId !== undefined) {
    const id = target.linkId;
    return {
      slots: clickRollups,
      inSlots: eq(clickRollups.linkId, id),
      totals: clickTotals,
      inTotals: eq(clickTotals.linkId, id),
      days: clickDays,
      inDays: eq(clickDays.linkId, id),
    };
  }
  const id = target.workspaceId;
  return {
    slots: workspaceRollups,
    inSlots: eq(workspaceRollups.workspaceId, id),
    totals: workspaceTotals,
    inTotals: eq(workspaceTotals.workspaceId, id),
    days: workspaceDays,
    inDays: eq(workspaceDays.workspaceId, id),
  };
}

const toCount = (r: { slot: unknown; humans: unknown; bots: unknown }): SlotCount => ({
  slot: Number(r.slot),
  humans: Number(r.humans),
  bots: Number(r.bots),
});

export function createStatsRepository(orm: Orm) {
  /**
   * Where [start, end) stops being read from the daily rollups: the watermark (days before it are complete, later
   * ones are filled when they close), kept within the range. Without a watermark row every day is complete.
   */
  const daysSplit = async (start: number, end: number): Promise<number> => {
    const [row] = await orm.select({ until: rollupWatermark.daysUntil }).from(rollupWatermark).where(eq(rollupWatermark.id, 1));
    return row ? Math.min(Math.max(Number(row.until), start), end) : end;
  };
  const repository = {
    async linkExists(workspaceId: string, linkId: string): Promise<boolean> {
      const [row] = await orm
        .select({ id: links.id })
        .from(links)
        .where(and(eq(links.id, linkId), eq(links.workspaceId, workspaceId)))
        .limit(1);
      return row !== undefined;
    },

    /** The totals of the slots [start, end) that had clicks, oldest first: one range of the totals' key. */
    async slotTotals(target: StatsTarget, start: number, end: number): Promise<SlotCount[]> {
      const { totals: t, inTotals } = rollupSource(target);
      return orm
        .select({ slot: t.slot, humans: t.humans, bots: t.bots })
        .from(t)
        .where(and(inTotals, gte(t.slot, start), lt(t.slot, end)))
        .orderBy(asc(t.slot));
    },

    /**
     * The totals of each range of slots, in the order given (zeros where a range had no clicks), in one statement:
     * each range is one seek and a short walk of the totals' key.
     */
    async rangeTotals(target: StatsTarget, ranges: Array<[number, number]>): Promise<Array<{ humans: number; bots: number }>> {
      const out = ranges.map(() => ({ humans: 0, bots: 0 }));
      if (!ranges.length) return out;
      const { totals: t, inTotals } = rollupSource(target);
      // `cross join` keeps the ranges as the outer loop, so each is a range of the key, not a scan of the owner's rows.
      const rows = await orm.all<{ i: number; humans: number; bots: number }>(sql`
        select r.key as i, sum(${t.humans}) as humans, sum(${t.bots}) as bots
        from json_each(${JSON.stringify(ranges)}) r cross join ${t}
        where ${inTotals} and ${t.slot} >= r.value ->> 0 and ${t.slot} < r.value ->> 1
        group by r.key`);
      for (const r of rows) out[Number(r.i)] = { humans: Number(r.humans), bots: Number(r.bots) };
      return out;
    },

    /**
     * Daily totals (dimension `all`) of the UTC days [start, end), oldest first; days without clicks have no row.
     * One key lookup per day rather than a scan: a day's range holds every dimension's rows.
     */
    async dayTotals(target: StatsTarget, start: number, end: number): Promise<SlotCount[]> {
      if (start >= end) return [];
      const split = await daysSplit(start, end);
      const { days: t, inDays } = rollupSource(target);
      const closed =
        start < split
          ? await orm.all<{ slot: number; humans: number; bots: number }>(sql`
        with recursive days(day) as (select ${start} union all select day + ${DAY_MS} from days where day + ${DAY_MS} < ${split})
        select ${t.day} as slot, ${t.humans} as humans, ${t.bots} as bots
        from days cross join ${t}
        where ${inDays} and ${t.day} = days.day and ${t.dimension} = 'all' and ${t.value} = ''
        order by days.day`)
          : [];
      if (split >= end) return closed.map(toCount);
      // Days not closed yet: from the slot totals.
      const { totals: s, inTotals } = rollupSource(target);
      const day = sql<number>`${s.slot} - ${s.slot} % ${DAY_MS}`.mapWith(Number);
      const open = await orm
        .select({ slot: day, humans: sum(s.humans), bots: sum(s.bots) })
        .from(s)
        .where(and(inTotals, gte(s.slot, split), lt(s.slot, end)))
        .groupBy(day)
        .orderBy(day);
      return [...closed.map(toCount), ...open.map(toCount)];
    },

    /** Every value of every dimension with its clicks over the slots [start, end), in no order: one pass over the range. */
    async slotSums(target: StatsTarget, start: number, end: number): Promise<DimensionCount[]> {
      const { slots: t, inSlots } = rollupSource(target);
      const rows = await orm
        .select({ dimension: t.dimension, value: t.value, humans: sum(t.humans), bots: sum(t.bots) })
        .from(t)
        .where(and(inSlots, gte(t.slot, start), lt(t.slot, end)))
        .groupBy(t.dimension, t.value);
      return rows as DimensionCount[];
    },

    /** The same over the UTC days [start, end), from the daily rollups (the days not closed yet from their slots). */
    async daySums(target: StatsTarget, start: number, end: number): Promise<DimensionCount[]> {
      if (start >= end) return [];
      const split = await daysSplit(start, end);
      const { days: t, inDays } = rollupSource(target);
      const closed =
        start < split
          ? ((await orm
              .select({ dimension: t.dimension, value: t.value, humans: sum(t.humans), bots: sum(t.bots) })
              .from(t)
              .where(and(inDays, gte(t.day, start), lt(t.day, split), ne(t.dimension, 'all')))
              .groupBy(t.dimension, t.value)) as DimensionCount[])
          : [];
      if (split >= end) return closed;
      const merged = new Map(closed.map((r) => [`${r.dimension}\u0000${r.value}`, { ...r }]));
      for (const r of await repository.slotSums(target, split, end)) {
        const key = `${r.dimension}\u0000${r.value}`;
        const m = merged.get(key);
        if (m) {
          m.humans += r.humans;
          m.bots += r.bots;
        } else merged.set(key, { ...r });
      }
      return [...merged.values()];
    },

    /** Orphan visits of a domain per slot over [start, end), oldest first. */
    async orphanSeries(domain: string, start: number, end: number): Promise<SlotCount[]> {
      const t = orphanRollups;
      return orm
        .select({ slot: t.slot, humans: t.humans, bots: t.bots })
        .from(t)
        .where(and(eq(t.domain, domain), gte(t.slot, start), lt(t.slot, end)))
        .orderBy(asc(t.slot));
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
  return repository;
}

export type StatsRepository = ReturnType<typeof createStatsRepository>;
