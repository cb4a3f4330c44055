/**
 * Top lists (the N values of each dimension with the most clicks over a range), summed from the hourly rollups.
 * Every dimension is summed in the same pass: a range of the rollups' key holds all of them (stats.repository.ts).
 *
 * Why not one GROUP BY per request: a 90-day range of a link with a million clicks spans ~250,000 rollup rows,
 * and summing them costs the database tens of milliseconds (bench/stats.ts). So the range is cut at UTC midnights:
 * whole UTC days that closed over an hour ago are summed once per day and kept in memory (bounded, for TTL_MS),
 * and only the ragged edges and the recent days are summed per request.
 * A click that reaches the database more than an hour after its day ended (a queue backlog) shows in the top lists
 * of the process that cached that day within TTL_MS; totals and series always read the rollups directly.
 * The cache belongs to one service instance (one process or isolate); nothing relies on it being there.
 */
import type { DimensionCount, StatsRepository, StatsTarget, ValueCount } from './stats.repository.ts';
import type { Dimension } from './stats.schemas.ts';
import { DAY_MS } from './stats.time.ts';

/** How long after a UTC day ends its rollups are taken as final. */
export const CLOSED_AFTER_MS = 3_600_000;
/** How long a day's sums are kept. */
export const TTL_MS = 10 * 60_000;
/** The cache's bound, in (day, dimension, value) counters kept. */
export const MAX_CACHED_VALUES = 200_000;

interface DaySums {
  values: DimensionCount[];
  expires: number;
}

/** What an entry counts against the bound: its counters, and at least one for a day without clicks. */
const weight = (d: DaySums) => Math.max(1, d.values.length);

const floorDay = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;
const ceilDay = (ms: number) => Math.ceil(ms / DAY_MS) * DAY_MS;

/** Most clicks first; ties by value with unknown ('') last: the order the repository's `top` answers in. */
export function compareTop(a: ValueCount, b: ValueCount): number {
  const diff = b.humans + b.bots - (a.humans + a.bots);
  if (diff !== 0) return diff;
  if ((a.value === '') !== (b.value === '')) return a.value === '' ? 1 : -1;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function createTopLists(repo: StatsRepository) {
  // Insertion order is age order: the oldest entries are the first to go when the bound is reached.
  const days = new Map<string, DaySums>();
  let cachedValues = 0;

  const keyOf = (target: StatsTarget, day: number) => `${target.workspaceId}/${target.linkId ?? '*'}/${day}`;

  function remember(key: string, values: DimensionCount[], now: number) {
    const old = days.get(key);
    if (old) {
      cachedValues -= weight(old);
      days.delete(key);
    }
    const entry = { values, expires: now + TTL_MS };
    days.set(key, entry);
    cachedValues += weight(entry);
    for (const [k, v] of days) {
      if (cachedValues <= MAX_CACHED_VALUES) break;
      days.delete(k);
      cachedValues -= weight(v);
    }
  }

  /** The sums of each closed UTC day in [from, to), from the cache or, for the runs of days it lacks, the database. */
  async function closedDays(target: StatsTarget, from: number, to: number, now: number) {
    const out: DimensionCount[][] = [];
    let missingFrom: number | undefined;
    const fetchMissing = async (until: number) => {
      if (missingFrom === undefined) return;
      const byDay = new Map((await repo.sumsByDay(target, missingFrom, until)).map((d) => [d.day, d.values]));
      for (let day = missingFrom; day < until; day += DAY_MS) {
        const values = byDay.get(day) ?? [];
        remember(keyOf(target, day), values, now);
        out.push(values);
      }
      missingFrom = undefined;
    };
    for (let day = from; day < to; day += DAY_MS) {
      const hit = days.get(keyOf(target, day));
      if (hit && hit.expires > now) {
        await fetchMissing(day);
        out.push(hit.values);
      } else {
        missingFrom ??= day;
      }
    }
    await fetchMissing(to);
    return out;
  }

  return {
    /** For each of `dimensions`, the `limit` values with the most clicks over the whole hours [start, end). */
    async top(
      target: StatsTarget,
      dimensions: readonly Dimension[],
      start: number,
      end: number,
      limit: number,
      now: number,
    ): Promise<Map<Dimension, ValueCount[]>> {
      const fullFrom = ceilDay(start);
      const closedTo = Math.min(floorDay(end), floorDay(now - CLOSED_AFTER_MS));
      let parts: DimensionCount[][];
      if (closedTo - fullFrom < DAY_MS) {
        // Less than a closed day in the range: one GROUP BY over a few thousand rows at most.
        parts = [await repo.sums(target, start, end)];
      } else {
        parts = await closedDays(target, fullFrom, closedTo, now);
        if (start < fullFrom) parts.push(await repo.sums(target, start, fullFrom));
        if (closedTo < end) parts.push(await repo.sums(target, closedTo, end));
      }
      const merged = new Map<Dimension, Map<string, ValueCount>>(dimensions.map((d) => [d, new Map()]));
      for (const part of parts) {
        for (const v of part) {
          const values = merged.get(v.dimension);
          if (!values) continue;
          const m = values.get(v.value);
          if (m) {
            m.humans += v.humans;
            m.bots += v.bots;
          } else {
            values.set(v.value, { value: v.value, humans: v.humans, bots: v.bots });
          }
        }
      }
      return new Map([...merged].map(([d, values]) => [d, [...values.values()].sort(compareTop).slice(0, limit)]));
    },

    /** For tests and metrics: how many days and counters are held. */
    size: () => ({ days: days.size, values: cachedValues }),
  };
}

export type TopLists = ReturnType<typeof createTopLists>;
