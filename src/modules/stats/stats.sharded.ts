/**
 * The statistics repository over shards (HOP_DATABASE_SHARDS): a link's statistics are read on its shard (found
 * through the link directory on the control database); a workspace's, and a domain's orphan visits, are every
 * shard's rollups summed. A shard that does not answer fails the read (503), never a smaller sum. The counts are read
 * where a shard's replicas are (ShardSet.readerOf), a few ms behind the clicks stored; whether the link exists is
 * asked of its primary, which has a link created a moment ago.
 */
import { and, eq } from 'drizzle-orm';
import { linkBuckets } from '../../db/schema.ts';
import type { Database } from '../../platform/db/client.ts';
import { scatter, type ShardSet } from '../../platform/db/shards.ts';
import { createStatsRepository, type DimensionCount, type SlotCount, type StatsRepository, type StatsTarget, type ValueCount } from './stats.repository.ts';

/** Counts of the same key added together, in the order their keys first appear. */
function sumBy<R extends { humans: number; bots: number }>(lists: R[][], key: (r: R) => string | number): R[] {
  const merged = new Map<string | number, R>();
  for (const r of lists.flat()) {
    const m = merged.get(key(r));
    if (m) {
      m.humans += r.humans;
      m.bots += r.bots;
    } else merged.set(key(r), { ...r });
  }
  return [...merged.values()];
}

const bySlot = (lists: SlotCount[][]) => sumBy(lists, (r) => r.slot).sort((a, b) => a.slot - b.slot);

export function createShardedStatsRepository(set: ShardSet, timeoutMs: number): StatsRepository {
  // Per shard, made on first use (a resharding can add shards while the process runs): its primary's repository and
  // its reader's (replicas.ts), the same one for a shard without replicas.
  const made = new Map<Database, StatsRepository>();
  const repoOf = (db: Database) => made.get(db) ?? made.set(db, createStatsRepository(db.orm)).get(db)!;
  const repoAt = (i: number) => repoOf(set.shards[i]!);
  const readerAt = (i: number) => repoOf(set.readerOf(set.shards[i]!));

  /** The repository of the link's shard; undefined when the directory has no such link of this workspace. */
  async function linkRepo(workspaceId: string, linkId: string, primary = false): Promise<StatsRepository | undefined> {
    const [row] = await set.control.orm
      .select({ bucket: linkBuckets.bucket })
      .from(linkBuckets)
      .where(and(eq(linkBuckets.linkId, linkId), eq(linkBuckets.workspaceId, workspaceId)));
    return row && (primary ? repoAt : readerAt)(set.map[row.bucket]!);
  }

  /** A link's answer from its shard, or every shard's answers for a workspace. */
  async function read<T>(target: StatsTarget, run: (repo: StatsRepository) => Promise<T>): Promise<T[]> {
    if (target.linkId !== undefined) {
      const repo = await linkRepo(target.workspaceId, target.linkId);
      return repo ? [await run(repo)] : [];
    }
    return scatter(set.shards, (_db, i) => run(readerAt(i)), { timeoutMs });
  }
  const everyShard = <T>(run: (repo: StatsRepository) => Promise<T>) => scatter(set.shards, (_db, i) => run(readerAt(i)), { timeoutMs });

  return {
    async linkExists(workspaceId, linkId) {
      const repo = await linkRepo(workspaceId, linkId, true);
      return repo ? repo.linkExists(workspaceId, linkId) : false;
    },
    slotTotals: async (target, start, end) => bySlot(await read(target, (r) => r.slotTotals(target, start, end))),
    async rangeTotals(target, ranges) {
      const lists = await read(target, (r) => r.rangeTotals(target, ranges));
      return ranges.map((_, i) => ({
        humans: lists.reduce((a, l) => a + l[i]!.humans, 0),
        bots: lists.reduce((a, l) => a + l[i]!.bots, 0),
      }));
    },
    dayTotals: async (target, start, end) => bySlot(await read(target, (r) => r.dayTotals(target, start, end))),
    slotSums: async (target, start, end) =>
      sumBy<DimensionCount>(await read(target, (r) => r.slotSums(target, start, end)), (r) => `${r.dimension}\u0000${r.value}`),
    daySums: async (target, start, end) =>
      sumBy<DimensionCount>(await read(target, (r) => r.daySums(target, start, end)), (r) => `${r.dimension}\u0000${r.value}`),
    orphanSeries: async (domain, start, end) => bySlot(await everyShard((r) => r.orphanSeries(domain, start, end))),
    async orphanTopSlugs(domain, start, end, limit) {
      // A slug's visits all lie on the shard of its address: each shard's top list is exact for its slugs.
      const all = sumBy<ValueCount>(await everyShard((r) => r.orphanTopSlugs(domain, start, end, limit)), (r) => r.value);
      const total = (r: ValueCount) => r.humans + r.bots;
      return all.sort((a, b) => total(b) - total(a) || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0)).slice(0, limit);
    },
    async clicksPage(workspaceId, linkId, page) {
      const repo = await linkRepo(workspaceId, linkId);
      return repo ? repo.clicksPage(workspaceId, linkId, page) : [];
    },
  };
}
