/**
 * Top lists (the N values of each dimension with the most clicks over a range), summed from the rollups. Every
 * dimension is summed in the same pass: a range of the rollups' key holds all of them (stats.repository.ts).
 *
 * A range of up to two days sums its slots. A longer one sums the daily rollups of the UTC days it spans and
 * corrects each end with at most 12 hours of slots (`cutAt`): the slots from its UTC midnight to the end are added,
 * or those from the end to the next midnight taken away. A 90-day range of a link with a million clicks is then
 * ~10,000 daily rows and a few thousand slot rows instead of ~250,000 hourly ones, cold or not, and it is exact
 * in every zone (the ends of a local day fall on slots).
 */
import type { DimensionCount, StatsRepository, StatsTarget, ValueCount } from './stats.repository.ts';
import type { Dimension } from './stats.schemas.ts';
import { cutAt, DAY_MS } from './stats.time.ts';

/** Up to this long a range reads its slots alone (192 of them): fewer rows than a day and two edges. */
const SLOTS_UP_TO_MS = 2 * DAY_MS;

/** Most clicks first; ties by value with unknown ('') last: the order the repository's `top` answers in. */
export function compareTop(a: ValueCount, b: ValueCount): number {
  const diff = b.humans + b.bots - (a.humans + a.bots);
  if (diff !== 0) return diff;
  if ((a.value === '') !== (b.value === '')) return a.value === '' ? 1 : -1;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function createTopLists(repo: StatsRepository) {
  /** Every value's clicks over the slots [start, end), as parts to add (sign 1) or take away (sign -1). */
  async function parts(target: StatsTarget, start: number, end: number): Promise<Array<[DimensionCount[], 1 | -1]>> {
    if (end - start <= SLOTS_UP_TO_MS) return [[await repo.slotSums(target, start, end), 1]];
    const from = cutAt(start);
    const to = cutAt(end);
    // Independent reads: over a remote database they overlap; embedded, they run one after another anyway.
    const [days, head, tail] = await Promise.all([
      repo.daySums(target, from.day, to.day),
      from.edge ? repo.slotSums(target, ...from.edge) : [],
      to.edge ? repo.slotSums(target, ...to.edge) : [],
    ]);
    // The start's edge counts before the range: what `cutAt` adds to a count up to it is taken away here.
    return [
      [days, 1],
      [head, from.sign === 1 ? -1 : 1],
      [tail, to.sign],
    ];
  }

  return {
    /** For each of `dimensions`, the `limit` values with the most clicks over the slots [start, end). */
    async top(
      target: StatsTarget,
      dimensions: readonly Dimension[],
      start: number,
      end: number,
      limit: number,
    ): Promise<Map<Dimension, ValueCount[]>> {
      const merged = new Map<Dimension, Map<string, ValueCount>>(dimensions.map((d) => [d, new Map()]));
      for (const [part, sign] of await parts(target, start, end)) {
        for (const v of part) {
          const values = merged.get(v.dimension);
          if (!values) continue;
          const m = values.get(v.value);
          if (m) {
            m.humans += sign * v.humans;
            m.bots += sign * v.bots;
          } else {
            values.set(v.value, { value: v.value, humans: sign * v.humans, bots: sign * v.bots });
          }
        }
      }
      // A value seen only in the part of an edge day outside the range nets to nothing.
      return new Map(
        [...merged].map(([d, values]) => [
          d,
          [...values.values()].filter((v) => v.humans + v.bots > 0).sort(compareTop).slice(0, limit),
        ]),
      );
    },
  };
}

export type TopLists = ReturnType<typeof createTopLists>;
