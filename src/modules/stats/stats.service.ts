/**
 * Statistics of a link, a workspace and a domain's orphan visits, answered from the rollups: the range is resolved
 * (defaults from the clock, bounds) and cut into buckets in the caller's time zone (stats.time.ts); an hourly series
 * sums the slots' totals into them, a daily one is made of daily totals and short edges of slots (`dailySeries`);
 * top lists likewise (stats.top.ts). Also the raw click export, as pages.
 */
import type { Config } from '../../config.ts';
import { AppError, invalidFields, type FieldError } from '../../errors.ts';
import type { ServiceContext } from '../context.ts';
import type { WorkspacesService } from '../workspaces/workspaces.service.ts';
import type { RawClick, SlotCount, StatsRepository, StatsTarget, ValueCount } from './stats.repository.ts';
import {
  DEFAULT_RANGE_DAYS,
  DIMENSIONS,
  HOURLY_UP_TO_DAYS,
  MAX_RANGE_DAYS,
  type ExportedClick,
  type ExportInput,
  type OrphansInput,
  type OrphanStats,
  type Stats,
  type StatsInput,
  type TopEntry,
  type Totals,
} from './stats.schemas.ts';
import { createLru } from '../../platform/cache/lru.ts';
import { createTopLists } from './stats.top.ts';
import { bucketize, ceilSlot, cutAt, DAY_MS, type Bucket, type Buckets, type Interval } from './stats.time.ts';

/** Raw clicks per database read of an export: bounded memory whatever the link's size. */
export const EXPORT_PAGE_SIZE = 1000;

interface RangeInput {
  from?: Date | undefined;
  to?: Date | undefined;
  interval?: Interval | undefined;
  tz: string;
}

const fieldError = (field: string, message: string): FieldError => ({ field, message });

/** The range a request asks for, with the defaults filled in and the bounds checked, cut into buckets. */
export function resolveRange(input: RangeInput, now: Date): Buckets & { interval: Interval; tz: string } {
  const to = input.to?.getTime() ?? now.getTime();
  const from = input.from?.getTime() ?? to - DEFAULT_RANGE_DAYS * DAY_MS;
  if (from >= to) {
    // Name the field the caller sent: with only `from`, `to` is the current time.
    throw invalidFields([
      input.to ? fieldError('to', 'must be later than from') : fieldError('from', 'must be earlier than to (default: now)'),
    ]);
  }
  const interval = input.interval ?? (to - from <= HOURLY_UP_TO_DAYS * DAY_MS ? 'hour' : 'day');
  const maxDays = MAX_RANGE_DAYS[interval];
  if (to - from > maxDays * DAY_MS) {
    const hint = interval === 'hour' ? '; ask for interval=day for longer ranges' : '';
    throw invalidFields([fieldError('from', `must be at most ${maxDays} days before to with interval=${interval}${hint}`)]);
  }
  return { ...bucketize(from, to, interval, input.tz), interval, tz: input.tz };
}

/** Sums slot rows (oldest first) into consecutive buckets; slots outside every bucket are not counted. */
export function fillSeries(buckets: Bucket[], rows: SlotCount[]): { totals: Totals; series: Stats['series'] } {
  const totals = { humans: 0, bots: 0 };
  const series = buckets.map((b) => ({ start: b.label, humans: 0, bots: 0 }));
  let i = 0;
  for (const row of rows) {
    while (i < buckets.length && row.slot >= buckets[i]!.end) i++;
    if (i === buckets.length) break;
    if (row.slot < buckets[i]!.start) continue;
    series[i]!.humans += row.humans;
    series[i]!.bots += row.bots;
    totals.humans += row.humans;
    totals.bots += row.bots;
  }
  return { totals, series };
}

/**
 * A daily series without reading every slot: a bucket's count is the count up to its end minus the count up to its
 * start, and each of those is the daily totals up to a UTC midnight plus or minus at most 12 hours of slots
 * (`cutAt`). One lookup per UTC day and one short range of slots per bucket edge that is not a UTC midnight, read
 * in two statements whatever the range's length.
 */
