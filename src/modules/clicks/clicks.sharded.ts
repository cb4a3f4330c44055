/**
 * The clicks repository over shards (HOP_DATABASE_SHARDS): a batch is split by shard and each part stored on its
 * shard, in parallel. A click goes where its link is (the link directory on the control database, one read per
 * batch); an orphan visit to the shard of its address. A click of a link the directory no longer knows (deleted)
 * is kept on the shard of bucket 0, as the single database keeps it, counted in no link's rollups that exist.
 */
import { inArray } from 'drizzle-orm';
import { linkBuckets } from '../../db/schema.ts';
import type { Database } from '../../platform/db/client.ts';
import type { ShardSet } from '../../platform/db/shards.ts';
import { createClicksRepository, type ClickRow, type ClicksRepository, type IngestStored, type OrphanRow } from './clicks.repository.ts';

export function createShardedClicksRepository(set: ShardSet): ClicksRepository {
  const repos = new Map<Database, ClicksRepository>(set.shards.map((db) => [db, createClicksRepository(db.orm)]));
  return {
    async ingest(clickRows: ClickRow[], orphanRows: OrphanRow[]): Promise<IngestStored> {
      const ids = [...new Set(clickRows.map((r) => r.linkId))];
      const buckets = new Map<string, number>();
      // SQLite binds at most 32,766 parameters; a batch is at most a few thousand clicks.
      for (let i = 0; i < ids.length; i += 1000) {
        const rows = await set.control.orm
          .select({ id: linkBuckets.linkId, bucket: linkBuckets.bucket })
          .from(linkBuckets)
          .where(inArray(linkBuckets.linkId, ids.slice(i, i + 1000)));
        for (const r of rows) buckets.set(r.id, r.bucket);
      }
      const parts = new Map<Database, { clicks: ClickRow[]; orphans: OrphanRow[] }>();
      const part = (db: Database) => parts.get(db) ?? parts.set(db, { clicks: [], orphans: [] }).get(db)!;
      for (const r of clickRows) part(set.ofBucket(buckets.get(r.linkId) ?? 0)).clicks.push(r);
      for (const r of orphanRows) part(set.of(r.domain, r.slug)).orphans.push(r);
      // Each shard's part is one transaction there; a part that fails fails the batch, which the queue delivers
      // again, and the parts already stored skip their clicks by id.
      const stored = await Promise.all([...parts].map(([db, p]) => repos.get(db)!.ingest(p.clicks, p.orphans)));
      return {
        clicks: stored.reduce((a, s) => a + s.clicks, 0),
        orphans: stored.reduce((a, s) => a + s.orphans, 0),
        limited: stored.flatMap((s) => s.limited),
      };
    },

    async purge(before: Date, limit: number): Promise<number> {
      const counts = await Promise.all([...repos.values()].map((repo) => repo.purge(before, limit)));
      return counts.reduce((a, b) => a + b, 0);
    },
  };
}
