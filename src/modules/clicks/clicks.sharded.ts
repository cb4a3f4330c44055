/**
 * The clicks repository over shards (HOP_DATABASE_SHARDS): a batch is split by shard and each part stored on its
 * shard, in parallel. A click goes where its link is (the link directory on the control database, one read per
 * batch); an orphan visit to the shard of its address. A click of a link the directory no longer knows (deleted)
 * is kept on the shard of bucket 0, as the single database keeps it, counted in no link's rollups that exist.
 */
import { inArray } from 'drizzle-orm';
import { linkBuckets, parkedClicks } from '../../db/schema.ts';
import type { Database } from '../../platform/db/client.ts';
import { AppError } from '../../errors.ts';
import { isWritable, LAYOUT_STALE_MS, type ShardSet } from '../../platform/db/shards.ts';
import { createClicksRepository, type ClickRow, type ClicksRepository, type IngestStored, type OrphanRow } from './clicks.repository.ts';

export function createShardedClicksRepository(set: ShardSet): ClicksRepository {
  // Per shard, made on first use: a resharding can add shards while the process runs.
  const repos = new Map<Database, ClicksRepository>();
  const repoOf = (db: Database) => repos.get(db) ?? repos.set(db, createClicksRepository(db.orm)).get(db)!;
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
      // A click of a bucket frozen by a resharding is parked on the control database, on neither shard: hop reshard
      // stores it on the bucket's new shard after the flip. Failing the batch instead would stall every click behind
      // it for the whole freeze, and fill the queue until redirects are refused.
      // A process that cannot read the layout does not know the freezes: the batch fails, the queue delivers it again.
      if (clickRows.length && Date.now() - set.state.checkedAt > LAYOUT_STALE_MS) {
        throw new AppError('unavailable', 'The shard layout could not be read; clicks will be retried.', { retryAfterS: 1 });
      }
      const parked: { id: string; bucket: number; row: string }[] = [];
      for (const r of clickRows) {
        const bucket = buckets.get(r.linkId) ?? 0;
        if (isWritable(set, bucket)) part(set.ofBucket(bucket)).clicks.push(r);
        else parked.push({ id: r.id, bucket, row: JSON.stringify(r) });
      }
      if (parked.length) await set.control.orm.insert(parkedClicks).values(parked).onConflictDoNothing();
      for (const r of orphanRows) part(set.of(r.domain, r.slug)).orphans.push(r);
      // Each shard's part is one transaction there; a part that fails fails the batch, which the queue delivers
      // again, and the parts already stored skip their clicks by id.
      const stored = await Promise.all([...parts].map(([db, p]) => repoOf(db).ingest(p.clicks, p.orphans)));
      return {
        clicks: stored.reduce((a, s) => a + s.clicks, 0),
        orphans: stored.reduce((a, s) => a + s.orphans, 0),
        limited: stored.flatMap((s) => s.limited),
      };
    },

    async purge(before: Date, limit: number): Promise<number> {
      const counts = await Promise.all(set.shards.map((db) => repoOf(db).purge(before, limit)));
      return counts.reduce((a, b) => a + b, 0);
    },
  };
}