async function dailySeries(repo: StatsRepository, target: StatsTarget, buckets: Bucket[]): Promise<{ totals: Totals; series: Stats['series'] }> {
  const edges = [buckets[0]!.start, ...buckets.map((b) => b.end)];
  const cuts = edges.map(cutAt);
  const firstDay = cuts[0]!.day;
  const lastDay = cuts.at(-1)!.day;
  const withEdge = cuts.filter((c) => c.edge !== undefined);
  const [days, partial] = await Promise.all([
    repo.dayTotals(target, firstDay, lastDay),
    repo.rangeTotals(target, withEdge.map((c) => c.edge!)),
  ]);
  // Clicks of the days from firstDay up to each day: before[i] counts the days [firstDay, firstDay + i days).
  const before: Array<{ humans: number; bots: number }> = [{ humans: 0, bots: 0 }];
  let d = 0;
  for (let day = firstDay; day < lastDay; day += DAY_MS) {
    const prev = before.at(-1)!;
    const row = days[d]?.slot === day ? days[d++]! : undefined;
    before.push({ humans: prev.humans + (row?.humans ?? 0), bots: prev.bots + (row?.bots ?? 0) });
  }
  let p = 0;
  const upTo = cuts.map((c) => {
    const base = before[(c.day - firstDay) / DAY_MS]!;
    if (!c.edge) return base;
    const edge = partial[p++]!;
    return { humans: base.humans + c.sign * edge.humans, bots: base.bots + c.sign * edge.bots };
  });
  const series = buckets.map((b, i) => ({
    start: b.label,
    humans: upTo[i + 1]!.humans - upTo[i]!.humans,
    bots: upTo[i + 1]!.bots - upTo[i]!.bots,
  }));
  const totals = { humans: upTo.at(-1)!.humans - upTo[0]!.humans, bots: upTo.at(-1)!.bots - upTo[0]!.bots };
  return { totals, series };
}

const toTopEntry = (row: ValueCount): TopEntry => ({ value: row.value === '' ? null : row.value, humans: row.humans, bots: row.bots });

const toExported = (row: RawClick): ExportedClick => ({
  id: row.id,
  at: row.at.toISOString(),
  country: row.country,
  device: row.device,
  browser: row.browser,
  os: row.os,
  referrer: row.referrer,
  bot: row.bot,
});

/** How long a computed answer is reused for the same question, unless clicks are stored in this process meanwhile. */
const ANSWER_TTL_MS = 5000;

export function createStatsService(repo: StatsRepository, workspaces: WorkspacesService, config: Config) {
  const topLists = createTopLists(repo);
  // Dashboards ask the same question over and over: the answer is kept briefly, per question as asked (an open
  // range ends "now", so its answer may be up to ANSWER_TTL_MS old). Clicks stored by this process's consumer
  // drop every kept answer (`clicksStored`); other processes' answers are at most ANSWER_TTL_MS behind.
  // On the request's clock (ctx.now), like the ranges themselves.
  const answers = createLru<{ stats: Stats; at: number }>({ maxEntries: 1000, maxBytes: 16 * 1024 * 1024 });
  const cached = async (target: StatsTarget, input: StatsInput, now: number, compute: () => Promise<Stats>): Promise<Stats> => {
    const key = JSON.stringify([
      target.workspaceId,
      target.linkId ?? null,
      input.from?.getTime() ?? null,
      input.to?.getTime() ?? null,
      input.interval ?? null,
      input.tz,
      input.top,
      input.dimensions ?? null,
    ]);
    const hit = answers.get(key);
    if (hit && now >= hit.at && now - hit.at < ANSWER_TTL_MS) return hit.stats;
    const stats = await compute();
    // The entry's own lifetime only bounds memory; freshness is judged on the request's clock above.
    answers.set(key, { stats, at: now }, 60_000, JSON.stringify(stats).length * 2);
    return stats;
  };

  async function stats(target: StatsTarget, input: StatsInput, range: ReturnType<typeof resolveRange>): Promise<Stats> {
    const dimensions = input.dimensions ?? DIMENSIONS;
    // Independent reads: over a remote database they overlap; embedded, they run one after another anyway.
    const [counted, tops] = await Promise.all([
      range.interval === 'day'
        ? dailySeries(repo, target, range.buckets)
        : repo.slotTotals(target, range.start, range.end).then((rows) => fillSeries(range.buckets, rows)),
      input.top > 0 ? topLists.top(target, dimensions, range.start, range.end, input.top) : undefined,
    ]);
    return {
      from: range.startLabel,
      to: range.endLabel,
      interval: range.interval,
      tz: range.tz,
      ...counted,
      top: Object.fromEntries(dimensions.map((d) => [d, (tops?.get(d) ?? []).map(toTopEntry)])),
    };
  }

  const noSuchLink = () => new AppError('not_found', 'No such link.');

  return {
    async linkStats(ctx: ServiceContext, linkId: string, input: StatsInput): Promise<Stats> {
      // Validated before the link is looked up, so a bad query answers 400 whoever's link it names.
      const now = ctx.now();
      const range = resolveRange(input, now);
      if (!(await repo.linkExists(ctx.workspaceId, linkId))) throw noSuchLink();
      const target = { workspaceId: ctx.workspaceId, linkId };
      return cached(target, input, now.getTime(), () => stats(target, input, range));
    },

    async workspaceStats(ctx: ServiceContext, input: StatsInput): Promise<Stats> {
      const now = ctx.now();
      const range = resolveRange(input, now);
      const target = { workspaceId: ctx.workspaceId };
      return cached(target, input, now.getTime(), () => stats(target, input, range));
    },

    /** This process stored clicks: kept answers no longer hold. */
    clicksStored() {
      answers.clear();
    },

    /**
     * Visits to unknown slugs of one domain. A workspace sees those of the domains it registered; the default
     * domain is shared by every workspace (and unregistered hosts fall back to it), so its visits, and those of
     * any host no workspace registered, are the operator's alone (`actor.type === 'operator'`). A workspace sees
     * only visits since it registered the domain, never those of an earlier owner: the series from the first
     * 15-minute slot that starts after the registration (a slot's rollup cannot be split), the top slugs from the
     * registration itself.
     */
    async orphanStats(ctx: ServiceContext, input: OrphansInput): Promise<OrphanStats> {
      const range = resolveRange(input, ctx.now());
      let since = Number.NEGATIVE_INFINITY;
      if (ctx.actor.type !== 'operator') {
        if (input.domain === config.defaultDomain) {
          throw invalidFields([
            fieldError('domain', 'is the default domain, shared by every workspace: only the operator sees its orphan visits'),
          ]);
        }
        const own = (await workspaces.listDomains(ctx)).find((d) => d.hostname === input.domain);
        if (!own) {
          throw invalidFields([fieldError('domain', 'is not a domain of this workspace (add it with POST /v1/domains)')]);
        }
        since = Date.parse(own.createdAt);
      }
      const seriesStart = Math.max(range.start, ceilSlot(since));
      const topStart = Math.max(range.start, since);
      const [rows, slugs] = await Promise.all([
        seriesStart < range.end ? repo.orphanSeries(input.domain, seriesStart, range.end) : Promise.resolve([]),
        input.top > 0 && topStart < range.end ? repo.orphanTopSlugs(input.domain, topStart, range.end, input.top) : Promise.resolve([]),
      ]);
      return {
        domain: input.domain,
        from: range.startLabel,
        to: range.endLabel,
        interval: range.interval,
        tz: range.tz,
        ...fillSeries(range.buckets, rows),
        top: { slug: slugs.map((s) => ({ value: s.value, humans: s.humans, bots: s.bots })) },
      };
    },

    /**
     * A link's raw clicks in time order, as pages of at most EXPORT_PAGE_SIZE read one after another while the
     * caller consumes them. Clicks older than the retention (`HOP_CLICK_RETENTION_DAYS`) are gone.
     */
    async exportClicks(ctx: ServiceContext, linkId: string, input: ExportInput): Promise<AsyncGenerator<ExportedClick[], void>> {
      if (input.from && input.to && input.from.getTime() >= input.to.getTime()) {
        throw invalidFields([fieldError('to', 'must be later than from')]);
      }
      if (!(await repo.linkExists(ctx.workspaceId, linkId))) throw noSuchLink();
      const { workspaceId } = ctx;
      return (async function* pages() {
        let after: { at: Date; id: string } | undefined;
        for (;;) {
          const rows = await repo.clicksPage(workspaceId, linkId, { from: input.from, to: input.to, after, limit: EXPORT_PAGE_SIZE });
          if (rows.length) yield rows.map(toExported);
          if (rows.length < EXPORT_PAGE_SIZE) return;
          const last = rows.at(-1)!;
          after = { at: last.at, id: last.id };
        }
      })();
    },
  };
}

export type StatsService = ReturnType<typeof createStatsService>;
